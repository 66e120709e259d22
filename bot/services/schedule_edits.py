"""A therapist changing single deliveries: skip, send now, postpone, and `/add` a one-off.

Only a pending delivery (scheduled or held) can change. Each change is an UPDATE guarded by
the state and due time the therapist saw, so a prompt the dispatcher claimed a moment ago, or
a second press of the same button, changes nothing and says why.
"""

from __future__ import annotations

import difflib
import enum
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dates import local
from bot.db.crypto import Cipher
from bot.db.models import Delivery, DeliveryState, Patient, PatientStatus, PromptKind
from bot.domain import schedule
from bot.domain.content import ContentLibrary, Prompt
from bot.i18n import N_, _, ngettext
from bot.services import audit
from bot.services.access import own_patient
from bot.services.console import delivery_version, numbered_delivery
from bot.services.errors import STALE_BUTTON, NotFound, UserError
from bot.services.sessions import quiet_hours, zone_of

MAX_CUSTOM_TEXT = 1000
MORNING = time(9, 0)
# A single word is taken as a prompt key, never sent as free text: a typo in a key must not
# reach the patient as a message. One word of one's own goes in quotes.
QUOTES = {'"': '"', "“": "”", "'": "'", "‘": "’", "«": "»"}
_PENDING = (DeliveryState.SCHEDULED, DeliveryState.HELD)
_NOT_JOINED = (PatientStatus.INVITED, PatientStatus.ONBOARDING, PatientStatus.DECLINED)
# A prompt past changing, by its state (one sentence each, for the translators).
_UNCHANGEABLE = {
    DeliveryState.MISSED: N_("This prompt is missed and can't be changed."),
    DeliveryState.CANCELLED: N_("This prompt is cancelled and can't be changed."),
    DeliveryState.FAILED: N_("This prompt is failed and can't be changed."),
    DeliveryState.UNKNOWN: N_("This prompt is unknown and can't be changed."),
    DeliveryState.PARTIAL: N_("This prompt is partial and can't be changed."),
}


class Postpone(enum.Enum):
    HOUR = "hour"  # one hour later than it was due
    MORNING = "morning"  # 09:00 on the day after it was due (patient's time)


@dataclass(frozen=True)
class Changed:
    delivery_id: int
    patient_id: int
    pseudonym: str
    timezone: str | None
    prompt_key: str | None
    state: DeliveryState
    due_at: datetime
    deferred: bool = False  # send-now landed in quiet hours and waits for their end


def bad_offset(exc: schedule.OffsetError) -> UserError:
    message = str(exc)
    return UserError(message[:1].upper() + message[1:] + ".")


