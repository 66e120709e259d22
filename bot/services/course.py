"""A course of treatment: planned sessions become the anchor at their start, and a therapist
lists, moves or cancels them (`/sessions`).

Planning itself is `sessions.log_session`; re-planning a moved session's steps is
`replanning.replan_pending`, the same function a zone or quiet-hours change goes through.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    PENDING_STATES,
    Delivery,
    DeliveryState,
    Patient,
    SessionState,
    TreatmentSession,
)
from bot.domain import schedule
from bot.i18n import _
from bot.services import audit, replanning
from bot.services.access import own_patient, own_patient_by_id
from bot.services.errors import STALE_BUTTON, NotFound, UserError
from bot.services.sessions import cancel_earlier, check_apart, check_horizon, quiet_hours, zone_of

START_BATCH = 100  # planned sessions anchored per tick; more wait for the next one
MAX_LISTED = 12  # /sessions shows the latest past ones and every planned one up to this

# The move menu: shifts of the patient's wall clock (a day keeps the local time across DST).
SHIFTS: dict[str, tuple[int, str]] = {
    "-1h": (-60, "h"),
    "+1h": (60, "h"),
    "-1d": (-1, "d"),
    "+1d": (1, "d"),
    "+7d": (7, "d"),
}


# --- the dispatcher's tick ------------------------------------------------------------------


async def start_due(session: AsyncSession, *, now: datetime) -> list[int]:
    """Planned sessions whose start has come become the anchor: state `started`, and the
    pending steps of the patient's earlier sessions that fall from this start on are
    cancelled, in the caller's transaction.

    Exactly once across ticks, restarts and replicas: the rows are locked (skipped by another
    replica on PostgreSQL; SQLite has one writer) and the state change is guarded by
    `state = 'planned'`, so a second tick finds nothing; a crash before the commit leaves the
    session planned, cancellations and all, for the next tick. Returns the anchored ids."""
    due = await session.scalars(
        select(TreatmentSession)
        .where(TreatmentSession.state == SessionState.PLANNED, TreatmentSession.started_at <= now)
        .order_by(TreatmentSession.started_at, TreatmentSession.id)
        .limit(START_BATCH)
        .with_for_update(skip_locked=True)
    )
    anchored: list[int] = []
    for treatment in due.all():
        result = await session.execute(
            update(TreatmentSession)
            .where(
                TreatmentSession.id == treatment.id,
                TreatmentSession.state == SessionState.PLANNED,
            )
            .values(state=SessionState.STARTED, anchored_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue
        cancelled = await cancel_earlier(
            session,
            treatment.patient_id,
            treatment.started_at,
            now=now,
            due_from=treatment.started_at,
            besides=treatment.id,
        )
        audit.record(
            session,
            at=now,
            actor="system",
            action="session.start",
            patient_id=treatment.patient_id,
            session_id=treatment.id,
            cancelled=cancelled,
        )
        anchored.append(treatment.id)
    return anchored


# --- /sessions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionLine:
    id: int
    started_at: datetime
    template: str
    state: SessionState
    sent: int  # of its deliveries, sent or answered
    pending: int  # still to come (scheduled or held)
    preparation: int  # of the pending ones, before the session

    @property
    def changeable(self) -> bool:
        return self.state is SessionState.PLANNED


@dataclass(frozen=True)
class SessionList:
    patient_id: int
    pseudonym: str
    timezone: str | None
    planned: list[SessionLine]  # soonest first
    past: list[SessionLine]  # latest first
    more_past: int


async def list_sessions(
    session: AsyncSession,
    *,
    therapist_id: int,
    now: datetime,
    pseudonym: str | None = None,
    patient_id: int | None = None,
) -> SessionList:
    if patient_id is not None:
        patient = await own_patient_by_id(session, therapist_id, patient_id)
    else:
        patient = await own_patient(session, therapist_id, pseudonym or "")
    rows = (
        await session.scalars(
            select(TreatmentSession)
            .where(TreatmentSession.patient_id == patient.id)
            .order_by(TreatmentSession.started_at.desc(), TreatmentSession.id.desc())
        )
    ).all()
    counts = await _delivery_counts(session, [r.id for r in rows])
    lines = [
        SessionLine(
            r.id,
            r.started_at,
            r.template_name,
            r.state,
            counts[r.id]["sent"],
            counts[r.id]["pending"],
            counts[r.id]["preparation"],
        )
        for r in rows
    ]
    planned = [line for line in lines if line.state is SessionState.PLANNED][::-1]
    past = [line for line in lines if line.state is not SessionState.PLANNED]
    room = max(MAX_LISTED - len(planned), 3)
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="sessions.read",
        patient_id=patient.id,
    )
    return SessionList(
        patient.id,
        patient.pseudonym,
        patient.timezone,
        planned[:MAX_LISTED],
        past[:room],
        max(len(past) - room, 0),
    )


async def _delivery_counts(
    session: AsyncSession, session_ids: list[int]
) -> dict[int, Counter[str]]:
    out: dict[int, Counter[str]] = {i: Counter() for i in session_ids}
    if not session_ids:
        return out
    rows = await session.execute(
        select(Delivery.session_id, Delivery.state, Delivery.offset, func.count())
        .where(Delivery.session_id.in_(session_ids))
        .group_by(Delivery.session_id, Delivery.state, Delivery.offset)
    )
    for session_id, state, offset, count in rows.all():
        if session_id is None:
            continue
        if state in (DeliveryState.SENT, DeliveryState.ANSWERED):
            out[session_id]["sent"] += count
        elif state in PENDING_STATES:
            out[session_id]["pending"] += count
            if offset and offset.startswith("-"):
                out[session_id]["preparation"] += count
    return out


@dataclass(frozen=True)
class SessionChange:
    patient_id: int
    session_id: int
    pseudonym: str
    timezone: str | None
    started_at: datetime
    previous_start: datetime | None = None  # a move: where it was
    changed: int = 0  # deliveries re-planned or cancelled


def version(started_at: datetime) -> int:
    """What a button remembers of the session it was drawn for: a press on a message drawn
    before a move is recognised as stale rather than moving the session twice."""
    return int(started_at.timestamp()) // 60


async def _own_session(
    session: AsyncSession, therapist_id: int, session_id: int, seen: int | None
) -> tuple[TreatmentSession, Patient]:
    treatment = await session.get(TreatmentSession, session_id, with_for_update=True)
    if treatment is None:
        raise NotFound(_(STALE_BUTTON))
    patient = await own_patient_by_id(session, therapist_id, treatment.patient_id)
    if seen is not None and seen != version(treatment.started_at):
        raise UserError(
            _(
                "This session was moved since this message was drawn; see /sessions {name} again."
            ).format(name=patient.pseudonym)
        )
    return treatment, patient


def _still_planned(treatment: TreatmentSession, patient: Patient, verb: str) -> None:
    """`verb` is "moved" or "cancelled": what the therapist was about to do."""
    if treatment.state is SessionState.CANCELLED:
        raise UserError(_("This session is already cancelled."))
    if treatment.state is SessionState.STARTED:
        started = (
            _(
                "This session has already started, so it can't be moved. To begin a new "
                "course, log the next session: /session {name}."
            )
            if verb == "moved"
            else _(
                "This session has already started, so it can't be cancelled. To begin a new "
                "course, log the next session: /session {name}."
            )
        )
        raise UserError(started.format(name=patient.pseudonym))


def shifted(start: datetime, shift: str, patient: Patient) -> datetime:
    """`start` moved on the patient's wall clock by one of the SHIFTS."""
    amount, unit = SHIFTS[shift]
    tz = zone_of(patient)
    local = start.astimezone(tz).replace(tzinfo=None, fold=0)
    step = timedelta(minutes=amount) if unit == "h" else timedelta(days=amount)
    return schedule.resolve_local(local + step, tz)


