"""The therapist's console: their patients at a glance, one patient's card and schedule, and the
per-patient settings (default template, quiet hours), pause and resume.

Every function takes the asking therapist's id and finds only that therapist's patients; a
patient id from a button is looked up the same way, so a replayed or foreign id is simply
"not found". Reads of patient data and every change are written to the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.crypto import Cipher
from bot.db.models import (
    AuditEntry,
    Delivery,
    DeliveryState,
    Patient,
    PatientStatus,
    PromptKind,
    SessionState,
    TreatmentSession,
)
from bot.db.types import UTCDateTime
from bot.domain import schedule
from bot.domain.content import ContentLibrary
from bot.i18n import _, ngettext
from bot.services import audit, participation, replanning
from bot.services.access import own_patient, own_patient_by_id
from bot.services.errors import UserError
from bot.services.scores import Score, patient_scores
from bot.services.sessions import quiet_hours

PAGE_SIZE = 8
UPCOMING_STATES = (DeliveryState.SCHEDULED, DeliveryState.HELD, DeliveryState.SENDING)
RECENT_STATES = (
    DeliveryState.SENT,
    DeliveryState.ANSWERED,
    DeliveryState.MISSED,
    DeliveryState.SKIPPED,
    DeliveryState.CANCELLED,
    DeliveryState.FAILED,
    DeliveryState.UNKNOWN,
)
RECENT_WINDOW = timedelta(days=7)
MAX_UPCOMING = 20  # three buttons each; Telegram allows 100 per keyboard
MAX_RECENT = 12
SCHEDULE_READ = "schedule.read"
# How long a view's numbering stays usable by `/postpone <n> …`.
NUMBERS_VALID = timedelta(hours=24)

# The card's quiet-hours presets; the same start and end means none.
QUIET_PRESETS: tuple[schedule.QuietHours, ...] = (
    schedule.QuietHours(time(21, 0), time(8, 0)),
    schedule.QuietHours(time(22, 0), time(7, 0)),
    schedule.QuietHours(time(23, 0), time(9, 0)),
    schedule.QuietHours(time(0, 0), time(0, 0)),
)


def delivery_version(delivery: Delivery) -> int:
    """What a button remembers about the delivery it was drawn for: a press on a message drawn
    before the delivery was moved is recognised as stale."""
    return int(delivery.due_at.timestamp())


# --- the patient list ---------------------------------------------------------------------


@dataclass(frozen=True)
class PatientSummary:
    id: int
    pseudonym: str
    status: PatientStatus
    timezone: str | None
    quiet: schedule.QuietHours
    default_template: str | None
    last_session: datetime | None
    next_prompt: datetime | None  # the next SCHEDULED delivery
    held: int  # deliveries held by a pause or a block
    unanswered: int  # reflections sent, not answered, still open
    latest_score: Score | None = None  # the newest questionnaire total (on the card only)
    language: str = "en"  # the patient's: the language their answers are in


@dataclass(frozen=True)
class PatientPage:
    rows: list[PatientSummary]
    page: int  # 0-based, clamped to the pages that exist
    pages: int
    total: int


def _summary_query(therapist_id: int) -> Any:
    """Patients with their aggregates: three subqueries joined once, whatever the count."""
    mine = select(Patient.id).where(Patient.therapist_id == therapist_id)
    last = (
        select(
            TreatmentSession.patient_id.label("patient_id"),
            type_coerce(func.max(TreatmentSession.started_at), UTCDateTime()).label("last"),
        )
        .where(
            TreatmentSession.state == SessionState.STARTED, TreatmentSession.patient_id.in_(mine)
        )
        .group_by(TreatmentSession.patient_id)
        .subquery()
    )
    unanswered = and_(
        Delivery.kind == PromptKind.REFLECTION,
        Delivery.state == DeliveryState.SENT,
        Delivery.closed_at.is_(None),
    )
    counts = (
        select(
            Delivery.patient_id.label("patient_id"),
            type_coerce(
                func.min(case((Delivery.state == DeliveryState.SCHEDULED, Delivery.due_at))),
                UTCDateTime(),
            ).label("next"),
            func.sum(case((Delivery.state == DeliveryState.HELD, 1), else_=0)).label("held"),
            func.sum(case((unanswered, 1), else_=0)).label("unanswered"),
        )
        .where(
            Delivery.state.in_([DeliveryState.SCHEDULED, DeliveryState.HELD, DeliveryState.SENT]),
            Delivery.patient_id.in_(mine),
        )
        .group_by(Delivery.patient_id)
        .subquery()
    )
    return (
        select(Patient, last.c.last, counts.c.next, counts.c.held, counts.c.unanswered)
        .outerjoin(last, last.c.patient_id == Patient.id)
        .outerjoin(counts, counts.c.patient_id == Patient.id)
        .where(Patient.therapist_id == therapist_id, Patient.status != PatientStatus.ERASED)
    )


def _summary(row: Any) -> PatientSummary:
    patient, last, next_due, held, unanswered = row
    return PatientSummary(
        id=patient.id,
        pseudonym=patient.pseudonym,
        status=patient.status,
        timezone=patient.timezone,
        quiet=quiet_hours(patient),
        default_template=patient.default_template,
        last_session=last,
        next_prompt=next_due,
        held=int(held or 0),
        unanswered=int(unanswered or 0),
        language=patient.language,
    )


async def summaries(
    session: AsyncSession, *, therapist_id: int
) -> list[tuple[Patient, PatientSummary]]:
    """Every patient of the therapist (not erased) with their aggregates, by pseudonym:
    one query. The caller audits what it shows."""
    result = await session.execute(
        _summary_query(therapist_id).order_by(func.lower(Patient.pseudonym), Patient.id)
    )
    return [(row[0], _summary(row)) for row in result.all()]


async def list_patients(
    session: AsyncSession, *, therapist_id: int, page: int, now: datetime, exact: bool = False
) -> PatientPage:
    """One page of the therapist's patients (not erased), by pseudonym: two queries in all.
    A page past the end is the last one (a button from before a patient left) — or, when the
    therapist typed the number (`exact`), refused with the pages there are."""
    total = int(
        await session.scalar(
            select(func.count())
            .select_from(Patient)
            .where(Patient.therapist_id == therapist_id, Patient.status != PatientStatus.ERASED)
        )
        or 0
    )
    pages = max(1, -(-total // PAGE_SIZE))
    if exact and not 0 <= page < pages:
        raise UserError(
            _("There is only one page of patients: send /patients.")
            if pages == 1
            else ngettext(
                "There is {pages} page of patients: /patients 1 to /patients {pages}.",
                "There are {pages} pages of patients: /patients 1 to /patients {pages}.",
                pages,
            ).format(pages=pages)
        )
    page = min(max(page, 0), pages - 1)
    result = await session.execute(
        _summary_query(therapist_id)
        .order_by(func.lower(Patient.pseudonym), Patient.id)
        .offset(page * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    rows = [_summary(row) for row in result.all()]
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="patients.list",
        page=page,
        count=len(rows),
    )
    return PatientPage(rows, page, pages, total)


async def patient_card(
    session: AsyncSession,
    *,
    therapist_id: int,
    patient_id: int,
    now: datetime,
    content: ContentLibrary | None = None,
    cipher: Cipher | None = None,
) -> PatientSummary:
    """One patient's card; with the content and the cipher, also their latest score."""
    patient = await own_patient_by_id(session, therapist_id, patient_id)
    row = (
        await session.execute(_summary_query(therapist_id).where(Patient.id == patient_id))
    ).one()
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="patient.card",
        patient_id=patient_id,
    )
    card = _summary(row)
    if content is None or cipher is None:
        return card
    scores = await patient_scores(session, patient, content, cipher)
    return replace(card, latest_score=scores[-1] if scores else None)


