"""The patient's own controls end to end, through the fake Bot API, on SQLite and PostgreSQL:
/pause, /resume, /stop and rejoining, /settings, /mydata and /forgetme."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from telegram import Update
from telegram.ext import CommandHandler, filters

from bot.db.crypto import CryptoKeyError
from bot.db.models import (
    Alert,
    AlertKind,
    AuditEntry,
    Delivery,
    DeliveryState,
    Patient,
    PatientStatus,
    PromptKind,
    Reply,
)
from bot.emulator.updates import EmuUser
from bot.handlers import controls, router
from bot.handlers import patient as patient_handlers
from bot.handlers.common import Context, who
from bot.services import participation
from bot.services.errors import UserError
from tests.integration.world import LINK, World, close_world, make_world
from tests.support.pg import backends, database_url

NY = ZoneInfo("America/New_York")
PRIVATE = filters.ChatType.PRIVATE
FERNET_TOKEN = re.compile(rb"gAAAAA[0-9A-Za-z_\-]{40,}={0,2}")


# --- wiring: until the router knows these commands, the tests plug them in themselves -------


async def _pause(update: Update, context: Context) -> None:
    async with context.runtime.sessions() as session:
        role = await who(session, update)
    if role.patient is not None:
        await controls.pause_self(update, context, role.patient)
    else:
        await router.unknown_command(update, context)


async def _resume(update: Update, context: Context) -> None:
    async with context.runtime.sessions() as session:
        role = await who(session, update)
    if role.patient is not None:
        await controls.resume_self(update, context, role.patient)
    else:
        await router.unknown_command(update, context)


async def _start(update: Update, context: Context) -> None:
    async with context.runtime.sessions() as session:
        role = await who(session, update)
    stopped = role.patient is not None and role.patient.status is PatientStatus.STOPPED
    if stopped and not context.args:
        assert role.patient is not None
        await controls.rejoin_prompt(update, context, role.patient)
        return
    await patient_handlers.start(update, context)


def _wired_commands(world: World) -> set[str]:
    names: set[str] = set()
    for group in world.app.handlers.values():
        for handler in group:
            if isinstance(handler, CommandHandler):
                names |= set(handler.commands)
    return names


def wire_controls(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for code, button in controls.BUTTONS.items():
        if code not in router.BUTTONS:
            monkeypatch.setitem(router.BUTTONS, code, button)
    if "stop" in _wired_commands(world):
        return  # the router already routes them
    handlers = [CommandHandler(n, f, filters=PRIVATE) for n, f in controls.COMMANDS.items()]
    handlers += [
        CommandHandler("pause", _pause, filters=PRIVATE),
        CommandHandler("resume", _resume, filters=PRIVATE),
        CommandHandler("start", _start, filters=PRIVATE),
    ]
    group = world.app.handlers[0]
    for handler in reversed(handlers):
        group.insert(0, handler)


@pytest.fixture(params=backends())
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    async with database_url(request.param, tmp_path) as url:
        w = await make_world(url)
        wire_controls(w, monkeypatch)
        try:
            yield w
        finally:
            await close_world(w)


# --- helpers --------------------------------------------------------------------------------


def labels(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def data_of(message: dict[str, Any], label: str) -> str:
    markup = message.get("reply_markup") or {}
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if button["text"] == label:
                return str(button["callback_data"])
    raise LookupError(label)


def message_by_id(world: World, person: EmuUser, message_id: int) -> dict[str, Any]:
    return next(m for m in world.state.sent_messages(person.id) if m["message_id"] == message_id)


def last_callback_answer(world: World) -> dict[str, Any]:
    return world.state.calls_to("answerCallbackQuery")[-1].params


async def replay(world: World, person: EmuUser, message_id: int, data: str) -> dict[str, Any]:
    """Press button data that the message no longer (or never) carried, e.g. a second tap."""
    await world.state.press(person, message_id, data, check=False)
    await world.feed()
    return last_callback_answer(world)


async def patient_row(world: World, patient_id: int) -> Patient:
    async with world.rt.sessions() as session:
        row = await session.get(Patient, patient_id)
        assert row is not None
        return row


async def patient_id(world: World, pseudonym: str) -> int:
    async with world.rt.sessions() as session:
        value = await session.scalar(select(Patient.id).where(Patient.pseudonym == pseudonym))
        assert value is not None
        return int(value)


async def by_key(world: World, pseudonym: str, key: str) -> Delivery:
    return next(d for d in await world.deliveries(pseudonym) if d.prompt_key == key)


async def with_session(world: World, pseudonym: str = "river") -> tuple[EmuUser, EmuUser]:
    """A therapist, an enrolled patient in New York, a session logged now (10:00 local) and
    its +0m step sent."""
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, pseudonym)
    await world.say(dr, f"/session {pseudonym}")
    report = await world.tick()
    assert report.sent == 1
    return dr, pat


def states(deliveries: list[Delivery]) -> dict[str, DeliveryState]:
    return {d.prompt_key or str(d.id): d.state for d in deliveries}


# --- /pause and /resume ---------------------------------------------------------------------


async def test_pause_holds_and_resume_within_grace_sends_at_next_tick(world: World) -> None:
    _, pat = await with_session(world)
    await world.say(pat, "/pause")
    assert "You're taking a break" in world.last(pat)["text"]
    assert "until you send /resume" in world.last(pat)["text"]
    pending = [d for d in await world.deliveries("river") if d.state is not DeliveryState.SENT]
    assert pending and all(d.state is DeliveryState.HELD for d in pending)

    # The evening reflection (20:00 New York) comes due during the break: nothing goes out.
    sent_before = len(world.state.sent_messages(pat.id))
    await world.run_until(datetime(2026, 3, 11, 0, 30, tzinfo=UTC), step=timedelta(minutes=15))
    assert len(world.state.sent_messages(pat.id)) == sent_before
    assert (await by_key(world, "river", "ref-one-word")).state is DeliveryState.HELD

    await world.say(pat, "/resume")  # 30 minutes late: within the 6 h grace
    reply = world.last(pat)["text"]
    assert "Welcome back" in reply and "1 message from your break" in reply
    report = await world.tick()
    assert report.sent == 1
    assert (await by_key(world, "river", "ref-one-word")).state is DeliveryState.SENT
    assert (await patient_row(world, await patient_id(world, "river"))).status is (
        PatientStatus.ACTIVE
    )


async def test_resume_after_grace_marks_missed(world: World) -> None:
    _, pat = await with_session(world)
    await world.say(pat, "/pause")
    held = len([d for d in await world.deliveries("river") if d.state is DeliveryState.HELD])
    world.clock.set(datetime(2026, 3, 11, 17, 0, tzinfo=UTC))  # 13:00 next day in New York
    await world.say(pat, "/resume")
    reply = world.last(pat)["text"]
    assert "2 messages from your break will arrive shortly" in reply
    assert "1 older message that came due a while ago was skipped" in reply

    now = states(await world.deliveries("river"))
    assert now["ref-one-word"] is DeliveryState.MISSED  # 20:00 yesterday: 17 h late
    assert now["chk-sleep"] is DeliveryState.SCHEDULED  # 09:00 today: 4 h late
    report = await world.tick()
    assert report.sent == 2
    after = states(await world.deliveries("river"))
    assert after["chk-sleep"] is DeliveryState.SENT and after["edu-window"] is DeliveryState.SENT
    assert after["ref-one-word"] is DeliveryState.MISSED
    async with world.rt.sessions() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "patient.resume")
        )
    assert entry is not None
    assert entry.detail["sent_soon"] + entry.detail["missed"] + entry.detail["rescheduled"] == held


async def test_pause_days_bad_input_and_pausing_twice(world: World) -> None:
    _, pat = await with_session(world)
    pid = await patient_id(world, "river")
    for bad in ("/pause 0", "/pause 91", "/pause soon", "/pause -3", "/pause 2.5"):
        await world.say(pat, bad)
        assert "1 to 90" in world.last(pat)["text"], bad
    assert (await patient_row(world, pid)).status is PatientStatus.ACTIVE

    now = world.clock.now()
    await world.say(pat, "/pause 3")
    assert "until Fri 13 Mar 10:00 (your time)" in world.last(pat)["text"]
    assert (await patient_row(world, pid)).paused_until == now + timedelta(days=3)

    await world.say(pat, "/pause 10 days")  # pausing again only moves the end
    assert "Your break has been changed" in world.last(pat)["text"]
    row = await patient_row(world, pid)
    assert row.status is PatientStatus.PAUSED and row.paused_until == now + timedelta(days=10)

    await world.say(pat, "/pause")
    assert "until you send /resume" in world.last(pat)["text"]
    assert (await patient_row(world, pid)).paused_until is None


async def test_resume_when_not_paused(world: World) -> None:
    _, pat = await with_session(world)
    await world.say(pat, "/resume")
    assert "You're not on a break" in world.last(pat)["text"]


async def test_timed_pause_ends_with_resume_expired(world: World) -> None:
    dr, pat = await with_session(world)
    other = await world.enrolled_patient(dr, "lake")
    await world.say(pat, "/pause 1")
    await world.say(other, "/pause")  # until /resume: never expires
    river, lake = await patient_id(world, "river"), await patient_id(world, "lake")

    world.clock.advance(timedelta(hours=23))
    async with world.rt.sessions() as session, session.begin():
        early = await participation.resume_expired(
            session, now=world.clock.now(), grace=world.rt.settings.misfire_grace
        )
    assert early == []

    world.clock.advance(timedelta(hours=1, minutes=1))
    async with world.rt.sessions() as session, session.begin():
        resumed = await participation.resume_expired(
            session, now=world.clock.now(), grace=world.rt.settings.misfire_grace
        )
    assert resumed == [river]
    assert (await patient_row(world, river)).status is PatientStatus.ACTIVE
    assert (await patient_row(world, river)).paused_until is None
    assert (await patient_row(world, lake)).status is PatientStatus.PAUSED
    assert not [d for d in await world.deliveries("river") if d.state is DeliveryState.HELD]
    async with world.rt.sessions() as session:
        actor = await session.scalar(
            select(AuditEntry.actor).where(
                AuditEntry.action == "patient.resume", AuditEntry.patient_id == river
            )
        )
    assert actor == "system"


async def test_service_rules_word_errors_for_the_therapist(world: World) -> None:
    dr = await world.therapist()
    await world.say(dr, "/invite fern")  # invited, never joined
    await world.enrolled_patient(dr, "river")
    fern, river = await patient_id(world, "fern"), await patient_id(world, "river")
    now = world.clock.now()
    async with world.rt.sessions() as session:
        therapist_id = await session.scalar(select(Patient.therapist_id).where(Patient.id == river))
    therapist = f"therapist:{therapist_id}"

    async def attempt(pid: int, action: str, **kw: Any) -> str:
        async with world.rt.sessions() as session, session.begin():
            patient = await session.get(Patient, pid)
            assert patient is not None
            try:
                if action == "pause":
                    await participation.pause(session, patient=patient, now=now, **kw)
                else:
                    await participation.resume(session, patient=patient, now=now, **kw)
            except UserError as exc:
                return exc.message
        return "ok"

    grace = timedelta(hours=6)
    assert await attempt(fern, "pause", until=None, actor=therapist) == (
        "fern hasn't finished joining yet."
    )
    assert await attempt(river, "resume", actor=therapist, grace=grace) == "river isn't paused."
    past = now - timedelta(minutes=1)
    assert "future" in await attempt(river, "pause", until=past, actor=therapist)
    assert await attempt(river, "pause", until=None, actor=therapist) == "ok"
    assert await attempt(river, "resume", actor=therapist, grace=grace) == "ok"
    async with world.rt.sessions() as session:
        actors = (
            await session.scalars(
                select(AuditEntry.actor).where(AuditEntry.action.in_(["patient.pause"]))
            )
        ).all()
    assert actors == [therapist]


# --- /stop and rejoining ----------------------------------------------------------------------


async def test_stop_confirmed_cancels_pending_and_tells_therapist(world: World) -> None:
    dr, pat = await with_session(world)
    await world.say(pat, "/stop")
    confirm = world.last(pat)
    assert "Stop all messages?" in confirm["text"]
    assert labels(confirm) == ["Stop", "Keep them coming"]

    await world.tap(pat, confirm["message_id"], "Stop")
    edited = message_by_id(world, pat, confirm["message_id"])
    assert "You've stopped all messages" in edited["text"] and not labels(edited)
    assert world.last(pat)["message_id"] == confirm["message_id"]  # edited, not a new one
    assert world.last(dr)["text"] == (
        "river has stopped all messages. Their pending prompts were cancelled; nothing more "
        "will be sent unless they start again."
    )
    deliveries = await world.deliveries("river")
    assert {d.state for d in deliveries} == {DeliveryState.SENT, DeliveryState.CANCELLED}

    await world.run_until(world.clock.now() + timedelta(days=2), step=timedelta(hours=1))
    assert {d.state for d in await world.deliveries("river")} == {
        DeliveryState.SENT,
        DeliveryState.CANCELLED,
    }
    await world.say(pat, "/stop")
    assert "already stopped" in world.last(pat)["text"]
    await world.say(pat, "/pause")
    assert "nothing to pause" in world.last(pat)["text"]
    await world.say(pat, "/resume")
    assert "Send /start" in world.last(pat)["text"]


async def test_stop_pressed_twice_and_keep_them_coming(world: World) -> None:
    dr, pat = await with_session(world)
    await world.say(pat, "/stop")
    first = world.last(pat)
    await world.say(pat, "/stop")
    second = world.last(pat)

    await world.tap(pat, first["message_id"], "Keep them coming")
    assert "messages will keep coming" in message_by_id(world, pat, first["message_id"])["text"]
    assert (await patient_row(world, await patient_id(world, "river"))).status is (
        PatientStatus.ACTIVE
    )

    stop_data = data_of(second, "Stop")
    await world.tap(pat, second["message_id"], "Stop")
    answer = await replay(world, pat, second["message_id"], stop_data)
    assert answer.get("show_alert") and "already stopped" in answer["text"]
    answer = await replay(world, pat, first["message_id"], data_of(first, "Keep them coming"))
    assert answer.get("show_alert") and "already stopped" in answer["text"]
    told = [t for t in world.texts(dr) if "has stopped all messages" in t]
    assert len(told) == 1


async def test_start_after_stop_asks_to_rejoin(world: World) -> None:
    dr, pat = await with_session(world)
    await world.say(pat, "/stop")
    await world.tap(pat, world.last(pat)["message_id"], "Stop")
    pid = await patient_id(world, "river")

    await world.say(pat, "/start")
    question = world.last(pat)
    assert "start receiving them again?" in question["text"]
    assert labels(question) == ["Yes, start again", "No"]
    await world.tap(pat, question["message_id"], "No")
    assert "messages stay off" in message_by_id(world, pat, question["message_id"])["text"]
    assert (await patient_row(world, pid)).status is PatientStatus.STOPPED

    await world.say(pat, "/start")
    question = world.last(pat)
    yes = data_of(question, "Yes, start again")
    await world.tap(pat, question["message_id"], "Yes, start again")
    assert "You're back" in message_by_id(world, pat, question["message_id"])["text"]
    assert (await patient_row(world, pid)).status is PatientStatus.ACTIVE
    assert "river</b>" not in world.last(dr)["text"]  # HTML rendered, not shown raw
    assert world.last(dr)["text"].startswith("river wants to receive messages again")
    answer = await replay(world, pat, question["message_id"], yes)
    assert answer.get("show_alert") and "already receiving" in answer["text"]

    # Nothing from before the stop comes back; the next session plans afresh.
    old = await world.deliveries("river")
    assert not [d for d in old if d.state in (DeliveryState.SCHEDULED, DeliveryState.HELD)]
    await world.say(dr, "/session river")
    assert "Session logged for river" in world.last(dr)["text"]
    fresh = [d for d in await world.deliveries("river") if d.state is DeliveryState.SCHEDULED]
    assert fresh


async def test_controls_are_not_for_therapists_or_strangers(world: World) -> None:
    dr, _ = await with_session(world)
    stranger = world.person("Eve")
    for command in ("/stop", "/mydata", "/forgetme", "/settings", "/settings zone Berlin"):
        await world.say(dr, command)
        assert world.last(dr)["text"].startswith("Sorry, that command isn't available"), command
        await world.say(stranger, command)
        assert "private service" in world.last(stranger)["text"], command
    assert not world.state.sent_documents(dr.id) and not world.state.sent_documents(stranger.id)
    assert (await patient_row(world, await patient_id(world, "river"))).timezone == (
        "America/New_York"
    )


# --- /settings --------------------------------------------------------------------------------


def local_hhmm(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%H:%M")


async def test_timezone_change_keeps_local_times(world: World) -> None:
    _, pat = await with_session(world)
    pid = await patient_id(world, "river")
    one_off_due = datetime(2026, 3, 12, 15, 0, tzinfo=UTC)  # 11:00 NY, 16:00 Berlin: awake
    async with world.rt.sessions() as session, session.begin():
        session.add(
            Delivery(
                patient_id=pid,
                kind=PromptKind.EDUCATION,
                prompt_key="edu-window",
                offset="+2d",
                state=DeliveryState.SCHEDULED,
                due_at=one_off_due,
                planned_at=world.clock.now(),
                updated_at=world.clock.now(),
            )
        )

    await world.say(pat, "/settings zone Berlin")
    reply = world.last(pat)["text"]
    assert reply.startswith("Time zone set to Europe/Berlin.") and "moved" in reply
    pending = [d for d in await world.deliveries("river") if d.state is DeliveryState.SCHEDULED]
    steps = [d for d in pending if d.session_id is not None]
    assert len(steps) == 16  # the standard template but its first step, sent
    for d in steps:
        assert d.offset is not None and "@" in d.offset
        assert local_hhmm(d.due_at, "Europe/Berlin") == d.offset.split("@")[1], d.offset
    sleep = next(d for d in steps if d.prompt_key == "chk-sleep")  # +1d@09:00
    assert sleep.due_at == datetime(2026, 3, 11, 8, 0, tzinfo=UTC)
    one_off = next(d for d in pending if d.session_id is None)
    assert one_off.due_at == one_off_due  # a one-off keeps its instant

    # The card's buttons change it too, and the card itself is edited to show it.
    await world.say(pat, "/settings")
    card = world.last(pat)
    assert "Time zone: Europe/Berlin" in card["text"] and "Quiet hours: 21:00–08:00" in card["text"]
    assert "✓ Berlin" in labels(card) and "Los Angeles" in labels(card)
    await world.tap(pat, card["message_id"], "Los Angeles")
    edited = message_by_id(world, pat, card["message_id"])
    assert "Time zone: America/Los_Angeles" in edited["text"] and "✓ Los Angeles" in labels(edited)
    assert "Time zone set to America/Los_Angeles" in last_callback_answer(world)["text"]
    for d in await world.deliveries("river"):
        if d.state is DeliveryState.SCHEDULED and d.session_id is not None:
            assert d.offset is not None
            assert local_hhmm(d.due_at, "America/Los_Angeles") == d.offset.split("@")[1]
    assert (await patient_row(world, pid)).timezone == "America/Los_Angeles"


async def test_quiet_hours_change_and_bad_settings(world: World) -> None:
    _, pat = await with_session(world)
    pid = await patient_id(world, "river")
    before = {d.id: d.due_at for d in await world.deliveries("river")}

    for bad, expected in (
        ("/settings zone Atlantis", "couldn't find that time zone"),
        ("/settings quiet 25:00-07:00", "Quiet hours look like 22:00-07:30"),
        ("/settings quiet 22:00", "Quiet hours look like 22:00-07:30"),
        ("/settings quiet 08:00-07:00", "at most 16 hours"),
        ("/settings colour blue", "Send /settings to see your settings"),
        ("/settings zone", "Send /settings to see your settings"),
    ):
        await world.say(pat, bad)
        assert expected in world.last(pat)["text"], bad
    row = await patient_row(world, pid)
    assert row.timezone == "America/New_York" and str(row.quiet_start) == "21:00:00"
    assert {d.id: d.due_at for d in await world.deliveries("river")} == before

    await world.say(pat, "/settings quiet 22:00 - 09:30")
    assert world.last(pat)["text"].startswith("Quiet hours set to 22:00–09:30.")
    sleep = await by_key(world, "river", "chk-sleep")  # +1d@09:00 falls in the new quiet hours
    assert local_hhmm(sleep.due_at, "America/New_York") == "09:30"
    window = await by_key(world, "river", "edu-window")  # +1d@09:30 is already outside
    assert window.due_at == before[window.id]

    await world.say(pat, "/settings")
    card = world.last(pat)
    await world.tap(pat, card["message_id"], "No quiet hours")
    assert "Quiet hours: none" in message_by_id(world, pat, card["message_id"])["text"]
    row = await patient_row(world, pid)
    assert row.quiet_start == row.quiet_end
    sleep = await by_key(world, "river", "chk-sleep")
    assert local_hhmm(sleep.due_at, "America/New_York") == "09:00"  # back to its step time


async def test_settings_take_a_us_city_and_quiet_off(world: World) -> None:
    """Seen: `/settings zone Portland` was not found and `quiet off` was refused."""
    _, pat = await with_session(world)
    pid = await patient_id(world, "river")
    await world.say(pat, "/settings zone Portland")
    assert (await patient_row(world, pid)).timezone == "America/Los_Angeles"
    await world.say(pat, "/settings zone Portland, Maine")
    assert (await patient_row(world, pid)).timezone == "America/New_York"
    await world.say(pat, "/settings quiet off")
    assert world.last(pat)["text"].startswith("Quiet hours turned off.")
    row = await patient_row(world, pid)
    assert row.quiet_start == row.quiet_end


async def test_settings_button_of_another_patient_is_rejected(world: World) -> None:
    dr, pat = await with_session(world)
    other = await world.enrolled_patient(dr, "lake")
    await world.say(pat, "/settings")
    card = world.last(pat)
    await world.say(other, "/settings")
    answer = await replay(world, other, world.last(other)["message_id"], data_of(card, "Berlin"))
    assert answer.get("show_alert") and answer["text"] == "This button is no longer valid."
    assert (await patient_row(world, await patient_id(world, "river"))).timezone == (
        "America/New_York"
    )
    assert (await patient_row(world, await patient_id(world, "lake"))).timezone == (
        "America/New_York"
    )


# --- /mydata ----------------------------------------------------------------------------------


async def _answer_reflection(world: World, pat: EmuUser, pseudonym: str, words: str) -> None:
    reflection = await by_key(world, pseudonym, "ref-one-word")
    assert reflection.telegram_message_id is not None
    await world.say(pat, words, reply_to=reflection.telegram_message_id)


async def test_mydata_is_json_with_exactly_the_patients_rows(world: World) -> None:
    dr, river = await with_session(world)
    lake = await world.enrolled_patient(dr, "lake")
    await world.say(dr, "/session lake")
    await world.run_until(datetime(2026, 3, 11, 0, 5, tzinfo=UTC), step=timedelta(minutes=30))
    await _answer_reflection(world, river, "river", "River's answer: still water & <calm>")
    world.clock.advance(timedelta(hours=1))  # later: a note of its own, not joined
    await world.say(river, "A note from river about the weekend")
    await _answer_reflection(world, lake, "lake", "Lake's private answer")

    await world.say(river, "/mydata")
    documents = world.state.sent_documents(river.id)
    assert [d.filename for d in documents] == ["afterglow-mydata.json"]
    raw = documents[0].content
    data = json.loads(raw.decode("utf-8"))
    assert b"Lake" not in raw and b"lake" not in raw

    assert data["patient"]["pseudonym"] == "river"
    assert data["patient"]["time_zone"] == "America/New_York"
    assert data["patient"]["quiet_hours"] == "21:00-08:00"
    assert data["patient"]["consent_version"] and data["patient"]["consent_utc"]
    assert [r["text"] for r in data["replies"]] == ["River's answer: still water & <calm>"]
    assert data["replies"][0]["prompt_key"] == "ref-one-word"
    # Seen: keys instead of the question, microseconds, no Telegram id though consent says so.
    assert data["replies"][0]["question"].startswith("If today had a single word")
    assert "<" not in data["replies"][0]["question"]
    assert data["patient"]["telegram_user_id"] == river.id
    assert "." not in data["replies"][0]["received_utc"]
    assert data["replies"][0]["received_local"].endswith("-04:00")
    assert [n["text"] for n in data["notes"]] == ["A note from river about the weekend"]
    own = await world.deliveries("river")
    assert sorted(d["id"] for d in data["deliveries"]) == sorted(d.id for d in own)
    first = next(d for d in data["deliveries"] if d["prompt_key"] == "edu-after-session")
    assert first["state"] == "sent" and first["sent_utc"] == "2026-03-10T14:00:00+00:00"
    assert first["sent_local"] == "2026-03-10T10:00:00-04:00"
    assert len(data["sessions"]) == 1
    assert any(a["action"] == "patient.timezone" and a["by"] == "you" for a in data["activity"])
    assert any(
        a["action"] == "session.log" and a["by"] == "your therapist" for a in data["activity"]
    )
    async with world.rt.sessions() as session:
        logged = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "patient.mydata")
        )
    assert logged is not None and logged.patient_id == await patient_id(world, "river")

    # A check-in tap shows with its value and label.
    await world.run_until(datetime(2026, 3, 11, 13, 5, tzinfo=UTC), step=timedelta(minutes=30))
    checkin = await by_key(world, "river", "chk-sleep")
    assert checkin.telegram_message_id is not None
    await world.tap(river, checkin.telegram_message_id, "Well")
    await world.say(river, "/mydata")
    data = json.loads(world.state.sent_documents(river.id)[-1].content)
    choice = next(r for r in data["replies"] if r["kind"] == "choice")
    assert choice["prompt_key"] == "chk-sleep" and choice["choice_label"] == "Well"


# --- /forgetme --------------------------------------------------------------------------------

PLANTED_RIVER = "cormorant-lighthouse-4417"
PLANTED_CUSTOM = "quince-harbour-8802"
PLANTED_LAKE = "saffron-meadow-2291"


async def _table_names(world: World) -> list[str]:
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        if world.rt.engine.dialect.name == "sqlite"
        else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    )
    async with world.rt.engine.connect() as conn:
        return [str(row[0]) for row in (await conn.execute(text(query))).all()]


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value).encode()
    return str(value).encode()


def _recoverable(world: World, blob: bytes) -> str:
    """Plain text plus everything in `blob` that decrypts with the bot's keys."""
    found = [blob.decode("utf-8", "replace")]
    for match in FERNET_TOKEN.finditer(blob):
        with contextlib.suppress(CryptoKeyError):
            found.append(world.rt.cipher.decrypt(match.group(0)))
    return "\n".join(found)


