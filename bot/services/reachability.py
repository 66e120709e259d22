"""A patient who blocks the bot is unreachable: their deliveries wait, their therapist is told
once; unblocking brings the held deliveries back under the grace rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import queries
from bot.db.identity import TelegramUser
from bot.db.models import Delivery, DeliveryState, Patient, PatientStatus, Therapist
from bot.domain import schedule
from bot.services import audit
from bot.services.sessions import quiet_hours

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
    await session.execute(
        update(Delivery)
        .where(Delivery.patient_id == patient.id, Delivery.state == DeliveryState.SCHEDULED)
        .values(state=DeliveryState.HELD, updated_at=now)
    )
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
    held = (
        await session.scalars(
            select(Delivery).where(
                Delivery.patient_id == patient.id, Delivery.state == DeliveryState.HELD
            )
        )
    ).all()
    tz = ZoneInfo(patient.timezone or "UTC")
    plan = schedule.resume(
        [schedule.Planned(d.id, None, d.due_at) for d in held], now, grace, tz, quiet_hours(patient)
    )
    for delivery in held:
        if delivery.id in plan.missed:
            delivery.state = DeliveryState.MISSED
        else:
            delivery.state = DeliveryState.SCHEDULED
            delivery.due_at = plan.moved.get(delivery.id, delivery.due_at)
            delivery.retry_at = None
        delivery.updated_at = now
    audit.record(session, at=now, actor="system", action="patient.reachable", patient_id=patient.id)
    return Notice(await _therapist_chat(session, patient), patient.pseudonym)
