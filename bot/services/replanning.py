"""The one place that moves a patient's pending deliveries: when their time zone or quiet
hours change (`replan_pending`, `change_quiet_hours`), when their prompts are held (a pause, a
blocked bot: `hold_pending`) and when held ones come back (`release_held`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import queries
from bot.db.models import Delivery, DeliveryState, Patient, TreatmentSession
from bot.domain import schedule
from bot.services.sessions import quiet_hours, zone_of


def _untouched_offset(
    delivery: Delivery, start: datetime | None, tz: ZoneInfo, quiet: schedule.QuietHours
) -> schedule.Offset | None:
    """The step's offset if the delivery is still where its session planned it; None for a
    one-off or a step someone moved by hand (those keep their instant)."""
    if start is None or not delivery.offset:
        return None
    try:
        offset = schedule.parse_offset(delivery.offset)
    except schedule.OffsetError:
        return None
    planned = schedule.defer_quiet(schedule.step_time(offset, start, tz), tz, quiet)
    return offset if planned == delivery.due_at else None


async def replan_pending(
    session: AsyncSession,
    patient: Patient,
    *,
    old_tz: ZoneInfo,
    new_tz: ZoneInfo,
    old_quiet: schedule.QuietHours,
    new_quiet: schedule.QuietHours,
    now: datetime,
) -> int:
    """Template steps still at their planned time are recomputed from their offset in the new
    zone and quiet hours (a `+1d@09:00` step stays 09:00 local); hand-moved steps and one-offs
    keep their instant unless it now falls in quiet hours. A held delivery already past due
    is left to `resume` and its grace rule, which a settings change must not get around.
    Returns how many moved."""
    pending = [
        d
        for d in await queries.pending_deliveries(session, patient.id)
        if d.state is DeliveryState.SCHEDULED or d.due_at > now
    ]
    if not pending:
        return 0
    session_ids = {d.session_id for d in pending if d.session_id is not None}
    starts: dict[int, datetime] = {}
    if session_ids:
        rows = await session.execute(
            select(TreatmentSession.id, TreatmentSession.started_at).where(
                TreatmentSession.id.in_(session_ids)
            )
        )
        starts = {row[0]: row[1] for row in rows.all()}
    groups: dict[int | None, list[schedule.Planned]] = {}
    for d in pending:
        start = starts.get(d.session_id) if d.session_id is not None else None
        offset = _untouched_offset(d, start, old_tz, old_quiet)
        key = d.session_id if offset is not None else None
        groups.setdefault(key, []).append(schedule.Planned(d.id, offset, d.due_at))
    by_id = {d.id: d for d in pending}
    moved = 0
    for session_id, planned in groups.items():
        start = starts[session_id] if session_id is not None else now  # unused for one-offs
        plan = schedule.replan_zone(planned, start, old_tz, new_tz, new_quiet, now)
        for delivery_id, due in plan.moved.items():
            by_id[delivery_id].due_at = due
            by_id[delivery_id].updated_at = now
            moved += 1
    return moved


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
