"""Logging a treatment session and planning its deliveries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dates import local
from bot.db import queries
from bot.db.models import (
    PENDING_STATES,
    DeliveryState,
    Patient,
    PatientStatus,
    PromptKind,
    SessionState,
    Template,
    TemplateStep,
    TreatmentSession,
)
from bot.domain import schedule
from bot.domain.content import ContentLibrary
from bot.domain.content import Template as ContentTemplate
from bot.domain.content import TemplateStep as ContentStep
from bot.i18n import _, ngettext
from bot.services import audit, own_templates
from bot.services.errors import STALE_BUTTON, NotFound, UserError

DEFAULT_TEMPLATE = "standard"
TEMPLATES: Table = Template.__table__  # type: ignore[assignment]
HOW_FAR = timedelta(days=30)  # a session logged further back is almost surely a typo
PLAN_AHEAD = timedelta(days=180)  # a course is weeks; half a year ahead covers maintenance
# Two sessions of one patient closer than this are a double entry, not a course.
MIN_APART = timedelta(hours=3)


@dataclass(frozen=True)
class PlannedItem:
    due_at: datetime
    kind: str
    prompt_key: str
    step: int = 0  # index in the template: a recurring step's repeats share it
    every: str | None = None  # a recurring step's repeat ("1d")
    preparation: bool = False  # before the session (a negative offset)


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
    planned: bool = False  # in the future: it becomes the anchor at its start
    skipped_preparation: int = 0  # preparation steps whose time had passed at planning


class NeedsConfirmation(UserError):
    """A back-dated session whose steps are mostly in the past: nothing was written; the
    therapist sees what would happen and confirms (or not)."""

    def __init__(self, preview: SessionPlan) -> None:
        super().__init__(_("Most of this session's prompts are already too late to send."))
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
        raise UserError(
            _("“{text}” is not a date and time like 2026-03-14 16:30.").format(text=text)
        ) from None


def _remind_column(step: ContentStep) -> str | None:
    """ "24h,48h"; "" for an explicit `remind: []`; None for the kind's default."""
    if step.remind is None:
        return None
    return ",".join(schedule.format_duration(delay) for delay in step.remind)


def _step_columns(step: ContentStep) -> dict[str, str]:
    """What makes two versions of a step different, for the snapshot's digest."""
    columns = {"offset": str(step.offset), "prompt": step.prompt_key}
    if step.questionnaire:
        columns["prompt"] = f"questionnaire={step.prompt_key}"
    if step.every is not None:
        columns["every"] = f"every={step.every} count={step.count}"  # not shown: digest
    if step.remind is not None:
        columns["remind"] = f"remind={_remind_column(step)}"
    if step.expires is not None:
        columns["expires"] = f"expires={schedule.format_duration(step.expires)}"
    return columns


async def _snapshot(session: AsyncSession, template: ContentTemplate, now: datetime) -> int:
    """Record exactly which steps a session was planned from, even if the files change later.
    Returns the snapshot's id."""
    canon = "\n".join(" ".join(_step_columns(step).values()).rstrip() for step in template.steps)
    digest = hashlib.sha256(canon.encode()).hexdigest()
    t = TEMPLATES.c
    existing = await session.scalar(select(t.id).where(t.name == template.name, t.digest == digest))
    if existing is not None:
        return int(existing)
    row = Template(name=template.name, digest=digest, created_at=now)
    row.steps = [
        TemplateStep(
            position=i,
            offset=str(step.offset),
            prompt_key=step.prompt_key,
            every=str(step.every) if step.every else None,
            count=step.count,
            remind=_remind_column(step),
            expires=schedule.format_duration(step.expires) if step.expires else None,
        )
        for i, step in enumerate(template.steps)
    ]
    session.add(row)
    await session.flush()
    return row.id


async def check_apart(
    session: AsyncSession,
    patient: Patient,
    start: datetime,
    *,
    planned: bool = True,
    ignore: int | None = None,
) -> None:
    """Refuse a planned session within MIN_APART of another one of the patient's (not
    cancelled), and a logged one that close to a planned one: two plans that near are a
    double entry. Logging again over a session that already happened stays possible (the
    newer one re-anchors the course, e.g. to correct the template)."""
    states = [SessionState.PLANNED, SessionState.STARTED] if planned else [SessionState.PLANNED]
    t = queries.SESSIONS.c
    query = select(t.started_at).where(
        t.patient_id == patient.id,
        t.state.in_(states),
        t.started_at > start - MIN_APART,
        t.started_at < start + MIN_APART,
    )
    if ignore is not None:
        query = query.where(t.id != ignore)
    other = await session.scalar(query.limit(1))
    if other is not None:
        when = local(other, patient.timezone)
        hours = MIN_APART.seconds // 3600
        raise UserError(
            ngettext(
                "{name} already has a session at {when}, less than {hours} hour from this one. "
                "See /sessions {name} to move or cancel it.",
                "{name} already has a session at {when}, less than {hours} hours from this one. "
                "See /sessions {name} to move or cancel it.",
                hours,
            ).format(name=patient.pseudonym, when=when, hours=hours)
        )


