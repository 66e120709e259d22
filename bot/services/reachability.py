"""A patient who blocks the bot is unreachable: their deliveries wait, their therapist is told
once; unblocking brings the held deliveries back under the grace rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import queries
from bot.db.identity import TelegramUser
from bot.db.models import Patient, PatientStatus, Therapist
from bot.services import audit
from bot.services.replanning import hold_pending, release_held

# A paused or stopped patient who blocks stays paused or stopped; only active ones change.
REACHABLE_AGAIN = PatientStatus.ACTIVE


@dataclass(frozen=True)
class Notice:
    """Whom to tell: set only on the transition, so the therapist hears it once."""

    therapist_chat_id: int | None
    pseudonym: str


async def _therapist_chat(session: AsyncSession, patient: Patient) -> int | None:
    therapist = await session.get(Therapist, patient.therapist_id)
    # Someone who left the clinic hears nothing more about its patients.
    return therapist.reachable_chat if therapist is not None else None


async def mark_unreachable(
    session: AsyncSession, *, patient_id: int, now: datetime
) -> Notice | None:
    patient = await session.get(Patient, patient_id)
    if patient is None or patient.status is not PatientStatus.ACTIVE:
        return None
    patient.status = PatientStatus.UNREACHABLE
    await hold_pending(session, patient, now=now)
    audit.record(
        session, at=now, actor="system", action="patient.unreachable", patient_id=patient.id
    )
    return Notice(await _therapist_chat(session, patient), patient.pseudonym)


async def mark_reachable(
    session: AsyncSession, *, user: TelegramUser, now: datetime, grace: timedelta
) -> Notice | None:
    patient = await queries.patient_by_user(session, user)
    if patient is None or patient.status is not PatientStatus.UNREACHABLE:
        return None
    patient.status = REACHABLE_AGAIN
    await release_held(session, patient, now=now, grace=grace)
    audit.record(session, at=now, actor="system", action="patient.reachable", patient_id=patient.id)
    return Notice(await _therapist_chat(session, patient), patient.pseudonym)
