"""After a reflection went out: one gentle reminder when it stays unanswered, and the end of
its answer window. Part of every dispatcher tick; never in quiet hours, never twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from bot.db import identity
from bot.db.crypto import CryptoKeyError
from bot.db.models import Delivery, DeliveryState, Patient, PatientStatus, PromptKind
from bot.runtime import Runtime
from bot.services import replies
from bot.services.sessions import quiet_hours, zone_of
from bot.telegram.sending import notify
from bot.views import render


async def nudge(rt: Runtime, bot: Any, *, batch: int) -> int:
    """Send the reminders that are due; returns how many went out. `nudged_at` is committed
    before the send: a crash loses a reminder, never doubles it."""
    now = rt.clock.now()
    async with rt.sessions() as session, session.begin():
        rows = (
            await session.execute(
                select(Delivery, Patient)
                .join(Patient, Patient.id == Delivery.patient_id)
                .where(
                    Delivery.kind == PromptKind.REFLECTION,
                    Delivery.state == DeliveryState.SENT,
                    Delivery.nudged_at.is_(None),
                    Delivery.closed_at.is_(None),
                    Delivery.sent_at <= now - rt.settings.nudge_after,
                    Delivery.sent_at > now - rt.settings.answer_window,
                    Patient.status == PatientStatus.ACTIVE,
                )
                .order_by(Delivery.sent_at)
                .limit(batch)
                .with_for_update(skip_locked=True, of=Delivery)
            )
        ).all()
        due: list[tuple[int, int, int | None, str | None]] = []
        for delivery, patient in rows:
            if quiet_hours(patient).contains(now.astimezone(zone_of(patient)).time()):
                continue  # the next tick after quiet hours picks it up
            try:
                chat_id = identity.chat_of(patient, rt.cipher)
            except CryptoKeyError:
                chat_id = None
            if chat_id is None:
                continue
            delivery.nudged_at = now
            try:
                question: str | None = replies.question_text(delivery, rt.content, rt.cipher)
            except CryptoKeyError:  # a lost key must not cost the other reminders
                question = None
            due.append((delivery.id, chat_id, delivery.telegram_message_id, question))
    sent = 0
    for delivery_id, chat_id, original, question in due:
        message_id = await notify(
            bot,
            chat_id,
            render.nudge(question),
            reply_to=original,
            reply_markup=render.nudge_markup(),
            protect_content=True,
        )
        if message_id is None:
            continue  # a missed reminder is acceptable (nudged_at is set: never twice)
        sent += 1
        async with rt.sessions() as session, session.begin():
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(nudge_message_id=message_id)
            )
    return sent


async def close_reflections(rt: Runtime) -> None:
    """Reflections stop taking answers after AFTERGLOW_ANSWER_WINDOW."""
    now = rt.clock.now()
    async with rt.sessions() as session, session.begin():
        await session.execute(
            update(Delivery)
            .where(
                Delivery.kind == PromptKind.REFLECTION,
                Delivery.state.in_([DeliveryState.SENT, DeliveryState.ANSWERED]),
                Delivery.closed_at.is_(None),
                Delivery.sent_at < now - rt.settings.answer_window,
            )
            .values(closed_at=now)
        )
