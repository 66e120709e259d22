"""Clinic-side management of therapists (the `afterglow therapist …` verbs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Patient, Therapist
from bot.services import audit
from bot.services.errors import NotFound, UserError


@dataclass(frozen=True)
class TherapistRow:
    id: int
    name: str
    telegram_user_id: int | None
    active: bool
    patients: int


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 120:
        raise UserError("name must be 1 to 120 characters")
    return name


async def add(session: AsyncSession, *, telegram_id: int, name: str, now: datetime) -> int:
    if telegram_id <= 0:
        raise UserError("telegram id must be a positive number")
    patient = await session.scalar(
        select(Patient.id).where(Patient.telegram_user_id == telegram_id)
    )
    if patient is not None:
        raise UserError("that Telegram account is enrolled as a patient")
    existing = await session.scalar(
        select(Therapist).where(Therapist.telegram_user_id == telegram_id)
    )
    if existing is not None:
        raise UserError(f"telegram id {telegram_id} is already therapist #{existing.id}")
    therapist = Therapist(name=_clean_name(name), telegram_user_id=telegram_id, created_at=now)
    session.add(therapist)
    try:
        await session.flush()
    except IntegrityError:
        raise UserError(f"telegram id {telegram_id} is already registered") from None
    audit.record(session, at=now, actor="operator", action="therapist.add", id=therapist.id)
    return therapist.id


async def listing(session: AsyncSession) -> list[TherapistRow]:
    counts = (
        select(Patient.therapist_id, func.count(Patient.id).label("n"))
        .group_by(Patient.therapist_id)
        .subquery()
    )
    rows = await session.execute(
        select(Therapist, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.therapist_id == Therapist.id)
        .order_by(Therapist.id)
    )
    return [TherapistRow(t.id, t.name, t.telegram_user_id, t.active, int(n)) for t, n in rows.all()]


async def deactivate(session: AsyncSession, *, ident: str, now: datetime) -> TherapistRow:
    """By id (`3`) or exact name; their patients stay, but they can no longer use the bot."""
    query = select(Therapist)
    query = query.where(
        Therapist.id == int(ident) if ident.isdigit() else Therapist.name == ident.strip()
    )
    found = (await session.scalars(query)).all()
    if not found:
        raise NotFound(f"no therapist {ident!r}")
    if len(found) > 1:
        raise UserError(f"{len(found)} therapists are called {ident!r}: use the id")
    therapist = found[0]
    therapist.active = False
    audit.record(session, at=now, actor="operator", action="therapist.deactivate", id=therapist.id)
    return TherapistRow(therapist.id, therapist.name, therapist.telegram_user_id, False, 0)
