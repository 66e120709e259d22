"""Course of treatment, acceptance tests: planned sessions, preparation steps, recurring steps,
per-step reminders and answer windows, `/sessions`.

Written from SPEC.md without reading the implementation. The contract is SPEC.md's
"Therapist commands", "Schedules" and "Course of treatment"; the templates used here live in
tests/fixtures/course_spec/templates and name only built-in prompts. Assertions are on what the
fake Bot API delivered and on delivery / session rows, not on reply wording.

World START is Tuesday 2026-03-10 14:00 UTC = 10:00 in New York (EDT, UTC-4 since March 8)
and 15:00 in Berlin (CET, UTC+1 until March 29).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db.models import Delivery, DeliveryState, Patient, SessionState, TreatmentSession
from bot.emulator.people import EmuUser
from tests.integration.world import World, running
from tests.support.pg import backends

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "course_spec"
NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")

PREP = "ref-question-for-therapist"  # spec-prep: -1d@19:00
FIRST = "edu-session-is-a-start"  # spec-prep: +1h
EVENING = "ref-this-time"  # spec-prep: +0d@19:30
NEXT_DAY = "chk-energy"  # spec-prep: +1d@09:30


@pytest.fixture(params=backends())
async def course(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with running(request.param, tmp_path, content_dirs=str(FIXTURE)) as w:
        yield w


# --- helpers --------------------------------------------------------------------------------


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def sent_on(message: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(message["date"]), UTC)


def labels(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def message_by_id(world: World, person: EmuUser, message_id: int | None) -> dict[str, Any]:
    assert message_id is not None, "the delivery has no Telegram message id"
    return next(m for m in world.state.sent_messages(person.id) if m["message_id"] == message_id)


def messages_after(world: World, person: EmuUser, message_id: int | None) -> list[dict[str, Any]]:
    """Bot messages to `person` sent after the one with `message_id`."""
    messages = world.state.sent_messages(person.id)
    index = next(i for i, m in enumerate(messages) if m["message_id"] == message_id)
    return messages[index + 1 :]


def fragment(world: World, key: str) -> str:
    """The opening words of a prompt, to recognise it on the patient's screen."""
    return world.rt.content.prompt(key).text.strip()[:40]


def showing(world: World, person: EmuUser, key: str) -> list[dict[str, Any]]:
    words = fragment(world, key)
    return [m for m in world.state.sent_messages(person.id) if words in m.get("text", "")]


async def sessions_of(world: World, pseudonym: str) -> list[TreatmentSession]:
    async with world.rt.sessions() as session:
        rows = await session.scalars(
            select(TreatmentSession)
            .join(Patient, Patient.id == TreatmentSession.patient_id)
            .where(Patient.pseudonym == pseudonym)
            .order_by(TreatmentSession.started_at, TreatmentSession.id)
        )
        return list(rows)


async def of_session(world: World, pseudonym: str, session_id: int) -> list[Delivery]:
    return [d for d in await world.deliveries(pseudonym) if d.session_id == session_id]


def by_key(rows: list[Delivery], key: str) -> Delivery:
    found = [d for d in rows if d.prompt_key == key]
    assert len(found) == 1, (key, [(d.prompt_key, d.state) for d in rows])
    return found[0]


async def logged_now(world: World, pseudonym: str = "river") -> tuple[EmuUser, EmuUser]:
    """A therapist, a patient in New York, the default template logged now (10:00 local) and
    its +0m step sent."""
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, pseudonym)
    await world.say(dr, f"/session {pseudonym}")
    assert (await world.tick()).sent == 1
    return dr, pat


async def plan(world: World, dr: EmuUser, command: str, pseudonym: str) -> TreatmentSession:
    """Type `command` (a /session in the future) and return the session it planned."""
    before = {s.id for s in await sessions_of(world, pseudonym)}
    await world.say(dr, command)
    new = [s for s in await sessions_of(world, pseudonym) if s.id not in before]
    assert len(new) == 1, (command, world.last(dr).get("text"))
    assert new[0].state is SessionState.PLANNED, new[0].state
    return new[0]


# --- planning a session ---------------------------------------------------------------------


