"""`defer_quiet` against a brute-force oracle: odd quiet windows, odd zones, DST edges.

The oracle walks the clock minute by minute in UTC (every modern offset and transition falls on
a whole minute, and quiet hours are HH:MM), so "the earliest instant outside quiet hours" is
checked directly rather than restated from the implementation.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.domain.schedule import QuietHours, defer_quiet

ZONE_NAMES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Asia/Kathmandu",  # +05:45, no DST
    "America/St_Johns",  # -03:30; until 2011 the clocks changed at 00:01
    "Pacific/Chatham",  # +12:45, jumps at 02:45
    "UTC",
]
ZONES = [ZoneInfo(name) for name in ZONE_NAMES]
BERLIN = ZoneInfo("Europe/Berlin")
CHATHAM = ZoneInfo("Pacific/Chatham")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
# Past any deferral a real window can need: a whole day plus a DST night.
ORACLE_HORIZON = 3 * 24 * 60


def _transitions(tz: ZoneInfo, year: int) -> list[datetime]:
    """The UTC instants (to the second) at which ``tz`` changes its offset during ``year``."""
    found = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        lo, hi = 0, 24 * 3600
        if (
            day.astimezone(tz).utcoffset()
            != (day + timedelta(seconds=hi)).astimezone(tz).utcoffset()
        ):
            before = day.astimezone(tz).utcoffset()
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if (day + timedelta(seconds=mid)).astimezone(tz).utcoffset() == before:
                    lo = mid
                else:
                    hi = mid
            found.append(day + timedelta(seconds=hi))
        day += timedelta(days=1)
    return found


# 2010: St John's still jumped at 00:01; 2024 and 2031: the rules of today.
TRANSITIONS = [
    (tz, t) for tz in ZONES for year in (2010, 2024, 2031) for t in _transitions(tz, year)
]


def in_quiet(t: datetime, tz: ZoneInfo, quiet: QuietHours) -> bool:
    return quiet.contains(t.astimezone(tz).time())


def first_awake(t: datetime, tz: ZoneInfo, quiet: QuietHours) -> datetime:
    """``t`` if it is outside quiet hours, else the first whole UTC minute after it that is."""
    if not in_quiet(t, tz, quiet):
        return t
    m = t.replace(second=0, microsecond=0) + MINUTE
    for _ in range(ORACLE_HORIZON):
        if not in_quiet(m, tz, quiet):
            return m
        m += MINUTE
    raise AssertionError(f"{quiet} in {tz} leaves no awake minute within 3 days of {t}")


def _gap_shifted_end(tz: ZoneInfo, end: time, first: datetime) -> datetime | None:
    """If the clocks jumped at ``first`` over the wall time ``end``: where `resolve_local`
    puts that skipped end (the gap's length later), else None."""
    if (first - SECOND).astimezone(tz).utcoffset() == first.astimezone(tz).utcoffset():
        return None
    local = first.astimezone(tz)
    for day in (local.date(), local.date() - timedelta(days=1)):
        naive = datetime.combine(day, end)
        shifted = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
        new_offset = naive.replace(tzinfo=tz, fold=1).utcoffset()
        old_offset = naive.replace(tzinfo=tz, fold=0).utcoffset()
        assert new_offset is not None and old_offset is not None
        gap = new_offset - old_offset
        skipped = shifted.astimezone(tz).replace(tzinfo=None) != naive
        if skipped and first <= shifted < first + gap:
            return shifted
    return None


def expected_deferral(t: datetime, tz: ZoneInfo, quiet: QuietHours) -> datetime:
    """The earliest instant at or after ``t`` outside quiet hours, with the one documented
    exception: an end skipped by a DST gap is read like any skipped wall time, the gap's
    length later, as long as that is still outside quiet hours (it then falls inside the
    awake stretch that began when the clocks jumped, never past it)."""
    first = first_awake(t, tz, quiet)
    if first == t:
        return t
    shifted = _gap_shifted_end(tz, quiet.end, first)
    if shifted is not None and not in_quiet(shifted, tz, quiet):
        return shifted
    return first


def _clock(minutes: int) -> time:
    minutes %= 24 * 60
    return time(minutes // 60, minutes % 60)


minute_of_day = st.integers(0, 24 * 60 - 1)
near_minutes = st.integers(-90, 90)
short = st.integers(1, 30)
# Quiet windows of every shape: any two times, awake only a few minutes a day (02:30-02:15),
# quiet only a few minutes, and none at all.
any_window = st.builds(lambda s, e: QuietHours(_clock(s), _clock(e)), minute_of_day, minute_of_day)
odd_windows = st.one_of(
    any_window,
    st.builds(lambda s, k: QuietHours(_clock(s), _clock(s - k)), minute_of_day, short),
    st.builds(lambda s, k: QuietHours(_clock(s), _clock(s + k)), minute_of_day, short),
    st.builds(lambda s: QuietHours(_clock(s), _clock(s)), minute_of_day),
)


@st.composite
def near_a_transition(draw: st.DrawFn) -> tuple[ZoneInfo, QuietHours, datetime]:
    """An instant up to a day and a bit before (or a few hours after) a DST change, with quiet
    windows whose edges sit around the wall times either side of the jump."""
    tz, edge = draw(st.sampled_from(TRANSITIONS))
    before = (edge - SECOND).astimezone(tz)
    after = edge.astimezone(tz)
    anchors = [
        before.hour * 60 + before.minute + 1,  # where the old wall clock stopped
        after.hour * 60 + after.minute,  # where the new one started
    ]
    anchored = st.builds(lambda a, d: a + d, st.sampled_from(anchors), near_minutes)
    start = draw(anchored | minute_of_day)
    end = draw(
        anchored
        | st.builds(lambda k: start - k, short)  # awake only k minutes
        | st.builds(lambda k: start + k, short)  # quiet only k minutes
    )
    # Within hours of the change half of the time: a repeated hour is only an hour long.
    offset = draw(st.integers(-3 * 3600, 3 * 3600) | st.integers(-30 * 3600, 6 * 3600))
    return tz, QuietHours(_clock(start), _clock(end)), edge + timedelta(seconds=offset)


@st.composite
def anywhere(draw: st.DrawFn) -> tuple[ZoneInfo, QuietHours, datetime]:
    t = draw(st.datetimes(datetime(2000, 1, 1), datetime(2037, 12, 31), timezones=st.just(UTC)))
    return draw(st.sampled_from(ZONES)), draw(odd_windows), t


def _berlin(y: int, mo: int, d: int, h: int, mi: int) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN).astimezone(UTC)


@settings(max_examples=400, deadline=None, database=None)
@given(near_a_transition() | anywhere())
# Awake only 02:15-02:30, and on 31 March 2024 Berlin jumps from 02:00 to 03:00 over all of it.
@example((BERLIN, QuietHours(time(2, 30), time(2, 15)), _berlin(2024, 3, 30, 23, 0)))
# Awake only 02:00-02:01, and at 03:00 on 31 October 2010 the clocks went back to 02:00.
@example((BERLIN, QuietHours(time(2, 1), time(2, 0)), _berlin(2010, 10, 31, 2, 59)))
def test_defer_quiet_is_the_earliest_instant_outside_quiet_hours(
    case: tuple[ZoneInfo, QuietHours, datetime],
) -> None:
    tz, quiet, t = case
    deferred = defer_quiet(t, tz, quiet)
    local = deferred.astimezone(tz)
    assert not quiet.contains(local.time()), f"{t} -> {local} is inside {quiet} in {tz}"
    assert deferred >= t
    assert deferred == expected_deferral(t, tz, quiet), (
        f"{t.astimezone(tz)} in {quiet} ({tz}): deferred to {local}, "
        f"expected {expected_deferral(t, tz, quiet).astimezone(tz)}"
    )


def test_whole_awake_window_skipped_by_the_jump_waits_for_the_next_day() -> None:
    quiet = QuietHours(time(2, 30), time(2, 15))
    deferred = defer_quiet(_berlin(2024, 3, 30, 23, 0), BERLIN, quiet)
    assert deferred == _berlin(2024, 4, 1, 2, 15)


def test_awake_stretch_right_after_the_jump_is_not_lost_for_a_day() -> None:
    # 02:00 -> 03:00: the end 02:30 never shows, 03:00-03:10 is awake, 03:30 is quiet again.
    quiet = QuietHours(time(3, 10), time(2, 30))
    deferred = defer_quiet(_berlin(2024, 3, 30, 23, 0), BERLIN, quiet)
    assert deferred.astimezone(BERLIN).replace(tzinfo=None) == datetime(2024, 3, 31, 3, 0)


def test_chatham_jump_at_a_quarter_to_three() -> None:
    # 02:45 -> 03:45 on 29 September 2024: the end 03:00 is skipped, 03:45-03:50 is awake.
    quiet = QuietHours(time(3, 50), time(3, 0))
    start = datetime(2024, 9, 28, 23, 0, tzinfo=CHATHAM)
    deferred = defer_quiet(start.astimezone(UTC), CHATHAM, quiet)
    assert deferred.astimezone(CHATHAM).replace(tzinfo=None) == datetime(2024, 9, 29, 3, 45)


def test_lord_howe_half_hour_jump_over_a_tiny_awake_window() -> None:
    # 02:00 -> 02:30 on 6 October 2024 skips the awake 02:10-02:20: the next day's 02:10.
    quiet = QuietHours(time(2, 20), time(2, 10))
    start = datetime(2024, 10, 5, 22, 0, tzinfo=LORD_HOWE)
    deferred = defer_quiet(start.astimezone(UTC), LORD_HOWE, quiet)
    assert deferred.astimezone(LORD_HOWE).replace(tzinfo=None) == datetime(2024, 10, 7, 2, 10)


def test_clocks_going_back_to_before_the_start_end_quiet_hours() -> None:
    # 03:00 CEST -> 02:00 CET on 27 October 2024: 02:00-02:30 CET is outside 02:30-08:00.
    quiet = QuietHours(time(2, 30), time(8, 0))
    deferred = defer_quiet(_berlin(2024, 10, 27, 2, 45), BERLIN, quiet)
    assert deferred == datetime(2024, 10, 27, 1, 0, tzinfo=UTC)  # 02:00 CET


def test_end_coming_round_again_in_the_repeated_hour_is_used() -> None:
    # Awake only 02:00-02:01; in the first 02:59 CEST, the second 02:00 (CET) is a minute away.
    quiet = QuietHours(time(2, 1), time(2, 0))
    deferred = defer_quiet(_berlin(2024, 10, 27, 2, 59), BERLIN, quiet)
    assert deferred == datetime(2024, 10, 27, 1, 0, tzinfo=UTC)