# --- per-patient settings -----------------------------------------------------------------


async def set_default_template(
    session: AsyncSession,
    *,
    therapist_id: int,
    patient_id: int,
    name: str | None,
    content: ContentLibrary,
    now: datetime,
    cipher: Cipher | None = None,
) -> PatientSummary:
    """None goes back to the clinic default."""
    patient = await own_patient_by_id(session, therapist_id, patient_id)
    if name is not None and name not in content.templates:
        raise UserError(_("There is no template “{name}” any more.").format(name=name))
    old = patient.default_template
    patient.default_template = name
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="patient.default_template",
        patient_id=patient.id,
        old=old,
        new=name,
    )
    await session.flush()
    return await patient_card(
        session,
        therapist_id=therapist_id,
        patient_id=patient_id,
        now=now,
        content=content,
        cipher=cipher,
    )


@dataclass(frozen=True)
class QuietChange:
    card: PatientSummary
    moved: int  # pending deliveries re-planned into the new waking hours


async def set_quiet_hours(
    session: AsyncSession,
    *,
    therapist_id: int,
    patient_id: int,
    quiet: schedule.QuietHours,
    now: datetime,
    content: ContentLibrary | None = None,
    cipher: Cipher | None = None,
) -> QuietChange:
    patient = await own_patient_by_id(session, therapist_id, patient_id)
    # Locked like the patient's own /settings change: the two must not interleave.
    await session.refresh(patient, with_for_update=True)
    old = quiet_hours(patient)
    moved = await replanning.change_quiet_hours(session, patient, quiet, now=now)
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="patient.quiet_hours",
        patient_id=patient.id,
        old=str(old),
        new=str(quiet),
        moved=moved,
    )
    await session.flush()
    card = await patient_card(
        session,
        therapist_id=therapist_id,
        patient_id=patient_id,
        now=now,
        content=content,
        cipher=cipher,
    )
    return QuietChange(card, moved)