def check_horizon(start: datetime, now: datetime) -> None:
    if start < now - HOW_FAR:
        raise UserError(_("A past session can be logged within 30 days of today; check the date."))
    if start > now + PLAN_AHEAD:
        raise UserError(
            ngettext(
                "A session can be planned up to {days} day ahead. Check the date.",
                "A session can be planned up to {days} days ahead. Check the date.",
                PLAN_AHEAD.days,
            ).format(days=PLAN_AHEAD.days)
        )


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
    """Log a session that happened (now, or back-dated) or plan one in the future, and plan
    its deliveries in one statement whatever the template's length.

    A logged session is the anchor at once: the previous sessions' pending steps are
    cancelled. A planned one leaves them running; the dispatcher's tick makes it the anchor
    at its start (`bot.services.course.start_due`). Steps already more than `grace` late
    are marked missed at once (and listed); when that is more than half of them, nothing is
    written unless `confirmed` — NeedsConfirmation carries the preview."""
    if patient_id is not None:
        patient = await session.get(Patient, patient_id)
        if patient is not None and (
            patient.therapist_id != therapist_id or patient.status is PatientStatus.ERASED
        ):
            patient = None
        if patient is None:
            raise NotFound(_(STALE_BUTTON))
    else:
        patient = await queries.patient_of(session, therapist_id, pseudonym or "")
    if patient is None:
        raise NotFound(
            _("You have no patient called “{pseudonym}”. See /help.").format(pseudonym=pseudonym)
        )
    if patient.status in (PatientStatus.INVITED, PatientStatus.ONBOARDING, PatientStatus.DECLINED):
        raise UserError(_("{name} hasn't finished joining yet.").format(name=patient.pseudonym))
    if patient.status is PatientStatus.STOPPED:
        raise UserError(
            _("{name} has stopped all messages; nothing was planned.").format(
                name=patient.pseudonym
            )
        )
    name = template_name or patient.default_template or DEFAULT_TEMPLATE
    template = content.templates.get(name) or await own_templates.find(
        session, therapist_id=therapist_id, name=name, library=content
    )
    if template is None:
        mine = await own_templates.names(session, therapist_id=therapist_id)
        known = ", ".join([*sorted(content.templates), *mine])
        raise UserError(
            # i18n: {known} is a comma-separated list of template names
            _("There is no template “{name}”. Templates: {known}.").format(name=name, known=known)
        )
    tz = zone_of(patient)
    start = start_at or (schedule.resolve_local(local_start, tz) if local_start else now)
    check_horizon(start, now)
    planned = start > now

    quiet = quiet_hours(patient)
    occurrences = schedule.plan_course(
        [step.timing for step in template.steps], start, tz, quiet, now
    )
    # Only a step already due can be too late (`decide` would say WAIT for the rest).
    late = [
        not o.skipped
        and o.at <= now
        and schedule.decide(o.at, now, grace, tz, quiet).action is schedule.Action.MISS
        for o in occurrences
    ]
    steps = template.steps

    def item(o: schedule.Occurrence) -> PlannedItem:
        step = steps[o.step]
        return PlannedItem(
            o.at,
            content.kind_of(step),
            step.prompt_key,
            o.step,
            str(step.every) if step.every else None,
            step.offset.before,
        )

    if not confirmed and 2 * sum(late) > len(occurrences):
        shown = [
            (item(o), gone) for o, gone in zip(occurrences, late, strict=True) if not o.skipped
        ]
        raise NeedsConfirmation(
            SessionPlan(
                pseudonym=patient.pseudonym,
                timezone=tz.key,
                started_at=start,
                template=template.name,
                items=[i for i, gone in shown if not gone],
                cancelled=0,
                skipped=sum(o.skipped for o in occurrences),
                missed=[i for i, gone in shown if gone],
                patient_id=patient.id,
            )
        )

    if confirmed and await session.scalar(
        select(TreatmentSession.id).where(
            TreatmentSession.patient_id == patient.id,
            TreatmentSession.started_at == start,
            TreatmentSession.state != SessionState.CANCELLED,
        )
    ):
        raise UserError(
            _("This session for {name} is already logged.").format(name=patient.pseudonym)
        )
    await check_apart(session, patient, start, planned=planned)
    cancelled = 0 if planned else await cancel_earlier(session, patient.id, start, now=now)
    snapshot = await _snapshot(session, template, now)
    # Core statements: planning is a hot path (a course plans dozens of rows per session),
    # and nothing here needs the ORM's unit of work (docs/performance.md, "Planning").
    session_id = await session.scalar(
        insert(queries.SESSIONS)
        .values(
            patient_id=patient.id,
            template_id=snapshot,
            template_name=template.name,
            started_at=start,
            logged_by=therapist_id,
            created_at=now,
            state=SessionState.PLANNED if planned else SessionState.STARTED,
            anchored_at=None if planned else now,
        )
        .returning(queries.SESSIONS.c.id)
    )

    waiting = DeliveryState.HELD if patient.status is not PatientStatus.ACTIVE else None

    def state(o: schedule.Occurrence, too_late: bool) -> DeliveryState:
        if o.skipped:
            return DeliveryState.SKIPPED
        if too_late:
            return DeliveryState.MISSED
        return waiting or DeliveryState.SCHEDULED

    columns = [
        {"step_index": i, **_delivery_columns(step), "kind": PromptKind(content.kind_of(step))}
        for i, step in enumerate(steps)
    ]
    rows = [
        {
            **columns[o.step],
            "patient_id": patient.id,
            "session_id": session_id,
            "occurrence": o.occurrence,
            "state": state(o, too_late),
            "due_at": o.at,
            "planned_at": now,
            "updated_at": now,
        }
        for o, too_late in zip(occurrences, late, strict=True)
    ]
    # One INSERT for every delivery (executemany becomes a multi-row statement): planning a
    # 60-repeat template costs the same round trips as a 5-step one (docs/performance.md).
    await session.execute(insert(queries.DELIVERIES), rows)
    await audit.write(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="session.plan" if planned else "session.log",
        patient_id=patient.id,
        session_id=session_id,
        template=template.name,
    )
    planned_rows = [(o, row["state"]) for o, row in zip(occurrences, rows, strict=True)]

    def skipped(preparation: bool) -> int:
        return sum(
            st is DeliveryState.SKIPPED and steps[o.step].offset.before is preparation
            for o, st in planned_rows
        )

    return SessionPlan(
        pseudonym=patient.pseudonym,
        timezone=tz.key,
        started_at=start,
        template=template.name,
        items=[item(o) for o, st in planned_rows if st in PENDING_STATES],
        skipped=skipped(False),
        cancelled=cancelled,
        missed=[item(o) for o, st in planned_rows if st is DeliveryState.MISSED],
        patient_id=patient.id,
        planned=planned,
        skipped_preparation=skipped(True),
    )


