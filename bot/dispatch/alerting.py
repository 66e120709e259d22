"""Sending safety alerts: to the therapist at once (priority lane), again if that failed, and
to the on-call chat when nobody acknowledged in time. Alerts are at-least-once."""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import ExtBot

from bot import i18n
from bot.db.models import AlertKind
from bot.dispatch import staff
from bot.i18n import _
from bot.runtime import Runtime
from bot.services import alerts
from bot.telegram.ratelimit import priority
from bot.telegram.sending import notify
from bot.views import render
from bot.views.callbacks import CallbackCodec

log = logging.getLogger(__name__)


RESEND_AFTER = timedelta(seconds=30)
MAX_QUOTED = 3000  # keeps the alert within Telegram's 4096 characters


class Alerter:
    def __init__(self, rt: Runtime, bot: ExtBot[Any], codec: CallbackCodec) -> None:
        self.rt = rt
        self.bot = bot
        self.codec = codec

    def _keyboard(self, alert_id: int) -> InlineKeyboardMarkup:
        button = InlineKeyboardButton(
            _("Acknowledge"), callback_data=self.codec.encode("ak", alert_id)
        )
        return InlineKeyboardMarkup([[button]])

    def _text(self, view: alerts.AlertView, *, escalation: bool) -> str:
        """In the current language: the therapist's, or the clinic's default for on-call."""
        view = replace(view, pseudonym=render.with_language(view.pseudonym, view.language))
        language = i18n.current()

        def text(name: str) -> str:
            return self.rt.crisis.staff_text(name, language)

        when = render.local(view.created_at, view.timezone)
        quoted = html.escape(render.shorten(view.text, MAX_QUOTED), quote=False)
        if escalation and view.therapist_chat_id is None:
            return text("oncall_unassigned").format(
                pseudonym=render.esc(view.pseudonym),
                therapist=render.esc(view.therapist_name),
                local_time=when,
                text=quoted,
            )
        if escalation:
            wait = self.rt.clock.now() - view.created_at  # the real wait, not the setting
            return text("oncall_escalation").format(
                minutes=int(wait.total_seconds() // 60),
                waited=render.waited(wait),
                pseudonym=render.esc(view.pseudonym),
                therapist=render.esc(view.therapist_name),
                local_time=when,
                text=quoted,
            )
        if view.kind in (AlertKind.CHECKIN_RISK, AlertKind.QUESTIONNAIRE):
            template = text(
                "checkin_risk_alert"
                if view.kind is AlertKind.CHECKIN_RISK
                else "questionnaire_risk_alert"
            )
            return template.format(
                pseudonym=render.esc(view.pseudonym),
                local_time=when,
                question=render.esc(view.question or ""),
                answer=render.esc(view.answer or ""),
            )
        return text("therapist_alert").format(
            pseudonym=render.esc(view.pseudonym), local_time=when, text=quoted
        )

    async def _view(self, alert_id: int) -> alerts.AlertView:
        """The alert, its own words in the current language."""
        async with self.rt.sessions() as session:
            view = await alerts.view(
                session, alert_id, content=self.rt.content, cipher=self.rt.cipher
            )
        return replace(view, worded_in=i18n.current())

    async def notify(self, alert_id: int) -> bool:
        """Send the alert to the patient's therapist; False leaves it for the next tick."""
        view = await self._view(alert_id)
        if view.therapist_chat_id is None:
            # No active therapist to tell (deactivated, never opened the bot): on-call now.
            await self._escalate(alert_id)
            return False
        chat = view.therapist_chat_id
        language = await staff.language_of(self.rt, chat)
        with i18n.using(language):
            if language != view.worded_in:  # its own words ("item 3 of 9") in theirs too
                view = await self._view(alert_id)
            body = render.clip(self._text(view, escalation=False))
            keyboard = self._keyboard(alert_id)
        message_id = await notify(
            self.bot,
            chat,
            body,
            reply_markup=keyboard,
            # Patient words in a staff chat: no forwarding, no saving.
            protect_content=True,
            rate_limit_args=priority(self.bot),
            metric="alert",
        )
        if message_id is None:
            log.error(
                "alert %d not delivered to the therapist; the next tick tries again", alert_id
            )
            return False
        async with self.rt.sessions() as session, session.begin():
            await alerts.mark_notified(
                session,
                alert_id=alert_id,
                chat_id=chat,
                message_id=message_id,
                now=self.rt.clock.now(),
            )
        return True

    async def tick(self) -> None:
        now = self.rt.clock.now()
        async with self.rt.sessions() as session:
            retry = await alerts.unnotified(session, older_than=now - RESEND_AFTER)
            escalate = await alerts.due_for_escalation(
                session, now=now, after=self.rt.settings.alert_escalate_after
            )
        for alert_id in retry:
            await self._guarded(self.notify, alert_id)
        for alert_id in escalate:
            await self._guarded(self._escalate, alert_id)

    async def _guarded(self, step: Callable[[int], Awaitable[object]], alert_id: int) -> None:
        """One broken alert (say, a reply no key can decrypt) must not stop the others."""
        try:
            await step(alert_id)
        except Exception as exc:  # logged by type; the next tick tries again
            log.error("alert %d: %s failed: %s", alert_id, step.__name__, type(exc).__name__)

    async def _escalate(self, alert_id: int) -> None:
        async with self.rt.sessions() as session:
            if await alerts.is_escalated(session, alert_id):
                return
        chat = self.rt.settings.oncall_chat_id
        message_id: int | None = None
        if chat is None:
            log.critical(
                "alert %d needs on-call but AFTERGLOW_ONCALL_CHAT_ID is not set: nobody else "
                "will be told",
                alert_id,
            )
        else:
            with i18n.using(self.rt.settings.default_language):  # on-call: the clinic's
                view = await self._view(alert_id)
                body = render.clip(self._text(view, escalation=True))
                keyboard = self._keyboard(alert_id)
            message_id = await notify(
                self.bot,
                chat,
                body,
                reply_markup=keyboard,
                protect_content=True,
                rate_limit_args=priority(self.bot),
                metric="alert",
            )
            if message_id is None:
                log.error("escalation of alert %d failed; the next tick tries again", alert_id)
                return  # at-least-once
        async with self.rt.sessions() as session, session.begin():
            await alerts.mark_escalated(
                session,
                alert_id=alert_id,
                now=self.rt.clock.now(),
                chat_id=chat,
                message_id=message_id,
            )
