"""The one place that moves a patient's pending deliveries: when their time zone or quiet
hours change or a planned session moves (`replan_pending`, `change_quiet_hours`), when their
prompts are held (a pause, a blocked bot: `hold_pending`) and when held ones come back
(`release_held`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import queries
from bot.db.models import Delivery, DeliveryState, Patient, PatientStatus, TreatmentSession
from bot.domain import schedule
from bot.services.sessions import quiet_hours, zone_of


def _untouched(
    delivery: Delivery, start: datetime | None, tz: ZoneInfo, quiet: schedule.QuietHours
) -> schedule.Planned | None:
    """The delivery as its template step, if it is still where its session planned it; None
    for a one-off or a step someone moved by hand (those keep their instant)."""
    if start is None or not delivery.offset:
        return None
    try:
        offset = schedule.parse_offset(delivery.offset, allow_before=True)
        every = schedule.Every.parse(delivery.every) if delivery.every else None
    except (schedule.OffsetError, schedule.DurationError):
        return None
    step = schedule.Planned(delivery.id, offset, delivery.due_at, every, delivery.occurrence or 0)
    planned = schedule.defer_quiet(step.natural(start, tz), tz, quiet)
    return step if planned == delivery.due_at else None


@dataclass(frozen=True)
class Moved:
    """A planned session whose start a therapist moved."""

    session_id: int
    old_start: datetime
    new_start: datetime


async def replan_pending(
    session: AsyncSession,
    patient: Patient,
    *,
    old_tz: ZoneInfo,
    new_tz: ZoneInfo,
    old_quiet: schedule.QuietHours,
    new_quiet: schedule.QuietHours,
    now: datetime,
    moved: Moved | None = None,
    grace: timedelta = schedule.DEFAULT_MISFIRE_GRACE,
) -> int:
    """The one re-planning function: a zone change, a quiet-hours change, a moved session.

    Template steps still at their planned time are recomputed from their offset (and repeat)
    in the new zone and quiet hours (a `+1d@09:00` step stays 09:00 local, across DST too);
    the moved session's steps are recomputed from its new start, and its preparation steps
    that can no longer be sent are skipped (or, moved later, come back). Hand-moved steps and
    one-offs keep their instant unless it now falls in quiet hours. A held delivery already
    past due is left to `resume` and its grace rule, which a settings change must not get
    around. Returns how many deliveries changed."""
    pending = [
        d
        for d in await queries.pending_deliveries(session, patient.id)
        if d.state is DeliveryState.SCHEDULED or d.due_at > now
    ]
    if moved is not None:
        pending += await _skipped_preparation(session, moved.session_id)
    if not pending:
        return 0
    starts = await _starts(session, {d.session_id for d in pending if d.session_id is not None})
    if moved is not None:
        starts[moved.session_id] = moved.old_start
    groups: dict[int | None, list[schedule.Planned]] = {}
    for d in pending:
        start = starts.get(d.session_id) if d.session_id is not None else None
        step = _untouched(d, start, old_tz, old_quiet)
        key = d.session_id if step is not None else None
        groups.setdefault(key, []).append(step or schedule.Planned(d.id, None, d.due_at))
    by_id = {d.id: d for d in pending}
    changed = 0
    for session_id, planned in groups.items():
        if moved is not None and session_id == moved.session_id:
            plan = schedule.replan_session_moved(
                planned, moved.new_start, new_tz, new_quiet, now, grace=grace
            )
        else:
            start = starts[session_id] if session_id is not None else now  # unused: one-offs
            plan = schedule.replan_zone(planned, start, old_tz, new_tz, new_quiet, now)
        changed += _apply(plan, by_id, patient, now)
    return changed


def _apply(
    plan: schedule.Replan, by_id: dict[int, Delivery], patient: Patient, now: datetime
) -> int:
    waiting = DeliveryState.SCHEDULED if patient.status is PatientStatus.ACTIVE else None
    changed = 0
    for delivery_id, due in plan.moved.items():
        delivery = by_id[delivery_id]
        delivery.due_at, delivery.updated_at = due, now
        if delivery.state is DeliveryState.SKIPPED:  # a preparation step possible again
            delivery.state = waiting or DeliveryState.HELD
        changed += 1
    for delivery_id in plan.skipped:
        if by_id[delivery_id].state is not DeliveryState.SKIPPED:
            by_id[delivery_id].state, by_id[delivery_id].updated_at = DeliveryState.SKIPPED, now
            changed += 1
    for delivery_id in plan.missed:
        by_id[delivery_id].state, by_id[delivery_id].updated_at = DeliveryState.MISSED, now
        changed += 1
    for delivery_id in plan.unchanged:
        delivery = by_id[delivery_id]
        if delivery.state is DeliveryState.SKIPPED and delivery.due_at > now:
            delivery.state, delivery.updated_at = waiting or DeliveryState.HELD, now
            changed += 1
    return changed


async def _starts(session: AsyncSession, session_ids: set[int]) -> dict[int, datetime]:
    if not session_ids:
        return {}
    rows = await session.execute(
        select(TreatmentSession.id, TreatmentSession.started_at).where(
            TreatmentSession.id.in_(session_ids)
        )
    )
    return {row[0]: row[1] for row in rows.all()}


async def _skipped_preparation(session: AsyncSession, session_id: int) -> list[Delivery]:
    """A moved session's preparation steps skipped at planning: a later start may allow them."""
    rows = await session.scalars(
        select(Delivery)
        .where(
            Delivery.session_id == session_id,
            Delivery.state == DeliveryState.SKIPPED,
            Delivery.offset.like("-%"),
        )
        .with_for_update()
    )
    return list(rows)


