"""PacedRateLimiter inside a real PTB ExtBot talking to the fake Bot API, on virtual time
(see tests/unit/test_ratelimit.py), with 429s injected by the emulator."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from telegram.ext import ExtBot

from bot.emulator import BotApiState
from bot.emulator.request import FakeBotApi
from bot.telegram.ratelimit import PacedRateLimiter
from tests.unit.test_ratelimit import now, run_virtual

EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
EPS = 1e-6


def virtual_datetime() -> datetime:
    return EPOCH + timedelta(seconds=now())


@asynccontextmanager
async def paced_bot(
    state: BotApiState, limiter: PacedRateLimiter
) -> AsyncIterator[ExtBot[dict[str, object]]]:
    bot: ExtBot[dict[str, object]] = ExtBot(
        state.token, request=FakeBotApi(state), rate_limiter=limiter
    )
    await bot.initialize()
    try:
        yield bot
    finally:
        await bot.shutdown()


def seconds(moment: datetime) -> float:
    return (moment - EPOCH).total_seconds()


def test_429_is_retried_once_and_crisis_reply_jumps_the_pause() -> None:
    async def main() -> tuple[BotApiState, PacedRateLimiter]:
        state = BotApiState(clock=virtual_datetime)
        alice, bob = state.user(1001, "Alice"), state.user(1002, "Bob")
        for person in (alice, bob):
            await state.send_text(person, "/start")
        state.drain_updates()
        limiter = PacedRateLimiter(clock=now, sleep=asyncio.sleep)
        state.fail("sendMessage", status=429, retry_after=1, chat_id=alice.id)
        async with paced_bot(state, limiter) as bot:
            await asyncio.gather(
                bot.send_message(alice.id, "a1"),
                bot.send_message(alice.id, "a2"),
                bot.send_message(bob.id, "b1"),
                bot.send_message(bob.id, "crisis", rate_limit_args={"priority": True}),
            )
        return state, limiter

    state, limiter = run_virtual(main)
    assert [m["text"] for m in state.sent_messages(1001)] == ["a1", "a2"]
    assert [m["text"] for m in state.sent_messages(1002)] == ["crisis", "b1"]
    calls = [(c.params["text"], c.status, seconds(c.time)) for c in state.calls_to("sendMessage")]
    first_a1, retry_a1 = (call for call in calls if call[0] == "a1")
    assert first_a1[1] == 429 and retry_a1[1] == 200
    assert retry_a1[2] - first_a1[2] >= 1.0
    ((_, _, crisis_at),) = (call for call in calls if call[0] == "crisis")
    assert crisis_at == 0.0  # not held by the queue, the pause or Bob's chat
    ((_, _, b1_at),) = (call for call in calls if call[0] == "b1")
    assert b1_at >= 1.0  # normal sends wait out Alice's 429: the flood limit is per bot
    ((_, _, a2_at),) = (call for call in calls if call[0] == "a2")
    assert a2_at - retry_a1[2] >= 1.0 - EPS
    assert (limiter.retry_after_count, limiter.priority_count) == (1, 1)


def test_ten_percent_429s_still_deliver_every_message_exactly_once() -> None:
    async def main() -> tuple[BotApiState, PacedRateLimiter]:
        state = BotApiState(clock=virtual_datetime)
        people = [state.user(2000 + i, f"P{i}") for i in range(200)]
        for person in people:
            await state.send_text(person, "/start")
        state.drain_updates()
        limiter = PacedRateLimiter(overall_rate=25.0, max_retries=5, clock=now, sleep=asyncio.sleep)
        state.fail_ratio("sendMessage", 0.1, retry_after=1, seed=6)
        async with paced_bot(state, limiter) as bot:
            await asyncio.gather(*(bot.send_message(p.id, f"prompt {p.id}") for p in people))
        return state, limiter

    state, limiter = run_virtual(main)
    delivered = Counter(m["text"] for m in state.sent_messages())
    assert len(delivered) == 200 and set(delivered.values()) == {1}
    statuses = Counter(c.status for c in state.calls_to("sendMessage"))
    assert statuses[429] == limiter.retry_after_count > 0
    ok_times = sorted(seconds(c.time) for c in state.calls_to("sendMessage") if c.status == 200)
    for first, last in zip(ok_times, ok_times[25:], strict=False):
        assert last - first >= 1.0 - EPS
