"""The therapist's console through the fake Bot API: /patients and the patient card, /schedule
and its buttons, /postpone, /add, /templates, /export, /pause and /resume <pseudonym>."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, select, text, update
from telegram import Update
from telegram.error import TimedOut
from telegram.ext import CommandHandler, filters

from bot.db.models import (
    AuditEntry,
    Delivery,
    DeliveryState,
    Patient,
    PatientStatus,
    PromptKind,
    Reply,
    Therapist,
)
from bot.emulator.people import EmuUser
from bot.handlers import console, router
from bot.handlers.common import Context, who
from tests.integration.world import World

NY = ZoneInfo("America/New_York")
INVALID = "This button is no longer valid."


async def _pause(update: Update, context: Context) -> None:
    async with context.runtime.sessions() as session:
        role = await who(session, update)
    if role.therapist is not None:
        await console.pause_patient(update, context, role.therapist)


async def _resume(update: Update, context: Context) -> None:
    async with context.runtime.sessions() as session:
        role = await who(session, update)
    if role.therapist is not None:
        await console.resume_patient(update, context, role.therapist)


@pytest.fixture(autouse=True)
def wired(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Until (and after) the lead wires the router: the console's commands first in group 0,
    its buttons in the router's registry."""
    group = world.app.handlers[0]
    private = filters.ChatType.PRIVATE
    known = {c for h in group if isinstance(h, CommandHandler) for c in h.commands}
    mine = [CommandHandler(name, fn, filters=private) for name, fn in console.COMMANDS.items()]
    for name, fn in (("pause", _pause), ("resume", _resume)):
        if name not in known:  # once the router routes them, its own split is used
            mine.append(CommandHandler(name, fn, filters=private))
    group[0:0] = mine
    for code, fn in console.BUTTONS.items():
        assert code.startswith("t") and code != "tz"
        monkeypatch.setitem(router.BUTTONS, code, fn)
    yield


# --- helpers --------------------------------------------------------------------------------


