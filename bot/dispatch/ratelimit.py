"""Outgoing rate limiting: the overall send rate, one message per second per chat, a priority lane.

PTB's `AIORateLimiter` paces the bot as a whole and groups per minute, but has no per-private-chat
limit, and a busy chat queued in front of the overall limiter holds everyone else up. Here each
request goes through three lanes, chosen per call:

* paced — methods that put a new message in a chat (`send*` except `sendChatAction`,
  `forward*`, `copy*`): first in line for their chat (FIFO, so a patient reads messages in the
  order they were sent), then at most one per `per_chat_interval` to that chat, then a slot of the
  overall pacer. A request only joins the overall queue once its chat is free, so a busy chat
  never blocks other chats.
* priority — any call made with `rate_limit_args={"priority": True}` (crisis resources): goes out
  at once, ignoring the queue, the per-chat spacing and a 429 pause. Crisis replies must not wait
  behind a burst of prompts; the slot it uses is taken from the queue (everything queued moves
  back one slot) so the long-run rate still holds, and a 429 only costs it its own retry_after.
* direct — everything else (edits, deletes, chat actions, callback answers, getMe, ...): not
  throttled. Telegram's per-chat and broadcast limits count messages; edits and callback answers
  follow a user's tap and must feel instant, so a burst of prompts must not delay them.

RetryAfter (429) from any lane pauses the paced queue for `retry_after` (Telegram's flood limit
is per bot) and retries the request up to `max_retries` times; a 429 means the message was not
sent, so a retry cannot duplicate it. After the last retry the RetryAfter is re-raised for the
dispatcher to reschedule the delivery. Every other exception passes through untouched.

Wiring (bot.app): `Application.builder().rate_limiter(PacedRateLimiter(overall_rate=send_rate))`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

log = logging.getLogger(__name__)

Result = bool | dict[str, Any] | list[dict[str, Any]]
Callback = Callable[..., Coroutine[Any, Any, Result]]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Telegram's retry_after is whole seconds, rounded on its side; retrying exactly on the boundary
# tends to earn a second 429 (PTB's AIORateLimiter adds the same margin).
RETRY_MARGIN = 0.1
# Per-chat state is kept for chats messaged within the last interval; prune only past this many
# so the common case never scans.
CHATS_BEFORE_PRUNE = 1024

_FORWARDS = frozenset({"forwardMessage", "forwardMessages", "copyMessage", "copyMessages"})


class Lane(Enum):
    PACED = "paced"
    PRIORITY = "priority"
    DIRECT = "direct"


def is_message(endpoint: str) -> bool:
    """Does this Bot API method put a new message in a chat (what the per-chat limit counts)?"""
    return (endpoint.startswith("send") and endpoint != "sendChatAction") or endpoint in _FORWARDS


def chat_key(data: dict[str, Any]) -> int | str | None:
    chat_id = data.get("chat_id")
    if chat_id is None:
        return None
    # "123" and 123 are the same chat; "@channel" stays a string.
    with contextlib.suppress(TypeError, ValueError):
        return int(chat_id)
    return str(chat_id)


def retry_after_seconds(exc: RetryAfter) -> float:
    # PTB 22 returns int seconds (with a deprecation warning) or a timedelta when PTB_TIMEDELTA is
    # set; accept both, and a float just in case.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: int | float | timedelta = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


class Pacer:
    """Hands out overall send slots `1 / rate` apart, first come first served.

    A slot is reserved the moment a request asks, so order is fixed without a queue object;
    the request then sleeps until its slot. Slots are kept on a schedule clock that runs
    `shift` seconds behind the real one and stops during a 429 pause: pausing adds to `shift`,
    which moves every reserved slot back by the same amount, so order and spacing survive it.
    No burst allowance: a full bucket would let 2x the rate through in the first second.
    """

    def __init__(self, rate: float, clock: Clock, sleep: Sleep) -> None:
        self.spacing = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next_slot = -math.inf  # schedule time of the next free slot
        self._shift = 0.0  # real time = schedule time + shift
        self.paused_until = -math.inf  # real time

    def _schedule_now(self) -> float:
        return max(self._clock(), self.paused_until) - self._shift

    async def wait_turn(self) -> None:
        slot = max(self._schedule_now(), self._next_slot)
        self._next_slot = slot + self.spacing
        # Re-read shift after every wake-up: a 429 may have moved the slot while we slept.
        while (due := slot + self._shift) > (now := self._clock()):
            await self._sleep(due - now)

    def borrow(self) -> None:
        """Take a slot now, out of turn; everything queued moves back one slot."""
        self._shift += self.spacing
        # With nothing queued there is nothing to move: keep the next arrival a slot away.
        self._next_slot = max(self._next_slot, self._schedule_now() + self.spacing)

    def pause(self, seconds: float) -> None:
        now = self._clock()
        until = now + seconds
        if until <= self.paused_until:
            return  # overlapping 429s (several requests in flight) extend, not add up
        self._shift += until - max(now, self.paused_until)
        self.paused_until = until


@dataclass
class ChatState:
    """Per-chat FIFO and the earliest time the next message may go to that chat."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_at: float = -math.inf
    users: int = 0  # requests holding or waiting for `lock`; pruning must not split a chat


