"""A patient's control over what they receive and what is kept: pause, resume, stop, rejoin,
time zone and quiet hours, and erasure.

`pause` and `resume` serve both sides: the patient's own `/pause` and a therapist's
`/pause <pseudonym>`; `actor` says who asked, and error messages are worded for that person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.db import identity
from bot.db.models import (
    PENDING_STATES,
    Alert,
    AuditEntry,
    Delivery,
    DeliveryState,
    Patient,
    PatientStatus,
    Reply,
    Therapist,
)
from bot.domain import schedule
from bot.domain.timezones import resolve_zone
from bot.i18n import N_, _
from bot.services import audit, disclosures, replanning
from bot.services.errors import STALE_BUTTON, UserError
from bot.services.replanning import Released, hold_pending, release_held, replan_pending
from bot.services.sessions import quiet_hours, zone_of

# Joined and not erased: these may change their settings, stop, or ask for their data.
JOINED = (
    PatientStatus.ACTIVE,
    PatientStatus.PAUSED,
    PatientStatus.STOPPED,
    PatientStatus.UNREACHABLE,
)
# Receiving prompts (or would be, once reachable): these may pause or stop.
RECEIVING = (PatientStatus.ACTIVE, PatientStatus.PAUSED, PatientStatus.UNREACHABLE)
NOT_JOINED = (PatientStatus.INVITED, PatientStatus.ONBOARDING, PatientStatus.DECLINED)
MAX_QUIET = timedelta(hours=16)  # leave at least 8 waking hours for prompts
ERASED_NAME = "~erased-{id}"  # "~" never passes check_pseudonym: the old name can be reused

FINISH_SETUP = N_("Please finish setting up first: choose your time zone.")
ALREADY_STOPPED = N_("You've already stopped all messages. Send /start to receive them again.")


@dataclass(frozen=True)
class ForgetResult:
    therapist_chat_id: int | None
    pseudonym: str  # the name the therapist knew, for their notice
    deleted_replies: int = 0
    # Bot messages in staff chats showing the patient's words, still deletable (chat, message).
    staff_messages: list[tuple[int, int]] = field(default_factory=list)


def _is_self(patient: Patient, actor: str) -> bool:
    return actor == audit.as_patient(patient.id)


async def _lock(session: AsyncSession, patient: Patient) -> None:
    """Re-read the patient row, locked on PostgreSQL, so two taps cannot both act on it."""
    await session.refresh(patient, with_for_update=True)


async def _pause_actor(session: AsyncSession, patient: Patient) -> str | None:
    """Who started the current break, from the audit log (the record of every pause)."""
    return await session.scalar(
        select(AuditEntry.actor)
        .where(AuditEntry.patient_id == patient.id, AuditEntry.action == "patient.pause")
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(1)
    )


async def _paused_by_patient(session: AsyncSession, patient: Patient) -> bool:
    return await _pause_actor(session, patient) == audit.as_patient(patient.id)


async def held_by_operator(session: AsyncSession, patient: Patient) -> bool:
    """The current break was started by the clinic (a therapist deactivated with --hold)."""
    actor = await _pause_actor(session, patient)
    return actor is not None and audit.is_operator(actor)


async def therapist_chat_id(session: AsyncSession, patient: Patient) -> int | None:
    """Where notices about this patient go (None if their therapist is gone or inactive)."""
    therapist = await session.get(Therapist, patient.therapist_id)
    return therapist.reachable_chat if therapist is not None else None


# --- pause and resume -----------------------------------------------------------------------


def _cannot_pause(patient: Patient, by_self: bool) -> str | None:
    name = patient.pseudonym
    if patient.status in RECEIVING:
        return None
    if patient.status is PatientStatus.STOPPED:
        return (
            _(
                "You've stopped all messages, so there is nothing to pause. "
                "Send /start if you'd like to receive them again."
            )
            if by_self
            else _("{name} has stopped all messages; there is nothing to pause.").format(name=name)
        )
    if patient.status is PatientStatus.ERASED:
        return _erased(name, by_self)
    return _(FINISH_SETUP) if by_self else _not_joined(name)


def _erased(name: str, by_self: bool) -> str:
    if by_self:
        return _("This account's data has been erased.")
    return _("{name} has been erased.").format(name=name)


def _not_joined(name: str) -> str:
    return _("{name} hasn't finished joining yet.").format(name=name)


async def pause(
    session: AsyncSession,
    *,
    patient: Patient,
    until: datetime | None,
    actor: str,
    now: datetime,
) -> int:
    """Hold every scheduled delivery until `until` (None: until resumed); returns how many
    were held. Pausing a paused patient only changes when the pause ends."""
    await _lock(session, patient)
    problem = _cannot_pause(patient, _is_self(patient, actor))
    if problem is not None:
        raise UserError(problem)
    if until is not None and until <= now:
        raise UserError(_("A break has to end in the future."))
    patient.status = PatientStatus.PAUSED
    patient.paused_until = until
    held = await hold_pending(session, patient, now=now)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="patient.pause",
        patient_id=patient.id,
        until=until.isoformat() if until is not None else None,
        held=held,
    )
    return held


def _cannot_resume(patient: Patient, by_self: bool) -> str | None:
    name = patient.pseudonym
    if patient.status is PatientStatus.PAUSED:
        return None
    if patient.status is PatientStatus.STOPPED:
        return (
            _("You've stopped all messages. Send /start if you'd like to receive them again.")
            if by_self
            else _("{name} has stopped all messages; only they can start them again.").format(
                name=name
            )
        )
    if patient.status in NOT_JOINED:
        return _(FINISH_SETUP) if by_self else _not_joined(name)
    if patient.status is PatientStatus.ERASED:
        return _erased(name, by_self)
    if by_self:
        return _("You're not on a break: messages are on.")
    return _("{name} isn't paused.").format(name=name)


async def resume(
    session: AsyncSession,
    *,
    patient: Patient,
    actor: str,
    now: datetime,
    grace: timedelta,
) -> Released:
    """Active again. Held deliveries follow the grace rule (`schedule.resume`): more than
    `grace` late is missed, the rest go out now (or after quiet hours) or keep their time."""
    await _lock(session, patient)
    by_self = _is_self(patient, actor)
    problem = _cannot_resume(patient, by_self)
    if problem is not None:
        raise UserError(problem)
    if not by_self and actor != "system" and await _paused_by_patient(session, patient):
        # The patient is in control of their own break; a therapist cannot end it for them.
        raise UserError(
            _("{name} paused messages themselves; only they can resume.").format(
                name=patient.pseudonym
            )
        )
    result = await release_held(session, patient, now=now, grace=grace)
    patient.status = PatientStatus.ACTIVE
    patient.paused_until = None
    audit.record(
        session,
        at=now,
        actor=actor,
        action="patient.resume",
        patient_id=patient.id,
        sent_soon=result.sent_soon,
        missed=result.missed,
        rescheduled=result.rescheduled,
    )
    return result


async def resume_expired(session: AsyncSession, *, now: datetime, grace: timedelta) -> list[int]:
    """Resume every patient whose timed pause has run out; returns their ids."""
    due = (
        await session.scalars(
            select(Patient)
            .where(
                Patient.status == PatientStatus.PAUSED,
                Patient.paused_until.is_not(None),
                Patient.paused_until <= now,
            )
            .order_by(Patient.id)
        )
    ).all()
    resumed: list[int] = []
    for patient in due:
        await resume(session, patient=patient, actor="system", now=now, grace=grace)
        resumed.append(patient.id)
    return resumed


# --- stop and rejoin ------------------------------------------------------------------------


async def _cancel_pending(session: AsyncSession, patient_id: int, now: datetime) -> int:
    result = await session.execute(
        update(Delivery)
        .where(Delivery.patient_id == patient_id, Delivery.state.in_(PENDING_STATES))
        .values(state=DeliveryState.CANCELLED, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def stop(session: AsyncSession, *, patient: Patient, now: datetime) -> None:
    """The patient opts out of everything: pending deliveries are cancelled, not held."""
    await _lock(session, patient)
    if patient.status is PatientStatus.STOPPED:
        raise UserError(_(ALREADY_STOPPED))
    if patient.status not in RECEIVING:
        raise UserError(_("You're not receiving messages, so there is nothing to stop."))
    patient.status = PatientStatus.STOPPED
    patient.paused_until = None
    cancelled = await _cancel_pending(session, patient.id, now)
    audit.record(
        session,
        at=now,
        actor=audit.as_patient(patient.id),
        action="patient.stop",
        patient_id=patient.id,
        cancelled=cancelled,
    )


async def rejoin(session: AsyncSession, *, patient: Patient, now: datetime) -> None:
    """Back after /stop. Nothing is re-planned: the therapist logs the next session."""
    await _lock(session, patient)
    if patient.status is PatientStatus.PAUSED:
        raise UserError(_("You're on a break. Send /resume to continue."))
    if patient.status in (PatientStatus.ACTIVE, PatientStatus.UNREACHABLE):
        raise UserError(_("You're already receiving messages."))
    if patient.status is not PatientStatus.STOPPED:
        raise UserError(_(STALE_BUTTON))
    patient.status = PatientStatus.ACTIVE
    audit.record(
        session,
        at=now,
        actor=audit.as_patient(patient.id),
        action="patient.rejoin",
        patient_id=patient.id,
    )


# --- settings -------------------------------------------------------------------------------


def _check_settings(patient: Patient) -> None:
    if patient.status not in JOINED:
        raise UserError(_(FINISH_SETUP))


async def change_zone(
    session: AsyncSession, *, patient: Patient, zone_text: str, now: datetime
) -> tuple[str, int]:
    """New time zone (a city or an IANA name); template steps keep their local times.
    Returns (zone name, how many pending deliveries moved)."""
    await _lock(session, patient)
    _check_settings(patient)
    zone = resolve_zone(zone_text)
    if zone is None:
        raise UserError(
            _(
                "I couldn't find that time zone. Try a city (like Chicago) or a name like "
                "America/Chicago. Nothing was changed."
            )
        )
    old = zone_of(patient)
    patient.timezone = zone
    quiet = quiet_hours(patient)
    moved = await replan_pending(
        session,
        patient,
        old_tz=old,
        new_tz=ZoneInfo(zone),
        old_quiet=quiet,
        new_quiet=quiet,
        now=now,
    )
    # The zone itself stays out of the audit log: /forgetme must be able to erase it.
    audit.record(
        session,
        at=now,
        actor=audit.as_patient(patient.id),
        action="patient.timezone",
        patient_id=patient.id,
        moved=moved,
    )
    return zone, moved


NO_QUIET_HOURS = ("off", "none", "no")


def parse_quiet_hours(text: str) -> schedule.QuietHours:
    """`HH:MM-HH:MM`, or "off" for none (stored as the same time twice)."""
    if text.strip().lower() in NO_QUIET_HOURS:
        return schedule.QuietHours(time(0, 0), time(0, 0))
    try:
        quiet = schedule.QuietHours.parse(text)
    except ValueError:
        raise UserError(
            _(
                "Quiet hours look like 22:00-07:30 (from-to, 24-hour clock), or “off” for none. "
                "Nothing was changed."
            )
        ) from None
    if _length(quiet) > MAX_QUIET:
        raise UserError(
            _(
                "Quiet hours can be at most 16 hours long, so there is time left for messages. "
                "Nothing was changed."
            )
        )
    return quiet


def _length(quiet: schedule.QuietHours) -> timedelta:
    def minutes(t: time) -> int:
        return t.hour * 60 + t.minute

    return timedelta(minutes=(minutes(quiet.end) - minutes(quiet.start)) % (24 * 60))


async def change_quiet_hours(
    session: AsyncSession, *, patient: Patient, text: str, now: datetime
) -> tuple[schedule.QuietHours, int]:
    """New quiet hours (`HH:MM-HH:MM`); pending deliveries leave the new window.
    Returns (quiet hours, how many pending deliveries moved)."""
    await _lock(session, patient)
    _check_settings(patient)
    quiet = parse_quiet_hours(text)
    moved = await replanning.change_quiet_hours(session, patient, quiet, now=now)
    audit.record(
        session,
        at=now,
        actor=audit.as_patient(patient.id),
        action="patient.quiet_hours",
        patient_id=patient.id,
        moved=moved,
    )
    return quiet, moved


# --- erasure --------------------------------------------------------------------------------


async def forget(session: AsyncSession, *, patient: Patient, now: datetime) -> ForgetResult:
    """Erase on the patient's request: their replies and notes (rows, not just text), the
    therapist's free-text prompts to them, and every personal field. What remains is a
    pseudonymous skeleton (deliveries' times and states, sessions, the audit trail) that
    holds nothing decryptable and no way to reach the person."""
    await _lock(session, patient)
    if patient.status is PatientStatus.ERASED:
        raise UserError(_("Your data has already been erased."))
    if patient.status in (PatientStatus.INVITED, PatientStatus.DECLINED):
        raise UserError(_("There is nothing stored to delete."))
    conn = await session.connection()
    if conn.dialect.name == "sqlite":
        # Overwrite deleted cells with zeros instead of leaving them in free space.
        await conn.exec_driver_sql("PRAGMA secure_delete=ON")  # not shown: SQL
    chat_id = await therapist_chat_id(session, patient)
    pseudonym = patient.pseudonym
    # Alerts stay (the therapist's record that one happened) but hold no text any more.
    await session.execute(
        update(Alert).where(Alert.patient_id == patient.id).values(reply_id=None, text_enc=None)
    )
    staff_messages = await disclosures.take_deletable(session, patient_id=patient.id, now=now)
    deleted = await session.execute(delete(Reply).where(Reply.patient_id == patient.id))
    deleted_replies = int(deleted.rowcount or 0)  # type: ignore[attr-defined]
    cancelled = await _cancel_pending(session, patient.id, now)
    await session.execute(
        update(Delivery)
        .where(Delivery.patient_id == patient.id, Delivery.custom_text_enc.is_not(None))
        .values(custom_text_enc=None, updated_at=now)
    )
    patient.status = PatientStatus.ERASED
    patient.erased_at = now
    patient.pseudonym = ERASED_NAME.format(id=patient.id)
    identity.unlink(patient)
    patient.timezone = None
    patient.consent_version = None
    patient.consent_at = None
    patient.paused_until = None
    patient.quiet_start, patient.quiet_end = (
        schedule.DEFAULT_QUIET_HOURS.start,
        schedule.DEFAULT_QUIET_HOURS.end,
    )
    await session.flush()
    audit.record(
        session,
        at=now,
        actor=audit.as_patient(patient.id),
        action="patient.forget",
        patient_id=patient.id,
        replies=deleted_replies,
        cancelled=cancelled,
        staff_messages=len(staff_messages),
    )
    return ForgetResult(
        therapist_chat_id=chat_id,
        pseudonym=pseudonym,
        deleted_replies=deleted_replies,
        staff_messages=staff_messages,
    )


async def scrub_storage(engine: AsyncEngine) -> None:
    """After an erasure has committed: on SQLite, move the write-ahead log into the database
    and truncate it, so old page images holding the erased rows leave the disk. Best effort
    (a busy reader can keep part of the log); PostgreSQL needs nothing here."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # not shown: SQL