def buttons(message: dict[str, Any]) -> dict[str, str]:
    markup = message.get("reply_markup") or {}
    return {b["text"]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


def message(world: World, person: EmuUser, message_id: int) -> dict[str, Any]:
    return next(m for m in world.state.sent_messages(person.id) if m["message_id"] == message_id)


def last_answer(world: World) -> dict[str, Any]:
    return world.state.calls_to("answerCallbackQuery")[-1].params


async def press_data(world: World, person: EmuUser, message_id: int, data: str) -> None:
    await world.state.press(person, message_id, data, check=False)
    await world.feed()


async def delivery(world: World, delivery_id: int) -> Delivery:
    async with world.rt.sessions() as session:
        row = await session.get(Delivery, delivery_id)
        assert row is not None
        return row


async def audit_actions(world: World) -> list[str]:
    async with world.rt.sessions() as session:
        return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


async def with_session(world: World, dr: EmuUser, pseudonym: str, *args: str) -> list[Delivery]:
    await world.say(dr, " ".join(["/session", pseudonym, *args]))
    assert "Session logged" in world.last(dr)["text"], world.last(dr)["text"]
    await world.tick()
    return await world.deliveries(pseudonym)


def local(moment: datetime) -> str:
    return moment.astimezone(NY).strftime("%a %d %b %H:%M")


# --- access ---------------------------------------------------------------------------------


async def test_patient_and_stranger_cannot_use_console_commands(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "oak")
    stranger = world.person("Eve")
    for command in ("/patients", "/schedule oak", "/add oak +1h hi", "/templates", "/export oak"):
        await world.say(pat, command)
        reply = world.last(pat)["text"]
        assert reply.startswith("Sorry, that command isn't available"), command
        assert "oak" not in reply
        await world.say(stranger, command)
        assert "private service" in world.last(stranger)["text"]
    assert world.state.sent_documents(pat.id) == []
    assert world.state.sent_documents(stranger.id) == []


async def test_someone_elses_patient_reads_as_unknown(world: World) -> None:
    a = await world.therapist("Dr A")
    b = await world.therapist("Dr B")
    await world.enrolled_patient(a, "willow")
    await with_session(world, a, "willow")
    for command in (
        "/schedule willow",
        "/add willow +1h hello",
        "/export willow",
        "/pause willow",
        "/resume willow",
        "/schedule nobody",
    ):
        await world.say(b, command)
        name = command.split()[1]
        assert world.last(b)["text"] == f"You have no patient called “{name}”.", command
    assert world.state.sent_documents(b.id) == []
    pending = [d for d in await world.deliveries("willow") if d.state is DeliveryState.SCHEDULED]
    assert len(pending) == 16  # the standard template less its first step, sent


# --- /patients and the card -----------------------------------------------------------------


async def test_patients_shows_status_zone_sessions_and_unanswered(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "river-7")
    await world.enrolled_patient(dr, "lake", zone="Europe/Berlin")
    await world.say(dr, "/invite fern")
    await with_session(world, dr, "river-7")
    # The evening reflection goes out and stays unanswered.
    await world.run_until(world.clock.now() + timedelta(hours=10, minutes=5))
    await world.say(dr, "/pause lake")

    await world.say(dr, "/patients")
    listing = world.last(dr)
    body = listing["text"]
    assert "Your patients (3)" in body
    assert "fern · invited · no time zone yet" in body
    assert "lake · paused · Europe/Berlin" in body
    river = body[body.index("river-7") :]
    assert river.startswith("river-7 · active · America/New_York")
    assert "last session Tue 10 Mar 10:00" in river
    assert "next Wed 11 Mar 09:00" in river
    assert "1 unanswered" in river
    assert list(buttons(listing)) == ["fern", "lake", "river-7"]

    await world.tap(dr, listing["message_id"], "river-7")
    card = message(world, dr, listing["message_id"])
    assert card["text"].startswith("river-7\nStatus: active\nTime zone: America/New_York")
    assert "Quiet hours: 21:00–08:00" in card["text"]
    assert "Default template: standard (clinic default)" in card["text"]
    assert {"Schedule", "Replies", "Export CSV", "⏸ Pause", "Default template"} <= set(
        buttons(card)
    )
    await world.tap(dr, listing["message_id"], "◀ All patients")
    assert message(world, dr, listing["message_id"])["text"] == body
    actions = await audit_actions(world)
    assert actions.count("patients.list") == 2 and "patient.card" in actions


async def test_listings_say_what_the_therapist_needs(world: World) -> None:
    """Seen: "next 16 held"; `/patients 2` showed page 1; `/replies P 0` showed one reply; one
    5,000-character answer filled /replies; a skipped future step sat under "Last 7 days"."""
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river-7")
    await world.enrolled_patient(dr, "lake")
    await with_session(world, dr, "river-7")
    await with_session(world, dr, "lake")
    await world.say(dr, "/pause lake")
    await world.say(dr, "/patients")
    lake = world.last(dr)["text"].split("lake", 1)[1].split("river-7")[0]
    assert "next none while paused (16 prompts waiting)" in lake

    await world.say(dr, "/patients 2")
    assert world.last(dr)["text"] == "There is only one page of patients: send /patients."
    for n in ("0", "51"):
        await world.say(dr, f"/replies river-7 {n}")
        assert world.last(dr)["text"].startswith("Show between 1 and 50 replies"), n

    await world.say(pat, "Short and sweet.")
    world.clock.advance(timedelta(minutes=30))
    await world.say(pat, "word " * 1000)
    await world.say(dr, "/replies river-7")
    listing = world.last(dr)["text"]
    assert "Short and sweet." in listing
    assert "more characters — /export for all)" in listing and len(listing) < 1500

    await world.say(dr, "/schedule river-7")
    mid = world.last(dr)["message_id"]
    await world.tap(dr, mid, "3 · Skip")
    upcoming, recent = message(world, dr, mid)["text"].split("Last 7 days")
    assert "3. Wed 11 Mar 09:30 · education edu-window · skipped" in upcoming
    assert "edu-window" not in recent


async def _add_patients(world: World, dr: EmuUser, names: list[str]) -> None:
    async with world.rt.sessions() as session, session.begin():
        therapist = await session.scalar(
            select(Therapist).where(Therapist.telegram_user_id == dr.id)
        )
        assert therapist is not None
        for name in names:
            session.add(
                Patient(
                    therapist_id=therapist.id,
                    pseudonym=name,
                    status=PatientStatus.ACTIVE,
                    timezone="Europe/Berlin",
                    created_at=world.clock.now(),
                )
            )


async def test_patients_pages_of_eight_with_a_fixed_number_of_queries(world: World) -> None:
    dr = await world.therapist()
    other = await world.therapist("Dr Other")
    await _add_patients(world, other, ["not-mine"])
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    await _add_patients(world, dr, [f"p{i:02d}" for i in range(3)])
    await world.say(dr, "/help")  # a first message's once-per-process checks (language)
    event.listen(world.rt.engine.sync_engine, "before_cursor_execute", count)
    await world.say(dr, "/patients")
    few = len(statements)
    await _add_patients(world, dr, [f"p{i:02d}" for i in range(3, 20)])
    statements.clear()
    await world.say(dr, "/patients")
    event.remove(world.rt.engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == few  # not one query per patient

    first = world.last(dr)
    mid = first["message_id"]
    assert "Your patients (20) · page 1/3" in first["text"]
    assert list(buttons(first))[:8] == [f"p{i:02d}" for i in range(8)]
    assert "◀ Previous" not in buttons(first) and "Next ▶" in buttons(first)
    assert "not-mine" not in first["text"]

    await world.tap(dr, mid, "Next ▶")
    await world.tap(dr, mid, "Next ▶")
    third = message(world, dr, mid)
    assert "page 3/3" in third["text"]
    assert [k for k in buttons(third) if k.startswith("p")] == ["p16", "p17", "p18", "p19"]
    assert "Next ▶" not in buttons(third)
    await world.tap(dr, mid, "◀ Previous")
    assert "page 2/3" in message(world, dr, mid)["text"]
    assert world.last(dr)["message_id"] == mid  # paging edits, never sends


async def test_card_sets_default_template_and_quiet_hours(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "river-7")
    # A one-off for 21:30 tonight is pushed by the default quiet hours to 08:00.
    await world.say(dr, "/add river-7 +0d@21:30 edu-window")
    assert "Wed 11 Mar 08:00" in world.last(dr)["text"]
    await world.say(dr, "/patients")
    mid = world.last(dr)["message_id"]
    await world.tap(dr, mid, "river-7")

    await world.tap(dr, mid, "Default template")
    menu = message(world, dr, mid)
    assert {"maintenance", "short", "standard", "✓ Clinic default", "◀ Back"} <= set(buttons(menu))
    await world.tap(dr, mid, "short")
    assert "Default template: short" in message(world, dr, mid)["text"]
    assert last_answer(world)["text"] == "Default template: short"
    await world.say(dr, "/session river-7")
    assert "template short" in world.last(dr)["text"]

    await world.tap(dr, mid, "Quiet hours")
    await world.tap(dr, mid, "23:00–09:00")
    assert "Quiet hours: 23:00–09:00" in message(world, dr, mid)["text"]
    assert "1 pending prompt moved" in last_answer(world)["text"]
    async with world.rt.sessions() as session:
        patient = await session.scalar(select(Patient).where(Patient.pseudonym == "river-7"))
        assert patient is not None
        assert (patient.quiet_start, patient.quiet_end) == (time(23, 0), time(9, 0))
        assert patient.default_template == "short"
    one_off = next(d for d in await world.deliveries("river-7") if d.session_id is None)
    assert local(one_off.due_at) == "Wed 11 Mar 09:00"

    await world.tap(dr, mid, "Quiet hours")
    await world.tap(dr, mid, "none")
    assert "Quiet hours: none" in message(world, dr, mid)["text"]
    actions = await audit_actions(world)
    assert actions.count("patient.quiet_hours") == 2 and "patient.default_template" in actions


async def test_card_pause_resume_replies_and_export_buttons(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river-7")
    await with_session(world, dr, "river-7")
    await world.say(pat, "a quiet morning note")
    await world.say(dr, "/patients")
    mid = world.last(dr)["message_id"]
    await world.tap(dr, mid, "river-7")
    await world.tap(dr, mid, "⏸ Pause")
    assert last_answer(world)["text"] == "Paused: 16 prompts held."
    assert "Status: paused" in message(world, dr, mid)["text"]
    await world.say(dr, "/schedule river-7")
    held_view = world.last(dr)
    assert "1. Tue 10 Mar 20:00 · reflection ref-one-word · held (paused)" in held_view["text"]
    await world.tap(dr, held_view["message_id"], "1 · Send now")
    assert last_answer(world)["text"].startswith("river-7 is paused. Resume first")
    await world.tap(dr, mid, "▶ Resume")
    assert last_answer(world)["text"] == "Resumed: 0 sent now, 0 missed, 16 keep their time."
    assert "Status: active" in message(world, dr, mid)["text"]
    await world.tap(dr, mid, "⏸ Pause")
    await press_data(world, dr, mid, resume_data := buttons(message(world, dr, mid))["▶ Resume"])
    await press_data(world, dr, mid, resume_data)  # pressed twice: the second is refused
    assert (
        last_answer(world)["text"] == "river-7 isn't paused." and last_answer(world)["show_alert"]
    )
    assert "Status: active" in message(world, dr, mid)["text"]

    await world.tap(dr, mid, "Replies")
    assert "a quiet morning note" in world.last(dr)["text"]
    await world.tap(dr, mid, "Export CSV")
    (doc,) = world.state.sent_documents(dr.id)
    assert doc.filename == "afterglow-river-7-20260310.csv"
    await world.tap(dr, mid, "Schedule")
    assert message(world, dr, mid)["text"].startswith("Schedule for river-7")


# --- /schedule and its buttons --------------------------------------------------------------


async def test_schedule_lists_upcoming_and_recent_in_local_time(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "river-7")
    rows = await with_session(world, dr, "river-7")
    async with world.rt.sessions() as session, session.begin():
        await session.execute(
            update(Delivery).where(Delivery.id == rows[0].id).values(state=DeliveryState.UNKNOWN)
        )
    await world.say(dr, "/schedule river-7")
    shown = world.last(dr)
    body = shown["text"]
    assert "Schedule for river-7 (times in America/New_York)" in body
    assert "1. Tue 10 Mar 20:00 · reflection ref-one-word · scheduled" in body
    assert "2. Wed 11 Mar 09:00 · checkin chk-sleep · scheduled" in body
    assert "17. Tue 10 Mar 10:00 · education edu-after-session · ⚠ UNKNOWN" in body
    assert "may or may not have reached river-7" in body
    labels = buttons(shown)
    assert "1 · Skip" in labels and "16 · Postpone" in labels
    assert "17 · Skip" not in labels  # an unknown outcome cannot be acted on
    assert "schedule.read" in await audit_actions(world)


async def test_an_unknown_prompt_is_sent_again_only_by_the_therapists_decision(
    world: World,
) -> None:
    """Seen: an `unknown` delivery had no action at all in /schedule."""
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river-7")
    world.state.fail("sendMessage", exception=TimedOut, delivered=False, chat_id=pat.id)
    await world.say(dr, "/session river-7")
    assert (await world.tick()).unknown == 1
    [lost] = [d for d in await world.deliveries("river-7") if d.state is DeliveryState.UNKNOWN]
    for _ in range(3):  # never on its own
        world.clock.advance(timedelta(minutes=5))
        await world.tick()
    assert (await delivery(world, lost.id)).state is DeliveryState.UNKNOWN

    await world.say(dr, "/schedule river-7")
    shown = world.last(dr)
    assert "never re-sent automatically" in shown["text"]
    label = next(k for k in buttons(shown) if k.endswith("· Send again"))
    sent_to_patient = len(world.state.sent_messages(pat.id))
    await world.tap(dr, shown["message_id"], label)
    assert "Sending edu-after-session again now." in last_answer(world)["text"]
    await world.tick()
    again = await delivery(world, lost.id)
    assert again.state is DeliveryState.SENT and again.telegram_message_id is not None
    assert len(world.state.sent_messages(pat.id)) == sent_to_patient + 1
    async with world.rt.sessions() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "delivery.send_again")
        )
    assert entry is not None and entry.detail["reason"].startswith("therapist chose")

    # A stale copy of the button changes nothing now that the outcome is known.
    await world.state.press(dr, shown["message_id"], buttons(shown)[label], check=False)
    await world.feed()
    assert "outcome is known now" in last_answer(world)["text"]


async def test_skip_send_now_and_postpone_edit_the_schedule_message(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river-7")
    rows = await with_session(world, dr, "river-7")
    evening, sleep, window = rows[1], rows[2], rows[3]
    await world.say(dr, "/schedule river-7")
    mid = world.last(dr)["message_id"]
    sent_before = len(world.state.sent_messages(dr.id))

    await world.tap(dr, mid, "1 · Skip")
    assert (await delivery(world, evening.id)).state is DeliveryState.SKIPPED
    assert last_answer(world)["text"] == "Skipped ref-one-word."
    body = message(world, dr, mid)["text"]
    assert body.startswith("Skipped ref-one-word.")
    assert "ref-one-word · skipped" in body

    # The skipped step stays listed (it is still ahead), without buttons: chk-sleep is #2.
    assert "1 · Send now" not in buttons(message(world, dr, mid))
    await world.tap(dr, mid, "2 · Send now")
    moved = await delivery(world, sleep.id)
    assert moved.due_at == world.clock.now() and moved.state is DeliveryState.SCHEDULED
    assert "Sending chk-sleep now." in message(world, dr, mid)["text"]
    await world.tick()
    assert (await delivery(world, sleep.id)).state is DeliveryState.SENT
    assert "How did you sleep" in world.last(pat)["text"]

    await world.tap(dr, mid, "↻ Refresh")
    await world.tap(dr, mid, "2 · Postpone")
    menu = message(world, dr, mid)
    assert "Postpone #2 (education edu-window" in menu["text"]
    assert "/postpone 2 +3h" in menu["text"]
    await world.tap(dr, mid, "+1 hour")
    assert (await delivery(world, window.id)).due_at == window.due_at + timedelta(hours=1)
    assert "Moved edu-window to Wed 11 Mar 10:30." in message(world, dr, mid)["text"]

    await world.tap(dr, mid, "2 · Postpone")
    await world.tap(dr, mid, "Next morning 09:00")
    assert local((await delivery(world, window.id)).due_at) == "Thu 12 Mar 09:00"
    assert len(world.state.sent_messages(dr.id)) == sent_before  # all edits, no new messages
    actions = await audit_actions(world)
    for action in ("delivery.skip", "delivery.send_now", "delivery.postpone"):
        assert action in actions


async def test_send_now_waits_for_the_end_of_quiet_hours(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "river-7")
    rows = await with_session(world, dr, "river-7")
    world.clock.advance(timedelta(hours=12))  # 22:00 in New York: quiet hours
    await world.say(dr, "/schedule river-7")
    mid = world.last(dr)["message_id"]
    await world.tap(dr, mid, "2 · Send now")  # #1 is tonight's reflection, now late
    assert "quiet hours for river-7" in last_answer(world)["text"]
    assert local((await delivery(world, rows[2].id)).due_at) == "Wed 11 Mar 08:00"


async def test_buttons_refuse_twice_stale_and_already_sent(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "river-7")
    rows = await with_session(world, dr, "river-7")
    await world.say(dr, "/schedule river-7")
    old = world.last(dr)
    await world.say(dr, "/schedule river-7")
    new = world.last(dr)
    skip_1 = buttons(new)["1 · Skip"]

    # Pressed twice: the second press finds it skipped.
    await world.tap(dr, new["message_id"], "1 · Skip")
    await press_data(world, dr, new["message_id"], skip_1)
    answer = last_answer(world)
    assert answer["text"] == "This prompt was already skipped." and answer["show_alert"]

    # A stale message: #2 was moved on the newer message; the older one's buttons are refused.
    await world.tap(dr, new["message_id"], "2 · Postpone")
    await world.tap(dr, new["message_id"], "+1 hour")
    due = (await delivery(world, rows[2].id)).due_at
    before = message(world, dr, old["message_id"])
    await world.tap(dr, old["message_id"], "2 · Skip")
    assert "out of date" in last_answer(world)["text"]
    assert (await delivery(world, rows[2].id)).state is DeliveryState.SCHEDULED
    assert (await delivery(world, rows[2].id)).due_at == due
    assert message(world, dr, old["message_id"]) == before

    # Already sent: the dispatcher got there first.
    await world.run_until(world.clock.now() + timedelta(days=1))
    third = rows[3]
    assert (await delivery(world, third.id)).state is DeliveryState.SENT
    await world.tap(dr, old["message_id"], "3 · Postpone")
    assert last_answer(world)["text"] == "This prompt has already been sent; nothing was changed."
    assert (await delivery(world, third.id)).state is DeliveryState.SENT


async def test_patient_or_other_therapist_pressing_a_console_button_is_refused(
    world: World,
) -> None:
    dr = await world.therapist()
    other = await world.therapist("Dr Other")
    pat = await world.enrolled_patient(dr, "river-7")
    rows = await with_session(world, dr, "river-7")
    await world.say(dr, "/schedule river-7")
    data = buttons(world.last(dr))
    await world.say(dr, "/patients")
    card = buttons(world.last(dr))["river-7"]

    await world.say(pat, "hello")
    await world.say(other, "/help")
    for person in (pat, other):
        for label in ("1 · Skip", "1 · Send now", "↻ Refresh"):
            await press_data(world, person, world.last(person)["message_id"], data[label])
            assert last_answer(world)["text"] == INVALID, (person.first_name, label)
        await press_data(world, person, world.last(person)["message_id"], card)
        assert last_answer(world)["text"] == INVALID
    assert (await delivery(world, rows[1].id)).state is DeliveryState.SCHEDULED
    assert "river-7" not in world.last(other)["text"]


# --- /postpone ------------------------------------------------------------------------------


async def test_postpone_command_moves_by_the_number_shown(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "river-7")
    await world.enrolled_patient(dr, "lake")
    rows = await with_session(world, dr, "river-7")

    await world.say(dr, "/postpone 1 +3h")
    assert "Open /schedule <pseudonym> first" in world.last(dr)["text"]
    await world.say(dr, "/schedule river-7")
    await world.say(dr, "/postpone 1 +1d@10:00")
    reply = world.last(dr)["text"]
    assert reply.startswith("Moved #1 (ref-one-word) to Wed 11 Mar 10:00.")
    assert "Schedule for river-7" in reply and buttons(world.last(dr))
    assert local((await delivery(world, rows[1].id)).due_at) == "Wed 11 Mar 10:00"

    # The reply re-numbered the list: ref-one-word now comes after chk-sleep, the new #1.
    due = (await delivery(world, rows[2].id)).due_at
    await world.say(dr, "/postpone river-7 1 +3h")
    assert (await delivery(world, rows[2].id)).due_at == due + timedelta(hours=3)

    await world.say(dr, "/postpone 1 tomorrow")
    assert world.last(dr)["text"].startswith("Bad offset 'tomorrow'")
    await world.say(dr, "/postpone 99 +1h")
    assert "There is no prompt #99" in world.last(dr)["text"]
    await world.say(dr, "/postpone 17 +1h")  # the education snippet sent at the session
    assert world.last(dr)["text"].startswith("#17: This prompt has already been sent")
    await world.say(dr, "/postpone lake 1 +1h")
    assert "Open /schedule lake first" in world.last(dr)["text"]
    await world.say(dr, "/postpone 1")
    assert world.last(dr)["text"].startswith("Usage: /postpone")


async def test_postpone_counts_from_the_due_time_and_never_moves_earlier(world: World) -> None:
    """Seen: `/postpone 3 +1h` moved a Thursday prompt to an hour from now (today), while the
    "+1 hour" button moved its prompt to an hour after it was due."""
    dr = await world.therapist()
    await world.enrolled_patient(dr, "river-7")
    await with_session(world, dr, "river-7")
    await world.say(dr, "/schedule river-7")
    pending = [d for d in await world.deliveries("river-7") if d.state is DeliveryState.SCHEDULED]
    later = pending[3]
    assert later.due_at - world.clock.now() > timedelta(days=1)
    await world.say(dr, "/postpone 4 +1h")
    assert (await delivery(world, later.id)).due_at == later.due_at + timedelta(hours=1)

    # The button means the same thing.
    await world.say(dr, "/schedule river-7")
    mid = world.last(dr)["message_id"]
    await world.tap(dr, mid, "6 · Postpone")
    await world.tap(dr, mid, "+1 hour")
    other = pending[5]
    assert (await delivery(world, other.id)).due_at == other.due_at + timedelta(hours=1)

    # Nothing moves earlier, or stays put and calls it postponed.
    await world.say(dr, "/schedule river-7")
    first = pending[0]
    await world.say(dr, "/postpone 1 +0m")
    assert "only moves a prompt later" in world.last(dr)["text"]
    assert (await delivery(world, first.id)).due_at == first.due_at


# --- /add -----------------------------------------------------------------------------------


async def test_add_free_text_goes_out_as_a_reflection_and_links_its_answer(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river-7")
    words = "What felt different today?\nTake your time & rest."
    await world.say(dr, f"/add river-7 +0m {words}")
    assert world.last(dr)["text"].startswith("Added for river-7: your own words, as a reflection")
    (row,) = await world.deliveries("river-7")
    assert row.prompt_key is None and row.session_id is None and row.offset == "+0m"
    assert row.kind is PromptKind.REFLECTION and row.custom_text_enc is not None
    assert world.rt.cipher.decrypt(row.custom_text_enc) == words
    async with world.rt.engine.connect() as conn:
        raw = (await conn.execute(text("SELECT custom_text_enc FROM deliveries"))).scalar_one()
    assert b"felt different" not in bytes(raw)

    await world.tick()
    prompt = world.last(pat)
    assert prompt["text"].startswith(words)
    assert prompt["reply_markup"]["force_reply"] is True
    await world.say(pat, "Lighter, somehow.", reply_to=prompt["message_id"])
    assert world.last(pat)["text"].startswith("Thank you, saved as your answer to “")
    assert (await delivery(world, row.id)).state is DeliveryState.ANSWERED
    await world.say(dr, "/replies river-7")
    listing = world.last(dr)["text"]
    assert "What felt different today?" in listing and "Lighter, somehow." in listing

    # The therapist's words are text, never markup, wherever they are shown.
    await world.say(dr, "/add river-7 +1h Is <b>this</b> & that bold?")
    await world.say(dr, "/schedule river-7")
    assert "reflection “Is <b>this</b> & that bold?” · scheduled" in world.last(dr)["text"]
    await world.run_until(world.clock.now() + timedelta(hours=1))
    assert world.last(pat)["text"].startswith("Is <b>this</b> & that bold?")


async def test_add_one_word_of_ones_own_in_quotes(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "river-7")
    await world.say(dr, "/add river-7 +0m “Breathe.”")
    assert world.last(dr)["text"].startswith("Added for river-7: your own words")
    await world.tick()
    assert world.last(pat)["text"].startswith("Breathe.")


async def test_add_prompt_key_in_local_time_out_of_quiet_hours(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "river-7")
    await world.say(dr, "/add river-7 +0d@22:15 chk-mood")
    assert world.last(dr)["text"] == (
        "Added for river-7: checkin chk-mood, at Wed 11 Mar 08:00 (America/New_York)."
    )
    (row,) = await world.deliveries("river-7")
    assert row.prompt_key == "chk-mood" and row.kind is PromptKind.CHECKIN
    assert row.custom_text_enc is None and local(row.due_at) == "Wed 11 Mar 08:00"
    assert "delivery.add" in await audit_actions(world)


async def test_add_refuses_bad_input(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "river-7")
    cases = {
        "/add river-7 soon hello there": "Bad offset 'soon'",
        "/add river-7 +1h ref-no-such-prompt": "There is no prompt “ref-no-such-prompt”",
        "/add river-7 +1h " + "x " * 500 + "y": "please keep it within 1000",
        # Seen: a mistyped key went to the patient as the question "nosuchkey".
        "/add river-7 +1h nosuchkey": "There is no prompt “nosuchkey”.",
        "/add river-7 +1h ref-one-wrd": "Did you mean ref-one-word",
        "/add river-7 +1h chk-moood": "Did you mean chk-mood",
        "/add river-7 +1h “”": "Say what to send",
        "/add river-7 +1h": "Usage: /add",
        "/add nobody +1h hello": "You have no patient called “nobody”.",
    }
    for command, expected in cases.items():
        await world.say(dr, command)
        assert expected in world.last(dr)["text"], command
    await world.say(dr, "/invite fern")
    await world.say(dr, "/add fern +1h hello")
    assert "fern hasn't finished joining yet." in world.last(dr)["text"]
    assert await world.deliveries("river-7") == []


# --- /templates, /export --------------------------------------------------------------------


async def test_templates_lists_steps(world: World) -> None:
    dr = await world.therapist()
    await world.say(dr, "/templates")
    body = world.last(dr)["text"]
    for name in ("maintenance", "short", "standard"):
        assert f"\n{name} — " in body
    assert "+0m → edu-after-session (education)" in body
    assert "+1d@09:00 → chk-sleep (checkin)" in body


async def test_export_csv_has_exactly_the_patients_rows_decrypted(world: World) -> None:
    dr = await world.therapist()
    other_dr = await world.therapist("Dr Other")
    pat = await world.enrolled_patient(dr, "river-7")
    neighbour = await world.enrolled_patient(dr, "lake")
    stranger = await world.enrolled_patient(other_dr, "willow")
    await world.say(neighbour, "neighbour secret")
    await world.say(stranger, "stranger secret")

    await with_session(world, dr, "river-7")
    await world.say(pat, "a note before any question")
    await world.run_until(world.clock.now() + timedelta(hours=10, minutes=5))
    reflection = next(
        d
        for d in await world.deliveries("river-7")
        if d.state is DeliveryState.SENT and d.kind is PromptKind.REFLECTION
    )
    await world.say(pat, "Lighter, “quoted”, and, commas", reply_to=reflection.telegram_message_id)
    await world.run_until(world.clock.now() + timedelta(hours=13))
    checkin = next(
        m for m in world.state.sent_messages(pat.id) if "How did you sleep" in m.get("text", "")
    )
    await world.tap(pat, checkin["message_id"], "Well")

    await world.say(dr, "/export river-7")
    (doc,) = world.state.sent_documents(dr.id)
    assert doc.filename == "afterglow-river-7-20260311.csv"
    rows = list(csv.DictReader(io.StringIO(doc.content.decode("utf-8"))))
    async with world.rt.sessions() as session:
        patient = await session.scalar(select(Patient).where(Patient.pseudonym == "river-7"))
        assert patient is not None
        deliveries = await session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.patient_id == patient.id)
        )
        loose = await session.scalar(
            select(func.count())
            .select_from(Reply)
            .where(Reply.patient_id == patient.id, Reply.delivery_id.is_(None))
        )
    assert len(rows) == deliveries + loose == 17 + 1  # the standard template, one note
    assert sum(r["type"] == "delivery" for r in rows) == 17
    (note,) = [r for r in rows if r["type"] == "note"]
    assert note["answer"] == "a note before any question" and note["delivery_id"] == ""
    answered = {r["prompt_key"]: r for r in rows if r["state"] == "answered"}
    assert answered["ref-one-word"]["answer"] == "Lighter, “quoted”, and, commas"
    question = world.rt.content.prompts["ref-one-word"].text
    assert answered["ref-one-word"]["question"] == question  # plain text, no markup in it
    assert answered["chk-sleep"]["answer"] == "Well"
    assert answered["chk-sleep"]["choice_value"] != ""
    first = next(r for r in rows if r["prompt_key"] == "edu-after-session")
    assert first["sent_utc"] == "2026-03-10T14:00:00+00:00"
    assert first["sent_local"] == "2026-03-10T10:00:00-04:00"
    assert first["due_local"] == "2026-03-10T10:00:00-04:00"
    assert "secret" not in doc.content.decode("utf-8")
    async with world.rt.sessions() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "export.csv"))
        assert entry is not None and entry.detail == {"rows": 18}
        assert entry.actor.startswith("therapist:") and entry.patient_id == patient.id


