"""Concurrent update handling that keeps each chat's updates in order.

PTB handles updates one at a time by default, so one slow update (an acknowledgement waiting for
its chat's 1 message/s, a slow transaction) holds up every update behind it — a crisis message
from someone else included. `PerChatUpdateProcessor` runs different chats concurrently and one
chat's updates strictly in arrival order:

* Key: `effective_chat.id`, else `effective_user.id` (in a private chat they are equal), else
  one shared key for updates with neither.
* Order: PTB's update fetcher starts one task per update in arrival order. Each task asks for
  its chat's `asyncio.Lock` before it awaits anything (PTB's own semaphore is never contended,
  see below, so it does not suspend), and Lock waiters are woken first in, first out.
* Bound: at most `max_concurrent_updates` updates run their handlers at once. The bound is
  taken *after* the chat lock, so updates queued behind their own chat's busy update hold no
  slot: one chat holds at most one slot and cannot starve the others. PTB's semaphore around
  `do_process_update` is sized far above anything real (`BACKLOG`) so that it never queues an
  update ahead of the chat lock; PTB creates a task per update whatever that bound, so the
  large number costs no memory.
* Cleanup: a chat's lock is dropped once no update holds or waits for it.

What still holds under concurrency: all handlers of one update run in that update's task, so
the once-only update guard's ContextVar (bot/handlers/common.py) stays per update; no
ConversationHandler or per-chat/user data is used; handlers keep sessions short and never hold
one across a Telegram call (SQLite: concurrent writers wait on busy_timeout).

Wiring (bot.app): `Application.builder().concurrent_updates(PerChatUpdateProcessor())`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Hashable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

# Handlers running at once. Each holds at most one database connection at a time, briefly;
# more than the pool (SQLite 5 + 10 overflow, PostgreSQL 10 + 10) only queues for it.
MAX_CONCURRENT = 32
# PTB's own bound, deliberately never reached (see module docstring).
BACKLOG = 1 << 30


class _Shared:
    """The key of updates that carry neither a chat nor a user."""

    def __repr__(self) -> str:
        return "<no chat>"


SHARED: Hashable = _Shared()


def update_key(update: object) -> Hashable:
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return SHARED


@dataclass
class _Chat:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # updates holding or waiting for `lock`


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """One chat's updates in arrival order, different chats concurrently (see module)."""

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT) -> None:
        if max_concurrent_updates < 1:
            raise ValueError("max_concurrent_updates must be a positive integer")
        super().__init__(max_concurrent_updates=BACKLOG)
        self.limit = max_concurrent_updates
        self._slots = asyncio.Semaphore(max_concurrent_updates)
        self._chats: dict[Hashable, _Chat] = {}
        self.running = 0  # updates whose handlers are running now
        self.peak = 0  # the most that ran at once

    @property
    def chats(self) -> int:
        """Chats with an update running or waiting (the size of the lock table)."""
        return len(self._chats)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        # Nothing may be awaited before the chat lock is requested: that keeps arrival order.
        key = update_key(update)
        chat = self._chats.get(key)
        if chat is None:
            chat = self._chats[key] = _Chat()
        chat.users += 1
        started = False
        try:
            async with chat.lock, self._slots:
                started = True
                self.running += 1
                self.peak = max(self.peak, self.running)
                try:
                    await coroutine
                finally:
                    self.running -= 1
        finally:
            chat.users -= 1
            if chat.users == 0:
                del self._chats[key]
            if not started and inspect.iscoroutine(coroutine):
                coroutine.close()  # cancelled while waiting: never started, so no warning

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release: Application.stop waits for the update tasks it started."""
