"""Small query functions shared by the services. Each takes an open session and returns models
(or, on the per-message path, plain rows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    LargeBinary,
    Table,
    bindparam,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.identity import TelegramUser
from bot.db.models import (
    Delivery,
    DeliveryState,
    Invite,
    InviteKind,
    Patient,
    PatientStatus,
    PromptKind,
    Reply,
    ReplyKind,
    Therapist,
    TreatmentSession,
)
from bot.db.types import UTCDateTime


async def therapist_by_user(session: AsyncSession, user_id: int) -> Therapist | None:
    return await session.scalar(
        select(Therapist).where(Therapist.telegram_user_id == user_id, Therapist.active)
    )


async def therapist_language(session: AsyncSession, chat_id: int) -> str | None:
    """The stored language of the active therapist whose chat this is."""
    found = await session.scalars(
        select(Therapist.language).where(Therapist.chat_id == chat_id, Therapist.active)
    )
    return found.first()


@dataclass(frozen=True)
class TherapistLanguage:
    chat_id: int | None
    active: bool
    changed: bool


async def set_therapist_language(
    session: AsyncSession, user_id: int, language: str
) -> TherapistLanguage | None:
    """For a therapist's Telegram account (None for anyone else). A read first, so the usual
    case (no therapist, or no change) takes no write lock."""
    stored = await session.execute(
        select(Therapist.id, Therapist.language, Therapist.chat_id, Therapist.active).where(
            Therapist.telegram_user_id == user_id
        )
    )
    row = stored.first()
    if row is None:
        return None
    changed = row.language != language
    if changed:
        await session.execute(
            update(Therapist).where(Therapist.id == row.id).values(language=language)
        )
    return TherapistLanguage(row.chat_id, bool(row.active), changed)


async def inactive_therapist_by_user(session: AsyncSession, user_id: int) -> Therapist | None:
    return await session.scalar(
        select(Therapist).where(Therapist.telegram_user_id == user_id, ~Therapist.active).limit(1)
    )


async def patient_by_user(session: AsyncSession, user: TelegramUser) -> Patient | None:
    return await session.scalar(select(Patient).where(Patient.telegram_index.in_(user.indexes)))


_USER = bindparam("user_id", type_=BigInteger)
_INDEXES = bindparam("indexes", expanding=True, type_=LargeBinary)

# Both roles in one statement: a one-row anchor, the active therapist with this Telegram id (if
# any) and the patient with it — only when there is no such therapist, as a therapist's own
# account is never treated as a patient's.
_ROLES = (
    select(Therapist, Patient)
    .select_from(select(literal_column("1").label("one")).subquery("anchor"))
    .outerjoin(Therapist, (Therapist.telegram_user_id == _USER) & Therapist.active)
    .outerjoin(Patient, Patient.telegram_index.in_(_INDEXES) & Therapist.id.is_(None))
)


async def roles_by_user(
    session: AsyncSession, user: TelegramUser
) -> tuple[Therapist | None, Patient | None]:
    """`therapist_by_user`, else `patient_by_user`, in one statement: the therapist wins."""
    row = (await session.execute(_ROLES, {"user_id": user.id, "indexes": list(user.indexes)})).one()
    return row[0], row[1]


async def patient_of(session: AsyncSession, therapist_id: int, pseudonym: str) -> Patient | None:
    """A therapist only ever finds their own patients; pseudonyms match case-insensitively."""
    return await session.scalar(
        select(Patient).where(
            Patient.therapist_id == therapist_id,
            func.lower(Patient.pseudonym) == pseudonym.lower(),
            Patient.status != PatientStatus.ERASED,
        )
    )


async def invite_opened_by(
    session: AsyncSession, user: TelegramUser, now: datetime
) -> Invite | None:
    """The patient invite this person opened most recently and has not answered yet."""
    return await session.scalar(
        select(Invite)
        .where(
            Invite.opened_by_index.in_(user.indexes),
            Invite.kind == InviteKind.PATIENT,
            Invite.used_at.is_(None),
            Invite.expires_at > now,
        )
        .order_by(Invite.created_at.desc(), Invite.id.desc())
        .limit(1)
    )


async def newer_patient_invite(session: AsyncSession, invite: Invite) -> bool:
    """Whether the therapist issued a newer link for the same patient (which spent this one)."""
    newer = await session.scalar(
        select(Invite.id)
        .where(Invite.patient_id == invite.patient_id, Invite.id > invite.id)
        .limit(1)
    )
    return newer is not None


async def invite_by_hash(session: AsyncSession, token_hash: str) -> Invite | None:
    return await session.scalar(select(Invite).where(Invite.token_hash == token_hash))


async def pending_deliveries(session: AsyncSession, patient_id: int) -> Sequence[Delivery]:
    result = await session.scalars(
        select(Delivery)
        .where(
            Delivery.patient_id == patient_id,
            Delivery.state.in_([DeliveryState.SCHEDULED, DeliveryState.HELD]),
        )
        .order_by(Delivery.due_at, Delivery.id)
    )
    return result.all()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A delivery a free-text message might answer: what `domain.linking` needs of it."""

    id: int
    kind: PromptKind
    state: DeliveryState
    sent_at: datetime | None
    closed_at: datetime | None
    prompt_key: str | None
    custom_text_enc: bytes | None
    telegram_message_id: int | None
    closes_at: datetime | None


