"""A handler that fails: the person gets a kind sentence, never a traceback, and nothing the
failed transaction touched is left half-written; their next message works again."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from bot.db.models import Reply
from bot.handlers import render
from bot.services import replies
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
