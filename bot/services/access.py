"""Who may see which patient: a therapist finds only their own patients, by pseudonym or by
the id a button carried; anything else reads as "no such patient", never "not yours"."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import queries
from bot.db.models import Patient, PatientStatus
from bot.i18n import _
from bot.services.errors import STALE_BUTTON, NotFound


def no_patient(pseudonym: str) -> NotFound:
    shown = pseudonym if len(pseudonym) <= 40 else pseudonym[:39] + "…"
    return NotFound(_("You have no patient called “{pseudonym}”.").format(pseudonym=shown))


async def own_patient(session: AsyncSession, therapist_id: int, pseudonym: str) -> Patient:
    """The therapist's patient by pseudonym; anything else reads as "no such patient"."""
    patient = await queries.patient_of(session, therapist_id, pseudonym)
    if patient is None:
        raise no_patient(pseudonym)
    return patient


async def own_patient_by_id(session: AsyncSession, therapist_id: int, patient_id: int) -> Patient:
    """The therapist's patient by the id a button carried (never trusted on its own)."""
    patient = await session.scalar(
        select(Patient).where(
            Patient.id == patient_id,
            Patient.therapist_id == therapist_id,
            Patient.status != PatientStatus.ERASED,
        )
    )
    if patient is None:
        raise NotFound(_(STALE_BUTTON))
    return patient
