"""The workspace's patient table: each patient's summary (as on the chat card) with their
latest check-in, latest questionnaire score and open alerts. A fixed number of queries for
the aggregates plus one score query a patient; audited as one read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.crypto import Cipher
from bot.db.models import Alert, Delivery, Reply
from bot.domain.content import ContentLibrary
from bot.domain.states import PromptKind
from bot.services import audit
from bot.services.console import PatientSummary, summaries
from bot.services.scores import Score, patient_scores


@dataclass(frozen=True)
class CheckIn:
    key: str
    label: str  # the answer as the patient saw it ("7", "A little better")
    at: datetime


@dataclass(frozen=True)
class RosterRow:
    summary: PatientSummary
    checkin: CheckIn | None
    score: Score | None
    open_alerts: int


async def roster(
    session: AsyncSession,
    *,
    therapist_id: int,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> list[RosterRow]:
    patients = await summaries(session, therapist_id=therapist_id)
    ids = [p.id for p, _ in patients]
    alerts = dict(
        (
            await session.execute(
                select(Alert.patient_id, func.count())
                .where(Alert.patient_id.in_(ids), Alert.acknowledged_at.is_(None))
                .group_by(Alert.patient_id)
            )
        ).all()
    ) if ids else {}  # fmt: skip
    newest = (
        select(
            Reply.patient_id,
            Delivery.prompt_key,
            Reply.received_at,
            Reply.choice_value_enc,
            func.row_number()
            .over(
                partition_by=Reply.patient_id, order_by=(Reply.received_at.desc(), Reply.id.desc())
            )
            .label("rank"),
        )
        .join(Delivery, Delivery.id == Reply.delivery_id)
        .where(
            Reply.patient_id.in_(ids),
            Delivery.kind == PromptKind.CHECKIN,
            Reply.choice_value_enc.is_not(None),
        )
        .subquery()
    )
    checkins: dict[int, CheckIn] = {}
    for patient_id, key, at, value_enc in (
        await session.execute(
            select(newest.c.patient_id, newest.c.prompt_key, newest.c.received_at,
                   newest.c.choice_value_enc).where(newest.c.rank == 1)
        )
    ).all():  # fmt: skip
        value = cipher.decrypt(value_enc)
        prompt = content.prompts.get(key or "")
        label = (prompt.choice_label(value) if prompt else None) or value
        checkins[patient_id] = CheckIn(key or "", label, at)
    rows: list[RosterRow] = []
    for patient, summary in patients:
        scores = await patient_scores(session, patient, content, cipher)
        rows.append(
            RosterRow(
                summary,
                checkins.get(patient.id),
                scores[-1] if scores else None,
                int(alerts.get(patient.id, 0)),
            )
        )
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="workspace.patients",
        count=len(rows),
    )
    return rows
