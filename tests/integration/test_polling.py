"""Polling confirms an update to Telegram only once it is handled (bot/telegram/polling.py): a crash
while a message is being handled does not lose it, and getUpdates failures are retried."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from telegram import Update
from telegram.error import NetworkError

from bot.db.models import Reply
from bot.services import replies
from bot.telegram.polling import Poller
from tests.integration.world import World

WAIT = 10.0  # seconds; generous for a busy CI host, never reached when things work


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def reply_count(world: World) -> int:
    async with world.rt.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Reply)) or 0)


async def test_updates_are_handled_then_confirmed(world: World) -> None:
    dr = await world.therapist()
    poller = Poller(world.app, timeout=1)
    await poller.start()
    try:
        await world.state.send_text(dr, "/help")
        await until(lambda: bool(world.state.sent_messages(dr.id)), "no answer to /help")
        await until(lambda: world.state.pending_updates == [], "the update was not confirmed")
    finally:
        await poller.stop()
    assert poller.handled == 1


async def test_an_update_a_crash_interrupts_is_delivered_again_and_handled_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    dr = await world.therapist()
    pat = await world.enrolled_patient(dr, "ash")
    real = replies.record_text
    entered = asyncio.Event()

    async def hangs(*args: object, **kwargs: object) -> object:
        entered.set()
        await asyncio.Event().wait()  # the process dies here
        raise AssertionError("unreachable")

    monkeypatch.setattr(replies, "record_text", hangs)
    first = Poller(world.app, timeout=1)
    await first.start()
    raw = await world.state.send_text(pat, "I slept well for the first time in weeks")
    await asyncio.wait_for(entered.wait(), WAIT)
    # kill -9: polling stops and the handler dies mid-way, nothing of it committed.
    await first.stop()
    for task in asyncio.all_tasks():
        if task.get_name() == f"update-{raw['update_id']}":
            task.cancel()
    await asyncio.sleep(0)
    assert [u["update_id"] for u in world.state.pending_updates] == [raw["update_id"]]
    assert await reply_count(world) == 0

    monkeypatch.setattr(replies, "record_text", real)
    second = Poller(world.app, timeout=1)  # a new process: it knows nothing of the first
    await second.start()
    try:
        await until(lambda: second.handled == 1, "the update did not come again")
        await until(lambda: world.state.pending_updates == [], "the update was not confirmed")
    finally:
        await second.stop()
    assert await reply_count(world) == 1
    # The repeat of an update whose effects did commit changes nothing (update-id guard).
    await world.app.process_update(Update.de_json(raw, world.app.bot))
    assert await reply_count(world) == 1


async def test_get_updates_failures_are_retried(world: World) -> None:
    dr = await world.therapist()
    world.state.fail("getUpdates", exception=NetworkError("connection reset"), times=2)
    poller = Poller(world.app, timeout=1, retry_first=0.01)
    await poller.start()
    try:
        await world.state.send_text(dr, "/help")
        await until(lambda: bool(world.state.sent_messages(dr.id)), "polling gave up")
    finally:
        await poller.stop()
    assert poller.running is False