async def _scan_database(world: World) -> str:
    """Every value of every column of every table, as text, with Fernet tokens decrypted."""
    out: list[str] = []
    async with world.rt.engine.connect() as conn:
        for table in await _table_names(world):
            rows = (await conn.execute(text(f'SELECT * FROM "{table}"'))).all()
            for row in rows:
                for value in row:
                    if value is not None:
                        out.append(_recoverable(world, _as_bytes(value)))
    return "\n".join(out)


async def _enrolled_pair_with_secrets(world: World) -> tuple[EmuUser, EmuUser, EmuUser]:
    dr, river = await with_session(world)
    lake = await world.enrolled_patient(dr, "lake")
    await world.say(dr, "/session lake")
    await world.run_until(datetime(2026, 3, 11, 0, 5, tzinfo=UTC), step=timedelta(minutes=30))
    # Interleaved, and river's answer joins two messages (an UPDATE of the stored token).
    await _answer_reflection(world, river, "river", f"First part {PLANTED_RIVER}")
    await _answer_reflection(world, lake, "lake", f"Lake says {PLANTED_LAKE}")
    await world.say(river, f"and the second part {PLANTED_RIVER}")
    await world.say(lake, "another lake note")
    world.clock.advance(timedelta(hours=1))
    await world.say(river, f"A separate note: {PLANTED_RIVER}")
    pid = await patient_id(world, "river")
    async with world.rt.sessions() as session, session.begin():
        replies = (await session.scalars(select(Reply).where(Reply.patient_id == pid))).all()
        assert len(replies) == 2
        row = await session.get(Patient, pid)
        assert row is not None
        now = world.clock.now()
        session.add(
            Alert(
                patient_id=pid,
                therapist_id=row.therapist_id,
                reply_id=replies[0].id,
                kind=AlertKind.CRISIS,
                created_at=now,
            )
        )
        for state in (DeliveryState.SENT, DeliveryState.SCHEDULED):
            session.add(
                Delivery(
                    patient_id=pid,
                    kind=PromptKind.REFLECTION,
                    custom_text_enc=world.rt.cipher.encrypt(f"Therapist asks {PLANTED_CUSTOM}"),
                    state=state,
                    due_at=now + timedelta(days=1),
                    planned_at=now,
                    updated_at=now,
                )
            )
    return dr, river, lake


