"""Answering a questionnaire in chat, one item at a time: each tap is its own transaction (a
crash between two items loses nothing and doubles nothing), Back re-opens the previous item,
and the last answer completes it. A risk item raises one alert per item, however often it is
answered again; a total at or above its rule tells the therapist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.crypto import Cipher
from bot.db.models import (
    Alert,
    AlertKind,
    Delivery,
    DeliveryState,
    Patient,
    PromptKind,
    Reply,
    ReplyKind,
    Therapist,
)
from bot.domain.content import ContentLibrary
from bot.domain.questionnaires import Band, Questionnaire
from bot.i18n import N_, _
from bot.services import alerts
from bot.services.errors import STALE_BUTTON, NotFound, UserError

CLOSED = N_("This questionnaire is closed.")


@dataclass(frozen=True)
class Screen:
    """What the questionnaire's message shows next."""

    delivery_id: int
    questionnaire: Questionnaire
    index: int  # 0-based item
    chosen: int | None  # the value already given to it (after Back)


@dataclass(frozen=True)
class Finished:
    questionnaire: Questionnaire
    total: int | None
    band: Band | None


@dataclass(frozen=True)
class TotalNotice:
    therapist_chat_id: int
    pseudonym: str
    title: str
    total: int
    band: Band | None


@dataclass(frozen=True)
class Outcome:
    screen: Screen | None = None
    finished: Finished | None = None
    alert_id: int | None = None  # a risk item: the crisis path runs after the commit
    notice: TotalNotice | None = None
    already: bool = False  # a stale or repeated tap: nothing changed


async def _open(
    session: AsyncSession,
    patient: Patient,
    delivery_id: int,
    content: ContentLibrary,
    now: datetime,
) -> tuple[Delivery, Questionnaire]:
    delivery = await session.get(Delivery, delivery_id, with_for_update=True)
    if (
        delivery is None
        or delivery.patient_id != patient.id
        or delivery.kind is not PromptKind.QUESTIONNAIRE
    ):
        raise NotFound(_(STALE_BUTTON))
    translated = content.in_language(patient.language)
    questionnaire = translated.questionnaires.get(delivery.prompt_key or "")
    if questionnaire is None:
        raise NotFound(_("This questionnaire is no longer available."))
    if delivery.state not in (DeliveryState.SENT, DeliveryState.ANSWERED):
        raise UserError(_(CLOSED))
    return delivery, questionnaire


def _closed(delivery: Delivery, now: datetime) -> bool:
    return delivery.closed_at is not None or (
        delivery.closes_at is not None and now >= delivery.closes_at
    )


async def _answers(session: AsyncSession, delivery_id: int) -> dict[int, Reply]:
    rows = await session.scalars(
        select(Reply).where(Reply.delivery_id == delivery_id, Reply.kind == ReplyKind.ITEM)
    )
    return {reply.item: reply for reply in rows if reply.item is not None}


def _value(reply: Reply | None, cipher: Cipher) -> int | None:
    if reply is None or reply.choice_value_enc is None:
        return None
    text = cipher.decrypt(reply.choice_value_enc)
    return int(text) if text.lstrip("-").isdigit() else None


async def record_item(
    session: AsyncSession,
    *,
    patient: Patient,
    delivery_id: int,
    item: int,
    value: int,
    update_id: int | None,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> Outcome:
    """The answer `value` to item `item` (from 1): saved, then the next item, or the end."""
    delivery, q = await _open(session, patient, delivery_id, content, now)
    position = delivery.position or 0
    if delivery.state is DeliveryState.ANSWERED or item != position + 1:
        return Outcome(already=True)  # a tap on an item this message no longer shows
    if _closed(delivery, now):
        raise UserError(_(CLOSED))
    if not 1 <= item <= len(q.items) or value not in q.items[item - 1].values:
        raise UserError(_(STALE_BUTTON))
    answers = await _answers(session, delivery.id)
    risky = item in q.risky_items([value if n == item else None for n in range(1, item + 1)])
    reply = answers.get(item)
    if reply is None:
        reply = Reply(
            patient_id=patient.id,
            delivery_id=delivery.id,
            kind=ReplyKind.ITEM,
            item=item,
            update_id=update_id,
            received_at=now,
        )
        session.add(reply)
        answers[item] = reply
    reply.choice_value_enc = cipher.encrypt(str(value))
    reply.flagged = risky
    reply.updated_at = now
    await session.flush()
    alert_id = None
    if risky and not await _alerted(session, reply.id):
        alert_id = await alerts.raise_alert(
            session, patient=patient, reply_id=reply.id, kind=AlertKind.QUESTIONNAIRE, now=now
        )
    delivery.position = item
    delivery.updated_at = now
    if item < len(q.items):
        nxt = answers.get(item + 1)
        return Outcome(screen=Screen(delivery.id, q, item, _value(nxt, cipher)), alert_id=alert_id)
    values = [_value(answers.get(n), cipher) for n in range(1, len(q.items) + 1)]
    total = q.total(values)
    delivery.state = DeliveryState.ANSWERED
    delivery.answered_at = now
    band = q.band(total) if total is not None else None
    notice = None
    if total is not None and q.total_alarm(total):
        notice = await _notice(session, patient, q, total, band)
    return Outcome(finished=Finished(q, total, band), alert_id=alert_id, notice=notice)


async def go_back(
    session: AsyncSession,
    *,
    patient: Patient,
    delivery_id: int,
    item: int,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> Outcome:
    """Back from item `item` (the one shown) to the one before, with its answer marked."""
    delivery, q = await _open(session, patient, delivery_id, content, now)
    position = delivery.position or 0
    if delivery.state is DeliveryState.ANSWERED or item != position + 1 or item < 2:
        return Outcome(already=True)
    if _closed(delivery, now):
        raise UserError(_(CLOSED))
    delivery.position = item - 2
    delivery.updated_at = now
    previous = (await _answers(session, delivery.id)).get(item - 1)
    return Outcome(screen=Screen(delivery.id, q, item - 2, _value(previous, cipher)))


async def _alerted(session: AsyncSession, reply_id: int) -> bool:
    found = await session.scalar(select(Alert.id).where(Alert.reply_id == reply_id).limit(1))
    return found is not None


async def _notice(
    session: AsyncSession, patient: Patient, q: Questionnaire, total: int, band: Band | None
) -> TotalNotice | None:
    therapist = await session.get(Therapist, patient.therapist_id)
    if therapist is None or therapist.chat_id is None or not therapist.active:
        return None
    return TotalNotice(therapist.chat_id, patient.pseudonym, q.title, total, band)
