"""Logging a treatment session and planning its deliveries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import queries
from bot.db.models import (
    PENDING_STATES,
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
from bot.services.errors import STALE_BUTTON, NotFound, UserError

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
    items: list[PlannedItem]  # what will be sent
    cancelled: int
    skipped: int
    missed: list[PlannedItem] = field(default_factory=list)  # already too late to send
    patient_id: int = 0


class NeedsConfirmation(UserError):
    """A back-dated session whose steps are mostly in the past: nothing was written; the
    therapist sees what would happen and confirms (or not)."""

    def __init__(self, preview: SessionPlan) -> None:
        super().__init__("Most of this session's prompts are already too late to send.")
        self.preview = preview


def quiet_hours(patient: Patient) -> schedule.QuietHours:
    return schedule.QuietHours(patient.quiet_start, patient.quiet_end)


def zone_of(patient: Patient) -> ZoneInfo:
    """The patient's zone; UTC until onboarding has asked for it (or after erasure)."""
    return ZoneInfo(patient.timezone or "UTC")


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
    pseudonym: str | None = None,
    patient_id: int | None = None,
    local_start: datetime | None = None,
    start_at: datetime | None = None,
    template_name: str | None,
    content: ContentLibrary,
    grace: timedelta,
    now: datetime,
    confirmed: bool = False,
) -> SessionPlan:
    """Plan a session's deliveries. Steps already more than `grace` late are marked missed
    at once (and listed); when that is more than half of them, nothing is written unless
    `confirmed` — NeedsConfirmation carries the preview."""
    if patient_id is not None:
        patient = await session.get(Patient, patient_id)
        if patient is not None and (
            patient.therapist_id != therapist_id or patient.status is PatientStatus.ERASED
        ):
            patient = None
        if patient is None:
            raise NotFound(STALE_BUTTON)
    else:
        patient = await queries.patient_of(session, therapist_id, pseudonym or "")
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
    tz = zone_of(patient)
    start = start_at or (schedule.resolve_local(local_start, tz) if local_start else now)
    if abs(start - now) > HOW_FAR:
        raise UserError("A session must be within 30 days of today.")

    quiet = quiet_hours(patient)
    slots = schedule.plan([step.offset for step in template.steps], start, tz, quiet)
    late = [
        not slot.skipped
        and schedule.decide(slot.at, now, grace, tz, quiet).action is schedule.Action.MISS
        for slot in slots
    ]
    if not confirmed and 2 * sum(late) > len(slots):
        preview = [
            (PlannedItem(0, slot.at, content.prompt(step.prompt_key).kind, step.prompt_key), gone)
            for step, slot, gone in zip(template.steps, slots, late, strict=True)
            if not slot.skipped
        ]
        raise NeedsConfirmation(
            SessionPlan(
                pseudonym=patient.pseudonym,
                timezone=tz.key,
                started_at=start,
                template=template.name,
                items=[item for item, gone in preview if not gone],
                cancelled=0,
                skipped=sum(slot.skipped for slot in slots),
                missed=[item for item, gone in preview if gone],
                patient_id=patient.id,
            )
        )

    if confirmed and await session.scalar(
        select(TreatmentSession.id).where(
            TreatmentSession.patient_id == patient.id, TreatmentSession.started_at == start
        )
    ):
        raise UserError(f"This session for {patient.pseudonym} is already logged.")
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

    waiting = DeliveryState.HELD if patient.status is not PatientStatus.ACTIVE else None

    def state(slot: schedule.Slot, too_late: bool) -> DeliveryState:
        if slot.skipped:
            return DeliveryState.SKIPPED
        if too_late:
            return DeliveryState.MISSED
        return waiting or DeliveryState.SCHEDULED

    deliveries = [
        Delivery(
            patient_id=patient.id,
            session_id=treatment.id,
            step_index=index,
            offset=str(step.offset),
            prompt_key=step.prompt_key,
            kind=PromptKind(content.prompt(step.prompt_key).kind),
            state=state(slot, too_late),
            due_at=slot.at,
            planned_at=now,
            updated_at=now,
        )
        for index, (step, slot, too_late) in enumerate(
            zip(template.steps, slots, late, strict=True)
        )
    ]
    session.add_all(deliveries)
    await session.flush()
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
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
        items=[_item(d) for d in deliveries if d.state in PENDING_STATES],
        skipped=sum(d.state is DeliveryState.SKIPPED for d in deliveries),
        cancelled=cancelled.rowcount or 0,  # type: ignore[attr-defined]
        missed=[_item(d) for d in deliveries if d.state is DeliveryState.MISSED],
        patient_id=patient.id,
    )


def _item(delivery: Delivery) -> PlannedItem:
    return PlannedItem(delivery.id, delivery.due_at, delivery.kind.value, delivery.prompt_key or "")