# --- the schedule view --------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryLine:
    number: int  # as shown to the therapist (1, 2, 3 …); buttons carry `id`
    id: int
    kind: PromptKind
    prompt_key: str | None
    custom_text: str | None  # the therapist's own words from /add, decrypted
    state: DeliveryState
    due_at: datetime
    sent_at: datetime | None
    answered_at: datetime | None
    version: int
    every: str | None = None  # a recurring step's repeat ("1d")
    repeats: int = 0  # further pending occurrences of the step, folded into this line
    last_due: datetime | None = None  # when the last of them is due
    preparation: bool = False  # before its planned session

    @property
    def changeable(self) -> bool:
        return self.state in (DeliveryState.SCHEDULED, DeliveryState.HELD)


@dataclass(frozen=True)
class ScheduleView:
    patient_id: int
    pseudonym: str
    status: PatientStatus
    timezone: str | None
    upcoming: list[DeliveryLine]
    recent: list[DeliveryLine]
    more_upcoming: int  # not shown (beyond MAX_UPCOMING)
    cancelled: int  # recent cancellations (a newer session replaced them), counted only

    def line(self, delivery_id: int) -> DeliveryLine | None:
        return next((x for x in (*self.upcoming, *self.recent) if x.id == delivery_id), None)


async def schedule_for(
    session: AsyncSession,
    *,
    therapist_id: int,
    pseudonym: str,
    cipher: Cipher,
    now: datetime,
) -> ScheduleView:
    patient = await own_patient(session, therapist_id, pseudonym)
    return await _schedule(session, therapist_id, patient, cipher, now)


async def schedule_by_id(
    session: AsyncSession,
    *,
    therapist_id: int,
    patient_id: int,
    cipher: Cipher,
    now: datetime,
) -> ScheduleView:
    patient = await own_patient_by_id(session, therapist_id, patient_id)
    return await _schedule(session, therapist_id, patient, cipher, now)


async def _schedule(
    session: AsyncSession, therapist_id: int, patient: Patient, cipher: Cipher, now: datetime
) -> ScheduleView:
    # A step skipped before its time is still part of what is coming: listed, marked skipped.
    skipped_ahead = (Delivery.state == DeliveryState.SKIPPED) & (Delivery.due_at > now)
    upcoming = list(
        await session.scalars(
            select(Delivery)
            .where(
                Delivery.patient_id == patient.id,
                Delivery.state.in_(UPCOMING_STATES) | skipped_ahead,
            )
            .order_by(Delivery.due_at, Delivery.id)
        )
    )
    moment = func.coalesce(Delivery.sent_at, Delivery.due_at)
    recent = list(
        await session.scalars(
            select(Delivery)
            .where(
                Delivery.patient_id == patient.id,
                Delivery.state.in_(RECENT_STATES),
                ~skipped_ahead,
                # Unknown outcomes stay in view whatever their age: someone must look at them.
                (moment >= now - RECENT_WINDOW) | (Delivery.state == DeliveryState.UNKNOWN),
            )
            .order_by(moment.desc(), Delivery.id.desc())
        )
    )
    cancelled = sum(1 for d in recent if d.state is DeliveryState.CANCELLED)
    recent = [d for d in recent if d.state is not DeliveryState.CANCELLED][:MAX_RECENT]
    upcoming, later = _fold_repeats(upcoming)
    shown = upcoming[:MAX_UPCOMING]
    lines = [_line(i, d, cipher, later.get(d.id, ())) for i, d in enumerate([*shown, *recent], 1)]
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action=SCHEDULE_READ,
        patient_id=patient.id,
        numbers=[line.id for line in lines],
    )
    return ScheduleView(
        patient_id=patient.id,
        pseudonym=patient.pseudonym,
        status=patient.status,
        timezone=patient.timezone,
        upcoming=lines[: len(shown)],
        recent=lines[len(shown) :],
        more_upcoming=len(upcoming) - len(shown),
        cancelled=cancelled,
    )