async def test_planning_sends_preparation_the_evening_before_and_the_current_course_goes_on(
    course: World,
) -> None:
    world = course
    dr, pat = await logged_now(world)
    [logged] = await sessions_of(world, "river")
    planned = await plan(world, dr, "/session river 2026-03-13 12:00 spec-prep", "river")
    assert planned.started_at == utc(3, 13, 16)  # 12:00 New York
    reply = world.last(dr)["text"]
    assert "river" in reply and "19:00" in reply  # the prep time, patient-local (23:00 UTC)

    prep = by_key(await of_session(world, "river", planned.id), PREP)
    assert prep.state is DeliveryState.SCHEDULED
    assert prep.due_at == utc(3, 12, 23)  # Thursday 19:00 New York

    # Until Thursday 19:00 local the patient gets only the logged session's prompts.
    await world.run_until(utc(3, 12, 22, 55), step=timedelta(minutes=10))
    prep = by_key(await of_session(world, "river", planned.id), PREP)
    assert prep.sent_at is None and prep.state is DeliveryState.SCHEDULED
    assert showing(world, pat, PREP) == []
    earlier = await of_session(world, "river", logged.id)
    due = [d for d in earlier if d.due_at <= world.clock.now() - timedelta(minutes=10)]
    # The standard template's steps from Tuesday 10:00 to Thursday 09:30 (Thursday 19:30 is
    # later): seven of them.
    assert len(due) >= 7
    assert all(d.sent_at is not None and d.state is not DeliveryState.CANCELLED for d in due)

    await world.run_until(utc(3, 12, 23, 5), step=timedelta(minutes=5))
    prep = by_key(await of_session(world, "river", planned.id), PREP)
    assert prep.sent_at is not None
    assert utc(3, 12, 23) <= prep.sent_at <= utc(3, 12, 23, 5)
    shown = message_by_id(world, pat, prep.telegram_message_id)
    assert fragment(world, PREP) in shown["text"]
    assert (await sessions_of(world, "river"))[-1].state is SessionState.PLANNED


async def test_the_planned_start_re_anchors_the_course_exactly_once(course: World) -> None:
    world = course
    dr, pat = await logged_now(world)
    [logged] = await sessions_of(world, "river")
    planned = await plan(world, dr, "/session river 2026-03-13 12:00 spec-prep", "river")
    start = planned.started_at

    await world.run_until(start - timedelta(minutes=5), step=timedelta(minutes=10))
    before = await of_session(world, "river", logged.id)
    assert not any(d.state is DeliveryState.CANCELLED for d in before)
    await world.run_until(start + timedelta(minutes=5), step=timedelta(minutes=5))

    # No therapist action: the planned session has become the anchor.
    now_sessions = {s.id: s for s in await sessions_of(world, "river")}
    assert now_sessions[planned.id].state is SessionState.STARTED
    assert now_sessions[logged.id].state is SessionState.STARTED
    previous = await of_session(world, "river", logged.id)
    kept = [d for d in previous if d.due_at < start]
    dropped = [d for d in previous if d.due_at >= start]
    assert kept and dropped  # Friday 09:30 went out; Friday 19:00 onwards did not
    assert all(d.sent_at is not None and d.state is not DeliveryState.CANCELLED for d in kept)
    assert all(d.state is DeliveryState.CANCELLED and d.sent_at is None for d in dropped)

    # Its own integration steps go out: +1h is 13:00 New York.
    await world.run_until(start + timedelta(hours=1, minutes=5), step=timedelta(minutes=5))
    first = by_key(await of_session(world, "river", planned.id), FIRST)
    assert first.sent_at is not None
    assert fragment(world, FIRST) in message_by_id(world, pat, first.telegram_message_id)["text"]
    cancelled = {
        d.id for d in await world.deliveries("river") if d.state is DeliveryState.CANCELLED
    }
    own = await of_session(world, "river", planned.id)

    # Exactly once: more ticks, at the same moment and later, change nothing of the kind.
    for _ in range(25):
        await world.tick()
    await world.run_until(world.clock.now() + timedelta(hours=2), step=timedelta(minutes=5))
    rows = await world.deliveries("river")
    assert {d.id for d in rows if d.state is DeliveryState.CANCELLED} == cancelled
    again = await of_session(world, "river", planned.id)
    assert sorted(d.id for d in again) == sorted(d.id for d in own)
    assert len(again) == 4 and not any(d.state is DeliveryState.CANCELLED for d in again)
    assert len(showing(world, pat, FIRST)) == 1
    ids = [d.telegram_message_id for d in rows if d.telegram_message_id is not None]
    assert len(ids) == len(set(ids))
    assert len(await sessions_of(world, "river")) == 2


