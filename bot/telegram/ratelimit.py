"""Outgoing rate limiting: the overall send rate, one message per second per chat, and lanes.

PTB's `AIORateLimiter` paces the bot as a whole and groups per minute, but has no per-private-chat
limit, and a busy chat queued in front of the overall limiter holds everyone else up. Here each
request goes through one of four lanes, chosen per call:

* paced — methods that put a new message in a chat (`send*` except `sendChatAction`,
  `forward*`, `copy*`) without lane arguments (scheduled prompts, notices): first in line for
  their chat (FIFO, so a patient reads messages in the order they were sent), then at most one
  per `per_chat_interval` to that chat, then a slot of the overall pacer. A request only joins
  the overall queue once its chat is free, so a busy chat never blocks other chats.
* interactive — a message method called with `rate_limit_args={"interactive": True}` (answers
  to the person who just wrote): exactly like paced — the chat's FIFO, the per-chat spacing,
  overall slots, 429 pauses — except that in the overall pacer it queues ahead of every paced
  request still waiting. So an answer waits for the next free slot, not behind a burst of
  prompts; paced and interactive sends together stay within `overall_rate`. Interactive
  traffic above the overall rate would hold paced sends back for as long as it lasted (answers
  follow what people send, and the chat spacing caps each chat at 1/s). On any other method
  the flag is ignored (those are direct).
* priority — `rate_limit_args={"priority": True}`, for crisis resources and safety alerts only:
  goes out at once, ignoring the queues, the per-chat spacing and a 429 pause. Crisis replies
  must not wait behind anything; the slot it uses is taken from the queue (everything queued
  moves back one slot) so the long-run rate still holds, and a 429 only costs it its own
  retry_after. It still counts for its chat: the next message there keeps its distance.
* direct — everything else (edits, deletes, chat actions, callback answers, getMe, ...): not
  throttled. Telegram's per-chat and broadcast limits count messages; edits and callback answers
  follow a user's tap and must feel instant, so a burst of prompts must not delay them.

RetryAfter (429) from any lane pauses the paced and interactive queues for `retry_after`
(Telegram's flood limit is per bot) and retries the request up to `max_retries` times; a 429
means the message was not sent, so a retry cannot duplicate it. After the last retry the
RetryAfter is re-raised for the dispatcher to reschedule the delivery. Every other exception
passes through untouched.

`rate_limit_args={"before_send": hook}` (any lane): `await hook()` runs once the request has
been admitted — its chat's turn and spacing, its overall slot — right before its first try
leaves, and never again for its retries. The dispatcher commits the delivery's `sending` mark
there, so a row waiting in the queue is still `scheduled` and a crash cannot make it `unknown`.
If the hook returns False the request is dropped unsent and `Withdrawn` is raised (the slot is
spent, the chat's spacing is not); an exception from it propagates, nothing sent. The per-chat
spacing counts from when the request leaves, after the hook.

Wiring (bot.app): `Application.builder().rate_limiter(PacedRateLimiter(overall_rate=send_rate))`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import warnings
from collections import deque
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
BeforeSend = Callable[[], Awaitable[bool]]

# Telegram's retry_after is whole seconds, rounded on its side; retrying exactly on the boundary
# tends to earn a second 429 (PTB's AIORateLimiter adds the same margin).
RETRY_MARGIN = 0.1
# Telegram counts a chat's messages by arrival; two requests released exactly one second apart
# can arrive closer than that (one waited longer for the network), which strict limits answer
# with a 429 (measured in bench.ingest).
PER_CHAT_INTERVAL = 1.05
# The closest two overall slots may be, as a fraction of 1 / rate, while catching up (~ 27.8/s at
# the default 25/s, below Telegram's 30/s).
MIN_GAP = 0.9
# Per-chat state is kept for chats messaged within the last interval; prune only past this many
# so the common case never scans.
CHATS_BEFORE_PRUNE = 1024

_FORWARDS = frozenset({"forwardMessage", "forwardMessages", "copyMessage", "copyMessages"})


class Withdrawn(Exception):
    """A request's `before_send` hook declined it: nothing was sent."""


class Lane(Enum):
    PACED = "paced"
    INTERACTIVE = "interactive"
    PRIORITY = "priority"
    DIRECT = "direct"


# The lanes as callers name them in `rate_limit_args`. PRIORITY skips every queue and the
# per-chat spacing: crisis resources and safety alerts only. INTERACTIVE keeps the per-chat
# spacing and the overall rate but goes before queued prompts: answers to the person writing.
PRIORITY_ARGS = {"priority": True}
INTERACTIVE_ARGS = {"interactive": True}


def priority(bot: Any) -> Any:
    """`rate_limit_args` for the priority lane (PTB refuses them without a limiter, as in
    tests that switch it off). Any: PTB types them by the bot's limiter, which varies."""
    return PRIORITY_ARGS if getattr(bot, "rate_limiter", None) is not None else None