@dataclass(frozen=True, slots=True)
class LastReply:
    """The patient's most recently updated reply, which a new message may join."""

    id: int
    delivery_id: int | None
    kind: ReplyKind
    body_enc: bytes | None
    received_at: datetime
    updated_at: datetime
    flagged: bool
    question_key: str | None  # the question it answers (for saying so), when it answers one
    question_custom_enc: bytes | None


@dataclass(frozen=True, slots=True)
class ReplyContext:
    replied_to: Candidate | None  # the prompt (or its reminder) the message replies to
    latest_open: Candidate | None  # the newest sent, unclosed reflection since `sent_after`
    latest_checkin: Candidate | None  # the newest unanswered check-in since `sent_after`
    last_reply: LastReply | None
    last_asked: datetime | None  # the newest prompt or reminder sent to the patient


# Core handles on the tables, for the per-message path: no ORM object is needed there, and
# Core statements built once cost a fraction of ORM ones built per call.
PATIENTS: Table = Patient.__table__  # type: ignore[assignment]
DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
SESSIONS: Table = TreatmentSession.__table__  # type: ignore[assignment]
REPLIES: Table = Reply.__table__  # type: ignore[assignment]

_PATIENT = bindparam("patient_id", type_=Integer)
_MESSAGE = bindparam("message_id", type_=BigInteger)  # NULL when the message replies to nothing
_d = DELIVERIES.c
_r = REPLIES.c

_REPLIED_TO_ID = (
    select(_d.id)
    .where(
        _d.patient_id == _PATIENT,
        (_d.telegram_message_id == _MESSAGE) | (_d.nudge_message_id == _MESSAGE),
    )
    .limit(1)
    .scalar_subquery()
)


def _newest_unanswered(kind: PromptKind) -> Any:
    """The id of the patient's newest sent, unanswered, unclosed prompt of `kind`."""
    return (
        select(_d.id)
        .where(
            _d.patient_id == _PATIENT,
            _d.kind == kind,
            _d.state == DeliveryState.SENT,
            _d.sent_at >= bindparam("sent_after", type_=UTCDateTime()),
            _d.closed_at.is_(None),
        )
        .order_by(_d.sent_at.desc(), _d.id.desc())
        .limit(1)
        .scalar_subquery()
    )


_LATEST_OPEN_ID = _newest_unanswered(PromptKind.REFLECTION)
_LATEST_CHECKIN_ID = _newest_unanswered(PromptKind.CHECKIN)
_LAST_SENT = select(func.max(_d.sent_at)).where(_d.patient_id == _PATIENT).scalar_subquery()
_LAST_NUDGED = select(func.max(_d.nudged_at)).where(_d.patient_id == _PATIENT).scalar_subquery()
_LAST_REPLY_ID = (
    select(_r.id)
    .where(_r.patient_id == _PATIENT)
    .order_by(_r.updated_at.desc(), _r.id.desc())
    .limit(1)
    .scalar_subquery()
)
_replied_to = DELIVERIES.alias("replied_to")
_latest_open = DELIVERIES.alias("latest_open")
_latest_checkin = DELIVERIES.alias("latest_checkin")
_last_reply = REPLIES.alias("last_reply")