async def test_a_preparation_step_already_past_is_skipped_never_sent(course: World) -> None:
    world = course
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river")
    # In two hours: its -1d@19:00 step was yesterday evening.
    planned = await plan(world, dr, "/session river 2026-03-10 12:00 spec-prep", "river")
    prep = by_key(await of_session(world, "river", planned.id), PREP)
    assert prep.state is DeliveryState.SKIPPED and prep.sent_at is None

    await world.run_until(utc(3, 10, 18), step=timedelta(minutes=5))
    rows = await of_session(world, "river", planned.id)
    prep = by_key(rows, PREP)
    assert prep.state is DeliveryState.SKIPPED
    assert prep.sent_at is None and prep.telegram_message_id is None
    assert showing(world, pat, PREP) == []
    assert (await sessions_of(world, "river"))[0].state is SessionState.STARTED
    assert by_key(rows, FIRST).sent_at is not None  # 13:00 New York


async def test_a_session_planned_while_another_is_pending_keeps_its_own_steps(
    course: World,
) -> None:
    world = course
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river")
    a = await plan(world, dr, "/session river 2026-03-12 10:00 spec-prep", "river")
    b = await plan(world, dr, "/session river 2026-03-13 09:00 spec-prep", "river")
    assert [s.state for s in await sessions_of(world, "river")] == [SessionState.PLANNED] * 2

    await world.run_until(utc(3, 13, 14, 30), step=timedelta(minutes=10))  # Friday 10:30
    assert [s.state for s in await sessions_of(world, "river")] == [SessionState.STARTED] * 2
    a_rows = await of_session(world, "river", a.id)
    b_rows = await of_session(world, "river", b.id)
    for key in (PREP, FIRST, EVENING):  # Wednesday 19:00, Thursday 11:00 and 19:30
        assert by_key(a_rows, key).sent_at is not None, key
    # A's start (Thursday 10:00) did not touch B's preparation (Thursday 19:00) ...
    b_prep = by_key(b_rows, PREP)
    assert b_prep.sent_at is not None and b_prep.sent_at >= utc(3, 12, 23)
    assert message_by_id(world, pat, b_prep.telegram_message_id)
    # ... and B's start (Friday 09:00) cancelled A's rest (Friday 09:30).
    assert by_key(a_rows, NEXT_DAY).state is DeliveryState.CANCELLED
    assert by_key(a_rows, NEXT_DAY).sent_at is None
    assert by_key(b_rows, FIRST).sent_at is not None  # Friday 10:00


# --- recurring steps ------------------------------------------------------------------------


async def test_a_daily_step_keeps_its_local_time_across_a_dst_change(course: World) -> None:
    world = course
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "linde", zone="Europe/Berlin")
    await world.say(dr, "/session linde 2026-03-10 14:59 spec-daily-dst")  # a minute ago
    assert len(await sessions_of(world, "linde")) == 1

    # Nothing is due before the 28th; then three evenings around the 29 March change.
    world.clock.set(utc(3, 28, 18, 30))
    await world.run_until(utc(3, 30, 19), step=timedelta(minutes=10))
    rows = [d for d in await world.deliveries("linde") if d.prompt_key == "chk-mood-today"]
    assert len(rows) == 3, [(d.due_at, d.state) for d in rows]
    local = [d.due_at.astimezone(BERLIN) for d in rows]
    assert [(t.month, t.day, t.hour, t.minute) for t in local] == [
        (3, 28, 20, 0),
        (3, 29, 20, 0),
        (3, 30, 20, 0),
    ]
    assert [d.due_at.hour for d in rows] == [19, 18, 18]  # CET, then CEST
    for d in rows:
        assert d.sent_at is not None and d.sent_at - d.due_at < timedelta(minutes=15)
    shown = showing(world, pat, "chk-mood-today")
    assert len(shown) == 3
    assert [sent_on(m).astimezone(BERLIN).hour for m in shown] == [20, 20, 20]
    assert len({d.telegram_message_id for d in rows}) == 3


# --- reminders and answer windows per step --------------------------------------------------


