"""Group commit of the dispatcher's writes: the `sending` mark before each API call and the
outcome after it.

Every send still has its mark committed before the call and its outcome committed after it
(prompts are at-most-once), but the marks and outcomes of all concurrent sends share
transactions: at most one commit runs at a time, and whatever is asked for while it runs goes
into the next one. Unthrottled that is one transaction per many sends — the per-statement and
per-transaction cost, not the database, is what bounded the dispatcher (docs/performance.md).
At Telegram's pace it is about two small ones per send: the mark is asked for only once the
rate limiter admits the request (so `sending` means it may really have left), and the answer
is back and committed before the next request is admitted, so marks and outcomes seldom meet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.db.models import DeliveryState
from bot.db.queries import DELIVERIES

# Built once: compiling a statement per send was a third of the dispatcher's CPU.
_MARK_SENDING = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id.in_(bindparam("ids", expanding=True)),
        DELIVERIES.c.state == DeliveryState.SCHEDULED,
        DELIVERIES.c.claimed_by == bindparam("instance"),
        # A postpone committed after the claim moved it out of reach: not due any more.
        DELIVERIES.c.due_at <= bindparam("now"),
        # A claim that ran out (a long 429 pause) is decided afresh — grace, quiet hours —
        # by the next claim instead of being sent late.
        DELIVERIES.c.lease_until > bindparam("now"),
    )
    .values(
        state=DeliveryState.SENDING,
        attempts=DELIVERIES.c.attempts + 1,
        lease_until=bindparam("lease_until"),
        updated_at=bindparam("now"),
    )
    .returning(DELIVERIES.c.id)
)

# One row per parameter set (executemany); every outcome sets the same columns.
_RECORD_OUTCOME = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id == bindparam("o_id"),
        DELIVERIES.c.state == DeliveryState.SENDING,
    )
    .values(
        state=bindparam("o_state"),
        sent_at=bindparam("o_sent_at"),
        telegram_message_id=bindparam("o_message_id"),
        last_error=bindparam("o_error"),
        retry_at=bindparam("o_retry_at"),
        remind_at=bindparam("o_remind_at"),
        closes_at=bindparam("o_closes_at"),
        claimed_by=None,
        lease_until=None,
        updated_at=bindparam("o_now"),
    )
)


@dataclass(frozen=True)
class SendResult:
    """How one send ended, as the row should read afterwards."""

    delivery_id: int
    state: DeliveryState
    now: datetime
    sent_at: datetime | None = None
    message_id: int | None = None
    error: str | None = None
    retry_at: datetime | None = None
    remind_at: datetime | None = None  # a sent prompt's first reminder, if it has one
    closes_at: datetime | None = None  # and the end of its answer window

    def params(self) -> dict[str, object]:
        return {
            "o_id": self.delivery_id,
            "o_state": self.state,
            "o_sent_at": self.sent_at,
            "o_message_id": self.message_id,
            "o_error": self.error,
            "o_retry_at": self.retry_at,
            "o_remind_at": self.remind_at,
            "o_closes_at": self.closes_at,
            "o_now": self.now,
        }


async def record_outcomes(conn: AsyncConnection, outcomes: list[SendResult]) -> None:
    """Write outcomes inside the caller's transaction (also used alone, e.g. with a block)."""
    if outcomes:
        await conn.execute(_RECORD_OUTCOME, [outcome.params() for outcome in outcomes])


class Ledger:
    """Collects marks and outcomes from concurrent sends and commits them together.

    `mark_sending` returns only once the mark is committed — True if the row was still ours to
    send; `record` queues an outcome and returns a future that completes once it is committed.
    A failed commit raises in every caller that waits for it.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        instance: str,
        lease: timedelta,
        now: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._instance = instance
        self._lease = lease
        self._now = now
        self._marks: list[tuple[int, asyncio.Future[bool]]] = []
        self._outcomes: list[tuple[SendResult, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        # Held for the tick: a pool checkout (and PostgreSQL's pre-ping) per commit was a
        # round trip per group on the critical path.
        self._conn: AsyncConnection | None = None
        self.commits = 0  # for tests and benchmarks: how many transactions the writes took

    async def mark_sending(self, delivery_id: int) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._marks.append((delivery_id, future))
        self._wake()
        return await future

    def record(self, outcome: SendResult) -> asyncio.Future[None]:
        """Queue an outcome; the future completes once it is committed. A mark asked for
        after this call lands in the same commit or a later one, never an earlier one, so a
        sender may hand its slot to the next send without waiting: the rows `sending` in the
        database never outnumber the slots."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outcomes.append((outcome, future))
        self._wake()
        return future

    async def close(self) -> None:
        """End of the tick (or its cancellation at shutdown): stop the writer, fail whatever
        it never got to, and give the connection back."""
        writer = self._writer
        if writer is not None and not writer.done():
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        leftover: list[asyncio.Future[Any]] = [future for _, future in self._marks]
        leftover += [future for _, future in self._outcomes]
        for future in leftover:
            if not future.done():
                future.cancel()
        self._marks, self._outcomes = [], []
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    def _wake(self) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            while self._marks or self._outcomes:
                # One turn of the loop lets sends that finish together join this commit.
                await asyncio.sleep(0)
                marks, self._marks = self._marks, []
                outcomes, self._outcomes = self._outcomes, []
                await self._commit(marks, outcomes)
        finally:
            self._writer = None

    async def _commit(
        self,
        marks: list[tuple[int, asyncio.Future[bool]]],
        outcomes: list[tuple[SendResult, asyncio.Future[None]]],
    ) -> None:
        try:
            now = self._now()
            marked: set[int] = set()
            if self._conn is None:
                self._conn = await self._engine.connect()
            conn = self._conn
            async with conn.begin():
                # Outcomes first: a chat's next prompt is only marked after its last one's fate.
                await record_outcomes(conn, [outcome for outcome, _ in outcomes])
                if marks:
                    result = await conn.execute(
                        _MARK_SENDING,
                        {
                            "ids": [delivery_id for delivery_id, _ in marks],
                            "instance": self._instance,
                            "now": now,
                            "lease_until": now + self._lease,
                        },
                    )
                    marked = set(result.scalars())
            self.commits += 1
        except BaseException as exc:
            await self._discard_connection()
            waiters: list[asyncio.Future[Any]] = [future for _, future in marks]
            waiters += [future for _, future in outcomes]
            for waiter in waiters:
                if waiter.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    waiter.cancel()
                else:
                    waiter.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for delivery_id, mark in marks:
            if not mark.done():  # a waiter cancelled (shutdown) needs no answer
                mark.set_result(delivery_id in marked)
        for _, done in outcomes:
            if not done.done():
                done.set_result(None)

    async def _discard_connection(self) -> None:
        """After a failure the connection may be broken: the next commit takes a fresh one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()