# --- /pause and /resume <pseudonym> ---------------------------------------------------------


async def test_pause_and_resume_report_counts_by_the_grace_rule(world: World) -> None:
    dr = await world.therapist()
    await world.enrolled_patient(dr, "river-7")
    await with_session(world, dr, "river-7")
    await world.say(dr, "/pause river-7")
    assert world.last(dr)["text"] == (
        "Paused river-7: 16 prompts held. Nothing is sent until /resume river-7."
    )
    held = [d for d in await world.deliveries("river-7") if d.state is DeliveryState.HELD]
    assert len(held) == 16
    await world.say(dr, "/pause nobody")
    assert world.last(dr)["text"] == "You have no patient called “nobody”."

    # Next day 13:00 in New York: 20:00 yesterday is too late; 09:00 and 09:30 still go.
    world.clock.advance(timedelta(hours=27))
    await world.run_until(world.clock.now() + timedelta(minutes=1))
    await world.say(dr, "/resume river-7")
    assert world.last(dr)["text"] == (
        "Resumed river-7: 2 will be sent now; 1 was too late and marked missed; "
        "13 keep their planned time."
    )
    states = [d.state for d in await world.deliveries("river-7")]
    assert states.count(DeliveryState.MISSED) == 1
    await world.say(dr, "/resume river-7")
    assert world.last(dr)["text"] == "river-7 isn't paused."
    report = await world.tick()
    assert report.sent == 2
    assert {"patient.pause", "patient.resume"} <= set(await audit_actions(world))


def test_console_button_codes_fit_and_do_not_clash() -> None:
    from bot.handlers import controls

    others = {"ca", "cd", "tz", "ck", "ok", *controls.BUTTONS}
    assert not others & set(console.BUTTONS)
    assert all(code.startswith("t") and len(code) == 2 for code in console.BUTTONS)
    assert set(console.COMMANDS) == {
        "patients",
        "schedule",
        "postpone",
        "add",
        "templates",
        "export",
    }


async def test_a_therapist_cannot_end_a_break_the_patient_chose(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "quill")
    await world.say(pat, "/pause 3")
    await world.say(dr, "/resume quill")
    assert "paused messages themselves" in world.last(dr)["text"]
    async with world.rt.sessions() as session:
        status = await session.scalar(select(Patient.status).where(Patient.pseudonym == "quill"))
    assert status is PatientStatus.PAUSED
    await world.say(pat, "/resume")
    async with world.rt.sessions() as session:
        status = await session.scalar(select(Patient.status).where(Patient.pseudonym == "quill"))
    assert status is PatientStatus.ACTIVE