def _delivery_columns(step: ContentStep) -> dict[str, object]:
    return {
        "offset": str(step.offset),
        "prompt_key": step.prompt_key,
        "every": str(step.every) if step.every else None,
        "remind": _remind_column(step),
        "expires": schedule.format_duration(step.expires) if step.expires else None,
    }


async def cancel_earlier(
    session: AsyncSession,
    patient_id: int,
    start: datetime,
    *,
    now: datetime,
    due_from: datetime | None = None,
    besides: int | None = None,
) -> int:
    """A session starting at `start` re-anchors the course: the pending steps of the
    patient's sessions that started before it are cancelled. Planned sessions' steps (their
    preparation) and one-offs stay. A planned session reaching its start (`due_from`) leaves
    what was due before it to the usual rule (sent within grace, or missed). Returns how
    many were cancelled."""
    # Core on the tables: no ORM bookkeeping for rows nobody holds as objects here.
    t, d = queries.SESSIONS.c, queries.DELIVERIES.c
    earlier = select(t.id).where(
        t.patient_id == patient_id, t.state == SessionState.STARTED, t.started_at <= start
    )
    if besides is not None:
        earlier = earlier.where(t.id != besides)
    query = (
        update(queries.DELIVERIES)
        .where(
            d.patient_id == patient_id,
            d.session_id.in_(earlier),
            d.state.in_(PENDING_STATES),
        )
        .values(state=DeliveryState.CANCELLED, updated_at=now)
    )
    if due_from is not None:
        query = query.where(d.due_at >= due_from)
    result = await session.execute(query)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
