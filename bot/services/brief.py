"""The pre-session brief: `AFTERGLOW_BRIEF_BEFORE` before a planned session its therapist gets
one message about the patient since their previous session — prompts answered of sent,
check-ins first → latest, questionnaire totals with change, alerts and whether they were
acknowledged, and their answers to the reflections marked `brief: true`.

Once per planned session: the dispatcher's tick claims it (`briefed_at`, a guarded update on
locked rows) in the transaction that reads it, sends after the commit, and gives the claim
back only when Telegram refused the message. A crash between the commit and the send loses
that brief rather than ever sending two. A moved session is briefed again before its new
time; a cancelled one never.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.crypto import Cipher
from bot.db.models import (
    Alert,
    Delivery,
    DeliveryState,
    Patient,
    Reply,
    ReplyKind,
    SessionState,
    Therapist,
    TreatmentSession,
)
from bot.domain.content import ContentLibrary, plain_text
from bot.services import audit
from bot.services.scores import Score, patient_scores

BATCH = 50
WORDS_LIMIT = 300  # per answer: the brief is a glance, /replies has the rest


@dataclass(frozen=True)
class CheckinTrend:
    key: str
    first: int
    latest: int
    count: int


@dataclass(frozen=True)
class Words:
    question: str
    answer: str
    at: datetime


@dataclass(frozen=True)
class Brief:
    session_id: int
    patient_id: int
    pseudonym: str
    timezone: str | None
    therapist_chat_id: int
    starts_at: datetime
    since: datetime  # the previous session's start, or when the patient joined
    sent: int
    answered: int
    checkins: list[CheckinTrend]
    scores: list[Score]
    alerts: int
    acknowledged: int
    words: list[Words]


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    before: timedelta,
    content: ContentLibrary,
    cipher: Cipher,
) -> list[Brief]:
    """The briefs due now, claimed; the caller sends them after committing."""
    if before <= timedelta(0):
        return []
    due = await session.execute(
        select(TreatmentSession, Patient, Therapist)
        .join(Patient, Patient.id == TreatmentSession.patient_id)
        .join(Therapist, Therapist.id == Patient.therapist_id)
        .where(
            TreatmentSession.state == SessionState.PLANNED,
            TreatmentSession.briefed_at.is_(None),
            TreatmentSession.started_at > now,
            TreatmentSession.started_at <= now + before,
        )
        .order_by(TreatmentSession.started_at, TreatmentSession.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True, of=TreatmentSession)
    )
    briefs = []
    for treatment, patient, therapist in due.all():
        claimed = await session.execute(
            update(TreatmentSession)
            .where(TreatmentSession.id == treatment.id, TreatmentSession.briefed_at.is_(None))
            .values(briefed_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue
        if therapist.reachable_chat is None:
            continue  # nobody to tell: claimed all the same, so it is not retried every tick
        briefs.append(await _compose(session, treatment, patient, therapist, content, cipher, now))
        audit.record(
            session,
            at=now,
            actor="system",
            action="brief.sent",
            patient_id=patient.id,
            session_id=treatment.id,
        )
    return briefs


async def give_back(session: AsyncSession, session_id: int) -> None:
    """Telegram did not take the brief: the next tick tries again (until the session starts)."""
    await session.execute(
        update(TreatmentSession)
        .where(TreatmentSession.id == session_id)
        .values(briefed_at=None)
        .execution_options(synchronize_session=False)
    )


async def _compose(
    session: AsyncSession,
    treatment: TreatmentSession,
    patient: Patient,
    therapist: Therapist,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> Brief:
    previous = await session.scalar(
        select(func.max(TreatmentSession.started_at)).where(
            TreatmentSession.patient_id == patient.id,
            TreatmentSession.state == SessionState.STARTED,
            TreatmentSession.started_at < treatment.started_at,
        )
    )
    since = previous or patient.created_at
    sent, answered = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(Delivery.state == DeliveryState.ANSWERED),
            ).where(
                Delivery.patient_id == patient.id,
                Delivery.sent_at >= since,
                Delivery.sent_at <= now,
            )
        )
    ).one()
    alerts, acknowledged = (
        await session.execute(
            select(func.count(), func.count(Alert.acknowledged_at)).where(
                Alert.patient_id == patient.id, Alert.created_at >= since
            )
        )
    ).one()
    replies = await session.execute(
        select(Reply, Delivery.prompt_key)
        .join(Delivery, Delivery.id == Reply.delivery_id)
        .where(
            Reply.patient_id == patient.id,
            Reply.received_at >= since,
            Reply.kind.in_([ReplyKind.CHOICE, ReplyKind.TEXT]),
        )
        .order_by(Reply.received_at, Reply.id)
    )
    values: dict[str, list[int]] = {}
    words: list[Words] = []
    for reply, key in replies.all():
        prompt = content.prompts.get(key or "")
        if prompt is None:
            continue
        if reply.kind is ReplyKind.CHOICE and prompt.scale is not None and reply.choice_value_enc:
            value = cipher.decrypt(reply.choice_value_enc)
            if value.isdigit():
                values.setdefault(prompt.key, []).append(int(value))
        elif reply.kind is ReplyKind.TEXT and prompt.brief and reply.body_enc:
            answer = cipher.decrypt(reply.body_enc)
            words.append(Words(plain_text(prompt.text), answer, reply.received_at))
    scores = [s for s in await patient_scores(session, patient, content, cipher) if s.at >= since]
    return Brief(
        session_id=treatment.id,
        patient_id=patient.id,
        pseudonym=patient.pseudonym,
        timezone=patient.timezone,
        therapist_chat_id=therapist.reachable_chat or 0,
        starts_at=treatment.started_at,
        since=since,
        sent=int(sent),
        answered=int(answered),
        checkins=[CheckinTrend(k, v[0], v[-1], len(v)) for k, v in values.items()],
        scores=scores,
        alerts=int(alerts),
        acknowledged=int(acknowledged),
        words=words,
    )
