"""The server-side queue of updates and getUpdates' offset and long-poll rules."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from bot.emulator.faults import ApiError

MAX_LONG_POLL_SECONDS = 50.0
CONFLICT_OTHER_POLLER = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)


class UpdateQueue:
    def __init__(self, first_update_id: int = 1) -> None:
        self._updates: list[dict[str, Any]] = []
        self.next_update_id = first_update_id
        self._arrived = asyncio.Event()
        self._poll_generation = 0
        self._release_generation = 0

    def push(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self.next_update_id, kind: payload}
        self.next_update_id += 1
        self._updates.append(update)
        self._wake()
        return copy.deepcopy(update)

    @property
    def pending(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._updates)

    def drain(self) -> list[dict[str, Any]]:
        updates, self._updates = self._updates, []
        return updates

    def clear(self) -> None:
        self._updates.clear()

    def confirm(self, offset: int) -> None:
        """Telegram forgets updates below a positive offset; a negative one keeps the last n."""
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

    async def fetch(self, offset: int, limit: int, wait_seconds: float) -> list[dict[str, Any]]:
        self.confirm(offset)
        limit = min(max(limit, 1), 100)
        wait_seconds = min(max(wait_seconds, 0.0), MAX_LONG_POLL_SECONDS)
        self._poll_generation += 1
        generation, released = self._poll_generation, self._release_generation
        self._wake()  # an older long poll still waiting learns it was superseded
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while not self._updates:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
            if self._poll_generation != generation:
                # Two pollers on one token: Telegram ends the older request this way.
                raise ApiError(409, CONFLICT_OTHER_POLLER)
            if self._release_generation != released:
                break
        return copy.deepcopy(self._updates[:limit])

    def release(self) -> None:
        """Make waiting long polls return [] now, e.g. when the HTTP server stops."""
        self._release_generation += 1
        self._wake()

    def _wake(self) -> None:
        self._arrived.set()
        self._arrived = asyncio.Event()
