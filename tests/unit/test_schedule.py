"""Offset grammar, quiet hours, and explicit (DST and zone) cases of the schedule engine."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.schedule import (
    DEFAULT_QUIET_HOURS,
    OFFSET_GRAMMAR,
    Offset,
    OffsetError,
    QuietHours,
    defer_quiet,
    expand,
    parse_offset,
    plan,
    resolve_local,
    step_time,
)

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
NO_QUIET = QuietHours(time(0, 0), time(0, 0))
UTC_ZONE = ZoneInfo("UTC")
Fields = tuple[int, int, int, int, int]


def at(tz: ZoneInfo, y: int, mo: int, d: int, h: int, mi: int, fold: int = 0) -> datetime:
    """An aware UTC instant given as local wall-clock fields in ``tz``."""
    return datetime(y, mo, d, h, mi, tzinfo=tz, fold=fold).astimezone(UTC)


def wall(t: datetime, tz: ZoneInfo) -> datetime:
    return t.astimezone(tz).replace(tzinfo=None)


# --- offset grammar -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ("+0m", Offset(0, "m", None), "+0m"),
        ("+90m", Offset(90, "m", None), "+90m"),
        ("+2h", Offset(2, "h", None), "+2h"),
        ("+1d@09:00", Offset(1, "d", time(9, 0)), "+1d@09:00"),
        ("+0d@20:00", Offset(0, "d", time(20, 0)), "+0d@20:00"),
        ("+3d@19:30", Offset(3, "d", time(19, 30)), "+3d@19:30"),
        ("+7d@10:00", Offset(7, "d", time(10, 0)), "+7d@10:00"),
        ("+1d@00:00", Offset(1, "d", time(0, 0)), "+1d@00:00"),
        ("+1d@23:59", Offset(1, "d", time(23, 59)), "+1d@23:59"),
        ("+12h@08:30", Offset(12, "h", time(8, 30)), "+12h@08:30"),
        ("  +2h\n", Offset(2, "h", None), "+2h"),
        ("+01d", Offset(1, "d", None), "+1d"),
        ("+365d", Offset(365, "d", None), "+365d"),
        ("+8760h", Offset(8760, "h", None), "+8760h"),
        ("+525600m", Offset(525600, "m", None), "+525600m"),
    ],
)
def test_parse_offset_valid(text: str, expected: Offset, canonical: str) -> None:
    parsed = parse_offset(text)
    assert parsed == expected
    assert str(parsed) == canonical
    assert parse_offset(str(parsed)) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "+",
        "1d",
        "-1d",
        "+-1d",
        "++1d",
        "+ 1d",
        "+1 d",
        "+1w",
        "+1s",
        "+1D",
        "+1.5h",
        "+3x",
        "+d",
        "+1d@",
        "+1d@9:00",
        "+1d@09",
        "+1d@0900",
        "+1d@25:00",
        "+1d@24:00",
        "+1d@09:60",
        "+1d@09:00:00",
        "+1d @09:00",
        "+1d@09:00x",
        "+1d@09:00+1h",
        "@09:00",
        "+１d",
        "+366d",
        "+8761h",
        "+525601m",
        "+9999999999d",
    ],
)
def test_parse_offset_invalid(text: str) -> None:
    with pytest.raises(OffsetError) as info:
        parse_offset(text)
    message = str(info.value)
    assert repr(text.strip()) in message
    assert OFFSET_GRAMMAR in message
    assert isinstance(info.value, ValueError)


def test_offset_error_message_example() -> None:
    with pytest.raises(OffsetError, match=r"^bad offset '\+3x': use \+<n>m, \+<n>h or \+<n>d"):
        parse_offset("+3x")


def test_offset_error_truncates_long_input() -> None:
    with pytest.raises(OffsetError) as info:
        parse_offset("+1x" * 1000)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    ("amount", "unit", "at_"),
    [(-1, "d", None), (1, "w", None), (366, "d", None), (1, "d", time(9, 0, 30))],
)
def test_offset_constructor_validates(amount: int, unit: str, at_: time | None) -> None:
    with pytest.raises(OffsetError):
        Offset(amount, unit, at_)  # type: ignore[arg-type]


# --- quiet hours ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quiet", "local", "inside"),
    [
        (DEFAULT_QUIET_HOURS, time(20, 59, 59), False),
        (DEFAULT_QUIET_HOURS, time(21, 0), True),
        (DEFAULT_QUIET_HOURS, time(23, 59), True),
        (DEFAULT_QUIET_HOURS, time(0, 0), True),
        (DEFAULT_QUIET_HOURS, time(7, 59, 59), True),
        (DEFAULT_QUIET_HOURS, time(8, 0), False),
        (DEFAULT_QUIET_HOURS, time(12, 0), False),
        (QuietHours(time(13, 0), time(14, 0)), time(12, 59), False),
        (QuietHours(time(13, 0), time(14, 0)), time(13, 0), True),
        (QuietHours(time(13, 0), time(14, 0)), time(14, 0), False),
        (NO_QUIET, time(0, 0), False),
        (QuietHours(time(22, 0), time(22, 0)), time(22, 0), False),
    ],
)
def test_quiet_contains(quiet: QuietHours, local: time, inside: bool) -> None:
    assert quiet.contains(local) is inside


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("21:00-08:00", DEFAULT_QUIET_HOURS),
        (" 22:30 - 7:15 ", QuietHours(time(22, 30), time(7, 15))),
        ("21:00–08:00", DEFAULT_QUIET_HOURS),
        ("00:00-00:00", NO_QUIET),
    ],
)
def test_quiet_parse(text: str, expected: QuietHours) -> None:
    assert QuietHours.parse(text) == expected


@pytest.mark.parametrize("text", ["", "21-08", "21:00", "21:00-24:00", "25:00-08:00", "9pm-8am"])
def test_quiet_parse_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM-HH:MM") as info:
        QuietHours.parse(text)
    assert repr(text.strip()) in str(info.value)


def test_quiet_str_round_trips() -> None:
    assert str(DEFAULT_QUIET_HOURS) == "21:00-08:00"
    assert QuietHours.parse(str(QuietHours(time(6, 5), time(7, 0)))) == QuietHours(
        time(6, 5), time(7, 0)
    )


# --- resolve_local: DST gaps and folds ------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "naive", "expected_utc", "expected_wall"),
    [
        # New York spring forward 02:00 -> 03:00: 02:30 does not exist.
        (NY, (2024, 3, 10, 2, 30), (2024, 3, 10, 7, 30), (2024, 3, 10, 3, 30)),
        # New York fall back: 01:30 happens twice, first (EDT) wins.
        (NY, (2024, 11, 3, 1, 30), (2024, 11, 3, 5, 30), (2024, 11, 3, 1, 30)),
        (BERLIN, (2024, 3, 31, 2, 30), (2024, 3, 31, 1, 30), (2024, 3, 31, 3, 30)),
        (BERLIN, (2024, 10, 27, 2, 30), (2024, 10, 27, 0, 30), (2024, 10, 27, 2, 30)),
        # Lord Howe shifts by 30 minutes: 02:00 -> 02:30 in October, 02:00 -> 01:30 in April.
        (LORD_HOWE, (2024, 10, 6, 2, 15), (2024, 10, 5, 15, 45), (2024, 10, 6, 2, 45)),
        (LORD_HOWE, (2024, 4, 7, 1, 45), (2024, 4, 6, 14, 45), (2024, 4, 7, 1, 45)),
        (KATHMANDU, (2024, 6, 1, 9, 0), (2024, 6, 1, 3, 15), (2024, 6, 1, 9, 0)),
    ],
)
def test_resolve_local(
    tz: ZoneInfo,
    naive: Fields,
    expected_utc: Fields,
    expected_wall: Fields,
) -> None:
    result = resolve_local(datetime(*naive), tz)
    assert result == datetime(*expected_utc, tzinfo=UTC)
    assert result.tzinfo is UTC
    assert wall(result, tz) == datetime(*expected_wall)


def test_resolve_local_rejects_aware() -> None:
    with pytest.raises(ValueError, match="naive"):
        resolve_local(datetime(2024, 1, 1, tzinfo=UTC), NY)


# --- step_time ------------------------------------------------------------------------------


def test_minutes_and_hours_are_elapsed_time() -> None:
    start = at(NY, 2024, 3, 10, 1, 0)  # one hour before spring forward
    assert step_time(parse_offset("+0m"), start, NY) == start
    assert step_time(parse_offset("+90m"), start, NY) == start + timedelta(minutes=90)
    assert wall(step_time(parse_offset("+2h"), start, NY), NY) == datetime(2024, 3, 10, 4, 0)


def test_days_keep_local_wall_clock_across_dst() -> None:
    start = at(NY, 2024, 3, 9, 10, 0)
    one_day = step_time(parse_offset("+1d"), start, NY)
    assert wall(one_day, NY) == datetime(2024, 3, 10, 10, 0)
    assert one_day - start == timedelta(hours=23)
    assert wall(step_time(parse_offset("+24h"), start, NY), NY) == datetime(2024, 3, 10, 11, 0)


def test_days_into_gap_move_forward_and_into_fold_take_first() -> None:
    gap = step_time(parse_offset("+1d"), at(NY, 2024, 3, 9, 2, 30), NY)
    assert wall(gap, NY) == datetime(2024, 3, 10, 3, 30)
    fold = step_time(parse_offset("+1d"), at(NY, 2024, 11, 2, 1, 30), NY)
    assert fold == at(NY, 2024, 11, 3, 1, 30, fold=0)
    assert fold < at(NY, 2024, 11, 3, 1, 30, fold=1)


def test_zero_days_from_second_pass_of_fold_is_the_session_start() -> None:
    start = at(NY, 2024, 11, 3, 1, 30, fold=1)
    assert step_time(parse_offset("+0d"), start, NY) == start


@pytest.mark.parametrize(
    ("tz", "offset", "start", "expected_wall"),
    [
        (NY, "+1d@02:30", (2024, 3, 9, 12, 0), datetime(2024, 3, 10, 3, 30)),
        (NY, "+1d@01:30", (2024, 11, 2, 12, 0), datetime(2024, 11, 3, 1, 30)),
        (BERLIN, "+1d@02:30", (2024, 3, 30, 12, 0), datetime(2024, 3, 31, 3, 30)),
        (BERLIN, "+1d@02:30", (2024, 10, 26, 12, 0), datetime(2024, 10, 27, 2, 30)),
        (LORD_HOWE, "+1d@02:10", (2024, 10, 5, 12, 0), datetime(2024, 10, 6, 2, 40)),
        (LORD_HOWE, "+2d@09:00", (2024, 10, 5, 12, 0), datetime(2024, 10, 7, 9, 0)),
        (KATHMANDU, "+1d@09:00", (2024, 6, 1, 23, 50), datetime(2024, 6, 2, 9, 0)),
    ],
)
def test_wall_clock_steps_in_dst_zones(
    tz: ZoneInfo, offset: str, start: Fields, expected_wall: datetime
) -> None:
    assert wall(step_time(parse_offset(offset), at(tz, *start), tz), tz) == expected_wall


def test_berlin_fall_back_step_takes_first_occurrence() -> None:
    t = step_time(parse_offset("+1d@02:30"), at(BERLIN, 2024, 10, 26, 12, 0), BERLIN)
    assert t == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)  # CEST, not the CET repeat


def test_kathmandu_quarter_hour_offset() -> None:
    start = at(KATHMANDU, 2024, 6, 1, 12, 0)
    assert start == datetime(2024, 6, 1, 6, 15, tzinfo=UTC)
    t = step_time(parse_offset("+1d@09:00"), start, KATHMANDU)
    assert t == datetime(2024, 6, 2, 3, 15, tzinfo=UTC)


def test_west_of_utc_next_day_is_the_next_local_day() -> None:
    start = at(LA, 2024, 1, 15, 17, 0)
    assert start == datetime(2024, 1, 16, 1, 0, tzinfo=UTC)  # already "tomorrow" in UTC
    t = step_time(parse_offset("+1d@09:00"), start, LA)
    assert wall(t, LA) == datetime(2024, 1, 16, 9, 0)
    assert t == datetime(2024, 1, 16, 17, 0, tzinfo=UTC)
    evening = step_time(parse_offset("+0d@20:00"), start, LA)
    assert wall(evening, LA) == datetime(2024, 1, 15, 20, 0)


def test_east_of_utc_next_day_is_the_next_local_day() -> None:
    start = datetime(2024, 6, 1, 20, 0, tzinfo=UTC)  # 01:45 on June 2nd in Kathmandu
    t = step_time(parse_offset("+1d@09:00"), start, KATHMANDU)
    assert wall(t, KATHMANDU) == datetime(2024, 6, 3, 9, 0)


@pytest.mark.parametrize(
    ("logged", "expected_wall"),
    [
        ((2024, 6, 1, 14, 0), datetime(2024, 6, 1, 20, 0)),
        ((2024, 6, 1, 20, 0), datetime(2024, 6, 2, 20, 0)),  # "not after" includes equal
        ((2024, 6, 1, 21, 0), datetime(2024, 6, 2, 20, 0)),
    ],
)
def test_step_not_after_session_moves_to_next_day(logged: Fields, expected_wall: datetime) -> None:
    t = step_time(parse_offset("+0d@20:00"), at(BERLIN, *logged), BERLIN)
    assert wall(t, BERLIN) == expected_wall


def test_hours_with_wall_clock_use_the_day_reached() -> None:
    start = at(BERLIN, 2024, 6, 1, 19, 0)
    # +2h reaches 21:00 on June 1st, so 20:00 that day (still after the session).
    assert wall(step_time(parse_offset("+2h@20:00"), start, BERLIN), BERLIN) == datetime(
        2024, 6, 1, 20, 0
    )
    # +6h reaches 01:00 on June 2nd.
    assert wall(step_time(parse_offset("+6h@09:00"), start, BERLIN), BERLIN) == datetime(
        2024, 6, 2, 9, 0
    )


def test_step_time_requires_aware_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        step_time(parse_offset("+1h"), datetime(2024, 1, 1), UTC)  # type: ignore[arg-type]


def test_step_time_accepts_non_utc_aware_start() -> None:
    start = datetime(2024, 3, 9, 23, 0, tzinfo=NY)
    # Elapsed time, not wall-clock arithmetic on the NY-aware value.
    assert step_time(parse_offset("+4h"), start, NY) == at(NY, 2024, 3, 10, 4, 0)


# --- defer_quiet ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected_wall"),
    [
        ((2024, 6, 1, 23, 30), datetime(2024, 6, 2, 8, 0)),  # before midnight -> next day
        ((2024, 6, 2, 3, 0), datetime(2024, 6, 2, 8, 0)),  # after midnight -> same day
        ((2024, 6, 1, 21, 0), datetime(2024, 6, 2, 8, 0)),  # start is inside
        ((2024, 6, 1, 20, 59), datetime(2024, 6, 1, 20, 59)),
        ((2024, 6, 2, 8, 0), datetime(2024, 6, 2, 8, 0)),  # end is outside
        ((2024, 6, 2, 12, 0), datetime(2024, 6, 2, 12, 0)),
    ],
)
def test_defer_quiet_across_midnight(local: Fields, expected_wall: datetime) -> None:
    t = at(BERLIN, *local)
    assert wall(defer_quiet(t, BERLIN, DEFAULT_QUIET_HOURS), BERLIN) == expected_wall


def test_defer_quiet_unchanged_returns_same_instant() -> None:
    t = at(BERLIN, 2024, 6, 1, 12, 0)
    assert defer_quiet(t, BERLIN, DEFAULT_QUIET_HOURS) == t
    assert defer_quiet(at(BERLIN, 2024, 6, 1, 23, 0), BERLIN, NO_QUIET) == at(
        BERLIN, 2024, 6, 1, 23, 0
    )


def test_defer_quiet_daytime_window() -> None:
    quiet = QuietHours(time(13, 0), time(14, 30))
    t = defer_quiet(at(LA, 2024, 6, 1, 13, 10), LA, quiet)
    assert wall(t, LA) == datetime(2024, 6, 1, 14, 30)


def test_defer_quiet_end_in_dst_gap_moves_forward() -> None:
    quiet = QuietHours(time(21, 0), time(2, 30))
    t = defer_quiet(at(NY, 2024, 3, 9, 23, 0), NY, quiet)
    assert wall(t, NY) == datetime(2024, 3, 10, 3, 30)


def test_defer_quiet_in_second_pass_of_fold_never_goes_back() -> None:
    quiet = QuietHours(time(22, 0), time(1, 30))
    t = at(NY, 2024, 11, 3, 1, 15, fold=1)  # 01:15 EST, after the first 01:30 EDT passed
    deferred = defer_quiet(t, NY, quiet)
    assert deferred == at(NY, 2024, 11, 3, 1, 30, fold=1)
    assert deferred > t


def test_defer_quiet_lord_howe_end_in_half_hour_gap() -> None:
    quiet = QuietHours(time(22, 0), time(2, 15))
    t = defer_quiet(at(LORD_HOWE, 2024, 10, 5, 23, 0), LORD_HOWE, quiet)
    assert wall(t, LORD_HOWE) == datetime(2024, 10, 6, 2, 45)


# --- expand ---------------------------------------------------------------------------------

STANDARD = ["+0m", "+0d@20:00", "+1d@09:00", "+2d@19:00", "+3d@09:00", "+5d@19:30", "+7d@10:00"]


def test_expand_standard_template() -> None:
    start = at(BERLIN, 2024, 6, 1, 14, 0)
    times = expand([parse_offset(o) for o in STANDARD], start, BERLIN, DEFAULT_QUIET_HOURS)
    assert [wall(t, BERLIN) for t in times] == [
        datetime(2024, 6, 1, 14, 0),
        datetime(2024, 6, 1, 20, 0),
        datetime(2024, 6, 2, 9, 0),
        datetime(2024, 6, 3, 19, 0),
        datetime(2024, 6, 4, 9, 0),
        datetime(2024, 6, 6, 19, 30),
        datetime(2024, 6, 8, 10, 0),
    ]
    assert all(t.tzinfo is UTC for t in times)


def test_expand_late_session_keeps_step_order() -> None:
    # Logged at 22:00: "+0m" waits for 08:00, the evening step moves to the next evening, and
    # the next-morning step must not overtake it.
    start = at(BERLIN, 2024, 6, 1, 22, 0)
    offsets = [parse_offset(o) for o in ["+0m", "+0d@20:00", "+1d@09:00", "+2d@09:00"]]
    times = expand(offsets, start, BERLIN, DEFAULT_QUIET_HOURS)
    assert [wall(t, BERLIN) for t in times] == [
        datetime(2024, 6, 2, 8, 0),
        datetime(2024, 6, 2, 20, 0),
        datetime(2024, 6, 2, 20, 0),
        datetime(2024, 6, 3, 9, 0),
    ]


def test_expand_step_inside_quiet_hours_moves_to_their_end() -> None:
    start = at(NY, 2024, 6, 1, 10, 0)
    times = expand(
        [parse_offset("+0d@22:30"), parse_offset("+1d@06:00")], start, NY, DEFAULT_QUIET_HOURS
    )
    assert [wall(t, NY) for t in times] == [datetime(2024, 6, 2, 8, 0)] * 2


def test_expand_empty() -> None:
    assert expand([], datetime(2024, 1, 1, tzinfo=UTC), UTC_ZONE, DEFAULT_QUIET_HOURS) == []


def test_plan_skips_a_step_overtaken_by_later_ones_instead_of_bunching() -> None:
    tz = ZoneInfo("UTC")
    start = datetime(2026, 11, 27, 22, 10, tzinfo=UTC)  # logged late in the evening
    offsets = [parse_offset(t) for t in ("+0m", "+0d@20:00", "+1d@09:00", "+1d@19:00")]
    slots = plan(offsets, start, tz, DEFAULT_QUIET_HOURS)
    assert [s.skipped for s in slots] == [False, True, False, False]
    kept = [s.at for s in slots if not s.skipped]
    assert kept == sorted(kept)
    assert [t.hour for t in kept] == [8, 9, 19]


@given(
    start=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    texts=st.lists(
        st.sampled_from(["+0m", "+2h", "+0d@20:00", "+1d@09:00", "+1d@19:30", "+3d@10:00"]),
        min_size=1,
        max_size=8,
    ),
)
@settings(max_examples=150, deadline=None)
def test_plan_keeps_order_and_skips_only_overtaken_steps(start: datetime, texts: list[str]) -> None:
    tz = ZoneInfo("America/Los_Angeles")
    slots = plan([parse_offset(t) for t in texts], start, tz, DEFAULT_QUIET_HOURS)
    kept = [s.at for s in slots if not s.skipped]
    assert kept == sorted(kept)
    assert slots[-1].skipped is False
    for i, slot in enumerate(slots):
        later = [s.at for s in slots[i + 1 :] if not s.skipped]
        assert slot.skipped == bool(later and slot.at > min(later))