async def _reflection_now(world: World, template: str) -> tuple[EmuUser, Delivery]:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river")
    await world.say(dr, f"/session river 2026-03-10 09:59 {template}")  # a minute ago
    await world.tick()
    [row] = await world.deliveries("river")
    assert row.sent_at is not None and row.telegram_message_id is not None
    return pat, row


async def test_two_reminders_for_an_unanswered_reflection_then_silence(course: World) -> None:
    world = course
    pat, row = await _reflection_now(world, "spec-remind")  # remind: [1h, 3h]
    assert row.sent_at is not None
    sent = row.sent_at
    await world.run_until(sent + timedelta(hours=30), step=timedelta(minutes=5))
    reminders = messages_after(world, pat, row.telegram_message_id)
    assert len(reminders) == 2, [m.get("text") for m in reminders]
    first, second = (sent_on(m) for m in reminders)
    assert sent + timedelta(hours=1) <= first <= sent + timedelta(hours=1, minutes=10)
    # Three hours after sending (or after the first reminder): either way well before a day.
    assert sent + timedelta(hours=3) <= second <= sent + timedelta(hours=4, minutes=10)
    [row] = await world.deliveries("river")
    assert row.reminders_sent == 2 and row.answered_at is None


async def test_no_reminder_once_the_reflection_is_answered(course: World) -> None:
    world = course
    pat, row = await _reflection_now(world, "spec-remind")
    assert row.sent_at is not None
    await world.run_until(row.sent_at + timedelta(hours=1, minutes=20), step=timedelta(minutes=5))
    assert len(messages_after(world, pat, row.telegram_message_id)) == 1  # the first reminder
    await world.say(pat, "Right now I notice the rain.", reply_to=row.telegram_message_id)
    [row] = await world.deliveries("river")
    assert row.state is DeliveryState.ANSWERED
    after_ack = len(world.state.sent_messages(pat.id))
    await world.run_until(world.clock.now() + timedelta(hours=30), step=timedelta(minutes=10))
    assert len(world.state.sent_messages(pat.id)) == after_ack
    [row] = await world.deliveries("river")
    assert row.reminders_sent == 1