async def _owned_delivery(
    session: AsyncSession, therapist_id: int, delivery_id: int
) -> tuple[Delivery, Patient]:
    row = (
        await session.execute(
            select(Delivery, Patient)
            .join(Patient, Patient.id == Delivery.patient_id)
            .where(
                Delivery.id == delivery_id,
                Patient.therapist_id == therapist_id,
                Patient.status != PatientStatus.ERASED,
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound(_(STALE_BUTTON))
    return row[0], row[1]


def _require_pending(delivery: Delivery, version: int | None) -> None:
    state = delivery.state
    if state in (DeliveryState.SENT, DeliveryState.ANSWERED):
        raise UserError(_("This prompt has already been sent; nothing was changed."))
    if state is DeliveryState.SENDING:
        raise UserError(_("This prompt is being sent right now; nothing was changed."))
    if state is DeliveryState.SKIPPED:
        raise UserError(_("This prompt was already skipped."))
    if state not in _PENDING:
        known = _UNCHANGEABLE.get(state)
        if known is not None:
            raise UserError(_(known))
        # i18n: {state} is a delivery state's code word (e.g. "missed")
        raise UserError(_("This prompt is {state} and can't be changed.").format(state=state.value))
    if version is not None and version != delivery_version(delivery):
        raise UserError(
            _(
                "This message is out of date: the prompt has been moved since. "
                "Nothing was changed; open the schedule again."
            )
        )


async def _apply(
    session: AsyncSession, delivery: Delivery, now: datetime, **values: object
) -> None:
    """UPDATE only if nobody (the dispatcher, another press) changed the row since we read it."""
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery.id,
            Delivery.state == delivery.state,
            Delivery.due_at == delivery.due_at,
        )
        .values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if (result.rowcount or 0) != 1:  # type: ignore[attr-defined]
        raise UserError(
            _("This prompt changed a moment ago (it may be on its way); nothing was done.")
        )
    await session.refresh(delivery)


def _changed(delivery: Delivery, patient: Patient, deferred: bool = False) -> Changed:
    return Changed(
        delivery.id,
        patient.id,
        patient.pseudonym,
        patient.timezone,
        delivery.prompt_key,
        delivery.state,
        delivery.due_at,
        deferred,
    )


async def pending_delivery(
    session: AsyncSession, *, therapist_id: int, delivery_id: int, version: int | None
) -> int:
    """The patient id of a delivery the therapist may still change (e.g. to offer postponing)."""
    delivery, patient = await _owned_delivery(session, therapist_id, delivery_id)
    _require_pending(delivery, version)
    return patient.id


async def skip(
    session: AsyncSession,
    *,
    therapist_id: int,
    delivery_id: int,
    version: int | None,
    now: datetime,
) -> Changed:
    delivery, patient = await _owned_delivery(session, therapist_id, delivery_id)
    _require_pending(delivery, version)
    await _apply(session, delivery, now, state=DeliveryState.SKIPPED)
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="delivery.skip",
        patient_id=patient.id,
        delivery_id=delivery.id,
    )
    return _changed(delivery, patient)


async def send_now(
    session: AsyncSession,
    *,
    therapist_id: int,
    delivery_id: int,
    version: int | None,
    now: datetime,
) -> Changed:
    """Due now; the dispatcher sends it at its next look. Quiet hours still hold: inside them
    it waits for their end (the dispatcher would otherwise count it as late)."""
    delivery, patient = await _owned_delivery(session, therapist_id, delivery_id)
    _require_pending(delivery, version)
    return await _send_soon(session, therapist_id, delivery, patient, now, "delivery.send_now")


async def send_again(
    session: AsyncSession,
    *,
    therapist_id: int,
    delivery_id: int,
    version: int | None,
    now: datetime,
) -> Changed:
    """Re-send a prompt whose first send has an unknown outcome (Telegram may or may not have
    delivered it). Only a therapist decides this, knowing the patient may get it twice; it is
    the only way an `unknown` prompt is ever sent again, and it is audit-logged as such."""
    delivery, patient = await _owned_delivery(session, therapist_id, delivery_id)
    if delivery.state is not DeliveryState.UNKNOWN:
        raise UserError(_("This prompt's outcome is known now; nothing was changed."))
    if version is not None and version != delivery_version(delivery):
        raise UserError(_("This message is out of date; open the schedule again."))
    return await _send_soon(
        session,
        therapist_id,
        delivery,
        patient,
        now,
        "delivery.send_again",
        reason="therapist chose to re-send after an unknown outcome",  # not shown: audit detail
        last_error=delivery.last_error,
        sent_at=None,
        telegram_message_id=None,
        claimed_by=None,
        lease_until=None,
    )


async def _send_soon(
    session: AsyncSession,
    therapist_id: int,
    delivery: Delivery,
    patient: Patient,
    now: datetime,
    action: str,
    reason: str | None = None,
    last_error: str | None = None,
    **values: object,
) -> Changed:
    name = patient.pseudonym
    if patient.status is PatientStatus.PAUSED:
        raise UserError(
            _("{name} is paused. Resume first (/resume {name}), then send.").format(name=name)
        )
    if patient.status is PatientStatus.UNREACHABLE:
        raise UserError(_("{name} has blocked the bot; nothing can be sent.").format(name=name))
    if patient.status is PatientStatus.STOPPED:
        raise UserError(
            _("{name} has stopped all messages; nothing can be sent.").format(name=name)
        )
    if patient.status is not PatientStatus.ACTIVE:
        raise UserError(_("{name} hasn't finished joining yet.").format(name=name))
    tz = zone_of(patient)
    due = schedule.defer_quiet(now, tz, quiet_hours(patient))
    old = delivery.due_at
    # A prompt waiting out a retry backoff goes now too: the therapist asked for it.
    await _apply(
        session, delivery, now, state=DeliveryState.SCHEDULED, due_at=due, retry_at=None, **values
    )
    details: dict[str, object] = {"old_due": old.isoformat(), "new_due": due.isoformat()}
    if reason is not None:
        details.update(reason=reason, previous_error=last_error)
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action=action,
        patient_id=patient.id,
        delivery_id=delivery.id,
        **details,
    )
    return _changed(delivery, patient, deferred=due > now)


