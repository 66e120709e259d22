"""Hypothesis properties of the schedule engine over random sessions, zones and templates."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.schedule import (
    DEFAULT_QUIET_HOURS,
    Offset,
    QuietHours,
    defer_quiet,
    expand,
    parse_offset,
    resolve_local,
    step_time,
)

ZONE_NAMES = [
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/St_Johns",
]
ZONES = [ZoneInfo(name) for name in ZONE_NAMES]
FAST = settings(max_examples=200, deadline=None, database=None)


def _transitions(tz: ZoneInfo, year: int) -> list[datetime]:
    """UTC instants (to within a minute) at which ``tz`` changes its offset during ``year``."""
    found = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        lo, hi = day, day + timedelta(days=1)
        if lo.astimezone(tz).utcoffset() != hi.astimezone(tz).utcoffset():
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        day += timedelta(days=1)
    return found


# Random instants almost never hit a DST edge, so half of the sessions start shortly before one.
TRANSITIONS = [(tz, t) for tz in ZONES for year in (2005, 2024) for t in _transitions(tz, year)]

minute_times = st.builds(time, st.integers(0, 23), st.integers(0, 59))
quiet_hours = st.one_of(
    st.sampled_from(
        [
            DEFAULT_QUIET_HOURS,
            QuietHours(time(0, 0), time(0, 0)),
            QuietHours(time(22, 0), time(7, 0)),
            QuietHours(time(0, 0), time(6, 30)),
            QuietHours(time(13, 0), time(14, 0)),
        ]
    ),
    st.builds(QuietHours, minute_times, minute_times),
)
offsets = st.one_of(
    st.builds(Offset, st.integers(0, 600), st.just("m"), st.none() | minute_times),
    st.builds(Offset, st.integers(0, 72), st.just("h"), st.none() | minute_times),
    st.builds(Offset, st.integers(0, 10), st.just("d"), st.none() | minute_times),
)


utc_instants = st.datetimes(datetime(2000, 1, 1), datetime(2040, 12, 31), timezones=st.just(UTC))


@st.composite
def zone_and_start(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    if draw(st.booleans()):
        tz, edge = draw(st.sampled_from(TRANSITIONS))
        return tz, edge - timedelta(minutes=draw(st.integers(0, 4 * 24 * 60)))
    start = draw(st.datetimes(datetime(2000, 1, 1), datetime(2040, 12, 31), timezones=st.just(UTC)))
    return draw(st.sampled_from(ZONES)), start


def gap_shift(naive: datetime, tz: ZoneInfo) -> timedelta:
    """How far a wall-clock time may legitimately be moved: the gap length if it doesn't exist."""
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    exists = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive
    if exists:
        return timedelta(0)
    shift = second.utcoffset() - first.utcoffset()  # type: ignore[operator]
    assert shift > timedelta(0)
    return shift


def assert_wall_clock(t: datetime, tz: ZoneInfo, wanted: time) -> None:
    local = t.astimezone(tz).replace(tzinfo=None)
    naive = datetime.combine(local.date(), wanted)
    if local != naive:
        # Only a DST gap may move it, forward by exactly the gap, possibly from the day before.
        for day in (local.date(), local.date() - timedelta(days=1)):
            naive = datetime.combine(day, wanted)
            if gap_shift(naive, tz) and local - naive == gap_shift(naive, tz):
                return
        raise AssertionError(f"{t} is {local} in {tz}, wanted {wanted}")


@FAST
@given(zone_and_start(), quiet_hours, st.lists(offsets, max_size=8))
def test_expand_properties(
    zs: tuple[ZoneInfo, datetime], quiet: QuietHours, steps: list[Offset]
) -> None:
    tz, start = zs
    times = expand(steps, start, tz, quiet)
    assert len(times) == len(steps)
    for offset, t in zip(steps, times, strict=True):
        assert t.utcoffset() == timedelta(0)
        assert t >= start
        assert not quiet.contains(t.astimezone(tz).time())
        raw = step_time(offset, start, tz)
        if offset.at is not None and t == raw:
            assert_wall_clock(t, tz, offset.at)
    assert times == sorted(times)


@FAST
@given(zone_and_start(), offsets)
def test_step_time_properties(zs: tuple[ZoneInfo, datetime], offset: Offset) -> None:
    tz, start = zs
    t = step_time(offset, start, tz)
    start_local = start.astimezone(tz)
    if offset.at is not None:
        assert t > start
        assert_wall_clock(t, tz, offset.at)
        if offset.unit == "d":
            days = (t.astimezone(tz).date() - start_local.date()).days
            assert days == offset.amount or (days == offset.amount + 1 and offset.amount == 0)
    elif offset.unit == "d" and offset.amount:
        assert_wall_clock(t, tz, start_local.time().replace(tzinfo=None))
        assert (t.astimezone(tz).date() - start_local.date()).days == offset.amount
    else:
        assert t == start + offset.length


@FAST
@given(st.sampled_from(ZONES), st.datetimes(datetime(2000, 1, 1), datetime(2040, 12, 31)))
def test_resolve_local_properties(tz: ZoneInfo, naive: datetime) -> None:
    t = resolve_local(naive, tz)
    local = t.astimezone(tz).replace(tzinfo=None)
    assert local - naive == gap_shift(naive, tz)
    # Of two occurrences the first is taken.
    assert t <= naive.replace(tzinfo=tz, fold=1).astimezone(UTC) or gap_shift(naive, tz)


@FAST
@given(st.sampled_from(ZONES), utc_instants, quiet_hours)
def test_defer_quiet_properties(tz: ZoneInfo, t: datetime, quiet: QuietHours) -> None:
    deferred = defer_quiet(t, tz, quiet)
    assert deferred >= t
    assert not quiet.contains(deferred.astimezone(tz).time())
    if not quiet.contains(t.astimezone(tz).time()):
        assert deferred == t
    else:
        assert deferred - t <= timedelta(days=1, hours=3)
        assert_wall_clock(deferred, tz, quiet.end)


@FAST
@given(offsets)
def test_offset_text_round_trips(offset: Offset) -> None:
    assert parse_offset(str(offset)) == offset
