"""The once-only update guard's statements: an update id is recorded in the transaction of
its effects, so a redelivered update (webhook retry, a re-read polling batch) changes nothing.

Prebuilt Core statements: they run for every update.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.db.models import ProcessedUpdate

_PROCESSED: Table = ProcessedUpdate.__table__  # type: ignore[assignment]
_SEEN = select(_PROCESSED.c.update_id).where(_PROCESSED.c.update_id == bindparam("update_id"))
_RECORD = insert(_PROCESSED)


class AlreadyRecorded(Exception):
    """Another transaction recorded this update first (a concurrent duplicate)."""


async def seen(conn: AsyncConnection, update_id: int) -> bool:
    return (await conn.execute(_SEEN, {"update_id": update_id})).first() is not None


async def record(session: AsyncSession, update_id: int, now: datetime) -> None:
    """Record in the caller's transaction; `AlreadyRecorded` if it already holds the id."""
    try:
        await session.execute(_RECORD, {"update_id": update_id, "processed_at": now})
    except IntegrityError:
        raise AlreadyRecorded(update_id) from None