def postponed_time(
    how: Postpone, due_at: datetime, now: datetime, tz: ZoneInfo, quiet: schedule.QuietHours
) -> datetime:
    """A button's postponement, counted like `/postpone`'s: see `postpone_base`."""
    base = postpone_base(due_at, now)
    if how is Postpone.HOUR:
        target = base + timedelta(hours=1)
    else:
        day = base.astimezone(tz).date() + timedelta(days=1)
        target = schedule.resolve_local(datetime.combine(day, MORNING), tz)
    return schedule.defer_quiet(target, tz, quiet)


def postpone_base(due_at: datetime, now: datetime) -> datetime:
    """Postponing counts from the time the prompt was due — or from now, if that has passed
    (a held prompt): "+1 hour" always means an hour later than it would have gone."""
    return max(due_at, now)


async def postpone(
    session: AsyncSession,
    *,
    therapist_id: int,
    delivery_id: int,
    version: int | None,
    how: Postpone,
    now: datetime,
) -> Changed:
    delivery, patient = await _owned_delivery(session, therapist_id, delivery_id)
    _require_pending(delivery, version)
    tz = zone_of(patient)
    due = postponed_time(how, delivery.due_at, now, tz, quiet_hours(patient))
    return await _move(session, therapist_id, delivery, patient, due, how.value, now)


async def postpone_to_offset(
    session: AsyncSession,
    *,
    therapist_id: int,
    number: int,
    offset_text: str,
    pseudonym: str | None,
    now: datetime,
) -> Changed:
    """`/postpone [pseudonym] <n> <offset>`: number n of the schedule view seen last, moved to
    its due time + offset (SPEC offset grammar, `@HH:MM` in the patient's time zone). It never
    moves a prompt earlier."""
    try:
        offset = schedule.parse_offset(offset_text)
    except schedule.OffsetError as exc:
        raise bad_offset(exc) from None
    delivery_id = await numbered_delivery(
        session, therapist_id=therapist_id, number=number, pseudonym=pseudonym, now=now
    )
    delivery, patient = await _owned_delivery(session, therapist_id, delivery_id)
    try:
        _require_pending(delivery, None)
    except UserError as exc:
        raise UserError(
            # i18n: {problem} is a whole sentence saying why prompt #{number} can't change
            _("#{number}: {problem}").format(number=number, problem=exc.message)
        ) from None
    tz = zone_of(patient)
    base = postpone_base(delivery.due_at, now)
    due = schedule.defer_quiet(schedule.step_time(offset, base, tz), tz, quiet_hours(patient))
    if due <= delivery.due_at:
        when = local(delivery.due_at, patient.timezone)
        raise UserError(
            # i18n: {offset} is what the therapist typed, like +1d@10:00
            _(
                "#{number} is due {when}; {offset} from then is not later, and a postponement "
                "only moves a prompt later. Use a bigger offset, or skip it."
            ).format(number=number, when=when, offset=offset)
        )
    return await _move(session, therapist_id, delivery, patient, due, str(offset), now)


async def _move(
    session: AsyncSession,
    therapist_id: int,
    delivery: Delivery,
    patient: Patient,
    due: datetime,
    how: str,
    now: datetime,
) -> Changed:
    old = delivery.due_at
    await _apply(session, delivery, now, due_at=due)
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="delivery.postpone",
        patient_id=patient.id,
        delivery_id=delivery.id,
        how=how,
        old_due=old.isoformat(),
        new_due=due.isoformat(),
    )
    return _changed(delivery, patient)


