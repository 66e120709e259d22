"""Polling that confirms an update to Telegram only once it has been handled.

PTB's `Updater` confirms a batch of updates (by asking for the next offset) as soon as it has
queued it, so updates fetched in the moments before a crash are gone. Here the offset sent to
`getUpdates` never passes an update still being handled: after a crash Telegram delivers it
again, and the update-id guard (bot/handlers/common.py) keeps a repeat of anything that did
commit from doubling it. Updates are handled like the webhook's: through the application's
update processor (chats side by side, each chat in order), not through its update queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from telegram import Update
from telegram.error import InvalidToken, TelegramError

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
RETRY_FIRST = 1.0  # seconds after a failed getUpdates; doubles up to RETRY_CAP
RETRY_CAP = 30.0
# Telegram hands back updates below the offset at once, so while one is being handled a poll
# returns immediately; wait this long (or until something finishes) before asking again.
BUSY_WAIT = 0.5
# Telegram returns at most PAGE updates from the offset on. If a whole page comes back with
# nothing new (one slow handler, a hundred finished after it) or this many are in flight (a
# flood), the poller would never see a newer update — a crisis message among them — so
# liveness wins: everything taken is confirmed.
PAGE = 100
MAX_UNCONFIRMED = 50


class Poller:
    """Long-polls `getUpdates` for `app` and hands each update to its update processor."""

    def __init__(self, app: Any, *, timeout: float = 10.0, retry_first: float = RETRY_FIRST):
        self.app = app
        self.timeout = timeout
        self.retry_first = retry_first
        self._next = 0  # every update below this id is handled (or was never ours)
        self._seen = 0  # one past the newest update taken
        self._in_flight: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._finished = asyncio.Event()
        self.handled = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def offset(self, *, jammed: bool = False) -> int:
        """What to confirm: nothing at or above an update still being handled — unless newer
        updates could not be fetched otherwise (`jammed`, or MAX_UNCONFIRMED in flight)."""
        if not self._in_flight:
            return self._next
        if jammed or len(self._in_flight) >= MAX_UNCONFIRMED:
            return self._seen
        return min(self._in_flight)

    async def start(self) -> None:
        # getUpdates answers 409 while a webhook is set (e.g. left by webhook mode).
        await self.app.bot.delete_webhook()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="poller")

    async def stop(self) -> None:
        """Stop fetching, and confirm what is handled so the next start does not fetch it
        again; updates still being handled finish in their own tasks and, unconfirmed, come
        again at the next start (where the update-id guard drops what they committed)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self.offset():
            try:
                await self.app.bot.get_updates(offset=self.offset(), timeout=0, limit=1)
            except TelegramError as exc:  # the next start re-fetches them; the guard drops them
                log.info("could not confirm handled updates: %s", type(exc).__name__)

    async def _run(self) -> None:
        delay = self.retry_first
        jammed = False
        while True:
            try:
                updates = await self.app.bot.get_updates(
                    offset=self.offset(jammed=jammed) or None,
                    limit=PAGE,
                    timeout=int(self.timeout),
                    allowed_updates=list(ALLOWED_UPDATES),
                )
            except InvalidToken:
                log.error("getUpdates: Telegram refused the token; polling stops")
                raise
            except Exception as exc:
                # Another poller, a network outage, a 5xx, a bug: wait and ask again.
                log.warning("getUpdates failed (%s); retrying in %.0f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_CAP)
                continue
            delay = self.retry_first
            fresh = [update for update in updates if self._take(update)]
            jammed = len(updates) >= PAGE and not fresh
            if updates and not fresh and not jammed:
                self._finished.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._finished.wait(), BUSY_WAIT)

    def _take(self, update: Update) -> bool:
        update_id = update.update_id
        if update_id < self._next or update_id in self._in_flight:
            return False  # handled, or being handled: back again because of the offset
        self._in_flight.add(update_id)
        self._seen = max(self._seen, update_id + 1)
        # Tasks start in arrival order and the processor takes each chat's lock first thing,
        # so one chat's updates are handled in order.
        self.app.create_task(self._handle(update), update=update, name=f"update-{update_id}")
        return True

    async def _handle(self, update: Update) -> None:
        try:
            await self.app.update_processor.process_update(update, self.app.process_update(update))
        finally:
            self._in_flight.discard(update.update_id)
            self._next = max(self._next, update.update_id + 1)
            self.handled += 1
            self._finished.set()
