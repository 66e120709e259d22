"""After a prompt went out: gentle reminders while it stays unanswered (at most two, as its
step says; by default one for a reflection), and the end of its answer window. Part of every
dispatcher tick; never in quiet hours, never twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import aliased

from bot import i18n
from bot.db import identity
from bot.db.crypto import CryptoKeyError
from bot.db.models import Delivery, DeliveryState, Patient, PatientStatus, PromptKind
from bot.domain import answers, languages
from bot.domain.schedule import defer_quiet
from bot.runtime import Runtime
from bot.services import replies
from bot.services.sessions import quiet_hours, zone_of
from bot.telegram.sending import notify
from bot.views import render


def _answers(rt: Runtime, delivery: Delivery) -> answers.AnswerPolicy:
    return answers.policy(
        delivery.kind.value,
        delivery.remind,
        delivery.expires,
        nudge_after=rt.settings.nudge_after,
        answer_window=rt.settings.answer_window,
    )


async def nudge(rt: Runtime, bot: Any, *, batch: int) -> int:
    """Send the reminders that are due; returns how many went out. The count and the next
    reminder's time are committed before the send: a crash loses a reminder, never doubles
    it. A prompt answered, closed or whose patient is not active gets none."""
    now = rt.clock.now()
    async with rt.sessions() as session, session.begin():
        rows = (
            await session.execute(
                select(Delivery, Patient)
                .join(Patient, Patient.id == Delivery.patient_id)
                .where(
                    Delivery.state == DeliveryState.SENT,
                    Delivery.remind_at <= now,
                    Delivery.closed_at.is_(None),
                    or_(Delivery.closes_at.is_(None), Delivery.closes_at > now),
                    Patient.status == PatientStatus.ACTIVE,
                )
                .order_by(Delivery.remind_at)
                .limit(batch)
                .with_for_update(skip_locked=True, of=Delivery)
            )
        ).all()
        due: list[tuple[int, int, int | None, str | None, str]] = []
        for delivery, patient in rows:
            tz, quiet = zone_of(patient), quiet_hours(patient)
            if quiet.contains(now.astimezone(tz).time()):
                # Wait for the end of quiet hours, out of the way of other patients' reminders.
                delivery.remind_at = defer_quiet(now, tz, quiet)
                continue
            try:
                chat_id = identity.chat_of(patient, rt.cipher)
            except CryptoKeyError:
                chat_id = None
            if chat_id is None:
                continue
            delivery.nudged_at = now
            delivery.reminders_sent += 1
            assert delivery.sent_at is not None  # sent rows have it
            delivery.remind_at = _answers(rt, delivery).reminder_at(
                delivery.sent_at, delivery.reminders_sent, last=now
            )
            language = languages.effective(
                patient.language, rt.settings.offered_languages, rt.settings.default_language
            )
            content = rt.content.in_language(language)  # quoted as it was asked
            try:
                question: str | None = replies.question_text(delivery, content, rt.cipher)
            except CryptoKeyError:  # a lost key must not cost the other reminders
                question = None
            due.append((delivery.id, chat_id, delivery.telegram_message_id, question, language))
    sent = 0
    for delivery_id, chat_id, original, question, language in due:
        with i18n.using(language):
            text, markup = render.nudge(question), render.nudge_markup()
        message_id = await notify(
            bot,
            chat_id,
            text,
            reply_to=original,
            reply_markup=markup,
            protect_content=True,
        )
        if message_id is None:
            continue  # a missed reminder is acceptable (it is counted: never twice)
        sent += 1
        async with rt.sessions() as session, session.begin():
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(nudge_message_id=message_id)
            )
    return sent


_newer = aliased(Delivery)


async def close_answers(rt: Runtime) -> None:
    """Prompts stop taking answers at the end of their window (`closes_at`, set when sent);
    a reflection sent before windows were stored closes after AFTERGLOW_ANSWER_WINDOW.

    A questionnaire left unfinished is `partial` (some items answered) or `missed` (none),
    when its window ends or when a newer questionnaire reaches the patient: one is open at a
    time, so a tap can only ever mean the message on screen."""
    now = rt.clock.now()
    newer = (
        select(_newer.id)
        .where(
            _newer.patient_id == Delivery.patient_id,
            _newer.kind == PromptKind.QUESTIONNAIRE,
            _newer.id != Delivery.id,
            _newer.sent_at > Delivery.sent_at,
        )
        .exists()
    )
    async with rt.sessions() as session, session.begin():
        await session.execute(
            update(Delivery)
            .where(
                Delivery.kind == PromptKind.QUESTIONNAIRE,
                Delivery.state == DeliveryState.SENT,
                Delivery.closed_at.is_(None),
                or_(Delivery.closes_at < now, newer),
            )
            .values(
                state=case(
                    (func.coalesce(Delivery.position, 0) > 0, DeliveryState.PARTIAL),
                    else_=DeliveryState.MISSED,
                ),
                closed_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(Delivery)
            .where(
                Delivery.state.in_([DeliveryState.SENT, DeliveryState.ANSWERED]),
                Delivery.closed_at.is_(None),
                or_(
                    Delivery.closes_at < now,
                    and_(
                        Delivery.closes_at.is_(None),
                        Delivery.kind == PromptKind.REFLECTION,
                        Delivery.sent_at < now - rt.settings.answer_window,
                    ),
                ),
            )
            .values(closed_at=now)
        )
