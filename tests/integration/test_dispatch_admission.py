"""The dispatcher behind the real PacedRateLimiter: a row is marked `sending` only once the
limiter has admitted its request, so a row still waiting for its turn is `scheduled` — a crash
cannot turn it into `unknown`, and a skip, a pause or a shutdown that comes while it waits
still wins.

The limiter runs on real time here, fast (50 sends/s, no per-chat spacing needed: one prompt per
chat), so a tick of a dozen prompts takes a fraction of a second.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from telegram.ext import ExtBot

from bot.db.models import Delivery, DeliveryState
from bot.dispatch import dispatcher as dispatcher_module
from bot.dispatch.dispatcher import Dispatcher
from bot.emulator.request import FakeBotApi
from bot.telegram.ratelimit import PacedRateLimiter
from tests.integration.test_dispatch_claims import FIRST_CHAT, count, seed
from tests.integration.world import World

RATE = 50.0  # slots 20 ms apart: a burst of 12 is queued for ~0.25 s


class WatchedLimiter(PacedRateLimiter):
    """Calls `on_enter(chat)` as each message request arrives, before it queues."""

    def __init__(self, on_enter: Callable[[int], Awaitable[None]] | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_enter = on_enter

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> Any:
        if self.on_enter is not None and endpoint == "sendMessage":
            await self.on_enter(chat_of(data))
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )


@asynccontextmanager
async def paced(
    world: World, on_enter: Callable[[int], Awaitable[None]] | None = None
) -> AsyncIterator[Dispatcher]:
    """A second dispatcher on the same runtime whose bot sends through a PacedRateLimiter."""
    bot: ExtBot[dict[str, Any]] = ExtBot(
        world.state.token,
        request=FakeBotApi(world.state),
        rate_limiter=WatchedLimiter(on_enter, overall_rate=RATE),
    )
    await bot.initialize()
    try:
        yield Dispatcher(world.rt, bot, world.app.bot_data["codec"])
    finally:
        await bot.shutdown()


async def sending_chats(world: World, ids: list[int]) -> set[int]:
    """Chats whose delivery is committed as `sending` (a fresh connection sees only commits);
    `ids` as `seed` returned them, the delivery of chat FIRST_CHAT + i at index i."""
    chats = {delivery_id: FIRST_CHAT + i for i, delivery_id in enumerate(ids)}
    async with world.rt.engine.connect() as conn:
        rows = await conn.execute(
            select(Delivery.id).where(Delivery.state == DeliveryState.SENDING)
        )
        return {chats[delivery_id] for delivery_id in rows.scalars()}


def chat_of(params: Any) -> int:
    return int(str(params["chat_id"]))


async def test_a_row_is_sending_only_between_its_admission_and_its_request(world: World) -> None:
    """Entering the limiter its row is still `scheduled` (a crash while it waits leaves nothing
    `unknown`); reaching Telegram its row is already durably `sending` (a crash after it left
    cannot send it again)."""
    ids = await seed(world, patients=12)
    queued_as_sending: list[int] = []
    sent_unmarked: list[int] = []
    original = world.state.call

    async def entering(chat: int) -> None:
        if chat in await sending_chats(world, ids):
            queued_as_sending.append(chat)

    async def arriving(method: str, params: Any) -> tuple[int, dict[str, Any]]:
        if method == "sendMessage" and chat_of(params) not in await sending_chats(world, ids):
            sent_unmarked.append(chat_of(params))
        return await original(method, params)

    world.state.call = arriving  # type: ignore[method-assign]
    async with paced(world, entering) as dispatcher:
        report = await dispatcher.tick()
    assert report.sent == 12
    assert queued_as_sending == []
    assert sent_unmarked == []
    assert await count(world, Delivery.state == DeliveryState.SENT) == 12


async def test_a_skip_while_queued_in_the_limiter_wins(world: World) -> None:
    ids = await seed(world, patients=12)
    late = ids[9]  # claimed with the rest, its turn ~180 ms after the first send
    original = world.state.call

    async def skip_on_first_send(method: str, params: Any) -> tuple[int, dict[str, Any]]:
        if method == "sendMessage" and chat_of(params) == FIRST_CHAT:
            async with world.rt.engine.begin() as conn:
                # What a patient's "skip" does: only a row still scheduled can be skipped.
                await conn.execute(
                    update(Delivery)
                    .where(Delivery.id == late, Delivery.state == DeliveryState.SCHEDULED)
                    .values(state=DeliveryState.SKIPPED)
                )
        return await original(method, params)

    world.state.call = skip_on_first_send  # type: ignore[method-assign]
    async with paced(world) as dispatcher:
        report = await dispatcher.tick()
    assert report.sent == 11
    assert world.state.sent_messages(FIRST_CHAT + 9) == []
    async with world.rt.sessions() as session:
        skipped = await session.get(Delivery, late)
        assert skipped is not None
        assert skipped.state is DeliveryState.SKIPPED and skipped.attempts == 0
    assert await count(world, Delivery.state == DeliveryState.SENDING) == 0


async def test_stopping_withdraws_what_is_still_queued(world: World) -> None:
    await seed(world, patients=12)
    original = world.state.call

    async def stop_at_first_send(method: str, params: Any) -> tuple[int, dict[str, Any]]:
        if method == "sendMessage":
            dispatcher.stopping = True
        return await original(method, params)

    world.state.call = stop_at_first_send  # type: ignore[method-assign]
    async with paced(world) as dispatcher:
        report = await dispatcher.tick()
        # What was admitted went out (the next slot is 20 ms later, so normally just the
        # first); the queued rest was never marked and is free for the next leader at once.
        assert 1 <= report.sent <= 2
        assert await count(world, Delivery.state == DeliveryState.SENDING) == 0
        assert await count(world, Delivery.claimed_by.is_not(None)) == 0
        assert await count(world, Delivery.state == DeliveryState.SCHEDULED) == 12 - report.sent
        world.state.call = original  # type: ignore[method-assign]
        dispatcher.stopping = False
        await dispatcher.tick()
    assert await count(world, Delivery.state == DeliveryState.SENT) == 12
    for i in range(12):
        assert len(world.state.sent_messages(FIRST_CHAT + i)) == 1


async def test_a_claim_that_ran_out_in_the_queue_is_decided_afresh(world: World) -> None:
    """A long wait in the limiter (a 429 pause) outlasts the claim: the rows still queued are
    not sent late under the old decision; the next tick decides them again."""
    await seed(world, patients=12)
    original = world.state.call

    async def stall_on_first_send(method: str, params: Any) -> tuple[int, dict[str, Any]]:
        if method == "sendMessage" and chat_of(params) == FIRST_CHAT:
            world.clock.advance(dispatcher_module.CLAIM_LEASE + timedelta(seconds=1))
        return await original(method, params)

    world.state.call = stall_on_first_send  # type: ignore[method-assign]
    async with paced(world) as dispatcher:
        report = await dispatcher.tick()
        assert 1 <= report.sent <= 2
        assert await count(world, Delivery.state == DeliveryState.SCHEDULED) == 12 - report.sent
        assert await count(world, Delivery.claimed_by.is_not(None)) == 0
        assert await count(world, Delivery.attempts > 0) == report.sent
        await dispatcher.tick()
    assert await count(world, Delivery.state == DeliveryState.SENT) == 12