# --- /add -----------------------------------------------------------------------------------


def _unquoted(what: str) -> str | None:
    """The words inside quotes that wrap the whole text, or None when it is not quoted."""
    if len(what) >= 2 and QUOTES.get(what[0]) == what[-1]:
        return what[1:-1].strip()
    return None


def parse_what(what: str, content: ContentLibrary) -> tuple[Prompt | None, str]:
    """`/add`'s last part: a prompt key, or the therapist's own words (two words or more, or
    anything in quotes). A lone word that is not a key is refused with the nearest keys."""
    what = what.strip()
    quoted = _unquoted(what)
    if quoted is not None:
        if not quoted:
            raise UserError(_("Say what to send: a prompt key or your own words."))
        return None, quoted
    if not what:
        raise UserError(_("Say what to send: a prompt key or your own words."))
    prompt = content.prompts.get(what)
    if prompt is not None:
        return prompt, what
    if len(what.split()) >= 2:
        return None, what
    near = difflib.get_close_matches(what.lower(), list(content.prompts), n=3, cutoff=0.5)
    if near:
        # i18n: {keys} is a comma-separated list of prompt keys
        problem = _(
            "There is no prompt “{what}”. Did you mean {keys}? To send your own words, write a "
            "sentence, or put a single word in quotes."
        ).format(what=what, keys=", ".join(near))
    else:
        problem = _(
            "There is no prompt “{what}”. Prompt keys are listed in /templates. To send your own "
            "words, write a sentence, or put a single word in quotes."
        ).format(what=what)
    raise UserError(problem)


@dataclass(frozen=True)
class Added:
    delivery_id: int
    pseudonym: str
    timezone: str
    due_at: datetime
    kind: PromptKind
    prompt_key: str | None  # None: the therapist's own words, sent as a reflection
    held: bool  # the patient is paused or unreachable: it waits with their other prompts


async def add_prompt(
    session: AsyncSession,
    *,
    therapist_id: int,
    pseudonym: str,
    offset_text: str,
    what: str,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> Added:
    """One extra prompt at now + offset: a prompt key, or free text (≤ 1000 characters)."""
    patient = await own_patient(session, therapist_id, pseudonym)
    name = patient.pseudonym
    if patient.status in _NOT_JOINED:
        raise UserError(_("{name} hasn't finished joining yet.").format(name=name))
    if patient.status is PatientStatus.STOPPED:
        raise UserError(_("{name} has stopped all messages; nothing was added.").format(name=name))
    try:
        offset = schedule.parse_offset(offset_text)
    except schedule.OffsetError as exc:
        raise bad_offset(exc) from None
    prompt, what = parse_what(what, content)
    if prompt is None and len(what) > MAX_CUSTOM_TEXT:
        raise UserError(
            ngettext(
                "Your text is {n} character; please keep it within {limit}.",
                "Your text is {n} characters; please keep it within {limit}.",
                len(what),
            ).format(n=len(what), limit=MAX_CUSTOM_TEXT)
        )
    tz = zone_of(patient)
    due = schedule.defer_quiet(schedule.step_time(offset, now, tz), tz, quiet_hours(patient))
    held = patient.status in (PatientStatus.PAUSED, PatientStatus.UNREACHABLE)
    delivery = Delivery(
        patient_id=patient.id,
        session_id=None,
        step_index=None,
        offset=str(offset),
        prompt_key=prompt.key if prompt is not None else None,
        kind=PromptKind(prompt.kind) if prompt is not None else PromptKind.REFLECTION,
        custom_text_enc=cipher.encrypt(what) if prompt is None else None,
        state=DeliveryState.HELD if held else DeliveryState.SCHEDULED,
        due_at=due,
        planned_at=now,
        updated_at=now,
    )
    session.add(delivery)
    await session.flush()
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="delivery.add",
        patient_id=patient.id,
        delivery_id=delivery.id,
        offset=str(offset),
        prompt_key=delivery.prompt_key,
        custom=prompt is None,
    )
    return Added(delivery.id, name, tz.key, due, delivery.kind, delivery.prompt_key, held)