async def change_quiet_hours(
    session: AsyncSession, patient: Patient, quiet: schedule.QuietHours, *, now: datetime
) -> int:
    """New quiet hours for a patient row the caller holds locked; pending deliveries leave the
    new window. Returns how many moved."""
    old = quiet_hours(patient)
    patient.quiet_start, patient.quiet_end = quiet.start, quiet.end
    tz = zone_of(patient)
    return await replan_pending(
        session, patient, old_tz=tz, new_tz=tz, old_quiet=old, new_quiet=quiet, now=now
    )


async def hold_pending(session: AsyncSession, patient: Patient, *, now: datetime) -> int:
    """Every scheduled delivery of the patient waits (a pause, a bot the patient blocked)."""
    result = await session.execute(
        update(Delivery)
        .where(Delivery.patient_id == patient.id, Delivery.state == DeliveryState.SCHEDULED)
        .values(state=DeliveryState.HELD, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Released:
    """Held deliveries after a release: each one is counted in exactly one field."""

    sent_soon: int  # due now: goes out at the next dispatcher tick
    missed: int  # more than the grace window late: marked missed, never sent
    rescheduled: int  # still in the future (or waiting for the end of quiet hours)


async def release_held(
    session: AsyncSession, patient: Patient, *, now: datetime, grace: timedelta
) -> Released:
    """Held deliveries follow the grace rule (`schedule.resume`): more than `grace` late is
    missed, the rest go out now (or after quiet hours) or keep their time."""
    held = (
        await session.scalars(
            select(Delivery)
            .where(Delivery.patient_id == patient.id, Delivery.state == DeliveryState.HELD)
            .order_by(Delivery.due_at, Delivery.id)
        )
    ).all()
    plan = schedule.resume(
        [schedule.Planned(d.id, None, d.due_at) for d in held],
        now,
        grace,
        zone_of(patient),
        quiet_hours(patient),
    )
    missed = set(plan.missed)
    sent_soon = rescheduled = 0
    for delivery in held:
        delivery.updated_at = now
        if delivery.id in missed:
            delivery.state = DeliveryState.MISSED
            continue
        delivery.due_at = plan.moved.get(delivery.id, delivery.due_at)
        delivery.state = DeliveryState.SCHEDULED
        delivery.retry_at = None  # a retry planned before the hold is not a reason to wait now
        if delivery.due_at <= now:
            sent_soon += 1
        else:
            rescheduled += 1
    return Released(sent_soon=sent_soon, missed=len(missed), rescheduled=rescheduled)
