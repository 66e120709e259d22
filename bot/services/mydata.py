"""A patient's own copy of everything stored about them (`/mydata`), decrypted."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import identity
from bot.db.crypto import Cipher
from bot.db.models import (
    Alert,
    AuditEntry,
    Delivery,
    Patient,
    PatientStatus,
    Reply,
    ReplyKind,
    TreatmentSession,
)
from bot.domain.content import ContentLibrary
from bot.i18n import _
from bot.services import audit
from bot.services.errors import UserError
from bot.services.replies import choice_of, question_text
from bot.services.sessions import zone_of

FORMAT = "afterglow-mydata/1"
FILENAME = "afterglow-mydata.json"


def _times(prefix: str, moment: datetime | None, tz: ZoneInfo) -> dict[str, str | None]:
    """`<prefix>_utc` and `<prefix>_local` (ISO 8601, the local one with its UTC offset)."""
    if moment is None:
        return {f"{prefix}_utc": None, f"{prefix}_local": None}
    # To the second: a patient reads these; microseconds are noise to them.
    return {
        f"{prefix}_utc": moment.isoformat(timespec="seconds"),
        f"{prefix}_local": moment.astimezone(tz).isoformat(timespec="seconds"),
    }


def _by(actor: str, patient_id: int) -> str:
    if actor == audit.as_patient(patient_id):
        # i18n: who did something, in the patient's /mydata file
        return _("you")
    if actor.startswith("therapist:"):
        return _("your therapist")
    return _("the clinic")


async def my_data(
    session: AsyncSession,
    *,
    patient: Patient,
    cipher: Cipher,
    content: ContentLibrary,
    now: datetime,
) -> dict[str, Any]:
    """Everything stored about `patient`, JSON-serialisable; the request is audit-logged."""
    if patient.status in (PatientStatus.ERASED, PatientStatus.INVITED, PatientStatus.DECLINED):
        raise UserError(_("There is nothing stored about you."))
    tz = zone_of(patient)
    sessions = (
        await session.scalars(
            select(TreatmentSession)
            .where(TreatmentSession.patient_id == patient.id)
            .order_by(TreatmentSession.started_at, TreatmentSession.id)
        )
    ).all()
    deliveries = (
        await session.scalars(
            select(Delivery)
            .where(Delivery.patient_id == patient.id)
            .order_by(Delivery.due_at, Delivery.id)
        )
    ).all()
    replies = (
        await session.scalars(
            select(Reply)
            .where(Reply.patient_id == patient.id)
            .order_by(Reply.received_at, Reply.id)
        )
    ).all()
    alerts = (
        await session.scalars(
            select(Alert).where(Alert.patient_id == patient.id).order_by(Alert.created_at)
        )
    ).all()
    activity = (
        await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.patient_id == patient.id)
            .order_by(AuditEntry.at, AuditEntry.id)
        )
    ).all()
    prompt_keys = {d.id: d.prompt_key for d in deliveries}
    # What the patient was sent, as plain text: the words, not the key.
    questions = {d.id: question_text(d, content, cipher) for d in deliveries}

    def reply_entry(reply: Reply) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": reply.id,
            "kind": reply.kind.value,
            "delivery_id": reply.delivery_id,
            "prompt_key": prompt_keys.get(reply.delivery_id) if reply.delivery_id else None,
            "question": questions.get(reply.delivery_id) if reply.delivery_id else None,
            **_times("received", reply.received_at, tz),
        }
        if reply.kind is ReplyKind.ITEM:
            entry["item"] = reply.item
            entry["choice_value"] = choice_of(reply, cipher)
            entry["flagged"] = reply.flagged
        elif reply.kind is ReplyKind.CHOICE:
            key = entry["prompt_key"] or ""
            prompt = content.prompts.get(key)
            value = choice_of(reply, cipher) or ""
            entry["choice_value"] = value
            entry["choice_label"] = prompt.choice_label(value) if prompt is not None else None
            entry["flagged"] = reply.flagged
        elif reply.kind is not ReplyKind.ACK:
            entry["text"] = cipher.decrypt(reply.body_enc) if reply.body_enc else ""
            entry["flagged"] = reply.flagged
        return entry

    data: dict[str, Any] = {
        "format": FORMAT,
        **_times("exported", now, tz),
        "about": _(
            "Everything Afterglow stores about you, including your Telegram account and chat "
            "ids. Times are given in UTC and in your time zone. Your therapist can read your "
            "replies and notes."
        ),
        "patient": {
            "pseudonym": patient.pseudonym,
            "telegram_user_id": identity.user_of(patient, cipher),
            "telegram_chat_id": identity.chat_of(patient, cipher),
            "status": patient.status.value,
            "time_zone": patient.timezone,
            "quiet_hours": f"{patient.quiet_start:%H:%M}-{patient.quiet_end:%H:%M}",
            "language": patient.language,
            "consent_version": patient.consent_version,
            **_times("consent", patient.consent_at, tz),
            **_times("paused_until", patient.paused_until, tz),
            **_times("created", patient.created_at, tz),
        },
        "sessions": [
            {
                "id": s.id,
                "template": s.template_name,
                **_times("started", s.started_at, tz),
                **_times("cancelled", s.cancelled_at, tz),
            }
            for s in sessions
        ],
        "deliveries": [
            {
                "id": d.id,
                "session_id": d.session_id,
                "prompt_key": d.prompt_key,
                "kind": d.kind.value,
                "state": d.state.value,
                "question": questions[d.id],
                "custom_text": (
                    cipher.decrypt(d.custom_text_enc) if d.custom_text_enc is not None else None
                ),
                **_times("due", d.due_at, tz),
                **_times("sent", d.sent_at, tz),
                **_times("answered", d.answered_at, tz),
            }
            for d in deliveries
        ],
        "replies": [reply_entry(r) for r in replies if r.kind is not ReplyKind.NOTE],
        "notes": [reply_entry(r) for r in replies if r.kind is ReplyKind.NOTE],
        "alerts": [
            {
                "kind": a.kind.value,
                **_times("created", a.created_at, tz),
                **_times("acknowledged", a.acknowledged_at, tz),
            }
            for a in alerts
        ],
        "activity": [
            {"action": e.action, "by": _by(e.actor, patient.id), **_times("at", e.at, tz)}
            for e in activity
        ],
    }
    audit.record(
        session,
        at=now,
        actor=audit.as_patient(patient.id),
        action="patient.mydata",
        patient_id=patient.id,
        replies=len(replies),
        deliveries=len(deliveries),
    )
    return data
