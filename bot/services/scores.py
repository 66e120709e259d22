"""Questionnaire results for the therapist: every completed questionnaire's total and band,
its change from the baseline (the patient's first total of that questionnaire) and the
response and remission marks. Totals are computed from the encrypted item answers when read,
never stored apart from them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.crypto import Cipher
from bot.db.models import Delivery, DeliveryState, Patient, PromptKind, Reply, ReplyKind
from bot.domain.content import ContentLibrary
from bot.domain.questionnaires import PROFILES, Band, Questionnaire, response
from bot.services import audit
from bot.services.access import own_patient

SCORES_READ = "scores.read"


@dataclass(frozen=True)
class Score:
    key: str
    title: str
    at: datetime  # when its last item was answered
    total: int
    band: Band | None
    change: int | None  # from the baseline; None for the baseline itself
    response: bool  # at least half below the baseline
    remission: bool  # below the lowest band (a profile's own rule for PHQ-9, GAD-7)


@dataclass(frozen=True)
class ScoreSheet:
    patient_id: int
    pseudonym: str
    timezone: str | None
    scores: list[Score]  # oldest first

    def latest(self) -> Score | None:
        return self.scores[-1] if self.scores else None


def remission_of(q: Questionnaire, total: int) -> bool:
    profile = PROFILES.get(q.key)
    if profile is not None:
        return total < profile.remission_below
    return bool(q.bands) and total <= q.bands[0].max


async def patient_scores(
    session: AsyncSession, patient: Patient, content: ContentLibrary, cipher: Cipher
) -> list[Score]:
    rows = await session.execute(
        select(
            Delivery.id,
            Delivery.prompt_key,
            Delivery.answered_at,
            Reply.item,
            Reply.choice_value_enc,
        )
        .join(Reply, Reply.delivery_id == Delivery.id)
        .where(
            Delivery.patient_id == patient.id,
            Delivery.kind == PromptKind.QUESTIONNAIRE,
            Delivery.state == DeliveryState.ANSWERED,
            Reply.kind == ReplyKind.ITEM,
        )
        .order_by(Delivery.answered_at, Delivery.id)
    )
    answered: dict[int, tuple[str, datetime | None]] = {}
    values: dict[int, dict[int, int]] = defaultdict(dict)
    for delivery_id, key, answered_at, item, value_enc in rows.all():
        answered[delivery_id] = (key or "", answered_at)
        if item is not None and value_enc is not None:
            text = cipher.decrypt(value_enc)
            if text.lstrip("-").isdigit():
                values[delivery_id][item] = int(text)
    scores: list[Score] = []
    baseline: dict[str, int] = {}
    for delivery_id, (key, at) in answered.items():
        q = content.questionnaires.get(key)
        if q is None or at is None:
            continue  # a questionnaire since removed from the content has no scoring left
        given = values[delivery_id]
        total = q.total([given.get(n) for n in range(1, len(q.items) + 1)])
        if total is None:
            continue
        is_baseline = key not in baseline
        first = baseline.setdefault(key, total)
        scores.append(
            Score(
                key,
                q.title,
                at,
                total,
                q.band(total),
                None if is_baseline else total - first,
                not is_baseline and response(first, total),
                remission_of(q, total),
            )
        )
    return scores


async def score_sheet(
    session: AsyncSession,
    *,
    therapist_id: int,
    pseudonym: str,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> ScoreSheet:
    patient = await own_patient(session, therapist_id, pseudonym)
    scores = await patient_scores(session, patient, content, cipher)
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action=SCORES_READ,
        patient_id=patient.id,
        count=len(scores),
    )
    return ScoreSheet(patient.id, patient.pseudonym, patient.timezone, scores)
