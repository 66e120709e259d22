"""Safety alerts: raised on crisis language or a risk-flagged check-in, delivered to the
therapist at least once, escalated to the on-call chat when nobody acknowledges them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import queries
from bot.db.crypto import Cipher
from bot.db.identity import TelegramUser
from bot.db.models import (
    Alert,
    AlertKind,
    Delivery,
    Patient,
    PatientStatus,
    Reply,
    Therapist,
)
from bot.domain.content import ContentLibrary
from bot.i18n import N_, _
from bot.services import audit, disclosures
from bot.services.errors import STALE_BUTTON, NotFound, UserError
from bot.services.replies import choice_of, item_question, question_text

ALERT_GONE = N_("This alert no longer exists.")
# i18n: who acknowledged an alert, when it was someone in the on-call chat
ON_CALL = N_("on-call")


@dataclass(frozen=True)
class AlertView:
    """Everything needed to word an alert; `text` is patient text, for the alert only."""

    alert_id: int
    kind: AlertKind
    pseudonym: str
    therapist_name: str
    therapist_chat_id: int | None
    timezone: str | None
    created_at: datetime
    text: str  # the message, or for a check-in "question → answer" (plain)
    question: str | None
    answer: str | None
    patient_id: int | None = None
    language: str = "en"  # the patient's: which language the words were most likely in
    worded_in: str = ""  # the language the view's own texts were built in


async def raise_alert(
    session: AsyncSession,
    *,
    patient: Patient,
    reply_id: int | None,
    kind: AlertKind,
    now: datetime,
    text: str | None = None,
    cipher: Cipher | None = None,
    update_id: int | None = None,
) -> int:
    """Record an alert. `text` (the flagged words) is kept encrypted on the alert itself."""
    if text is not None and cipher is None:
        raise ValueError("an alert's text is stored encrypted: pass the cipher")  # not shown: a bug
    alert = Alert(
        patient_id=patient.id,
        therapist_id=patient.therapist_id,
        reply_id=reply_id,
        kind=kind,
        created_at=now,
        text_enc=cipher.encrypt(text) if text is not None and cipher is not None else None,
        update_id=update_id,
    )
    session.add(alert)
    await session.flush()
    audit.record(
        session, at=now, actor="system", action=f"alert.{kind.value}", patient_id=patient.id,
        alert_id=alert.id,
    )  # fmt: skip
    return alert.id


async def crisis_alert_for_user(
    session: AsyncSession,
    *,
    user: TelegramUser,
    text: str,
    cipher: Cipher,
    now: datetime,
    update_id: int | None = None,
) -> int | None:
    """Crisis words from this Telegram user: an alert for their therapist, in its own
    transaction, before and whatever happens to the reply. Covers enrolled patients in any
    state but erased, and someone on the consent screen of a link they opened (the inviting
    therapist's patient). None for a stranger: there is nobody who knows them to alert."""
    patient = await queries.patient_by_user(session, user)
    if patient is None or patient.status is PatientStatus.ERASED:
        invite = await queries.invite_opened_by(session, user, now)
        patient = await session.get(Patient, invite.patient_id) if invite is not None else None
    if patient is None or patient.status in (PatientStatus.ERASED, PatientStatus.DECLINED):
        return None
    return await raise_alert(
        session,
        patient=patient,
        reply_id=None,
        kind=AlertKind.CRISIS,
        now=now,
        text=text,
        cipher=cipher,
        update_id=update_id,
    )


async def link_reply(session: AsyncSession, *, alert_id: int, reply_id: int) -> None:
    await session.execute(update(Alert).where(Alert.id == alert_id).values(reply_id=reply_id))


async def view(
    session: AsyncSession, alert_id: int, *, content: ContentLibrary, cipher: Cipher
) -> AlertView:
    row = (
        await session.execute(
            select(Alert, Patient, Therapist)
            .join(Patient, Patient.id == Alert.patient_id)
            .join(Therapist, Therapist.id == Alert.therapist_id)
            .where(Alert.id == alert_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(_(ALERT_GONE))
    alert, patient, therapist = row
    reply = await session.get(Reply, alert.reply_id) if alert.reply_id else None
    delivery = (
        await session.get(Delivery, reply.delivery_id) if reply and reply.delivery_id else None
    )
    question = answer = None
    if alert.kind is AlertKind.CHECKIN_RISK and reply is not None and delivery is not None:
        question = question_text(delivery, content, cipher)
        prompt = content.prompts.get(delivery.prompt_key or "")
        value = choice_of(reply, cipher) or ""
        answer = (prompt.choice_label(value) if prompt else None) or (value)
        text = f"{question} → {answer}"
    elif alert.kind is AlertKind.QUESTIONNAIRE and reply is not None and delivery is not None:
        question, answer = item_question(reply, delivery, content, cipher)
        text = f"{question} → {answer}"
    elif alert.text_enc is not None:
        text = cipher.decrypt(alert.text_enc)
    elif reply is not None and reply.body_enc is not None:
        text = cipher.decrypt(reply.body_enc)
    else:
        text = _("(the message was erased)")
    return AlertView(
        alert.id,
        alert.kind,
        patient.pseudonym,
        therapist.name,
        therapist.reachable_chat,
        patient.timezone,
        alert.created_at,
        text,
        question,
        answer,
        patient.id,
        patient.language,
    )


async def mark_notified(
    session: AsyncSession, *, alert_id: int, chat_id: int, message_id: int, now: datetime
) -> None:
    await session.execute(
        update(Alert)
        .where(Alert.id == alert_id)
        .values(notified_at=now, therapist_message_id=message_id)
    )
    patient_id = await disclosures.alert_shown(
        session, alert_id=alert_id, chat_id=chat_id, message_id=message_id, kind="alert", now=now
    )
    audit.record(
        session,
        at=now,
        actor="system",
        action="alert.notified",
        patient_id=patient_id,
        alert=alert_id,
        chat=chat_id,
    )


async def unnotified(session: AsyncSession, *, older_than: datetime) -> list[int]:
    """Alerts whose first delivery to the therapist failed: the tick sends them again."""
    rows = await session.scalars(
        select(Alert.id).where(
            Alert.notified_at.is_(None),
            Alert.acknowledged_at.is_(None),
            Alert.created_at <= older_than,
        )
    )
    return list(rows)


async def due_for_escalation(
    session: AsyncSession, *, now: datetime, after: timedelta
) -> list[int]:
    rows = await session.scalars(
        select(Alert.id).where(
            Alert.acknowledged_at.is_(None),
            Alert.escalated_at.is_(None),
            Alert.created_at <= now - after,
        )
    )
    return list(rows)


async def is_escalated(session: AsyncSession, alert_id: int) -> bool:
    alert = await session.get(Alert, alert_id)
    return alert is None or alert.escalated_at is not None or alert.acknowledged_at is not None


async def mark_escalated(
    session: AsyncSession,
    *,
    alert_id: int,
    now: datetime,
    chat_id: int | None,
    message_id: int | None,
) -> None:
    """`chat_id` None: no on-call chat is configured, so the escalation reached nobody; the
    audit entry says so."""
    await session.execute(update(Alert).where(Alert.id == alert_id).values(escalated_at=now))
    patient_id: int | None
    if chat_id is not None and message_id is not None:
        patient_id = await disclosures.alert_shown(
            session,
            alert_id=alert_id,
            chat_id=chat_id,
            message_id=message_id,
            kind="escalation",
            now=now,
        )
    else:
        patient_id = await session.scalar(select(Alert.patient_id).where(Alert.id == alert_id))
    audit.record(
        session,
        at=now,
        actor="system",
        action="alert.escalated",
        patient_id=patient_id,
        alert=alert_id,
        chat=chat_id,
    )


@dataclass(frozen=True)
class Acknowledged:
    alert_id: int
    already: bool
    by_name: str
    at: datetime


async def acknowledge(
    session: AsyncSession,
    *,
    alert_id: int,
    user_id: int,
    chat_id: int,
    oncall_chat_id: int | None,
    now: datetime,
) -> Acknowledged:
    """The patient's own therapist may acknowledge, and anyone in the on-call chat."""
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(_(ALERT_GONE))
    therapist = await session.get(Therapist, alert.therapist_id)
    own = therapist is not None and therapist.telegram_user_id == user_id and therapist.active
    on_call = oncall_chat_id is not None and chat_id == oncall_chat_id
    if not (own or on_call):
        raise UserError(_(STALE_BUTTON))
    if alert.acknowledged_at is not None:
        # Name whoever acknowledged first: a later press never rewrites who that was.
        first = (
            therapist.name
            if alert.acknowledged_as == "therapist" and therapist is not None
            else _(ON_CALL)
        )
        return Acknowledged(alert.id, True, first, alert.acknowledged_at)
    name = therapist.name if own and therapist is not None else _(ON_CALL)
    alert.acknowledged_at = now
    alert.acknowledged_by = user_id
    alert.acknowledged_as = "therapist" if own else "oncall"
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist.id) if own and therapist else f"oncall:{user_id}",
        action="alert.acknowledge",
        patient_id=alert.patient_id,
        alert_id=alert.id,
    )
    return Acknowledged(alert.id, False, name, now)


async def open_for(
    session: AsyncSession,
    *,
    therapist_id: int,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
    patient_id: int | None = None,
) -> list[AlertView]:
    """The therapist's unacknowledged alerts (of one patient, if given), newest first; the
    read is audited, since an alert shows the patient's words."""
    query = (
        select(Alert.id, Alert.patient_id)
        .join(Patient, Patient.id == Alert.patient_id)
        .where(
            Patient.therapist_id == therapist_id,
            Patient.status != PatientStatus.ERASED,
            Alert.acknowledged_at.is_(None),
        )
        .order_by(Alert.created_at.desc(), Alert.id.desc())
    )
    if patient_id is not None:
        query = query.where(Alert.patient_id == patient_id)
    rows = (await session.execute(query)).all()
    views = [
        await view(session, alert_id, content=content, cipher=cipher) for alert_id, _patient in rows
    ]
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="alerts.list",
        patient_id=patient_id,
        alerts=[alert_id for alert_id, _patient in rows],
    )
    return views