async def test_reminders_never_arrive_in_quiet_hours(course: World) -> None:
    world = course
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river")
    # One reflection at 19:30 local with remind: [1h, 3h]: 20:30 is fine, 22:30 is quiet.
    await world.say(dr, "/session river 2026-03-10 09:59 spec-remind-evening")
    await world.run_until(utc(3, 11, 17), step=timedelta(minutes=5))  # 13:00 next day
    [row] = await world.deliveries("river")
    assert row.sent_at is not None
    assert row.sent_at.astimezone(NY).strftime("%H:%M") >= "19:30"
    reminders = messages_after(world, pat, row.telegram_message_id)
    assert 1 <= len(reminders) <= 2, [m.get("text") for m in reminders]
    first = sent_on(reminders[0]).astimezone(NY)
    assert (first.hour, first.minute // 10) == (20, 3)  # 20:30 local
    for message in reminders:
        hour = sent_on(message).astimezone(NY).hour
        assert 8 <= hour < 21, sent_on(message).astimezone(NY)


async def test_a_reflection_stops_taking_answers_when_its_window_expires(course: World) -> None:
    world = course
    pat, row = await _reflection_now(world, "spec-expires")  # expires: 2h, remind: []
    assert row.sent_at is not None
    # remind: [] overrides the reflections' default 24 h reminder.
    await world.run_until(row.sent_at + timedelta(hours=26), step=timedelta(minutes=10))
    assert messages_after(world, pat, row.telegram_message_id) == []
    # Within the default 72 h answer window, but past this step's own two hours.
    await world.say(pat, "A gap, yes, yesterday.", reply_to=row.telegram_message_id)
    [row] = await world.deliveries("river")
    assert row.state is not DeliveryState.ANSWERED and row.answered_at is None


# --- /sessions ------------------------------------------------------------------------------


async def test_sessions_lists_in_local_time_and_cancel_leaves_the_previous_course_running(
    course: World,
) -> None:
    world = course
    dr, pat = await logged_now(world)  # Tuesday 10:00 New York = 14:00 UTC
    [logged] = await sessions_of(world, "river")
    planned = await plan(world, dr, "/session river 2026-03-13 15:40 spec-prep", "river")

    await world.say(dr, "/sessions river")
    listing = world.last(dr)
    assert "river" in listing["text"]
    assert "15:40" in listing["text"] and "19:40" not in listing["text"]  # planned, local
    assert "10:00" in listing["text"] and "14:00" not in listing["text"]  # past, local
    buttons = [label.lower() for label in labels(listing)]
    assert any("move" in b for b in buttons), labels(listing)
    assert any("cancel" in b for b in buttons), labels(listing)

    told = len(world.state.sent_messages(pat.id))
    cancel = next(label for label in labels(listing) if "cancel" in label.lower())
    await world.tap(dr, listing["message_id"], cancel)
    if (await sessions_of(world, "river"))[-1].state is SessionState.PLANNED:
        # A confirmation step is allowed; take the button that confirms the cancellation.
        ask = world.last(dr)
        words = ("yes", "confirm", "cancel it", "cancel session", "cancel the session")
        confirm = next(b for b in labels(ask) if any(w in b.lower() for w in words))
        await world.tap(dr, ask["message_id"], confirm)

    states = {s.id: s.state for s in await sessions_of(world, "river")}
    assert states == {logged.id: SessionState.STARTED, planned.id: SessionState.CANCELLED}
    own = await of_session(world, "river", planned.id)
    assert own and all(d.state is DeliveryState.CANCELLED for d in own)
    previous = await of_session(world, "river", logged.id)
    assert not any(d.state is DeliveryState.CANCELLED for d in previous)
    assert len(world.state.sent_messages(pat.id)) == told  # no message about scheduling

    # Past the cancelled start the standard course still runs: Friday 19:00 New York.
    await world.run_until(utc(3, 13, 23, 5), step=timedelta(minutes=10))
    friday = next(
        d for d in await of_session(world, "river", logged.id) if d.due_at == utc(3, 13, 23)
    )
    assert friday.sent_at is not None and friday.state is not DeliveryState.CANCELLED
    assert showing(world, pat, PREP) == []

    await world.say(pat, "/sessions river")
    answer = world.last(pat)["text"]
    assert answer.startswith("Sorry, that command isn't available")
    assert "river" not in answer and "15:40" not in answer


# --- failure paths --------------------------------------------------------------------------


async def test_planning_two_years_ahead_is_refused_and_creates_nothing(course: World) -> None:
    world = course
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river")
    told = len(world.state.sent_messages(pat.id))
    asked = len(world.state.sent_messages(dr.id))
    await world.say(dr, "/session river 2028-03-10 10:00 spec-prep")
    assert len(world.state.sent_messages(dr.id)) == asked + 1  # one clear answer
    refusal = world.last(dr)["text"]
    assert refusal and "Traceback" not in refusal
    assert await sessions_of(world, "river") == []
    assert await world.deliveries("river") == []
    await world.run_until(world.clock.now() + timedelta(hours=1))
    assert len(world.state.sent_messages(pat.id)) == told

    # The same command ten days ahead plans it: the refusal was about the distance.
    await plan(world, dr, "/session river 2026-03-20 10:00 spec-prep", "river")


async def test_a_paused_patient_gets_nothing_at_a_planned_start_and_resume_applies_grace(
    course: World,
) -> None:
    world = course
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river")
    # Wednesday 10:00 New York; its preparation is this evening, 19:00.
    planned = await plan(world, dr, "/session river 2026-03-11 10:00 spec-prep", "river")
    await world.say(pat, "/pause")
    quiet = len(world.state.sent_messages(pat.id))

    await world.run_until(utc(3, 11, 16), step=timedelta(minutes=10))  # Wednesday 12:00
    assert len(world.state.sent_messages(pat.id)) == quiet
    assert (await sessions_of(world, "river"))[0].state is SessionState.STARTED
    rows = await of_session(world, "river", planned.id)
    assert all(d.sent_at is None for d in rows)

    await world.say(pat, "/resume")
    await world.tick()
    rows = await of_session(world, "river", planned.id)
    prep = by_key(rows, PREP)  # due 17 h ago: beyond the 6 h grace
    assert prep.state is DeliveryState.MISSED and prep.sent_at is None
    first = by_key(rows, FIRST)  # due an hour ago (11:00): within grace
    assert first.sent_at is not None
    assert fragment(world, FIRST) in message_by_id(world, pat, first.telegram_message_id)["text"]
    assert showing(world, pat, PREP) == []
    assert by_key(rows, EVENING).state is DeliveryState.SCHEDULED  # 19:30 tonight
