"""Which due rows a tick takes, and what a crash left behind: the dispatcher's reads and
claims, as prebuilt statements, each with the one reason it is written that way.

The worker decides and sends (bot/dispatch/dispatcher.py); it writes no SQL of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.db.models import Delivery, DeliveryState, Patient

# Core statements on the table: no per-row ORM bookkeeping on the hot path.
from bot.db.queries import DELIVERIES

INTERRUPTED = "outcome unknown: interrupted while sending"


async def recover(session: AsyncSession, *, now: datetime, single: bool) -> int:
    """`sending` rows whose lease ran out turn `unknown` (their outcome cannot be known; they
    are never re-sent). `single`: a lone SQLite process at start-up, where every `sending` row
    and every claim is from its own previous life, so nobody waits for leases to run out."""
    stale = (
        Delivery.id.is_not(None)
        if single
        else or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now)
    )
    result = await session.execute(
        update(Delivery)
        .where(Delivery.state == DeliveryState.SENDING, stale)
        .values(
            state=DeliveryState.UNKNOWN,
            last_error=INTERRUPTED,
            claimed_by=None,
            lease_until=None,
            updated_at=now,
        )
    )
    if single:
        await session.execute(
            update(DELIVERIES)
            .where(
                DELIVERIES.c.state == DeliveryState.SCHEDULED,
                DELIVERIES.c.claimed_by.is_not(None),
            )
            .values(claimed_by=None, lease_until=None)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def due(
    session: AsyncSession, *, now: datetime, batch: int
) -> Sequence[Row[Delivery, Patient]]:
    """Due rows with their patient, oldest first. Locked and skipped by other replicas on
    PostgreSQL; a claim still free or whose lease ran out counts as free."""
    rows = await session.execute(
        select(Delivery, Patient)
        .join(Patient, Patient.id == Delivery.patient_id)
        .where(
            Delivery.state == DeliveryState.SCHEDULED,
            Delivery.due_at <= now,
            or_(Delivery.retry_at.is_(None), Delivery.retry_at <= now),
            or_(Delivery.claimed_by.is_(None), Delivery.lease_until <= now),
        )
        .order_by(Delivery.due_at, Delivery.id)
        .limit(batch)
        .with_for_update(skip_locked=True, of=Delivery)
    )
    return rows.all()


async def settle(
    session: AsyncSession, delivery_id: int, *, now: datetime, values: dict[str, Any]
) -> None:
    """A decision that sends nothing (held, missed, deferred, cancelled, failed). Conditional
    on the state read: a skip, /stop or /forgetme committed in between wins (SQLite has no
    FOR UPDATE to hold the row for us)."""
    await session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.state == DeliveryState.SCHEDULED)
        .values(updated_at=now, **values)
    )


async def claim(
    session: AsyncSession,
    ids: list[int],
    *,
    instance: str,
    now: datetime,
    lease: timedelta,
) -> set[int]:
    """One statement claims the batch; only rows still free come back. They stay
    `scheduled`: each is marked `sending` when the rate limiter admits its request."""
    claimed = await session.execute(
        update(DELIVERIES)
        .where(
            DELIVERIES.c.id.in_(ids),
            DELIVERIES.c.state == DeliveryState.SCHEDULED,
            or_(DELIVERIES.c.claimed_by.is_(None), DELIVERIES.c.lease_until <= now),
        )
        .values(claimed_by=instance, lease_until=now + lease)
        .returning(DELIVERIES.c.id)
    )
    return set(claimed.scalars())


async def release(engine: AsyncEngine, ids: list[int], *, instance: str) -> None:
    """Claims not sent (shutdown, a failed commit) are free again at once, not at lease end."""
    async with engine.begin() as conn:
        await conn.execute(
            update(DELIVERIES)
            .where(
                DELIVERIES.c.id.in_(ids),
                DELIVERIES.c.state == DeliveryState.SCHEDULED,
                DELIVERIES.c.claimed_by == instance,
            )
            .values(claimed_by=None, lease_until=None)
        )
