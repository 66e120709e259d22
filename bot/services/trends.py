"""What `/trends` draws: a patient's scale check-ins and questionnaire totals over time and
their sessions, for their own therapist only, audit-logged like `/replies`; and what
`/progress` shows a patient of their own check-ins, when the clinic allows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.crypto import Cipher
from bot.db.models import Delivery, Patient, Reply, ReplyKind, SessionState, TreatmentSession
from bot.domain.content import ContentLibrary
from bot.domain.questionnaires import Band
from bot.services import audit
from bot.services.access import own_patient
from bot.services.scores import patient_scores

TRENDS_READ = "trends.read"


@dataclass(frozen=True)
class Series:
    """One scale check-in (e.g. mood 0–10) over time."""

    key: str
    label: str  # what the chart's legend says: the prompt's topic, never patient words
    low: int
    high: int
    points: list[tuple[datetime, int]]  # (answered at, value), oldest first


@dataclass(frozen=True)
class TotalSeries:
    """One questionnaire's totals over time, with its bands to shade."""

    key: str
    low: int
    high: int
    bands: tuple[Band, ...]
    points: list[tuple[datetime, int]]


@dataclass(frozen=True)
class TrendData:
    patient_id: int
    pseudonym: str  # for the caption only; the image carries no name
    timezone: str
    series: list[Series]
    sessions: list[datetime]
    totals: list[TotalSeries] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(s.points for s in self.series) and not any(t.points for t in self.totals)


async def trend_data(
    session: AsyncSession,
    *,
    therapist_id: int,
    pseudonym: str,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> TrendData:
    patient = await own_patient(session, therapist_id, pseudonym)
    data = await patient_trend(session, patient, content, cipher, totals=True)
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action=TRENDS_READ,
        patient_id=patient.id,
    )
    return data


async def own_trend(
    session: AsyncSession,
    *,
    patient: Patient,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> TrendData:
    """`/progress`: the patient's own check-ins, nothing of anyone else's; audited."""
    data = await patient_trend(session, patient, content, cipher, totals=False)
    audit.record(
        session, at=now, actor=audit.as_patient(patient.id), action="progress.read",
        patient_id=patient.id,
    )  # fmt: skip
    return data


async def patient_trend(
    session: AsyncSession,
    patient: Patient,
    content: ContentLibrary,
    cipher: Cipher,
    *,
    totals: bool,
) -> TrendData:
    """The chart's data; `totals` adds questionnaire totals (the therapist's view)."""
    rows = await session.execute(
        select(Delivery.prompt_key, Reply.received_at, Reply.choice_value_enc)
        .join(Delivery, Delivery.id == Reply.delivery_id)
        .where(
            Reply.patient_id == patient.id,
            Reply.kind == ReplyKind.CHOICE,
            Reply.choice_value_enc.is_not(None),
        )
        .order_by(Reply.received_at, Reply.id)
    )
    points: dict[str, list[tuple[datetime, int]]] = {}
    for key, received_at, value_enc in rows.all():
        prompt = content.prompts.get(key or "")
        if prompt is None or prompt.scale is None or value_enc is None:
            continue  # choices ("well", "poorly") have no axis; a removed prompt no scale
        value = cipher.decrypt(value_enc)
        if value.isdigit() and int(value) in prompt.scale.values():
            points.setdefault(prompt.key, []).append((received_at, int(value)))
    series = []
    for key, values in points.items():
        scale = content.prompt(key).scale
        assert scale is not None
        series.append(Series(key, content.prompt(key).topic, scale.min, scale.max, values))
    starts = await session.scalars(
        select(TreatmentSession.started_at)
        .where(
            TreatmentSession.patient_id == patient.id,
            TreatmentSession.state == SessionState.STARTED,
        )
        .order_by(TreatmentSession.started_at)
    )
    total_series: list[TotalSeries] = []
    if totals:
        by_key: dict[str, list[tuple[datetime, int]]] = {}
        for score in await patient_scores(session, patient, content, cipher):
            by_key.setdefault(score.key, []).append((score.at, score.total))
        for key, points_of in by_key.items():
            q = content.questionnaire(key)
            low, high = q.total_range
            total_series.append(TotalSeries(key, low, high, q.bands, points_of))
    zone = patient.timezone or "UTC"
    return TrendData(patient.id, patient.pseudonym, zone, series, list(starts), total_series)
