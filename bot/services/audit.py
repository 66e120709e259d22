"""The audit log: every therapist read of patient data and every admin action."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import AuditEntry


def record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    patient_id: int | None = None,
    **detail: Any,
) -> None:
    """Add an entry to the caller's transaction: it commits with the action it describes."""
    session.add(AuditEntry(at=at, actor=actor, action=action, patient_id=patient_id, detail=detail))
