"""Small query functions shared by the services. Each takes an open session and returns models."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    Delivery,
    DeliveryState,
    Invite,
    Patient,
    PatientStatus,
    PromptKind,
    Reply,
    ReplyKind,
    Therapist,
)


async def therapist_by_user(session: AsyncSession, user_id: int) -> Therapist | None:
    return await session.scalar(
        select(Therapist).where(Therapist.telegram_user_id == user_id, Therapist.active)
    )


async def patient_by_user(session: AsyncSession, user_id: int) -> Patient | None:
    return await session.scalar(select(Patient).where(Patient.telegram_user_id == user_id))


async def patient_of(session: AsyncSession, therapist_id: int, pseudonym: str) -> Patient | None:
    """A therapist only ever finds their own patients; pseudonyms match case-insensitively."""
    return await session.scalar(
        select(Patient).where(
            Patient.therapist_id == therapist_id,
            func.lower(Patient.pseudonym) == pseudonym.lower(),
            Patient.status != PatientStatus.ERASED,
        )
    )


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


async def delivery_by_message(
    session: AsyncSession, patient_id: int, message_id: int
) -> Delivery | None:
    """The delivery a message belongs to: the prompt itself or its reminder."""
    return await session.scalar(
        select(Delivery)
        .where(
            Delivery.patient_id == patient_id,
            (Delivery.telegram_message_id == message_id)
            | (Delivery.nudge_message_id == message_id),
        )
        .limit(1)
    )


async def latest_unanswered_reflection(
    session: AsyncSession, patient_id: int, sent_after: datetime
) -> Delivery | None:
    return await session.scalar(
        select(Delivery)
        .where(
            Delivery.patient_id == patient_id,
            Delivery.kind == PromptKind.REFLECTION,
            Delivery.state == DeliveryState.SENT,
            Delivery.sent_at >= sent_after,
            Delivery.closed_at.is_(None),
        )
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(1)
    )


async def last_reply(session: AsyncSession, patient_id: int) -> Reply | None:
    return await session.scalar(
        select(Reply)
        .where(Reply.patient_id == patient_id)
        .order_by(Reply.updated_at.desc(), Reply.id.desc())
        .limit(1)
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


async def next_due(session: AsyncSession, patient_id: int | None = None) -> datetime | None:
    """When the next scheduled delivery is due (for one patient, or anyone)."""
    query = select(func.min(Delivery.due_at)).where(Delivery.state == DeliveryState.SCHEDULED)
    if patient_id is not None:
        query = query.where(Delivery.patient_id == patient_id)
    value = await session.scalar(query)
    return value if isinstance(value, datetime) or value is None else None