async def move_session(
    session: AsyncSession,
    *,
    therapist_id: int,
    session_id: int,
    shift: str,
    now: datetime,
    grace: timedelta,
    seen: int | None = None,
) -> SessionChange:
    """Move a planned session by one of the SHIFTS and re-plan its steps (the patient is not
    told: they simply get the prompts at their new times). Only a planned session moves, to
    a future time within the planning horizon and not onto another session."""
    if shift not in SHIFTS:
        raise NotFound(_(STALE_BUTTON))
    treatment, patient = await _own_session(session, therapist_id, session_id, seen)
    _still_planned(treatment, patient, "moved")
    old = treatment.started_at
    new = shifted(old, shift, patient)
    if new <= now:
        raise UserError(_("That would put the session in the past; nothing was changed."))
    check_horizon(new, now)
    await check_apart(session, patient, new, ignore=treatment.id)
    tz, quiet = zone_of(patient), quiet_hours(patient)
    changed = await replanning.replan_pending(
        session,
        patient,
        old_tz=tz,
        new_tz=tz,
        old_quiet=quiet,
        new_quiet=quiet,
        now=now,
        moved=replanning.Moved(treatment.id, old, new),
        grace=grace,
    )
    treatment.started_at = new
    treatment.briefed_at = None  # a brief sent for the old time is briefed again for the new
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="session.move",
        patient_id=patient.id,
        session_id=treatment.id,
        shift=shift,
    )
    return SessionChange(
        patient.id, treatment.id, patient.pseudonym, patient.timezone, new, old, changed
    )


async def cancel_session(
    session: AsyncSession,
    *,
    therapist_id: int,
    session_id: int,
    now: datetime,
    seen: int | None = None,
) -> SessionChange:
    """Cancel a planned session and its pending steps; the previous session's steps run on,
    because they were never cancelled (that happens only at a start). A started session
    is history and is not cancelled."""
    treatment, patient = await _own_session(session, therapist_id, session_id, seen)
    _still_planned(treatment, patient, "cancelled")
    result = await session.execute(
        update(Delivery)
        .where(Delivery.session_id == treatment.id, Delivery.state.in_(PENDING_STATES))
        .values(state=DeliveryState.CANCELLED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    treatment.state = SessionState.CANCELLED
    treatment.cancelled_at = now
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="session.cancel",
        patient_id=patient.id,
        session_id=treatment.id,
    )
    return SessionChange(
        patient.id,
        treatment.id,
        patient.pseudonym,
        patient.timezone,
        treatment.started_at,
        changed=int(result.rowcount or 0),  # type: ignore[attr-defined]
    )


async def planned_session(
    session: AsyncSession, *, therapist_id: int, session_id: int, verb: str, seen: int | None
) -> SessionChange:
    """What the move menu or the cancel question shows; refuses as the change itself would."""
    treatment, patient = await _own_session(session, therapist_id, session_id, seen)
    _still_planned(treatment, patient, verb)
    return SessionChange(
        patient.id, treatment.id, patient.pseudonym, patient.timezone, treatment.started_at
    )