async def test_forgetme_erases_and_nothing_decryptable_remains(world: World) -> None:
    dr, river, _ = await _enrolled_pair_with_secrets(world)
    pid = await patient_id(world, "river")
    scan = await _scan_database(world)
    assert PLANTED_RIVER in scan and PLANTED_CUSTOM in scan and PLANTED_LAKE in scan

    await world.say(river, "/forgetme")
    confirm = world.last(river)
    assert "Delete everything?" in confirm["text"]
    assert labels(confirm) == ["Delete everything", "Cancel"]
    await world.tap(river, confirm["message_id"], "Delete everything")
    done = message_by_id(world, river, confirm["message_id"])
    assert "your data has been erased" in done["text"] and "Deleted: 2 answers" in done["text"]
    assert "unless your therapist invites you again" in done["text"]
    assert world.last(river)["message_id"] == confirm["message_id"]
    assert world.last(dr)["text"] == "river asked to delete their data; it has been erased."

    row = await patient_row(world, pid)
    assert row.status is PatientStatus.ERASED and row.erased_at == world.clock.now()
    assert (row.telegram_index, row.telegram_enc, row.timezone) == (None, None, None)
    assert (row.consent_version, row.consent_at, row.paused_until) == (None, None, None)
    async with world.rt.sessions() as session:
        assert not (await session.scalars(select(Reply).where(Reply.patient_id == pid))).all()
        alert = await session.scalar(select(Alert).where(Alert.patient_id == pid))
        assert alert is not None and alert.reply_id is None
        mine = (await session.scalars(select(Delivery).where(Delivery.patient_id == pid))).all()
    assert all(d.custom_text_enc is None for d in mine)
    assert not [d for d in mine if d.state in (DeliveryState.SCHEDULED, DeliveryState.HELD)]

    # The raw database: nothing of river's can be read or decrypted; lake's still can.
    scan = await _scan_database(world)
    assert PLANTED_RIVER not in scan and PLANTED_CUSTOM not in scan
    assert PLANTED_LAKE in scan
    await world.say(dr, "/replies lake")
    assert PLANTED_LAKE in world.last(dr)["text"]

    if world.rt.engine.dialect.name == "sqlite":
        # Several connections at once, so the pool has to open new ones: each must have it.
        async with contextlib.AsyncExitStack() as stack:
            conns = [await stack.enter_async_context(world.rt.engine.connect()) for _ in range(3)]
            for conn in conns:
                assert (await conn.exec_driver_sql("PRAGMA secure_delete")).scalar() == 1
            await conns[0].exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        path = world.rt.settings.database_url.split("///", 1)[1]
        blob = b"".join(
            Path(path + suffix).read_bytes()
            for suffix in ("", "-wal")
            if Path(path + suffix).exists()
        )
        on_disk = _recoverable(world, blob)
        assert PLANTED_LAKE in on_disk  # the scan can see what is there
        # Without secure_delete the erased cells stay readable in the file's free space.
        assert PLANTED_RIVER not in on_disk and PLANTED_CUSTOM not in on_disk


