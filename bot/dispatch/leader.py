"""One leader among replicas: it polls Telegram and runs the dispatcher.

PostgreSQL: a session-level advisory lock, taken on a connection that is pinned for as long as
the lock is held (never returned to the pool, never silently replaced). Every `interval` seconds
the holder asks PostgreSQL whether that very session still holds the lock (`pg_locks` for
`pg_backend_pid()`); on any doubt (an error, a slow answer, another backend, no lock) it steps
down at once and closes the connection. A replica that takes a free lock waits `takeover_delay`
before it leads, long enough for a previous holder that lost the lock to have noticed: so two
replicas do not lead at once even when the old one keeps running (given the same settings on
every replica, and no process stalled for longer than the margin in `takeover_delay`).

SQLite is the single-replica embedded default: always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

LOCK_KEY = 0x0AF7E6_0001  # any constant shared by every replica of one deployment
Hook = Callable[[], Awaitable[None]]

_TRY_LOCK = text("SELECT pg_try_advisory_lock(:k), pg_backend_pid()")
# A bigint advisory key shows in pg_locks split into classid (high half) and objid (low half),
# with objsubid 1; advisory locks are per database.
_HOLDS_LOCK = text(
    """
    SELECT pg_backend_pid(), EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 1
          AND pid = pg_backend_pid()
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND ((classid::bigint << 32) | objid::bigint) = :k
    )
    """
)


class Leadership:
    """Every replica of a deployment must use the same `interval` and `timeout`: a newcomer's
    wait before leading is computed from its own values, and covers the old leader only if that
    one checks at least as often and gives up on a check no later."""

    def __init__(
        self, engine: AsyncEngine, *, interval: float = 2.0, timeout: float | None = None
    ) -> None:
        self.engine = engine
        self.interval = interval
        # A check that does not answer in time counts as lost: a leader cut off from the
        # database must not go on leading while another replica takes the lock.
        self.timeout = interval if timeout is None else timeout
        # Lost at T, a leader notices by T + interval + 2 * timeout at the latest (a check that
        # had just begun, the pause, a check that times out); one more interval absorbs
        # scheduling delays.
        self.takeover_delay = 2 * self.interval + 2 * self.timeout
        self.is_leader = False
        self._conn: AsyncConnection | None = None
        self._pid: int | None = None  # the backend that took the lock
        self._locked_at: float | None = None  # monotonic time the lock was taken

    async def run(self, on_gain: Hook, on_lose: Hook, stop: asyncio.Event) -> None:
        if self.engine.dialect.name != "postgresql":
            self.is_leader = True
            await on_gain()
            await stop.wait()
            return
        try:
            while not stop.is_set():
                try:
                    await self._step(on_gain, on_lose)
                except Exception as exc:  # a database blip: give leadership up, try again later
                    log.warning("leadership check failed: %s", type(exc).__name__)
                    await self._step_down(on_lose)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
        finally:
            await self._step_down(on_lose)

    async def _step(self, on_gain: Hook, on_lose: Hook) -> None:
        if self._locked_at is None:
            if await asyncio.wait_for(self._try_acquire(), timeout=self.timeout):
                self._locked_at = time.monotonic()
                log.info("took the leadership lock; leading in %.1f s", self.takeover_delay)
            return
        if not await self._held():
            await self._step_down(on_lose)
            return
        if not self.is_leader and time.monotonic() - self._locked_at >= self.takeover_delay:
            self.is_leader = True
            log.info("this replica is now the leader")
            await on_gain()
            # The lock may have gone while on_gain ran: look now, not an interval later.
            if not await self._held():
                await self._step_down(on_lose)

    async def _try_acquire(self) -> bool:
        if self._conn is None:
            self._conn = await self.engine.connect()
        got, pid = (await self._conn.execute(_TRY_LOCK, {"k": LOCK_KEY})).one()
        await self._conn.commit()  # the lock is per session, not per transaction
        if got:
            self._pid = pid
        return bool(got)

    async def _held(self) -> bool:
        try:
            return await asyncio.wait_for(self._still_held(), timeout=self.timeout)
        except Exception as exc:
            log.warning("leadership check failed: %s", type(exc).__name__)
            return False

    async def _still_held(self) -> bool:
        conn = self._conn
        # An invalidated Connection would fetch a new DBAPI connection from the pool on its next
        # use and answer from a session that holds nothing: never let it.
        if conn is None or conn.closed or conn.invalidated:
            log.warning("the leadership connection was replaced or closed")
            return False
        pid, held = (await conn.execute(_HOLDS_LOCK, {"k": LOCK_KEY})).one()
        await conn.commit()
        if pid != self._pid:
            log.warning("the leadership connection now talks to another backend")
            return False
        if not held:
            log.warning("the leadership lock is no longer held by this session")
            return False
        return True

    async def _step_down(self, on_lose: Hook) -> None:
        was_leader, self.is_leader = self.is_leader, False
        self._locked_at = None
        try:
            if was_leader:
                log.warning("this replica is no longer the leader")
                await on_lose()
        except Exception:  # the lock must still be released, and the loop go on
            log.exception("stepping down failed")
        finally:
            await self._close()

    async def _close(self) -> None:
        self._pid = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                # Invalidate rather than return it to the pool: a pooled connection would keep
                # holding the session-level lock.
                await conn.invalidate()
                await conn.close()
            except Exception as exc:  # already broken: nothing left to release
                log.debug("closing the leadership connection failed: %s", type(exc).__name__)
