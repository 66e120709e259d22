"""Bot messages in staff chats that show a patient's words, kept so /forgetme can delete them.

Telegram lets a bot delete its own messages for 48 hours after sending; older ones stay in
the therapist's or on-call chat, which `docs/operations.md` says plainly.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Alert, StaffMessage

DELETABLE_FOR = timedelta(hours=48)


def shown(
    session: AsyncSession,
    *,
    patient_id: int,
    chat_id: int,
    message_id: int,
    kind: str,
    now: datetime,
) -> None:
    session.add(
        StaffMessage(
            patient_id=patient_id, chat_id=chat_id, message_id=message_id, kind=kind, sent_at=now
        )
    )


async def alert_shown(
    session: AsyncSession,
    *,
    alert_id: int,
    chat_id: int,
    message_id: int,
    kind: str,
    now: datetime,
) -> int | None:
    """Record an alert's message; returns the alert's patient (None if the alert is gone)."""
    patient_id = await session.scalar(select(Alert.patient_id).where(Alert.id == alert_id))
    if patient_id is not None:
        shown(
            session,
            patient_id=patient_id,
            chat_id=chat_id,
            message_id=message_id,
            kind=kind,
            now=now,
        )
    return patient_id


async def take_deletable(
    session: AsyncSession, *, patient_id: int, now: datetime
) -> list[tuple[int, int]]:
    """(chat, message) pairs still deletable; every record of the patient goes either way."""
    rows = await session.execute(
        select(StaffMessage.chat_id, StaffMessage.message_id)
        .where(StaffMessage.patient_id == patient_id, StaffMessage.sent_at > now - DELETABLE_FOR)
        .order_by(StaffMessage.id)
    )
    found = [(int(chat), int(message)) for chat, message in rows.all()]
    await session.execute(delete(StaffMessage).where(StaffMessage.patient_id == patient_id))
    return found