async def test_forgetme_cancel_stale_and_someone_elses_button(world: World) -> None:
    dr, river, lake = await _enrolled_pair_with_secrets(world)
    pid = await patient_id(world, "river")
    await world.say(river, "/forgetme")
    first = world.last(river)
    await world.say(river, "/forgetme")
    second = world.last(river)
    delete = data_of(second, "Delete everything")

    # lake replays river's genuine, signed button in lake's own chat: rejected, nothing erased.
    answer = await replay(world, lake, world.last(lake)["message_id"], delete)
    assert answer.get("show_alert") and answer["text"] == "This button is no longer valid."
    assert (await patient_row(world, pid)).status is PatientStatus.ACTIVE

    await world.tap(river, first["message_id"], "Cancel")
    assert "Nothing was deleted" in message_by_id(world, river, first["message_id"])["text"]
    assert (await patient_row(world, pid)).status is PatientStatus.ACTIVE

    await world.tap(river, second["message_id"], "Delete everything")
    assert (await patient_row(world, pid)).status is PatientStatus.ERASED
    answer = await replay(world, river, second["message_id"], delete)
    assert answer.get("show_alert") and answer["text"] == "This button is no longer valid."
    answer = await replay(world, river, first["message_id"], data_of(first, "Delete everything"))
    assert answer["text"] == "This button is no longer valid."
    told = [t for t in world.texts(dr) if "asked to delete their data" in t]
    assert len(told) == 1

    # Afterwards river is a stranger to the bot, until invited again (same pseudonym works).
    await world.say(river, "/mydata")
    assert "private service" in world.last(river)["text"]
    await world.say(dr, "/invite river")
    link = LINK.search(world.last(dr)["text"])
    assert link is not None
    await world.open_invite(river, link.group(0))
    await world.tap(river, world.last(river)["message_id"], "I agree")
    await world.say(river, "Chicago")
    assert "You're all set" in world.last(river)["text"]
    await world.say(river, "/mydata")
    data = json.loads(world.state.sent_documents(river.id)[-1].content)
    assert data["replies"] == [] and data["notes"] == [] and data["deliveries"] == []
