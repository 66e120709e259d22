"""PerChatUpdateProcessor: one chat's updates in arrival order, different chats concurrently,
a bound on handlers running at once that a busy chat cannot use up, no lock left behind.

Updates are fed the way PTB's update fetcher does it: one task per update, created in arrival
order, each calling `process_update` (the base class's semaphore, then ours). Timing tests run on
the virtual loop of test_ratelimit, so sleeps cost nothing; the last test goes through a real
Application and its own update queue."""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from telegram import CallbackQuery, Chat, InlineQuery, Message, Update, User
from telegram.ext import ApplicationHandlerStop, TypeHandler

from bot.emulator import BotApiState
from bot.emulator.request import fake_application_builder
from bot.telegram.updates import SHARED, PerChatUpdateProcessor, update_key
from tests.unit.test_ratelimit import now, run_virtual

WHEN = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


def message(update_id: int, chat_id: int, text: str = "x") -> Update:
    user = User(id=abs(chat_id), first_name="P", is_bot=False)
    chat = Chat(id=chat_id, type="private" if chat_id > 0 else "group")
    return Update(
        update_id,
        message=Message(message_id=update_id, date=WHEN, chat=chat, from_user=user, text=text),
    )


Handler = Callable[[Update], Awaitable[None]]


def feed(processor: PerChatUpdateProcessor, updates: list[Update], handle: Handler) -> list[Any]:
    """As PTB's fetcher: one task per update, in arrival order, nothing awaited in between."""
    return [
        asyncio.ensure_future(processor.process_update(update, handle(update)))
        for update in updates
    ]


class Recorder:
    """Handler that logs start/end per update and tracks how many run at once, per chat too."""

    def __init__(self, delay: Callable[[Update], float]) -> None:
        self.delay = delay
        self.events: list[tuple[str, int, int, float]] = []  # (what, chat, update id, time)
        self.running = 0
        self.most = 0
        self.per_chat: dict[int, int] = {}
        self.most_per_chat = 0

    async def __call__(self, update: Update) -> None:
        assert update.effective_chat is not None
        chat = update.effective_chat.id
        self.running += 1
        self.per_chat[chat] = self.per_chat.get(chat, 0) + 1
        self.most = max(self.most, self.running)
        self.most_per_chat = max(self.most_per_chat, self.per_chat[chat])
        self.events.append(("start", chat, update.update_id, now()))
        try:
            await asyncio.sleep(self.delay(update))
        finally:
            self.events.append(("end", chat, update.update_id, now()))
            self.running -= 1
            self.per_chat[chat] -= 1

    def order(self, what: str, chat: int) -> list[int]:
        return [u for w, c, u, _ in self.events if w == what and c == chat]


# ------------------------------------------------------------------ order within a chat


def test_one_chats_updates_run_one_at_a_time_in_arrival_order() -> None:
    rng = random.Random(4)
    # Five chats, 60 updates interleaved; early updates are the slow ones, so any overlap
    # within a chat would finish (and start) them out of order.
    updates = [message(i, 100 + rng.randrange(5)) for i in range(1, 61)]
    recorder = Recorder(delay=lambda u: 1.0 / u.update_id + rng.random() * 0.01)

    async def main() -> None:
        processor = PerChatUpdateProcessor(32)
        await asyncio.gather(*feed(processor, updates, recorder))

    run_virtual(main)
    for chat in range(100, 105):
        arrived = [u.update_id for u in updates if u.effective_chat and u.effective_chat.id == chat]
        assert recorder.order("start", chat) == arrived
        assert recorder.order("end", chat) == arrived
    assert recorder.most_per_chat == 1
    assert recorder.most > 1  # ... while chats ran side by side


# ------------------------------------------------------------------ chats run concurrently


