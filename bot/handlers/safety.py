"""Crisis help and alert acknowledgement. Help is static text held in memory and sent on the
priority lane: it must arrive fast, and even when the database is unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot import metrics
from bot.db import queries
from bot.db.models import AlertKind
from bot.dispatch.alerting import Alerter
from bot.domain import languages
from bot.domain.safety import Match
from bot.domain.timezones import country_of
from bot.handlers.common import Context, effects, telegram_user
from bot.i18n import _
from bot.services import alerts
from bot.services.errors import UserError
from bot.telegram.ratelimit import priority
from bot.views import render
from bot.views.callbacks import Callback

log = logging.getLogger(__name__)


def alerter(context: Context) -> Alerter:
    value = context.bot_data["alerter"]
    assert isinstance(value, Alerter)
    return value


# How long the crisis path may wait to learn a patient's language and country: the database
# must never hold the resources up (a slow or down database sends them in Telegram's language).
LOCALE_LOOKUP = 0.3
_LOCALE = "afterglow_locale"  # context.user_data key (PTB keeps user_data in memory only)


async def locale(update: Update, context: Context) -> tuple[str | None, str | None]:
    """(language, country) for the crisis resources: the patient's chosen language and the
    country of their time zone, remembered in memory once read; else Telegram's language."""
    user = update.effective_user
    if user is None:
        return None, None
    data = context.user_data
    if data is not None and isinstance(data.get(_LOCALE), tuple):
        language, country = data[_LOCALE]
        return language, country
    rt = context.runtime
    fallback = (languages.from_telegram(user.language_code), None)
    try:
        async with asyncio.timeout(LOCALE_LOOKUP), rt.sessions() as session:
            patient = await queries.patient_by_user(session, telegram_user(context, user.id))
    except Exception as exc:
        log.warning("crisis resources: patient's language not read (%s)", type(exc).__name__)
        return fallback
    if patient is None:
        return fallback
    offered = rt.settings.offered_languages
    found = (
        languages.effective(patient.language, offered, rt.settings.default_language),
        country_of(patient.timezone),
    )
    if data is not None:
        data[_LOCALE] = found
    return found


def forget_locale(context: Context) -> None:
    """After a language or time-zone change: read it again next time."""
    if context.user_data is not None:
        context.user_data.pop(_LOCALE, None)


async def send_resources(update: Update, context: Context) -> None:
    """At-least-once: one retry on a transient failure; never raises into the handler."""
    chat = update.effective_chat
    if chat is None:
        return
    rt = context.runtime
    language, country = await locale(update, context)
    text = rt.crisis.resources(rt.settings.clinic_phone, language, country)
    for attempt in (1, 2):
        try:
            await context.bot.send_message(
                chat.id,
                text,
                parse_mode=ParseMode.HTML,
                rate_limit_args=priority(context.bot),
            )
            return
        except TelegramError as exc:
            log.error("crisis resources not sent (attempt %d): %s", attempt, type(exc).__name__)


async def on_crisis_words(update: Update, context: Context, text: str, match: Match) -> int | None:
    """Crisis words in anything a person sent: resources at once, then an alert for whoever
    looks after them, committed in its own transaction (before and whatever happens to the
    reply) and sent. Returns the alert id, None when there is nobody to alert (a stranger)."""
    log.warning(
        "crisis language (%s, %s) in update %s", match.layer, match.category, update.update_id
    )
    await send_resources(update, context)
    user = update.effective_user
    if user is None:
        return None
    rt = context.runtime
    async with rt.sessions() as session, session.begin():
        alert_id = await alerts.crisis_alert_for_user(
            session,
            user=telegram_user(context, user.id),
            text=text,
            cipher=rt.cipher,
            now=rt.clock.now(),
            update_id=update.update_id,
        )
    if alert_id is None:
        log.warning("crisis language from someone with no therapist; resources sent only")
        return None
    metrics.ALERTS.labels(kind=AlertKind.CRISIS.value).inc()
    await raise_and_notify(context, alert_id)
    return alert_id


async def crisis(update: Update, context: Context) -> None:
    """`/crisis` — no database involved."""
    await send_resources(update, context)


async def help_button(update: Update, context: Context) -> None:
    """The "Need help now" button on every prompt — no database involved."""
    if update.callback_query is not None:
        # If this fails the spinner stops by itself; the resources matter more.
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    await send_resources(update, context)


async def raise_and_notify(context: Context, alert_id: int) -> None:
    """After the alert row committed: tell the therapist now; the tick retries on failure."""
    await alerter(context).notify(alert_id)


async def acknowledge_button(update: Update, context: Context, data: Callback) -> None:
    rt = context.runtime
    query, user, chat = update.callback_query, update.effective_user, update.effective_chat
    if query is None or user is None or chat is None:
        return
    try:
        async with effects(context) as session:
            done = await alerts.acknowledge(
                session,
                alert_id=data.int_arg(0),
                user_id=user.id,
                chat_id=chat.id,
                oncall_chat_id=rt.settings.oncall_chat_id,
                now=rt.clock.now(),
            )
    except UserError as exc:
        await query.answer(exc.message, show_alert=True)
        return
    when = render.local(done.at, rt.settings.clinic_timezone)
    note = rt.crisis.acknowledged.format(who=render.esc(done.by_name), time=when)
    message: Any = query.message
    if message is not None and getattr(message, "text_html", None):
        await query.edit_message_text(
            render.clip(f"{message.text_html}\n\n<b>{note}</b>"), parse_mode=ParseMode.HTML
        )
    # A later press names whoever acknowledged first; it never rewrites who or when.
    await query.answer(
        _("Already acknowledged by {who} at {time}.").format(who=done.by_name, time=when)
        if done.already
        else _("Acknowledged.")
    )
