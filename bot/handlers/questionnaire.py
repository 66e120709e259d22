"""A questionnaire's buttons: an option answers the item shown and moves the same message on;
Back re-opens the previous item. A risk item sends the crisis resources at once and alerts the
therapist, exactly as a risk check-in does; a stale or repeated tap changes nothing."""

from __future__ import annotations

import contextlib

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot import metrics
from bot.db.models import AlertKind
from bot.handlers import safety
from bot.handlers.common import Context, effects, who
from bot.i18n import _
from bot.services import questionnaires
from bot.services.errors import STALE_BUTTON, UserError
from bot.telegram.sending import notify
from bot.views import questionnaires as view
from bot.views.callbacks import Callback


async def answer_tap(update: Update, context: Context, data: Callback) -> None:
    if len(data.args) != 3:
        return
    await _tap(update, context, data, back=False)


async def back_tap(update: Update, context: Context, data: Callback) -> None:
    if len(data.args) != 2:
        return
    await _tap(update, context, data, back=True)


async def _tap(update: Update, context: Context, data: Callback, *, back: bool) -> None:
    rt = context.runtime
    query = update.callback_query
    if query is None:
        return
    try:
        async with effects(context) as session:
            patient = (await who(session, update, context)).patient
            if patient is None:
                raise UserError(_(STALE_BUTTON))
            if back:
                outcome = await questionnaires.go_back(
                    session,
                    patient=patient,
                    delivery_id=data.int_arg(0),
                    item=data.int_arg(1),
                    content=rt.content,
                    cipher=rt.cipher,
                    now=rt.clock.now(),
                )
            else:
                outcome = await questionnaires.record_item(
                    session,
                    patient=patient,
                    delivery_id=data.int_arg(0),
                    item=data.int_arg(1),
                    value=data.int_arg(2),
                    update_id=update.update_id,
                    content=rt.content,
                    cipher=rt.cipher,
                    now=rt.clock.now(),
                )
    except UserError as exc:
        await query.answer(exc.message, show_alert=True)
        return
    if outcome.alert_id is not None:
        # Resources first, from memory; then the alert, committed with the answer above.
        await safety.send_resources(update, context)
        metrics.ALERTS.labels(kind=AlertKind.QUESTIONNAIRE.value).inc()
        await safety.raise_and_notify(context, outcome.alert_id)
    if outcome.notice is not None:
        n = outcome.notice
        await notify(
            context.bot,
            n.therapist_chat_id,
            view.total_notice(n.pseudonym, n.title, n.total, n.band),
        )
    # Cosmetic from here on: a late or failed edit must not look like a lost answer.
    with contextlib.suppress(TelegramError):
        if outcome.screen is not None:
            s = outcome.screen
            await query.edit_message_text(
                view.screen_text(s.questionnaire, s.index),
                parse_mode=ParseMode.HTML,
                reply_markup=view.screen_keyboard(
                    context.codec, s.delivery_id, s.questionnaire, s.index, s.chosen
                ),
            )
        elif outcome.finished is not None:
            f = outcome.finished
            await query.edit_message_text(
                view.finished_text(
                    f.questionnaire, f.total, f.band, show_score=rt.settings.show_scores_to_patient
                ),
                parse_mode=ParseMode.HTML,
            )
        await query.answer(_("Already saved.") if outcome.already else None)


BUTTONS = {view.ANSWER: answer_tap, view.BACK: back_tap}
