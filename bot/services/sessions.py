"""Logging a treatment session and planning its deliveries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import queries
from bot.db.models import (
    Delivery,
    DeliveryState,
    Patient,
    PatientStatus,
    PromptKind,
    Template,
    TemplateStep,
    TreatmentSession,
)
from bot.domain import schedule
from bot.domain.content import ContentLibrary
from bot.domain.content import Template as ContentTemplate
from bot.services import audit
from bot.services.errors import NotFound, UserError

DEFAULT_TEMPLATE = "standard"
HOW_FAR = timedelta(days=30)  # a session logged further back or ahead is almost surely a typo


@dataclass(frozen=True)
class PlannedItem:
    delivery_id: int
    due_at: datetime
    kind: str
    prompt_key: str


@dataclass(frozen=True)
class SessionPlan:
    pseudonym: str
    timezone: str
    started_at: datetime
    template: str
    items: list[PlannedItem]
    cancelled: int
    skipped: int


def quiet_hours(patient: Patient) -> schedule.QuietHours:
    return schedule.QuietHours(patient.quiet_start, patient.quiet_end)


def parse_local_time(text: str) -> datetime:
    """`YYYY-MM-DD HH:MM` as typed by a therapist (naive: the patient's wall clock)."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
    except ValueError:
        raise UserError(f"“{text}” is not a date and time like 2026-03-14 16:30.") from None


async def _snapshot(session: AsyncSession, template: ContentTemplate, now: datetime) -> Template:
    """Record exactly which steps a session was planned from, even if the files change later."""
    canon = "\n".join(f"{step.offset} {step.prompt_key}" for step in template.steps)
    digest = hashlib.sha256(canon.encode()).hexdigest()
    existing = await session.scalar(
        select(Template).where(Template.name == template.name, Template.digest == digest)
    )
    if existing is not None:
        return existing
    row = Template(name=template.name, digest=digest, created_at=now)
    row.steps = [
        TemplateStep(position=i, offset=str(step.offset), prompt_key=step.prompt_key)
        for i, step in enumerate(template.steps)
    ]
    session.add(row)
    await session.flush()
    return row


async def log_session(
    session: AsyncSession,
    *,
    therapist_id: int,
    pseudonym: str,
    local_start: datetime | None,
    template_name: str | None,
    content: ContentLibrary,
    now: datetime,
) -> SessionPlan:
    patient = await queries.patient_of(session, therapist_id, pseudonym)
    if patient is None:
        raise NotFound(f"You have no patient called “{pseudonym}”. See /help.")
    if patient.status in (PatientStatus.INVITED, PatientStatus.ONBOARDING, PatientStatus.DECLINED):
        raise UserError(f"{patient.pseudonym} hasn't finished joining yet.")
    if patient.status is PatientStatus.STOPPED:
        raise UserError(f"{patient.pseudonym} has stopped all messages; nothing was planned.")
    name = template_name or patient.default_template or DEFAULT_TEMPLATE
    template = content.templates.get(name)
    if template is None:
        known = ", ".join(sorted(content.templates))
        raise UserError(f"There is no template “{name}”. Templates: {known}.")
    tz = ZoneInfo(patient.timezone or "UTC")
    start = schedule.resolve_local(local_start, tz) if local_start is not None else now
    if abs(start - now) > HOW_FAR:
        raise UserError("A session must be within 30 days of today.")

    cancelled = await session.execute(
        update(Delivery)
        .where(
            Delivery.patient_id == patient.id,
            Delivery.session_id.is_not(None),
            Delivery.state.in_([DeliveryState.SCHEDULED, DeliveryState.HELD]),
        )
        .values(state=DeliveryState.CANCELLED, updated_at=now)
    )
    snapshot = await _snapshot(session, template, now)
    treatment = TreatmentSession(
        patient_id=patient.id,
        template_id=snapshot.id,
        template_name=template.name,
        started_at=start,
        logged_by=therapist_id,
        created_at=now,
    )
    session.add(treatment)
    await session.flush()

    slots = schedule.plan([step.offset for step in template.steps], start, tz, quiet_hours(patient))
    waiting = DeliveryState.HELD if patient.status is not PatientStatus.ACTIVE else None
    deliveries = [
        Delivery(
            patient_id=patient.id,
            session_id=treatment.id,
            step_index=index,
            offset=str(step.offset),
            prompt_key=step.prompt_key,
            kind=PromptKind(content.prompt(step.prompt_key).kind),
            state=DeliveryState.SKIPPED if slot.skipped else waiting or DeliveryState.SCHEDULED,
            due_at=slot.at,
            planned_at=now,
            updated_at=now,
        )
        for index, (step, slot) in enumerate(zip(template.steps, slots, strict=True))
    ]
    session.add_all(deliveries)
    await session.flush()
    audit.record(
        session,
        at=now,
        actor=f"therapist:{therapist_id}",
        action="session.log",
        patient_id=patient.id,
        session_id=treatment.id,
        template=template.name,
    )
    return SessionPlan(
        pseudonym=patient.pseudonym,
        timezone=tz.key,
        started_at=start,
        template=template.name,
        items=[
            PlannedItem(d.id, d.due_at, d.kind.value, d.prompt_key or "")
            for d in deliveries
            if d.state is not DeliveryState.SKIPPED
        ],
        skipped=sum(d.state is DeliveryState.SKIPPED for d in deliveries),
        cancelled=cancelled.rowcount or 0,  # type: ignore[attr-defined]
    )
