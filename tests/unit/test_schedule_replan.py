"""decide(), resume() and the replan_* functions of the schedule engine."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.schedule import (
    DEFAULT_QUIET_HOURS,
    Action,
    Decision,
    Planned,
    QuietHours,
    Replan,
    decide,
    expand,
    parse_offset,
    replan_session_moved,
    replan_zone,
    resume,
)

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")
GRACE = timedelta(hours=6)
Q = DEFAULT_QUIET_HOURS


def at(tz: ZoneInfo, y: int, mo: int, d: int, h: int, mi: int) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=tz).astimezone(UTC)


def wall(t: datetime, tz: ZoneInfo) -> datetime:
    return t.astimezone(tz).replace(tzinfo=None)


def assert_partition(result: Replan, ids: list[int]) -> None:
    buckets = [*result.moved, *result.missed, *result.unchanged]
    assert sorted(buckets) == sorted(ids)


# --- decide ---------------------------------------------------------------------------------


def test_decide_waits_for_future() -> None:
    due = at(BERLIN, 2024, 6, 1, 12, 0)
    assert decide(due, due - timedelta(seconds=1), GRACE, BERLIN, Q) == Decision(Action.WAIT, due)


def test_decide_sends_when_due() -> None:
    due = at(BERLIN, 2024, 6, 1, 12, 0)
    assert decide(due, due, GRACE, BERLIN, Q) == Decision(Action.SEND)


def test_decide_grace_boundary() -> None:
    due = at(BERLIN, 2024, 6, 1, 10, 0)
    assert decide(due, due + GRACE, GRACE, BERLIN, Q).action is Action.SEND
    late = due + GRACE + timedelta(microseconds=1)
    assert decide(due, late, GRACE, BERLIN, Q) == Decision(Action.MISS)


def test_decide_quiet_hours_boundaries() -> None:
    due = at(BERLIN, 2024, 6, 1, 20, 30)
    assert decide(due, at(BERLIN, 2024, 6, 1, 20, 59), GRACE, BERLIN, Q).action is Action.SEND
    # 21:00 is inside; waiting until 08:00 would be 11.5 h late.
    assert decide(due, at(BERLIN, 2024, 6, 1, 21, 0), GRACE, BERLIN, Q).action is Action.MISS
    generous = timedelta(hours=12)
    assert decide(due, at(BERLIN, 2024, 6, 1, 21, 0), generous, BERLIN, Q) == Decision(
        Action.DEFER, at(BERLIN, 2024, 6, 2, 8, 0)
    )
    early = at(BERLIN, 2024, 6, 2, 7, 0)
    assert decide(early, at(BERLIN, 2024, 6, 2, 8, 0), GRACE, BERLIN, Q).action is Action.SEND


def test_decide_defer_exactly_at_grace_is_allowed() -> None:
    due = at(BERLIN, 2024, 6, 2, 2, 0)
    decision = decide(due, at(BERLIN, 2024, 6, 2, 3, 0), GRACE, BERLIN, Q)
    assert decision == Decision(Action.DEFER, due + GRACE)
    assert wall(due + GRACE, BERLIN) == datetime(2024, 6, 2, 8, 0)
    later_due = due - timedelta(minutes=1)
    assert decide(later_due, at(BERLIN, 2024, 6, 2, 3, 0), GRACE, BERLIN, Q).action is Action.MISS


def test_decide_after_downtime_at_night_never_sends() -> None:
    due = at(NY, 2024, 6, 1, 20, 0)
    assert decide(due, at(NY, 2024, 6, 1, 23, 30), GRACE, NY, Q) == Decision(Action.MISS)


def test_decide_uses_patient_zone_not_utc() -> None:
    due = datetime(2024, 6, 2, 3, 0, tzinfo=UTC)  # 20:00 in Los Angeles, 05:00 in Berlin
    now = due + timedelta(minutes=5)
    assert decide(due, now, GRACE, LA, Q).action is Action.SEND
    assert decide(due, now, GRACE, BERLIN, Q) == Decision(
        Action.DEFER, at(BERLIN, 2024, 6, 2, 8, 0)
    )


def test_decide_rejects_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(datetime(2024, 1, 1), datetime(2024, 1, 1, tzinfo=UTC), GRACE, ZoneInfo("UTC"), Q)


# --- resume ---------------------------------------------------------------------------------


def test_resume_daytime() -> None:
    now = at(BERLIN, 2024, 6, 3, 12, 0)
    held = [
        Planned(1, parse_offset("+1d@09:00"), now - timedelta(hours=10)),
        Planned(2, parse_offset("+2d@11:00"), now - timedelta(hours=1)),
        Planned(3, None, now),
        Planned(4, parse_offset("+3d@14:00"), now + timedelta(hours=2)),
        Planned(5, None, at(BERLIN, 2024, 6, 3, 22, 0)),  # held one-off inside quiet hours
        Planned(6, None, now - GRACE),
    ]
    result = resume(held, now, GRACE, BERLIN, Q)
    assert result.missed == [1]
    assert result.moved == {2: now, 5: at(BERLIN, 2024, 6, 4, 8, 0), 6: now}
    assert result.unchanged == [3, 4]
    assert_partition(result, [p.id for p in held])


def test_resume_at_night() -> None:
    now = at(BERLIN, 2024, 6, 3, 23, 0)
    held = [Planned(1, None, at(BERLIN, 2024, 6, 3, 22, 30))]
    assert resume(held, now, GRACE, BERLIN, Q) == Replan({}, [1], [])
    generous = timedelta(hours=12)
    assert resume(held, now, generous, BERLIN, Q) == Replan(
        {1: at(BERLIN, 2024, 6, 4, 8, 0)}, [], []
    )


def test_resume_nothing() -> None:
    assert resume([], datetime(2024, 1, 1, tzinfo=UTC), GRACE, ZoneInfo("UTC"), Q) == Replan(
        {}, [], []
    )


# --- replan_zone ----------------------------------------------------------------------------

TEMPLATE = ["+0m", "+0d@20:00", "+1d@09:00", "+3d@19:30"]


def planned(start: datetime, tz: ZoneInfo, quiet: QuietHours = Q) -> list[Planned]:
    offsets = [parse_offset(o) for o in TEMPLATE]
    times = expand(offsets, start, tz, quiet)
    return [Planned(i, o, t) for i, (o, t) in enumerate(zip(offsets, times, strict=True), 1)]


def test_replan_zone_keeps_local_wall_clock() -> None:
    start = at(NY, 2024, 6, 1, 10, 0)
    pending = planned(start, NY)[1:]  # "+0m" already went out
    result = replan_zone(pending, start, NY, BERLIN, Q, now=start + timedelta(hours=1))
    assert result.missed == []
    assert result.unchanged == []
    assert {i: wall(t, BERLIN) for i, t in result.moved.items()} == {
        2: datetime(2024, 6, 1, 20, 0),
        3: datetime(2024, 6, 2, 9, 0),
        4: datetime(2024, 6, 4, 19, 30),
    }


def test_replan_zone_same_zone_is_a_no_op() -> None:
    start = at(NY, 2024, 6, 1, 10, 0)
    pending = planned(start, NY)
    result = replan_zone(pending, start, NY, NY, Q, now=start)
    assert result == Replan({}, [], [1, 2, 3, 4])


def test_replan_zone_step_now_in_the_past_goes_out_now_or_after_quiet_hours() -> None:
    start = at(LA, 2024, 6, 1, 8, 0)  # 17:00 in Berlin
    pending = planned(start, LA)[1:]
    # 18:00 in LA = 03:00 in Berlin: the evening step (20:00 Berlin) has already passed there.
    now = at(LA, 2024, 6, 1, 18, 0)
    result = replan_zone(pending, start, LA, BERLIN, Q, now)
    assert result.missed == []
    assert result.moved[2] == at(BERLIN, 2024, 6, 2, 8, 0)
    # The next-morning step is still ahead and keeps its local 09:00.
    assert result.moved[3] == at(BERLIN, 2024, 6, 2, 9, 0)
    assert all(t >= now for t in result.moved.values())


def test_replan_zone_one_offs_keep_instant_but_leave_quiet_hours() -> None:
    start = at(NY, 2024, 6, 1, 10, 0)
    now = start
    day = Planned(10, None, at(NY, 2024, 6, 1, 11, 0))  # 17:00 Berlin
    evening = Planned(11, None, at(NY, 2024, 6, 1, 16, 0))  # 22:00 Berlin
    result = replan_zone([day, evening], start, NY, BERLIN, Q, now)
    assert result == Replan({11: at(BERLIN, 2024, 6, 2, 8, 0)}, [], [10])


def test_replan_zone_new_quiet_hours_only() -> None:
    start = at(BERLIN, 2024, 6, 1, 10, 0)
    offsets = [parse_offset("+0d@21:30"), parse_offset("+1d@07:30")]
    times = expand(offsets, start, BERLIN, Q)
    assert [wall(t, BERLIN) for t in times] == [datetime(2024, 6, 2, 8, 0)] * 2
    pending = [Planned(1, offsets[0], times[0]), Planned(2, offsets[1], times[1])]
    late_night = QuietHours(time(22, 0), time(7, 0))
    result = replan_zone(pending, start, BERLIN, BERLIN, late_night, now=start)
    assert result.moved == {
        1: at(BERLIN, 2024, 6, 1, 21, 30),
        2: at(BERLIN, 2024, 6, 2, 7, 30),
    }


# --- replan_session_moved -------------------------------------------------------------------


def test_session_moved_later() -> None:
    start = at(BERLIN, 2024, 6, 1, 10, 0)
    pending = [*planned(start, BERLIN), Planned(9, None, at(BERLIN, 2024, 6, 1, 15, 0))]
    new_start = start + timedelta(hours=2)
    result = replan_session_moved(pending, new_start, BERLIN, Q, now=start)
    assert result.moved == {1: new_start}
    assert result.unchanged == [2, 3, 4, 9]
    assert result.missed == []


def test_session_moved_back_days() -> None:
    start = at(BERLIN, 2024, 6, 10, 10, 0)
    now = at(BERLIN, 2024, 6, 10, 10, 30)
    pending = planned(start, BERLIN)
    # The session really was two days earlier, at 06:00.
    result = replan_session_moved(pending, at(BERLIN, 2024, 6, 8, 6, 0), BERLIN, Q, now)
    assert result.missed == [1, 2, 3]  # +0m, that evening, next morning: long gone
    assert result.moved == {4: at(BERLIN, 2024, 6, 11, 19, 30)}
    assert_partition(result, [1, 2, 3, 4])


def test_session_moved_back_a_little_sends_overdue_steps_now() -> None:
    start = at(BERLIN, 2024, 6, 1, 14, 0)
    pending = [Planned(1, parse_offset("+2h"), start + timedelta(hours=2))]
    now = start + timedelta(minutes=30)
    result = replan_session_moved(pending, start - timedelta(hours=3), BERLIN, Q, now)
    assert result == Replan({1: now}, [], [])
    strict = replan_session_moved(
        pending, start - timedelta(hours=3), BERLIN, Q, now, grace=timedelta(minutes=10)
    )
    assert strict == Replan({}, [1], [])


def test_session_moved_keeps_step_order() -> None:
    start = at(BERLIN, 2024, 6, 1, 14, 0)
    pending = planned(start, BERLIN)[:3]
    result = replan_session_moved(pending, at(BERLIN, 2024, 6, 1, 22, 0), BERLIN, Q, start)
    # "+0m" waits for 08:00, the evening step slips to the next evening, and the next-morning
    # step may not overtake it.
    assert {i: wall(t, BERLIN) for i, t in result.moved.items()} == {
        1: datetime(2024, 6, 2, 8, 0),
        2: datetime(2024, 6, 2, 20, 0),
        3: datetime(2024, 6, 2, 20, 0),
    }
