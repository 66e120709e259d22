"""Moving a patient's pending deliveries when their time zone or quiet hours change."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import queries
from bot.db.models import Delivery, DeliveryState, Patient, TreatmentSession
from bot.domain import schedule


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
