"""`replies.record_text` against a real database (SQLite and PostgreSQL): which delivery a free-text
message answers, when messages join into one reply, and how few statements that takes.

The rules themselves are `bot.domain.linking` (tests/unit/test_linking.py); these tests check
that the service feeds them the right rows: the replied-to prompt or its reminder, the patient's
newest open reflection, and the patient's last reply — never another patient's."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import identity
from bot.db.crypto import Cipher
from bot.db.engine import SessionFactory, make_session_factory
from bot.db.models import (
    Delivery,
    DeliveryState,
    Patient,
    PatientStatus,
    PromptKind,
    Reply,
    ReplyKind,
    Therapist,
)
from bot.domain.content import load_content
from bot.domain.linking import FALLBACK_WINDOW, JOIN_WINDOW, MAX_JOINED_CHARS
from bot.services import replies
from bot.services.replies import Recorded, TextOutcome

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
WINDOW = timedelta(hours=72)
CIPHER = Cipher([Fernet.generate_key()])
CONTENT = load_content()
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
_message_ids = itertools.count(9000)


@pytest.fixture
def db(engine: AsyncEngine) -> SessionFactory:
    return make_session_factory(engine)


async def clinic(db: SessionFactory) -> tuple[int, int]:
    """Two active patients of one therapist."""
    async with db() as s, s.begin():
        therapist = Therapist(name="Dr Kim", telegram_user_id=1001, created_at=NOW)
        s.add(therapist)
        await s.flush()
        patients = [
            Patient(
                therapist_id=therapist.id,
                pseudonym=name,
                **identity.columns(CIPHER, user_id),
                status=PatientStatus.ACTIVE,
                timezone="Europe/Berlin",
                created_at=NOW,
            )
            for name, user_id in (("river", 2001), ("lake", 2002))
        ]
        s.add_all(patients)
        await s.flush()
        return patients[0].id, patients[1].id


async def prompt(
    db: SessionFactory,
    patient_id: int,
    age: timedelta,
    *,
    kind: PromptKind = PromptKind.REFLECTION,
    state: DeliveryState = DeliveryState.SENT,
    message_id: int | None = None,
    nudge_message_id: int | None = None,
    closed: bool = False,
) -> int:
    sent_at = NOW - age
    async with db() as s, s.begin():
        row = Delivery(
            patient_id=patient_id,
            kind=kind,
            prompt_key="ref-what-stood-out",
            state=state,
            due_at=sent_at,
            planned_at=sent_at,
            sent_at=sent_at,
            telegram_message_id=next(_message_ids) if message_id is None else message_id,
            nudge_message_id=nudge_message_id,
            answered_at=sent_at + SECOND if state is DeliveryState.ANSWERED else None,
            closed_at=sent_at + HOUR if closed else None,
            updated_at=sent_at,
        )
        s.add(row)
        await s.flush()
        return row.id


async def message_of(db: SessionFactory, delivery_id: int) -> int:
    async with db() as s:
        value = await s.scalar(
            select(Delivery.telegram_message_id).where(Delivery.id == delivery_id)
        )
    assert value is not None
    return value


def filed(outcome: TextOutcome) -> tuple[Recorded, int, int | None]:
    return outcome.recorded, outcome.reply_id, outcome.delivery_id


async def say(
    db: SessionFactory,
    patient_id: int,
    text: str,
    *,
    reply_to: int | None = None,
    at: datetime = NOW,
    flagged: bool = False,
) -> TextOutcome:
    async with db() as s, s.begin():
        patient = await s.get(Patient, patient_id)
        assert patient is not None
        return await replies.record_text(
            s,
            patient=patient,
            text=text,
            message_id=next(_message_ids),
            reply_to_message_id=reply_to,
            update_id=None,
            cipher=CIPHER,
            content=CONTENT,
            answer_window=WINDOW,
            now=at,
            flagged=flagged,
        )


async def reply_rows(db: SessionFactory, patient_id: int) -> list[Reply]:
    async with db() as s:
        rows = await s.scalars(
            select(Reply).where(Reply.patient_id == patient_id).order_by(Reply.id)
        )
        return list(rows)


async def delivery(db: SessionFactory, delivery_id: int) -> Delivery:
    async with db() as s:
        row = await s.get(Delivery, delivery_id)
    assert row is not None
    return row


# Which delivery a message answers.


async def test_reply_to_an_open_reflection_answers_it(db: SessionFactory) -> None:
    river, _ = await clinic(db)
    older = await prompt(db, river, 30 * HOUR)
    await prompt(db, river, 2 * HOUR)  # newer and open, but the patient chose the older one
    outcome = await say(db, river, "The river.", reply_to=await message_of(db, older))

    assert outcome.recorded is Recorded.ANSWER and outcome.delivery_id == older
    [row] = await reply_rows(db, river)
    assert (row.id, row.kind, row.delivery_id) == (outcome.reply_id, ReplyKind.TEXT, older)
    assert CIPHER.decrypt(row.body_enc or b"") == "The river."
    assert (row.received_at, row.updated_at, row.flagged) == (NOW, NOW, False)
    answered = await delivery(db, older)
    assert answered.state is DeliveryState.ANSWERED
    assert answered.answered_at == answered.updated_at == NOW


async def test_reply_to_the_reminder_answers_its_reflection(db: SessionFactory) -> None:
    river, _ = await clinic(db)
    target = await prompt(db, river, 26 * HOUR, nudge_message_id=77)
    await prompt(db, river, HOUR)
    outcome = await say(db, river, "Late, sorry.", reply_to=77)
    assert (outcome.recorded, outcome.delivery_id) == (Recorded.ANSWER, target)
    assert (await delivery(db, target)).state is DeliveryState.ANSWERED


async def test_reply_to_beyond_the_fallback_window_but_in_the_answer_window(
    db: SessionFactory,
) -> None:
    river, _ = await clinic(db)
    old = await prompt(db, river, FALLBACK_WINDOW + 10 * HOUR)
    outcome = await say(db, river, "Still thinking of it.", reply_to=await message_of(db, old))
    assert outcome.delivery_id == old


async def test_reply_to_an_answered_reflection_adds_to_it_and_keeps_its_state(
    db: SessionFactory,
) -> None:
    river, _ = await clinic(db)
    done = await prompt(db, river, 5 * HOUR, state=DeliveryState.ANSWERED)
    before = await delivery(db, done)
    outcome = await say(db, river, "One more thing.", reply_to=await message_of(db, done))
    assert (outcome.recorded, outcome.delivery_id) == (Recorded.ANSWER, done)
    after = await delivery(db, done)
    assert after.state is DeliveryState.ANSWERED
    assert (after.answered_at, after.updated_at) == (before.answered_at, before.updated_at)


@pytest.mark.parametrize(
    "replied",
    [
        pytest.param({"closed": True}, id="closed"),
        pytest.param({"kind": PromptKind.EDUCATION}, id="education"),
        pytest.param({"age": WINDOW + SECOND}, id="past-answer-window"),
    ],
)
async def test_reply_to_a_question_that_is_not_open_falls_back_to_the_latest(
    db: SessionFactory, replied: dict[str, Any]
) -> None:
    river, _ = await clinic(db)
    fields = {"age": 3 * HOUR, **replied}
    not_open = await prompt(db, river, **fields)
    latest = await prompt(db, river, 2 * HOUR)
    outcome = await say(db, river, "Hm.", reply_to=await message_of(db, not_open))
    assert outcome.delivery_id == latest
    assert (await delivery(db, not_open)).state is DeliveryState.SENT
    assert (await delivery(db, latest)).state is DeliveryState.ANSWERED


async def test_reply_to_an_unknown_message_falls_back_to_the_latest(db: SessionFactory) -> None:
    river, _ = await clinic(db)
    latest = await prompt(db, river, HOUR)
    assert (await say(db, river, "Hm.", reply_to=123456)).delivery_id == latest


async def test_another_patients_message_is_never_matched(db: SessionFactory) -> None:
    river, lake = await clinic(db)
    theirs = await prompt(db, lake, HOUR)
    outcome = await say(db, river, "Mine.", reply_to=await message_of(db, theirs))
    assert (outcome.recorded, outcome.delivery_id) == (Recorded.NOTE, None)
    assert (await delivery(db, theirs)).state is DeliveryState.SENT


async def test_without_reply_to_the_newest_open_reflection_is_answered(
    db: SessionFactory,
) -> None:
    river, lake = await clinic(db)
    await prompt(db, river, 20 * HOUR)
    newest = await prompt(db, river, 3 * HOUR)
    tie = await prompt(db, river, 3 * HOUR)  # same sent_at: the later row wins
    await prompt(db, river, HOUR, kind=PromptKind.EDUCATION)
    await prompt(db, river, HOUR / 2, state=DeliveryState.ANSWERED)
    await prompt(db, river, HOUR / 4, closed=True)
    await prompt(db, lake, HOUR / 8)
    assert newest < tie
    outcome = await say(db, river, "Calmer.")
    assert (outcome.recorded, outcome.delivery_id) == (Recorded.ANSWER, tie)


@pytest.mark.parametrize(
    ("age", "linked"), [(FALLBACK_WINDOW, True), (FALLBACK_WINDOW + SECOND, False)]
)
async def test_fallback_only_within_48_hours(
    db: SessionFactory, age: timedelta, linked: bool
) -> None:
    river, _ = await clinic(db)
    reflection = await prompt(db, river, age)
    outcome = await say(db, river, "Quiet day.")
    assert outcome.recorded is (Recorded.ANSWER if linked else Recorded.NOTE)
    assert outcome.delivery_id == (reflection if linked else None)
    [row] = await reply_rows(db, river)
    assert row.kind is (ReplyKind.TEXT if linked else ReplyKind.NOTE)
    assert row.delivery_id == outcome.delivery_id
    state = (await delivery(db, reflection)).state
    assert state is (DeliveryState.ANSWERED if linked else DeliveryState.SENT)


async def test_nothing_open_is_a_note(db: SessionFactory) -> None:
    river, _ = await clinic(db)
    outcome = await say(db, river, "Just a thought.", flagged=True)
    assert (outcome.recorded, outcome.delivery_id) == (Recorded.NOTE, None)
    [row] = await reply_rows(db, river)
    assert (row.id, row.kind, row.delivery_id, row.flagged) == (
        outcome.reply_id,
        ReplyKind.NOTE,
        None,
        True,
    )


# When messages join into one reply.


async def test_quick_messages_join_into_one_answer(db: SessionFactory) -> None:
    river, _ = await clinic(db)
    reflection = await prompt(db, river, HOUR)
    first = await say(db, river, "I slept well.", reply_to=await message_of(db, reflection))
    later = NOW + JOIN_WINDOW
    second = await say(db, river, "And walked.", at=later, flagged=True)
    third = await say(db, river, "Then rested.", at=later + JOIN_WINDOW)

    expected = (Recorded.JOINED, first.reply_id, reflection)
    assert filed(second) == filed(third) == expected
    assert second.question is not None and "stands out" in second.question
    [row] = await reply_rows(db, river)
    assert CIPHER.decrypt(row.body_enc or b"") == "I slept well.\nAnd walked.\nThen rested."
    assert (row.received_at, row.updated_at) == (NOW, later + JOIN_WINDOW)
    assert row.flagged  # a flagged piece flags the whole answer, and it stays flagged


async def test_a_pause_longer_than_the_join_window_starts_a_new_reply(
    db: SessionFactory,
) -> None:
    river, _ = await clinic(db)
    first = await say(db, river, "A note.")
    second = await say(db, river, "Another.", at=NOW + JOIN_WINDOW + SECOND)
    assert first.recorded is second.recorded is Recorded.NOTE
    assert first.reply_id != second.reply_id
    assert len(await reply_rows(db, river)) == 2


async def test_notes_join_too(db: SessionFactory) -> None:
    river, _ = await clinic(db)
    first = await say(db, river, "A note.")
    second = await say(db, river, "More.", at=NOW + SECOND)
    assert second == TextOutcome(Recorded.JOINED, first.reply_id, None)


async def test_replying_to_another_question_does_not_join(db: SessionFactory) -> None:
    river, _ = await clinic(db)
    one = await prompt(db, river, 2 * HOUR)
    two = await prompt(db, river, HOUR)
    first = await say(db, river, "For one.", reply_to=await message_of(db, one))
    second = await say(db, river, "For two.", reply_to=await message_of(db, two), at=NOW + SECOND)
    same = await say(
        db, river, "Two, more.", reply_to=await message_of(db, two), at=NOW + 2 * SECOND
    )
    assert (first.delivery_id, second.delivery_id) == (one, two)
    assert second.recorded is Recorded.ANSWER and second.reply_id != first.reply_id
    assert filed(same) == (Recorded.JOINED, second.reply_id, two)


async def test_a_check_in_answer_is_never_joined(db: SessionFactory) -> None:
    river, _ = await clinic(db)
    checkin = await prompt(db, river, HOUR, kind=PromptKind.CHECKIN)
    async with db() as s, s.begin():
        s.add(
            Reply(
                patient_id=river,
                delivery_id=checkin,
                kind=ReplyKind.CHOICE,
                choice_value_enc=CIPHER.encrypt("3"),
                received_at=NOW - SECOND,
                updated_at=NOW - SECOND,
            )
        )
    outcome = await say(db, river, "Words after the tap.")
    assert outcome.recorded is Recorded.NOTE
    assert len(await reply_rows(db, river)) == 2


async def test_joining_stops_at_the_size_cap(db: SessionFactory) -> None:
    river, _ = await clinic(db)
    first = await say(db, river, "x" * (MAX_JOINED_CHARS - 10))
    joined = await say(db, river, "y" * 9, at=NOW + SECOND)  # 9 + the newline: exactly at cap
    apart = await say(db, river, "z", at=NOW + 2 * SECOND)
    assert joined == TextOutcome(Recorded.JOINED, first.reply_id, None)
    assert apart.recorded is Recorded.NOTE and apart.reply_id != first.reply_id


async def test_the_reply_updated_last_is_the_one_joined(db: SessionFactory) -> None:
    river, lake = await clinic(db)
    async with db() as s, s.begin():
        older = Reply(
            patient_id=river,
            kind=ReplyKind.NOTE,
            body_enc=CIPHER.encrypt("older, but touched last"),
            received_at=NOW - 5 * timedelta(minutes=1),  # within the cap from its first message
            updated_at=NOW - SECOND,
        )
        newer = Reply(
            patient_id=river,
            kind=ReplyKind.NOTE,
            body_enc=CIPHER.encrypt("newer"),
            received_at=NOW - 2 * SECOND,
            updated_at=NOW - 2 * SECOND,
        )
        theirs = Reply(
            patient_id=lake,
            kind=ReplyKind.NOTE,
            body_enc=CIPHER.encrypt("someone else's"),
            received_at=NOW,
            updated_at=NOW,
        )
        s.add_all([older, newer, theirs])
        await s.flush()
        older_id = older.id
    outcome = await say(db, river, "joined", at=NOW)
    assert outcome == TextOutcome(Recorded.JOINED, older_id, None)
    rows = {row.id: row for row in await reply_rows(db, river)}
    assert CIPHER.decrypt(rows[older_id].body_enc or b"") == "older, but touched last\njoined"


# Cost.


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]).split(None, 1)[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_an_answer_is_one_read_and_two_writes(
    engine: AsyncEngine, db: SessionFactory
) -> None:
    river, _ = await clinic(db)
    reflection = await prompt(db, river, HOUR)
    message_id = await message_of(db, reflection)
    async with db() as s, s.begin():
        patient = await s.get(Patient, river)
        assert patient is not None
        with statements(engine) as seen:
            await replies.record_text(
                s,
                patient=patient,
                text="Counted.",
                message_id=1,
                reply_to_message_id=message_id,
                update_id=None,
                cipher=CIPHER,
                content=CONTENT,
                answer_window=WINDOW,
                now=NOW,
            )
    assert sorted(seen) == ["INSERT", "SELECT", "UPDATE"]


async def test_a_joined_message_is_one_read_and_one_write(
    engine: AsyncEngine, db: SessionFactory
) -> None:
    river, _ = await clinic(db)
    await say(db, river, "First.")
    async with db() as s, s.begin():
        patient = await s.get(Patient, river)
        assert patient is not None
        with statements(engine) as seen:
            outcome = await replies.record_text(
                s,
                patient=patient,
                text="Second.",
                message_id=2,
                reply_to_message_id=None,
                update_id=None,
                cipher=CIPHER,
                content=CONTENT,
                answer_window=WINDOW,
                now=NOW + SECOND,
            )
    assert outcome.recorded is Recorded.JOINED
    assert seen == ["SELECT", "UPDATE"]
