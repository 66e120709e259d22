"""Which question a patient's text is filed under, through the running bot (issue 13).

Seen before the fix: any text within 3 minutes of the previous one joined it, even across a new
question, and a "7" typed to an open mood check-in became the answer to an older reflection."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.db.models import Alert, Delivery, DeliveryState, Reply, ReplyKind
from bot.domain.linking import JOIN_CAP
from bot.services.replies import choice_of
from tests.integration.test_safety_flow import HELP_MARK
from tests.integration.world import World


async def _replies(world: World) -> list[Reply]:
    async with world.rt.sessions() as session:
        return list(await session.scalars(select(Reply).order_by(Reply.id)))


async def _delivery(world: World, delivery_id: int) -> Delivery:
    async with world.rt.sessions() as session:
        row = await session.get(Delivery, delivery_id)
        assert row is not None
        return row


def _text(world: World, reply: Reply) -> str:
    assert reply.body_enc is not None
    return world.rt.cipher.decrypt(reply.body_enc)


async def _ask(world: World, therapist: object, pseudonym: str, what: str) -> Delivery:
    """The therapist adds a prompt for now and the dispatcher sends it."""
    await world.say(therapist, f"/add {pseudonym} +0m {what}")  # type: ignore[arg-type]
    await world.tick()
    rows = [d for d in await world.deliveries(pseudonym) if d.state is DeliveryState.SENT]
    return max(rows, key=lambda d: (d.sent_at, d.id))


async def test_a_new_question_closes_the_joining_window_of_a_note(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "dup")
    await world.say(pat, "Feeling a bit wobbly this morning")
    assert world.last(pat)["text"] == "Thank you, I've kept this as a note."

    world.clock.advance(timedelta(seconds=40))
    question = await _ask(world, dr, "dup", "How are you carrying the session today?")
    world.clock.advance(timedelta(seconds=40))
    await world.say(pat, "Wobbly")

    assert world.last(pat)["text"] == (
        "Thank you, saved as your answer to “How are you carrying the session today?”"
    )
    note, answer = await _replies(world)
    assert (note.kind, note.delivery_id, _text(world, note)) == (
        ReplyKind.NOTE,
        None,
        "Feeling a bit wobbly this morning",
    )
    assert (answer.delivery_id, _text(world, answer)) == (question.id, "Wobbly")
    assert (await _delivery(world, question.id)).state is DeliveryState.ANSWERED


async def test_answers_to_two_questions_in_a_row_stay_apart(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "dup")
    first = await _ask(world, dr, "dup", "What stood out yesterday?")
    await world.say(pat, "The light in the room")
    world.clock.advance(timedelta(seconds=30))
    second = await _ask(world, dr, "dup", "What would you like to keep?")
    world.clock.advance(timedelta(seconds=30))
    await world.say(pat, "The calm")
    world.clock.advance(timedelta(seconds=30))
    await world.say(pat, "and the patience")
    assert world.last(pat)["text"] == "Added to your answer to “What would you like to keep?”"

    one, two = await _replies(world)
    assert (one.delivery_id, _text(world, one)) == (first.id, "The light in the room")
    assert (two.delivery_id, _text(world, two)) == (second.id, "The calm\nand the patience")
    for row in (first, second):
        assert (await _delivery(world, row.id)).state is DeliveryState.ANSWERED


async def test_the_joining_window_does_not_slide_without_bound(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "dup")
    await world.say(pat, "one")
    step = timedelta(minutes=2)  # each pause well inside the 3 minutes
    for n in range(1, JOIN_CAP // step + 2):
        world.clock.advance(step)
        await world.say(pat, f"more {n}")
    first, second = await _replies(world)
    assert _text(world, first).splitlines()[-1] == f"more {JOIN_CAP // step}"
    assert _text(world, second) == f"more {JOIN_CAP // step + 1}"
    assert world.last(pat)["text"] == "Thank you, I've kept this as a note."


async def test_a_typed_number_answers_the_newest_open_check_in(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "dup")
    reflection = await _ask(world, dr, "dup", "What felt different today?")
    world.clock.advance(timedelta(hours=2))
    checkin = await _ask(world, dr, "dup", "chk-mood")
    world.clock.advance(timedelta(minutes=5))

    await world.say(pat, "7")

    assert world.last(pat)["text"].startswith(
        "Thank you, saved 7 as your answer to “How is your mood right now"
    )
    (reply,) = await _replies(world)
    assert (reply.kind, reply.delivery_id, choice_of(reply, world.rt.cipher)) == (
        ReplyKind.CHOICE,
        checkin.id,
        "7",
    )
    assert (await _delivery(world, checkin.id)).state is DeliveryState.ANSWERED
    assert (await _delivery(world, reflection.id)).state is DeliveryState.SENT
    edited = next(
        m
        for m in world.state.sent_messages(pat.id)
        if m["message_id"] == checkin.telegram_message_id
    )
    assert "You answered: 7" in edited["text"]
    assert not edited.get("reply_markup", {}).get("inline_keyboard")

    # Words, not a number, still answer the open reflection.
    await world.say(pat, "Calmer than I expected")
    assert world.last(pat)["text"] == (
        "Thank you, saved as your answer to “What felt different today?”"
    )
    assert (await _delivery(world, reflection.id)).state is DeliveryState.ANSWERED


async def test_a_typed_label_answers_a_choice_check_in(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "dup")
    checkin = await _ask(world, dr, "dup", "chk-sleep")
    await world.say(pat, "Barely at all.")
    (reply,) = await _replies(world)
    assert (reply.delivery_id, choice_of(reply, world.rt.cipher)) == (checkin.id, "barely")
    assert "Barely at all" in world.last(pat)["text"]


async def test_a_newer_reflection_takes_a_number_as_its_answer(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "dup")
    checkin = await _ask(world, dr, "dup", "chk-mood")
    world.clock.advance(timedelta(minutes=5))
    reflection = await _ask(world, dr, "dup", "How many hours did you sleep?")
    await world.say(pat, "7")
    (reply,) = await _replies(world)
    assert (reply.kind, reply.delivery_id) == (ReplyKind.TEXT, reflection.id)
    assert (await _delivery(world, checkin.id)).state is DeliveryState.SENT

    # Replying to the check-in itself still answers it.
    world.clock.advance(timedelta(minutes=5))
    await world.say(pat, "6", reply_to=checkin.telegram_message_id)
    assert (await _delivery(world, checkin.id)).state is DeliveryState.ANSWERED


async def test_a_number_outside_the_scale_is_refused_and_changes_nothing(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "dup")
    checkin = await _ask(world, dr, "dup", "chk-mood")
    await world.say(pat, "12")
    assert "from 0 to 10" in world.last(pat)["text"]
    assert await _replies(world) == []
    assert (await _delivery(world, checkin.id)).state is DeliveryState.SENT


async def test_a_typed_lowest_mood_alerts_like_a_tap(world: World) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "dup")
    await _ask(world, dr, "dup", "chk-mood")
    await world.say(pat, "0")
    async with world.rt.sessions() as session:
        (alert,) = list(await session.scalars(select(Alert)))
    assert alert.reply_id == (await _replies(world))[0].id
    assert "Check-in risk flag" in world.last(dr)["text"]
    assert sum(HELP_MARK in t for t in world.texts(pat)) == 1
