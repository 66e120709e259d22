"""Planning a course of treatment: preparation before a planned session, recurring steps, and
the answer policy of each step (pure logic, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.domain import answers
from bot.domain.schedule import (
    DEFAULT_QUIET_HOURS,
    Every,
    Planned,
    QuietHours,
    StepTiming,
    parse_offset,
    plan_course,
    replan_session_moved,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
NONE = QuietHours(time(0, 0), time(0, 0))


def step(offset: str, every: str | None = None, count: int = 1) -> StepTiming:
    return StepTiming(
        parse_offset(offset, allow_before=True), Every.parse(every) if every else None, count
    )


def test_preparation_the_evening_before_a_planned_session() -> None:
    start = datetime(2026, 3, 13, 16, 0, tzinfo=UTC)  # Friday 12:00 New York
    now = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    [prep, after] = plan_course([step("-1d@19:00"), step("+1h")], start, NY, NONE, now)
    assert prep.at == datetime(2026, 3, 12, 23, 0, tzinfo=UTC) and not prep.skipped
    assert after.at == start + timedelta(hours=1)


def test_a_preparation_step_already_past_at_planning_is_skipped() -> None:
    start = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)  # today 12:00 New York
    now = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    [evening, hours] = plan_course([step("-1d@19:00"), step("-1h")], start, NY, NONE, now)
    assert evening.skipped
    assert not hours.skipped and hours.at == start - timedelta(hours=1)


def test_a_preparation_step_pushed_by_quiet_hours_to_the_start_is_skipped() -> None:
    start = datetime(2026, 3, 11, 12, 30, tzinfo=UTC)  # 08:30 New York
    now = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    # -3h is 05:30 local: quiet hours would move it to 08:00, still before the start.
    [early] = plan_course([step("-3h")], start, NY, DEFAULT_QUIET_HOURS, now)
    assert not early.skipped and early.at.astimezone(NY).time() == time(8, 0)
    late_start = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)  # 08:00: nothing fits before it
    [gone] = plan_course([step("-3h")], late_start, NY, DEFAULT_QUIET_HOURS, now)
    assert gone.skipped


def test_a_daily_step_keeps_the_wall_clock_across_the_dst_change() -> None:
    start = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)  # Friday 10:00 Berlin (CET)
    rows = plan_course([step("+1d@20:00", "1d", 3)], start, BERLIN, NONE, start)
    assert [o.occurrence for o in rows] == [0, 1, 2]
    assert [o.at.astimezone(BERLIN).strftime("%d %H:%M") for o in rows] == [
        "28 20:00",
        "29 20:00",
        "30 20:00",
    ]
    assert [o.at.hour for o in rows] == [19, 18, 18]


def test_hourly_repeats_that_quiet_hours_pile_up_are_skipped() -> None:
    start = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)  # 19:00 New York
    rows = plan_course([step("+1h", "1h", 6)], start, NY, DEFAULT_QUIET_HOURS, start)
    kept = [o for o in rows if not o.skipped]
    # 20:00 goes out; 21:00 to 01:00 all land on 08:00: the first of them is kept.
    assert [o.at.astimezone(NY).strftime("%H:%M") for o in kept] == ["20:00", "08:00"]
    assert len(rows) == 6


@given(
    hour=st.integers(0, 23),
    count=st.integers(2, 60),
    every=st.sampled_from(["1d", "2d", "6h", "12h"]),
    day=st.integers(0, 364),
)
def test_recurring_occurrences_are_in_order_and_never_in_quiet_hours(
    hour: int, count: int, every: str, day: int
) -> None:
    start = datetime(2026, 1, 1, hour, tzinfo=UTC) + timedelta(days=day)
    rows = plan_course([step("+1d@20:30", every, count)], start, BERLIN, DEFAULT_QUIET_HOURS, start)
    assert len(rows) == count
    kept = [o.at for o in rows if not o.skipped]
    assert kept == sorted(kept) and len(set(kept)) == len(kept)
    assert all(not DEFAULT_QUIET_HOURS.contains(t.astimezone(BERLIN).time()) for t in kept)
    assert all(t > start for t in kept)


def test_moving_a_session_across_dst_keeps_its_steps_local_times() -> None:
    old = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)  # Saturday 10:00 Berlin, CET
    new = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)  # Sunday 10:00 Berlin, CEST
    now = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    steps = [("-1d@19:00", None, 0), ("+1d@09:30", None, 0), ("+1d@20:00", "1d", 1)]
    pending = []
    for i, (text, every, k) in enumerate(steps):
        offset = parse_offset(text, allow_before=True)
        rep = Every.parse(every) if every else None
        p = Planned(i, offset, datetime(2000, 1, 1, tzinfo=UTC), rep, k)
        pending.append(Planned(i, offset, p.natural(old, BERLIN), rep, k))
    plan = replan_session_moved(pending, new, BERLIN, NONE, now)
    local = {i: t.astimezone(BERLIN).strftime("%d %H:%M") for i, t in plan.moved.items()}
    assert local == {0: "28 19:00", 1: "30 09:30", 2: "31 20:00"}


def test_answer_policy_defaults_and_overrides() -> None:
    day, window = timedelta(hours=24), timedelta(hours=72)
    sent = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    reflection = answers.policy("reflection", None, None, nudge_after=day, answer_window=window)
    assert reflection.reminders == (day,) and reflection.closes_at(sent) == sent + window
    checkin = answers.policy("checkin", None, None, nudge_after=day, answer_window=window)
    assert checkin.reminders == () and checkin.window == window
    education = answers.policy("education", "1h", "2h", nudge_after=day, answer_window=window)
    assert education == answers.AnswerPolicy((), None)
    own = answers.policy("reflection", "3h,1h", "2h", nudge_after=day, answer_window=window)
    assert own.reminders == (timedelta(hours=1), timedelta(hours=3))
    # A reminder that would come after the window closes is not sent.
    assert own.reminder_at(sent, 0) == sent + timedelta(hours=1)
    assert own.reminder_at(sent, 1) is None
    assert own.reminder_at(sent, 2) is None
    none = answers.policy("reflection", "", None, nudge_after=day, answer_window=window)
    assert none.reminders == ()
    damaged = answers.policy("reflection", "soon", "x", nudge_after=day, answer_window=window)
    assert damaged == reflection


def test_a_reminder_held_by_quiet_hours_keeps_its_distance_to_the_next() -> None:
    sent = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
    policy = answers.AnswerPolicy((timedelta(hours=2), timedelta(hours=3)), timedelta(days=3))
    morning = sent + timedelta(hours=10)  # the first reminder waited for the end of the night
    assert policy.reminder_at(sent, 1, last=morning) == morning + timedelta(hours=1)
    on_time = sent + timedelta(hours=2)
    assert policy.reminder_at(sent, 1, last=on_time) == sent + timedelta(hours=3)
