"""Updates through PTB's own update loop (`update_queue`, as polling and the webhook feed it) with
the production wiring: PerChatUpdateProcessor and PacedRateLimiter. Patient A's handling hangs
on its first acknowledgement; a crisis message from patient B must still be answered, and A's
three quick messages must still be handled one at a time, in order, once A is let go."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from telegram import Update
from telegram._utils.types import ODVInput
from telegram.request import BaseRequest, RequestData

from bot.app import PTBApp, build_application
from bot.db.models import Patient, ProcessedUpdate, Reply
from bot.emulator import BotApiState
from bot.emulator.request import FakeBotApi
from bot.telegram.ratelimit import PacedRateLimiter
from bot.telegram.updates import PerChatUpdateProcessor
from bot.views import render
from tests.integration.world import World

HELP_MARK = "you do not have to face this alone"  # from prompts/safety/resources.yaml
CRISIS = "honestly everyone would be better off without me"
WAIT = 15.0  # seconds; generous for a busy CI host, never reached when things work


class HeldChat(FakeBotApi):
    """The fake Bot API, except that messages to one chat hang until `release` is set."""

    def __init__(self, state: BotApiState, chat_id: int) -> None:
        super().__init__(state)
        self.chat_id = chat_id
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.asked_at: list[float] = []  # monotonic time of each message to that chat

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        params = request_data.parameters if request_data is not None else {}
        if url.endswith("/sendMessage") and str(params.get("chat_id")) == str(self.chat_id):
            self.asked_at.append(time.monotonic())
            self.holding.set()
            await self.release.wait()
        return await super().do_request(
            url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
        )


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def recorded(world: World, patient_user_id: int) -> list[str]:
    async with world.rt.sessions() as session:
        rows = await session.scalars(
            select(Reply)
            .join(Patient, Patient.id == Reply.patient_id)
            .where(Patient.telegram_index.in_(world.rt.cipher.indexes(patient_user_id)))
            .order_by(Reply.id)
        )
        return [world.rt.cipher.decrypt(row.body_enc) for row in rows if row.body_enc]


async def processed(world: World, update_ids: list[int]) -> set[int]:
    async with world.rt.sessions() as session:
        rows = await session.scalars(
            select(ProcessedUpdate.update_id).where(ProcessedUpdate.update_id.in_(update_ids))
        )
        return set(rows)


async def test_crisis_is_answered_while_another_chat_hangs_and_that_chat_stays_in_order(
    world: World,
) -> None:
    dr = await world.therapist()
    ash = await world.enrolled_patient(dr, "ash")
    birch = await world.enrolled_patient(dr, "birch")
    before = {person.id: len(world.state.sent_messages(person.id)) for person in (ash, birch, dr)}

    api = HeldChat(world.state, ash.id)
    app: PTBApp = build_application(world.rt, request=api, dispatch_job=False)
    assert isinstance(app.bot.rate_limiter, PacedRateLimiter)  # the production limiter
    await app.initialize()
    await app.start()
    try:
        raws: list[dict[str, Any]] = []
        for text in ("one", "two", "three"):  # one answer typed in three quick pieces
            raws.append(await world.state.send_text(ash, text))
        raws.append(await world.state.send_text(birch, CRISIS))
        world.state.drain_updates()
        ash_ids = [raw["update_id"] for raw in raws[:3]]
        for raw in raws:  # as one getUpdates batch, in order: Ash's three, then Birch's crisis
            await app.update_queue.put(Update.de_json(raw, app.bot))

        def helped() -> bool:
            return any(HELP_MARK in m.get("text", "") for m in world.state.sent_messages(birch.id))

        await until(api.holding.is_set, "Ash's first acknowledgement was never sent")
        await until(helped, "Birch's crisis resources were not sent while Ash's chat hangs")
        await until(
            lambda: len(world.state.sent_messages(dr.id)) > before[dr.id],
            "the therapist was not alerted while Ash's chat hangs",
        )
        assert not api.release.is_set()
        # Ash: the first message is recorded and its acknowledgement hangs; the other two wait
        # for it rather than running beside it.
        assert await recorded(world, ash.id) == ["one"]
        assert await processed(world, ash_ids) == {ash_ids[0]}
        assert len(world.state.sent_messages(ash.id)) == before[ash.id]

        api.release.set()
        async with asyncio.timeout(WAIT):
            await app.update_queue.join()  # every update handled, none lost
    finally:
        api.release.set()
        await app.stop()
        await app.shutdown()

    assert await recorded(world, ash.id) == ["one\ntwo\nthree"]
    assert await processed(world, ash_ids) == set(ash_ids)
    acks = [m["text"] for m in world.state.sent_messages(ash.id)[before[ash.id] :]]
    assert acks == [render.ACK_NOTE, render.ACK_JOINED_NOTE, render.ACK_JOINED_NOTE]
    # Acknowledgements kept their chat's 1 message/s (interactive lane, not priority).
    gaps = [b - a for a, b in zip(api.asked_at, api.asked_at[1:], strict=False)]
    assert len(gaps) == 2 and min(gaps) >= 0.9, gaps


async def test_many_chats_at_once_record_every_message_once_and_in_order(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Concurrent handler transactions on one database (SQLite: one writer at a time, the rest
    wait on busy_timeout): 12 patients answering in three pieces each, all in one batch."""
    dr = await world.therapist()
    people = [await world.enrolled_patient(dr, f"p{i}") for i in range(12)]
    app: PTBApp = build_application(
        world.rt, request=FakeBotApi(world.state), rate_limit=False, dispatch_job=False
    )
    await app.initialize()
    await app.start()
    try:
        raws = [
            await world.state.send_text(person, f"{person.id} part {part}")
            for part in range(3)
            for person in people
        ]
        world.state.drain_updates()
        with caplog.at_level(logging.INFO):
            for raw in raws:
                await app.update_queue.put(Update.de_json(raw, app.bot))
            async with asyncio.timeout(WAIT):
                await app.update_queue.join()
    finally:
        await app.stop()
        await app.shutdown()

    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    processor = app.update_processor
    assert isinstance(processor, PerChatUpdateProcessor)
    assert processor.peak > 1  # they did overlap
    assert await processed(world, [raw["update_id"] for raw in raws]) == {
        raw["update_id"] for raw in raws
    }
    for person in people:
        assert await recorded(world, person.id) == [
            "\n".join(f"{person.id} part {part}" for part in range(3))
        ]
        acks = [m["text"] for m in world.state.sent_messages(person.id)[-3:]]
        assert acks == [render.ACK_NOTE, render.ACK_JOINED_NOTE, render.ACK_JOINED_NOTE]