def interactive(bot: Any) -> Any:
    """`rate_limit_args` for a send that answers the person writing."""
    return INTERACTIVE_ARGS if getattr(bot, "rate_limiter", None) is not None else None


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
    """Hands out overall send slots `1 / rate` apart: first the interactive queue, then the
    paced one, each first come first served.

    A request that finds nobody ahead of it in its own queue (and, for a paced one, nobody in
    the interactive queue) and a free slot goes at once. Otherwise it queues; only the head of
    the two queues sleeps until the next slot, the rest wait to be woken when they become head.
    An interactive request that arrives while paced ones wait becomes head at once, so it takes
    the next slot and every paced one moves back by one. Slots are `1 / rate` apart counted from
    where the previous slot was due, not from when its task happened to run, so a late wake-up
    does not lower the long-run rate; a slot is never earlier than its request.
    No burst allowance: a full bucket would let 2x the rate through in the first second.
    """

    def __init__(self, rate: float, clock: Clock, sleep: Sleep) -> None:
        self.spacing = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next_free = -math.inf  # real time of the next free slot
        self.paused_until = -math.inf  # real time
        self._interactive: deque[_Waiter] = deque()
        self._paced: deque[_Waiter] = deque()

    def _ready_at(self) -> float:
        return max(self._next_free, self.paused_until)

    def _head(self) -> _Waiter | None:
        if self._interactive:
            return self._interactive[0]
        return self._paced[0] if self._paced else None

    def _take(self, slot: float) -> None:
        # Catching up after a late wake-up keeps the long-run rate, but never sends two
        # requests closer than MIN_GAP slots: a stalled loop must not release a burst that
        # Telegram counts as more than its 30 per second.
        self._next_free = max(slot + self.spacing, self._clock() + MIN_GAP * self.spacing)
        head = self._head()
        if head is not None:
            head.wake.set()  # its turn to watch the clock

    @property
    def queued(self) -> int:
        return len(self._interactive) + len(self._paced)

    async def wait_turn(self, *, interactive: bool = False) -> None:
        arrived = self._clock()
        queue = self._interactive if interactive else self._paced
        ahead = bool(self._interactive) if interactive else self._head() is not None
        if not ahead and arrived >= self._ready_at():
            self._take(arrived)
            return
        me = _Waiter(arrived)
        queue.append(me)
        try:
            while True:
                if self._head() is me:
                    # Re-read after every wake-up: a 429, a borrowed slot or an interactive
                    # request may have moved the slot (or taken the head) while we slept.
                    ready, now = self._ready_at(), self._clock()
                    if now >= ready:
                        queue.popleft()
                        me.done = True
                        self._take(max(ready, me.arrived))
                        return
                    await self._sleep(ready - now)
                else:
                    me.wake.clear()
                    await me.wake.wait()
        finally:
            if not me.done:  # cancelled while waiting: the next one may now be head
                queue.remove(me)
                head = self._head()
                if head is not None:
                    head.wake.set()

    def borrow(self) -> None:
        """Take a slot now, out of turn; everything queued moves back one slot."""
        self._next_free = max(self._next_free, self._clock()) + self.spacing

    def pause(self, seconds: float) -> None:
        """Nobody (but priority) goes before `seconds` from now; overlapping 429s extend the
        pause rather than add up."""
        self.paused_until = max(self.paused_until, self._clock() + seconds)


@dataclass(eq=False)
class _Waiter:
    arrived: float  # real time the request asked; its slot is never earlier
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # set when it may be head
    done: bool = False


@dataclass
class ChatState:
    """Per-chat FIFO and the earliest time the next message may go to that chat."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_at: float = -math.inf
    users: int = 0  # requests holding or waiting for `lock`; pruning must not split a chat


class PacedRateLimiter(BaseRateLimiter[dict[str, Any]]):
    """BaseRateLimiter with an overall rate, per-chat spacing and four lanes (see module)."""

    def __init__(
        self,
        *,
        overall_rate: float = 25.0,
        per_chat_interval: float = PER_CHAT_INTERVAL,
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
        self.interactive_count = 0  # interactive-lane requests

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
        options = rate_limit_args or {}
        hook: BeforeSend | None = options.get("before_send")
        if options.get("priority"):
            self.priority_count += 1
            state = self._chat(chat) if chat is not None else None
            return await self._run(Lane.PRIORITY, state, callback, args, kwargs, hook)
        if not is_message(endpoint):
            return await self._run(Lane.DIRECT, None, callback, args, kwargs, hook)
        lane = Lane.INTERACTIVE if options.get("interactive") else Lane.PACED
        if lane is Lane.INTERACTIVE:
            self.interactive_count += 1
        if chat is None:
            return await self._run(lane, None, callback, args, kwargs, hook)
        state = self._chat(chat)
        state.users += 1
        try:
            async with state.lock:
                return await self._run(lane, state, callback, args, kwargs, hook)
        finally:
            state.users -= 1

    async def _run(
        self,
        lane: Lane,
        chat: ChatState | None,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        before_send: BeforeSend | None = None,
    ) -> Result:
        retries = 0
        while True:
            started = self._clock()
            if lane is Lane.PACED or lane is Lane.INTERACTIVE:
                if chat is not None:
                    await self._sleep_until(chat.next_at)
                await self._pacer.wait_turn(interactive=lane is Lane.INTERACTIVE)
            elif lane is Lane.PRIORITY:
                self._pacer.borrow()
            now = self._clock()
            self.waited_total += now - started
            if before_send is not None:
                # Only the first try: a retry after a 429 is the same, already admitted send.
                hook, before_send = before_send, None
                if not await hook():
                    raise Withdrawn
                now = self._clock()  # the hook may have taken a while; the chat counts from here
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
                if lane is Lane.PRIORITY or lane is Lane.DIRECT:
                    # The paced and interactive lanes wait out the pause in the queue; the
                    # others only for their own retry_after.
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
