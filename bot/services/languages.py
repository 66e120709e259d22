"""A patient's language: chosen at the start, changed in /settings, and what happens to
patients whose language the clinic stops offering (they fall back to the default, told once
by a message the dispatcher sends)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.crypto import Cipher
from bot.db.models import Delivery, DeliveryState, Patient, PatientStatus, PromptKind
from bot.domain import languages
from bot.i18n import _
from bot.services import audit
from bot.services.errors import UserError

__all__ = ["change_language", "check_language", "fall_back_removed"]

# Patients who get messages (or will once back): a removed language must not strand them.
_LIVE = (
    PatientStatus.ONBOARDING,
    PatientStatus.ACTIVE,
    PatientStatus.PAUSED,
    PatientStatus.UNREACHABLE,
)


def check_language(code: str, offered: Sequence[str]) -> str:
    language = code.strip().lower()
    if language not in offered:
        names = ", ".join(f"{languages.NAMES[c]} ({c})" for c in offered)
        raise UserError(
            _("That language isn't offered here. You can choose: {names}.").format(names=names)
        )
    return language


async def change_language(
    session: AsyncSession,
    *,
    patient: Patient,
    code: str,
    offered: Sequence[str],
    now: datetime,
) -> str:
    """Set the patient's language; returns it. Bad input changes nothing."""
    language = check_language(code, offered)
    if language != patient.language:
        patient.language = language
        audit.record(
            session,
            at=now,
            actor=audit.as_patient(patient.id),
            action="settings.language",
            patient_id=patient.id,
            language=language,
        )
    return language


async def fall_back_removed(
    session: AsyncSession,
    *,
    offered: Sequence[str],
    default: str,
    notice: Callable[[str], str],
    cipher: Cipher,
    now: datetime,
) -> int:
    """Patients whose language is no longer offered get the default language and one notice
    (`notice(old language)`, written in the default language), queued for the dispatcher.
    Returns how many. Run at start-up: idempotent, since a moved patient's language is
    offered."""
    rows = await session.scalars(
        select(Patient).where(Patient.status.in_(_LIVE), Patient.language.not_in(list(offered)))
    )
    moved = 0
    for patient in rows:
        old = patient.language
        patient.language = default
        held = patient.status in (PatientStatus.PAUSED, PatientStatus.UNREACHABLE)
        session.add(
            Delivery(
                patient_id=patient.id,
                session_id=None,
                step_index=None,
                offset="+0m",
                prompt_key=None,
                kind=PromptKind.EDUCATION,
                custom_text_enc=cipher.encrypt(notice(old)),
                state=DeliveryState.HELD if held else DeliveryState.SCHEDULED,
                due_at=now,
                planned_at=now,
                updated_at=now,
            )
        )
        audit.record(
            session,
            at=now,
            actor="service",  # at start-up, because AFTERGLOW_LANGUAGES changed
            action="settings.language_fallback",
            patient_id=patient.id,
            language=default,
            was=old,
        )
        moved += 1
    return moved