def test_a_blocked_chat_does_not_hold_up_another_chat() -> None:
    async def main() -> tuple[list[int], bool]:
        processor = PerChatUpdateProcessor(32)
        release = asyncio.Event()
        done: list[int] = []

        async def handle(update: Update) -> None:
            assert update.effective_chat is not None
            if update.effective_chat.id == 1 and update.update_id == 1:
                await release.wait()  # patient A's first update hangs
            done.append(update.update_id)

        updates = [message(1, 1), message(2, 1), message(3, 2), message(4, 1), message(5, 3)]
        tasks = feed(processor, updates, handle)
        await asyncio.wait_for(asyncio.gather(tasks[2], tasks[4]), timeout=5)
        others_done_while_blocked = done == [3, 5]
        release.set()
        await asyncio.gather(*tasks)
        return done, others_done_while_blocked

    done, others_first = run_virtual(main)
    assert others_first
    assert done == [3, 5, 1, 2, 4]


# ------------------------------------------------------------------ bounded concurrency


def test_no_more_than_the_bound_run_at_once() -> None:
    updates = [message(i, i) for i in range(1, 101)]  # 100 chats, one update each
    recorder = Recorder(delay=lambda u: 0.5)

    async def main() -> float:
        processor = PerChatUpdateProcessor(5)
        await asyncio.gather(*feed(processor, updates, recorder))
        return now()

    took = run_virtual(main)
    assert recorder.most == 5
    assert took == pytest.approx(100 / 5 * 0.5)


def test_updates_waiting_behind_their_own_chat_hold_no_slot() -> None:
    """Bound 2, chat A has ten updates with the first one hanging: B and C still get through.
    (Taking the slot before the chat lock would let A's waiting updates fill both slots.)"""

    async def main() -> tuple[list[int], int]:
        processor = PerChatUpdateProcessor(2)
        release = asyncio.Event()
        done: list[int] = []

        async def handle(update: Update) -> None:
            if update.update_id == 1:
                await release.wait()
            done.append(update.update_id)

        a = [message(i, 1) for i in range(1, 11)]
        tasks = feed(processor, [*a, message(11, 2), message(12, 3)], handle)
        await asyncio.wait_for(asyncio.gather(*tasks[10:]), timeout=5)
        running_while_blocked = processor.running
        release.set()
        await asyncio.gather(*tasks)
        return done, running_while_blocked

    done, running = run_virtual(main)
    assert done[:2] == [11, 12]
    assert done[2:] == list(range(1, 11))
    assert running == 1  # only A's hanging update: its nine followers wait without a slot


def test_base_semaphore_never_queues_an_update() -> None:
    processor = PerChatUpdateProcessor(3)
    assert processor.limit == 3
    assert processor.max_concurrent_updates >= 1 << 20  # PTB's bound is not the real one
    with pytest.raises(ValueError):
        PerChatUpdateProcessor(0)


# ------------------------------------------------------------------ lock table


def test_chat_locks_are_dropped_when_no_update_needs_them() -> None:
    async def main() -> tuple[int, int, int]:
        processor = PerChatUpdateProcessor(8)
        release = asyncio.Event()

        async def handle(update: Update) -> None:
            if update.update_id <= 3:
                await release.wait()

        first = feed(
            processor, [message(1, 1), message(2, 2), message(3, 3), message(4, 1)], handle
        )
        await asyncio.sleep(0)
        during = processor.chats
        release.set()
        await asyncio.gather(*first)
        after = processor.chats
        # Many chats come and go: the table does not grow with them.
        await asyncio.gather(*feed(processor, [message(i, i) for i in range(10, 1010)], handle))
        return during, after, processor.chats

    during, after, later = run_virtual(main)
    assert during == 3
    assert (after, later) == (0, 0)


