"""Retries of a scheduled prompt: never before Telegram's `retry_after`, with a growing backoff,
and at most MAX_ATTEMPTS tries before the delivery fails visibly and is left alone.

Virtual time only: the fake clock jumps to each `retry_at`; nothing sleeps.
"""

from __future__ import annotations

from datetime import timedelta

from telegram.error import NetworkError, TimedOut

from bot.db.models import Delivery, DeliveryState
from bot.dispatch.dispatcher import BACKOFF_BASE, MAX_ATTEMPTS
from bot.emulator.state import RecordedCall
from tests.integration.test_dispatch_claims import FIRST_CHAT, seed
from tests.integration.world import World

SECOND = timedelta(seconds=1)


async def row(world: World, delivery_id: int) -> Delivery:
    async with world.rt.sessions() as session:
        delivery = await session.get(Delivery, delivery_id)
        assert delivery is not None
        return delivery


def attempts_made(world: World) -> list[RecordedCall]:
    return [
        call
        for call in world.state.calls_to("sendMessage")
        if str(call.params.get("chat_id")) == str(FIRST_CHAT)
    ]


async def test_a_429_is_retried_no_earlier_than_its_retry_after(world: World) -> None:
    [delivery_id] = await seed(world, patients=1)
    world.state.fail("sendMessage", status=429, retry_after=600)
    failed_at = world.clock.now()
    report = await world.tick()
    assert report.retry == 1
    first = await row(world, delivery_id)
    assert first.state is DeliveryState.SCHEDULED and first.attempts == 1
    assert first.retry_at is not None
    # The backoff alone would be 15-45 s; Telegram asked for 10 minutes.
    assert first.retry_at >= failed_at + timedelta(seconds=600)

    world.clock.set(failed_at + timedelta(seconds=600) - SECOND)
    await world.tick()
    assert len(attempts_made(world)) == 1  # not one request before retry_after ran out
    world.clock.set(first.retry_at)
    report = await world.tick()
    assert report.sent == 1
    assert len(world.state.sent_messages(FIRST_CHAT)) == 1
    assert (await row(world, delivery_id)).attempts == 2


async def test_transient_failures_until_the_cap_then_failed_and_left_alone(world: World) -> None:
    [delivery_id] = await seed(world, patients=1)
    # Every kind of "Telegram did not take it", one per try, never a success.
    faults = [
        {"exception": NetworkError("httpx.ConnectError: connection refused")},
        {"status": 502},
        {"status": 429, "retry_after": 900},
        {"exception": TimedOut("Pool timeout: all connections busy")},
        {"status": 500},
        {"exception": NetworkError("httpx.ConnectError: connection refused")},
    ]
    assert len(faults) == MAX_ATTEMPTS
    for fault in faults:
        world.state.fail("sendMessage", chat_id=FIRST_CHAT, **fault)  # type: ignore[arg-type]

    report = await world.tick()  # the first try
    for attempt in range(1, MAX_ATTEMPTS):
        assert report.retry == 1 and report.failed == 0, (attempt, report)
        assert len(attempts_made(world)) == attempt
        delivery = await row(world, delivery_id)
        assert delivery.state is DeliveryState.SCHEDULED and delivery.attempts == attempt
        assert delivery.retry_at is not None and delivery.claimed_by is None
        wait = delivery.retry_at - world.clock.now()
        assert wait >= BACKOFF_BASE * 2 ** (attempt - 1) / 2  # the backoff's lowest jitter
        if faults[attempt - 1].get("status") == 429:
            assert wait >= timedelta(seconds=900)
        world.clock.set(delivery.retry_at - SECOND)
        assert (await world.tick()).claimed == []  # not due again before retry_at
        world.clock.set(delivery.retry_at)
        report = await world.tick()

    assert report.failed == 1 and report.retry == 0 and report.sent == 0
    final = await row(world, delivery_id)
    assert final.state is DeliveryState.FAILED
    assert final.attempts == MAX_ATTEMPTS
    assert (final.last_error or "").startswith(f"gave up after {MAX_ATTEMPTS} attempts: ")
    assert (final.last_error or "").endswith("network: httpx.ConnectError")  # the last reason
    assert final.claimed_by is None and final.lease_until is None
    assert len(attempts_made(world)) == MAX_ATTEMPTS
    assert world.state.sent_messages(FIRST_CHAT) == []

    # Left alone: a day of ticks with Telegram healthy again sends nothing more.
    world.state.clear_faults()
    for _ in range(24):
        world.clock.advance(timedelta(hours=1))
        report = await world.tick()
        assert report.claimed == [] and report.sent == 0
    assert len(attempts_made(world)) == MAX_ATTEMPTS
    assert (await row(world, delivery_id)).state is DeliveryState.FAILED
