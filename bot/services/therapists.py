"""Clinic-side management of therapists (the `afterglow therapist …` verbs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.identity import TelegramUser
from bot.db.models import Alert, Patient, PatientStatus, Therapist
from bot.services import audit, participation
from bot.services.errors import NotFound, UserError

# Prompts held while a patient had no therapist: on take-over, those due within this long are
# still sent; older ones are missed (the usual grace rule).
RELEASE_GRACE = timedelta(hours=6)


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
        raise UserError("name must be 1 to 120 characters")  # not shown: CLI
    return name


async def add(session: AsyncSession, *, user: TelegramUser, name: str, now: datetime) -> int:
    telegram_id = user.id
    if telegram_id <= 0:
        raise UserError("telegram id must be a positive number")  # not shown: CLI
    patient = await session.scalar(
        select(Patient.id).where(Patient.telegram_index.in_(user.indexes))
    )
    if patient is not None:
        raise UserError("that Telegram account is enrolled as a patient")  # not shown: CLI
    existing = await session.scalar(
        select(Therapist).where(Therapist.telegram_user_id == telegram_id)
    )
    if existing is not None:
        raise UserError(
            f"telegram id {telegram_id} is already therapist #{existing.id}"  # not shown: CLI
        )
    therapist = Therapist(name=_clean_name(name), telegram_user_id=telegram_id, created_at=now)
    session.add(therapist)
    try:
        await session.flush()
    except IntegrityError:
        raise UserError(
            f"telegram id {telegram_id} is already registered"  # not shown: CLI
        ) from None
    audit.record(session, at=now, actor="operator", action="therapist.add", id=therapist.id)
    return therapist.id


async def confirm_chat(
    session: AsyncSession, *, therapist_id: int, chat_id: int, now: datetime
) -> bool:
    """The therapist's own /start: their private chat now receives alerts. True the first
    time (a therapist added by id until now reached nobody; their alerts went to on-call)."""
    therapist = await session.get(Therapist, therapist_id)
    if therapist is None or therapist.chat_id == chat_id:
        return False
    therapist.chat_id = chat_id
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist.id),
        action="therapist.chat_confirmed",
    )
    return True


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


# Patients who still depend on a therapist: someone must take them over or hold them.
_ACTIVE_CARE = (
    PatientStatus.INVITED,
    PatientStatus.ONBOARDING,
    PatientStatus.ACTIVE,
    PatientStatus.PAUSED,
    PatientStatus.UNREACHABLE,
)


async def _one(session: AsyncSession, ident: str) -> Therapist:
    ident = ident.strip().lstrip("#")
    query = select(Therapist).where(
        Therapist.id == int(ident) if ident.isdigit() else Therapist.name == ident
    )
    found = (await session.scalars(query)).all()
    if not found:
        raise NotFound(f"no therapist {ident!r}")  # not shown: CLI
    if len(found) > 1:
        raise UserError(
            f"{len(found)} therapists are called {ident!r}: use the id"  # not shown: CLI
        )
    return found[0]


@dataclass(frozen=True)
class Deactivated:
    id: int
    name: str
    reassigned: int  # patients moved to `to_name`
    held: int  # patients whose prompts are held until someone takes them over
    alerts_moved: int  # open alerts now with the new therapist
    to_name: str | None


async def deactivate(
    session: AsyncSession,
    *,
    ident: str,
    now: datetime,
    reassign_to: str | None = None,
    hold: bool = False,
) -> Deactivated:
    """Stop a therapist using the bot. Their patients in care must go somewhere: to another
    therapist (`reassign_to`; open alerts go too) or on hold (prompts held, patients told
    nothing; crisis alerts go to on-call at once). Running it again on an inactive therapist
    moves whoever is still with them, so held patients can be taken over later."""
    therapist = await _one(session, ident)
    patients = (
        await session.scalars(
            select(Patient)
            .where(Patient.therapist_id == therapist.id, Patient.status.in_(_ACTIVE_CARE))
            .order_by(Patient.id)
        )
    ).all()
    if reassign_to is None and not hold and patients:
        raise UserError(
            f"therapist #{therapist.id} ({therapist.name}) has {len(patients)} patient(s) in "
            "care: add --reassign-to THERAPIST to move them, "  # not shown: CLI
            "or --hold to hold their prompts"
        )
    if reassign_to is not None and hold:
        raise UserError("choose one: --reassign-to THERAPIST or --hold")  # not shown: CLI
    target: Therapist | None = None
    if reassign_to is not None:
        target = await _one(session, reassign_to)
        if target.id == therapist.id or not target.active:
            raise UserError(
                f"therapist #{target.id} ({target.name}) cannot take them over"  # not shown: CLI
            )
        taken = set(
            await session.scalars(
                select(Patient.pseudonym).where(Patient.therapist_id == target.id)
            )
        )
        clash = sorted(p.pseudonym for p in patients if p.pseudonym in taken)
        if clash:
            raise UserError(
                f"therapist #{target.id} already has patients called {', '.join(clash)}: "
                "rename one first"  # not shown: CLI
            )
    therapist.active = False
    reassigned = held = moved = 0
    for patient in patients:
        if target is not None:
            patient.therapist_id = target.id
            reassigned += 1
            if patient.status is PatientStatus.PAUSED and await participation.held_by_operator(
                session, patient
            ):
                await participation.resume(
                    session, patient=patient, actor="operator", now=now, grace=RELEASE_GRACE
                )
        elif patient.status in (PatientStatus.ACTIVE, PatientStatus.UNREACHABLE):
            if patient.status is PatientStatus.ACTIVE:
                await participation.pause(
                    session, patient=patient, until=None, actor="operator", now=now
                )
            held += 1
    if target is not None:
        result = await session.execute(
            update(Alert)
            .where(Alert.therapist_id == therapist.id, Alert.acknowledged_at.is_(None))
            .values(therapist_id=target.id, notified_at=None)
        )
        moved = int(result.rowcount or 0)  # type: ignore[attr-defined]
    audit.record(
        session,
        at=now,
        actor="operator",
        action="therapist.deactivate",
        id=therapist.id,
        reassigned_to=target.id if target is not None else None,
        reassigned=reassigned,
        held=held,
    )
    return Deactivated(
        therapist.id,
        therapist.name,
        reassigned,
        held,
        moved,
        target.name if target is not None else None,
    )