def test_an_update_cancelled_while_waiting_leaves_order_and_table_intact() -> None:
    async def main() -> tuple[list[int], int, str]:
        processor = PerChatUpdateProcessor(8)
        release = asyncio.Event()
        done: list[int] = []

        async def handle(update: Update) -> None:
            if update.update_id == 1:
                await release.wait()
            done.append(update.update_id)

        coroutines = [handle(message(i, 7)) for i in range(1, 5)]
        tasks = [
            asyncio.ensure_future(processor.process_update(message(i, 7), coroutine))
            for i, coroutine in enumerate(coroutines, start=1)
        ]
        await asyncio.sleep(0)
        tasks[1].cancel()  # update 2, waiting for the chat
        await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[1], asyncio.CancelledError)
        # Closed, not left to be garbage-collected with "coroutine ... was never awaited".
        return done, processor.chats, inspect.getcoroutinestate(coroutines[1])

    done, chats, never_started = run_virtual(main)
    assert done == [1, 3, 4]
    assert chats == 0
    assert never_started == inspect.CORO_CLOSED


# ------------------------------------------------------------------ keys


def test_key_is_the_chat_then_the_user_then_one_shared_key() -> None:
    user = User(id=42, first_name="P", is_bot=False)
    assert update_key(message(1, 42)) == 42
    assert update_key(message(2, -1001)) == -1001  # a group: the chat, not the sender
    inline = Update(3, inline_query=InlineQuery("q", user, "hi", ""))
    assert update_key(inline) == 42
    # A button under a message: the message's chat.
    query = CallbackQuery("c", user, "ci", message=message(4, -5).message, data="x")
    assert update_key(Update(4, callback_query=query)) == -5
    assert update_key(Update(5)) is SHARED  # e.g. a poll's state: neither chat nor user
    assert update_key(object()) is SHARED


# ------------------------------------------------------------------ through PTB itself


async def test_a_real_application_keeps_chat_order_and_runs_chats_side_by_side() -> None:
    """PTB's fetcher, Application.create_task, its semaphore, handler groups and
    ApplicationHandlerStop — with a context variable set in group -1 and read in group 0, as the
    once-only update guard does."""
    from contextvars import ContextVar

    current: ContextVar[int | None] = ContextVar("current", default=None)
    state = BotApiState()
    processor = PerChatUpdateProcessor(16)
    app = fake_application_builder(state).concurrent_updates(processor).build()
    seen: dict[int, list[str]] = {}
    mixups: list[tuple[int, int | None]] = []
    release = asyncio.Event()
    b_done = asyncio.Event()

    async def guard(update: Update, _context: Any) -> None:
        current.set(update.update_id)
        if update.update_id == 99:
            raise ApplicationHandlerStop

    async def handle(update: Update, _context: Any) -> None:
        assert update.effective_chat is not None and update.effective_message is not None
        chat = update.effective_chat.id
        if update.effective_message.text == "a1":
            await release.wait()
        await asyncio.sleep(0.001 * (update.update_id % 3))
        if current.get() != update.update_id:
            mixups.append((update.update_id, current.get()))
        seen.setdefault(chat, []).append(update.effective_message.text or "")
        if chat == 2 and len(seen[chat]) == 3:
            b_done.set()

    app.add_handler(TypeHandler(Update, guard), group=-1)
    app.add_handler(TypeHandler(Update, handle), group=0)
    async with app:
        await app.start()
        texts = [(1, "a1"), (2, "b1"), (1, "a2"), (2, "b2"), (1, "a3"), (2, "b3"), (3, "c1")]
        for update_id, (chat, text) in enumerate(texts, start=1):
            await app.update_queue.put(message(update_id, chat, text))
        await app.update_queue.put(message(99, 3, "dropped"))
        await asyncio.wait_for(b_done.wait(), timeout=5)
        assert 1 not in seen  # A is still blocked, B finished meanwhile
        release.set()
        await asyncio.wait_for(app.update_queue.join(), timeout=5)
        await app.stop()
    assert seen == {1: ["a1", "a2", "a3"], 2: ["b1", "b2", "b3"], 3: ["c1"]}
    assert mixups == []
    assert processor.chats == 0