_CANDIDATE_COLUMNS = [field.name for field in fields(Candidate)]
_answered = DELIVERIES.alias("answered")
_LAST_REPLY_COLUMNS = [
    *(_last_reply.c[f.name] for f in fields(LastReply) if not f.name.startswith("question_")),
    _answered.c.prompt_key,
    _answered.c.custom_text_enc,
]

# The lookups behind a free-text message in one round trip: the patient's row anchors a
# single result row, and each candidate is outer-joined by the id its (uncorrelated) subquery
# picks — the same rows, and indexes, as separate queries. Columns in field order.
_REPLY_CONTEXT = (
    select(
        *(_replied_to.c[name] for name in _CANDIDATE_COLUMNS),
        *(_latest_open.c[name] for name in _CANDIDATE_COLUMNS),
        *(_latest_checkin.c[name] for name in _CANDIDATE_COLUMNS),
        *_LAST_REPLY_COLUMNS,
        _LAST_SENT.label("last_sent"),
        _LAST_NUDGED.label("last_nudged"),
    )
    .select_from(
        PATIENTS.outerjoin(_replied_to, _replied_to.c.id == _REPLIED_TO_ID)
        .outerjoin(_latest_open, _latest_open.c.id == _LATEST_OPEN_ID)
        .outerjoin(_latest_checkin, _latest_checkin.c.id == _LATEST_CHECKIN_ID)
        .outerjoin(_last_reply, _last_reply.c.id == _LAST_REPLY_ID)
        .outerjoin(_answered, _answered.c.id == _last_reply.c.delivery_id)
    )
    .where(PATIENTS.c.id == _PATIENT)
)


async def reply_context(
    session: AsyncSession, patient_id: int, reply_to_message_id: int | None, sent_after: datetime
) -> ReplyContext:
    """Everything linking a free-text message needs, in one statement."""
    params = {"patient_id": patient_id, "message_id": reply_to_message_id, "sent_after": sent_after}
    row = (await session.execute(_REPLY_CONTEXT, params)).one_or_none()
    if row is None:  # the patient is gone
        return ReplyContext(None, None, None, None, None)
    values: tuple[Any, ...] = tuple(row)
    n, m = len(_CANDIDATE_COLUMNS), len(_LAST_REPLY_COLUMNS)
    replied_to, latest_open, latest_checkin = values[:n], values[n : 2 * n], values[2 * n : 3 * n]
    last_reply = values[3 * n : 3 * n + m]
    asked = [moment for moment in values[3 * n + m :] if moment is not None]
    return ReplyContext(
        replied_to=Candidate(*replied_to) if replied_to[0] is not None else None,
        latest_open=Candidate(*latest_open) if latest_open[0] is not None else None,
        latest_checkin=Candidate(*latest_checkin) if latest_checkin[0] is not None else None,
        last_reply=LastReply(*last_reply) if last_reply[0] is not None else None,
        last_asked=max(asked, default=None),
    )


async def recent_replies(
    session: AsyncSession, patient_id: int, limit: int
) -> Sequence[tuple[Reply, Delivery | None]]:
    result = await session.execute(
        select(Reply, Delivery)
        .outerjoin(Delivery, Reply.delivery_id == Delivery.id)
        .where(Reply.patient_id == patient_id, Reply.kind != ReplyKind.ACK)
        .order_by(Reply.received_at.desc(), Reply.id.desc())
        .limit(limit)
    )
    return [(row[0], row[1]) for row in result.all()]


async def next_nudge(session: AsyncSession) -> datetime | None:
    """When the next reminder becomes due (quiet hours may push the reminder itself later)."""
    value = await session.scalar(
        select(func.min(Delivery.remind_at)).where(
            Delivery.state == DeliveryState.SENT, Delivery.closed_at.is_(None)
        )
    )
    return value if isinstance(value, datetime) else None


async def next_due(session: AsyncSession, patient_id: int | None = None) -> datetime | None:
    """When the next scheduled delivery is due (for one patient, or anyone)."""
    query = select(func.min(Delivery.due_at)).where(Delivery.state == DeliveryState.SCHEDULED)
    if patient_id is not None:
        query = query.where(Delivery.patient_id == patient_id)
    value = await session.scalar(query)
    return value if isinstance(value, datetime) or value is None else None
