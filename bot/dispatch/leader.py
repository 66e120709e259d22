"""One leader among replicas: it polls Telegram and runs the dispatcher.

PostgreSQL: a session-level advisory lock on a dedicated connection. If the leader dies its
connection closes, the lock is released, and a follower's next attempt (every `interval`
seconds) takes over. SQLite is the single-replica embedded default: always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

LOCK_KEY = 0x0AF7E6_0001  # any constant shared by every replica of one deployment
Hook = Callable[[], Awaitable[None]]


class Leadership:
    def __init__(self, engine: AsyncEngine, *, interval: float = 2.0) -> None:
        self.engine = engine
        self.interval = interval
        self.is_leader = False
        self._conn: AsyncConnection | None = None

    async def run(self, on_gain: Hook, on_lose: Hook, stop: asyncio.Event) -> None:
        if self.engine.dialect.name != "postgresql":
            self.is_leader = True
            await on_gain()
            await stop.wait()
            return
        while not stop.is_set():
            try:
                if not self.is_leader and await self._try_acquire():
                    self.is_leader = True
                    log.info("this replica is now the leader")
                    await on_gain()
                elif self.is_leader and not await self._still_held():
                    await self._demote(on_lose)
            except Exception as exc:  # a database blip: give leadership up, try again later
                log.warning("leadership check failed: %s", type(exc).__name__)
                if self.is_leader:
                    await self._demote(on_lose)
                await self._close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
        if self.is_leader:
            await self._demote(on_lose)
        await self._close()

    async def _try_acquire(self) -> bool:
        if self._conn is None:
            self._conn = await self.engine.connect()
        got = await self._conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
        await self._conn.commit()  # the lock is per session, not per transaction
        return bool(got)

    async def _still_held(self) -> bool:
        assert self._conn is not None
        await self._conn.scalar(text("SELECT 1"))
        await self._conn.commit()
        return True

    async def _demote(self, on_lose: Hook) -> None:
        self.is_leader = False
        log.warning("this replica is no longer the leader")
        await on_lose()

    async def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                # Invalidate rather than return it to the pool: a pooled connection would keep
                # holding the session-level lock.
                await conn.invalidate()
                await conn.close()
            except Exception as exc:  # already broken: nothing left to release
                log.debug("closing the leadership connection failed: %s", type(exc).__name__)