class PacedRateLimiter(BaseRateLimiter[dict[str, Any]]):
    """BaseRateLimiter with an overall rate, per-chat spacing and a priority lane (see module)."""

    def __init__(
        self,
        *,
        overall_rate: float = 25.0,
        per_chat_interval: float = 1.0,
        max_retries: int = 3,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if overall_rate <= 0:
            raise ValueError("overall_rate must be positive")
        if per_chat_interval < 0 or max_retries < 0:
            raise ValueError("per_chat_interval and max_retries must not be negative")
        self.per_chat_interval = per_chat_interval
        self.max_retries = max_retries
        self._clock = clock
        self._sleep = sleep
        self._pacer = Pacer(overall_rate, clock, sleep)
        self._chats: dict[int | str, ChatState] = {}
        # Metrics: plain counters read by the /metrics exporter.
        self.waited_total = 0.0  # seconds requests spent held back (queue, chat, 429 pauses)
        self.retry_after_count = 0  # 429s seen, retried or not
        self.priority_count = 0  # priority-lane requests

    async def initialize(self) -> None:
        """Nothing to set up: all state lives in memory and in the callers' own tasks."""

    async def shutdown(self) -> None:
        """Nothing to release; requests still waiting finish or are cancelled with their task."""

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> Result:
        chat = chat_key(data)
        if rate_limit_args and rate_limit_args.get("priority"):
            self.priority_count += 1
            state = self._chat(chat) if chat is not None else None
            return await self._run(Lane.PRIORITY, state, callback, args, kwargs)
        if not is_message(endpoint):
            return await self._run(Lane.DIRECT, None, callback, args, kwargs)
        if chat is None:
            return await self._run(Lane.PACED, None, callback, args, kwargs)
        state = self._chat(chat)
        state.users += 1
        try:
            async with state.lock:
                return await self._run(Lane.PACED, state, callback, args, kwargs)
        finally:
            state.users -= 1

    async def _run(
        self,
        lane: Lane,
        chat: ChatState | None,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
    ) -> Result:
        retries = 0
        while True:
            started = self._clock()
            if lane is Lane.PACED:
                if chat is not None:
                    await self._sleep_until(chat.next_at)
                await self._pacer.wait_turn()
            elif lane is Lane.PRIORITY:
                self._pacer.borrow()
            now = self._clock()
            self.waited_total += now - started
            if chat is not None:
                # Priority sends count too, so the next normal message to that chat keeps its
                # distance from the crisis reply.
                chat.next_at = max(chat.next_at, now + self.per_chat_interval)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                delay = retry_after_seconds(exc) + RETRY_MARGIN
                self.retry_after_count += 1
                self._pacer.pause(delay)
                if retries >= self.max_retries:
                    log.warning("429 after %d retries; giving up on this request", retries)
                    raise
                retries += 1
                log.info("429: retry %d of %d in %.1f s", retries, self.max_retries, delay)
                if lane is not Lane.PACED:
                    # The paced lane waits out the pause in the queue; the others only for
                    # their own retry_after.
                    started = self._clock()
                    await self._sleep(delay)
                    self.waited_total += self._clock() - started

    async def _sleep_until(self, moment: float) -> None:
        while (now := self._clock()) < moment:
            await self._sleep(moment - now)

    def _chat(self, chat: int | str) -> ChatState:
        state = self._chats.get(chat)
        if state is None:
            if len(self._chats) >= CHATS_BEFORE_PRUNE:
                self._prune()
            state = self._chats[chat] = ChatState()
        return state

    def _prune(self) -> None:
        now = self._clock()
        for key, state in list(self._chats.items()):
            if state.users == 0 and state.next_at <= now:
                del self._chats[key]