def _fold_repeats(upcoming: list[Delivery]) -> tuple[list[Delivery], dict[int, list[Delivery]]]:
    """A recurring step shows its next occurrence (with the buttons); the later ones are
    counted on that line, so a 14-day check-in does not push everything else off the list."""
    first: dict[tuple[int, int], int] = {}
    later: dict[int, list[Delivery]] = {}
    shown: list[Delivery] = []
    for d in upcoming:
        if d.every and d.session_id is not None and d.state in UPCOMING_STATES:
            key = (d.session_id, d.step_index or 0)
            if key in first:
                later[first[key]].append(d)
                continue
            first[key] = d.id
            later[d.id] = []
        shown.append(d)
    return shown, later


def _line(number: int, d: Delivery, cipher: Cipher, later: Sequence[Delivery] = ()) -> DeliveryLine:
    return DeliveryLine(
        number=number,
        id=d.id,
        kind=d.kind,
        prompt_key=d.prompt_key,
        custom_text=cipher.decrypt(d.custom_text_enc) if d.custom_text_enc is not None else None,
        state=d.state,
        due_at=d.due_at,
        sent_at=d.sent_at,
        answered_at=d.answered_at,
        version=delivery_version(d),
        every=d.every,
        repeats=len(later),
        last_due=later[-1].due_at if later else None,
        preparation=bool(d.offset and d.offset.startswith("-")),
    )


async def numbered_delivery(
    session: AsyncSession,
    *,
    therapist_id: int,
    number: int,
    pseudonym: str | None,
    now: datetime,
) -> int:
    """The delivery id behind number `number` in the schedule view this therapist saw last
    (of that patient, if given). The numbering is in the view's audit entry."""
    query = (
        select(AuditEntry)
        .where(
            AuditEntry.actor == audit.as_therapist(therapist_id),
            AuditEntry.action == SCHEDULE_READ,
            AuditEntry.at >= now - NUMBERS_VALID,
        )
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(1)
    )
    if pseudonym is not None:
        patient = await own_patient(session, therapist_id, pseudonym)
        query = query.where(AuditEntry.patient_id == patient.id)
    entry = await session.scalar(query)
    hint = f"/schedule {pseudonym}" if pseudonym else "/schedule <pseudonym>"
    if entry is None:
        raise UserError(
            # i18n: {command} is /schedule with the pseudonym (or <pseudonym>)
            _("Open {command} first: the numbers refer to the prompts listed there.").format(
                command=hint
            )
        )
    numbers: Sequence[object] = entry.detail.get("numbers") or []
    if not 1 <= number <= len(numbers) or not isinstance(numbers[number - 1], int):
        raise UserError(
            _("There is no prompt #{number} in the schedule you opened last ({command}).").format(
                number=number, command=hint
            )
        )
    value = numbers[number - 1]
    assert isinstance(value, int)
    return value


# --- pause and resume ---------------------------------------------------------------------


@dataclass(frozen=True)
class PauseOutcome:
    pseudonym: str
    held: int


@dataclass(frozen=True)
class ResumeOutcome:
    pseudonym: str
    sent_soon: int
    missed: int
    rescheduled: int


async def pause(
    session: AsyncSession, *, therapist_id: int, patient: Patient, now: datetime
) -> PauseOutcome:
    if patient.status is PatientStatus.PAUSED:
        # A repeat (or a stale Pause button) changes nothing, not even a self-chosen end.
        raise UserError(_("{name} is already paused.").format(name=patient.pseudonym))
    held = await participation.pause(
        session, patient=patient, until=None, actor=audit.as_therapist(therapist_id), now=now
    )
    return PauseOutcome(patient.pseudonym, held)


async def resume(
    session: AsyncSession,
    *,
    therapist_id: int,
    patient: Patient,
    grace: timedelta,
    now: datetime,
) -> ResumeOutcome:
    result = await participation.resume(
        session, patient=patient, actor=audit.as_therapist(therapist_id), now=now, grace=grace
    )
    return ResumeOutcome(patient.pseudonym, result.sent_soon, result.missed, result.rescheduled)
