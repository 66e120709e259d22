"""A handler that fails: the person gets a kind sentence, never a traceback, and nothing the
failed transaction touched is left half-written; their next message works again."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bot.db.crypto import Cipher
from bot.db.models import Patient, Reply, ReplyKind
from bot.services import replies
from bot.views import render
from tests.integration.world import World


async def reply_count(world: World) -> int:
    async with world.rt.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Reply)) or 0)


async def test_a_failing_handler_answers_kindly_and_leaks_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "oak")
    real = replies.record_text

    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("storage exploded")

    monkeypatch.setattr(replies, "record_text", broken)
    secret = "the thing I never told anyone about my brother"
    with caplog.at_level(logging.DEBUG):
        await world.say(pat, secret)
    assert world.last(pat)["text"] == render.SOMETHING_WRONG
    assert all("storage exploded" not in text for text in world.texts(pat))
    assert secret not in caplog.text  # the failure is logged, the message is not
    assert "RuntimeError" in caplog.text
    assert await reply_count(world) == 0

    monkeypatch.setattr(replies, "record_text", real)
    await world.say(pat, "trying again")
    assert world.last(pat)["text"] != render.SOMETHING_WRONG
    assert await reply_count(world) == 1


async def _a_reply_under_a_lost_key(world: World, pseudonym: str) -> None:
    """A reply stored with a key the clinic no longer has (the check value still opens)."""
    lost = Cipher([Fernet.generate_key()])
    async with world.rt.sessions() as session, session.begin():
        patient = await session.scalar(select(Patient).where(Patient.pseudonym == pseudonym))
        assert patient is not None
        now = world.clock.now()
        session.add(
            Reply(
                patient_id=patient.id,
                kind=ReplyKind.NOTE,
                body_enc=lost.encrypt("written under the old key"),
                received_at=now,
                updated_at=now,
            )
        )


async def test_read_only_commands_say_what_failed_and_texts_are_still_kept(
    world: World,
) -> None:
    """Seen with a wrong key: every patient text, /mydata, /replies and /export answered
    "something went wrong… may not have been saved"."""
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "oak")
    await _a_reply_under_a_lost_key(world, "oak")

    # The unreadable note is never joined: the new text is kept on its own.
    await world.say(pat, "a new thought")
    assert world.last(pat)["text"] == render.ACK_NOTE
    assert await reply_count(world) == 2

    await world.say(dr, "/replies oak")
    assert world.last(dr)["text"] == render.READ_FAILED_KEYS
    await world.say(pat, "/mydata")
    assert world.last(pat)["text"] == render.READ_FAILED_KEYS
    assert "may not have been saved" not in " ".join(world.texts(dr) + world.texts(pat))
