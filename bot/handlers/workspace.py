"""/dashboard: the way into the workspace (bot/workspace/). A single-use sign-in link for a
browser always; with an https AFTERGLOW_PUBLIC_URL also a button that opens it as a Mini App
inside Telegram, and the same as this therapist's chat menu button."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import MenuButtonWebApp, Update, WebAppInfo
from telegram.error import TelegramError

from bot.db.models import Therapist
from bot.handlers.common import Context, answer, effects
from bot.handlers.therapist import therapist_only
from bot.i18n import _
from bot.services import signin
from bot.views import console as view

log = logging.getLogger(__name__)


@therapist_only
async def dashboard_command(update: Update, context: Context, therapist: Therapist) -> None:
    rt = context.runtime
    settings = rt.settings
    async with effects(context) as session:
        token = await signin.issue_link(session, therapist_id=therapist.id, now=rt.clock.now())
    base = settings.workspace_url
    link = f"{base}/app/signin?token={token}"
    minutes = int(signin.LINK_VALID.total_seconds() // 60)
    markup = view.dashboard_keyboard(f"{base}/app") if settings.mini_app else None
    # protect_content: the link signs in whoever opens it, so it is not for forwarding.
    await answer(
        update, view.dashboard_text(link, minutes, settings.mini_app), markup, protect=True
    )
    chat = update.effective_chat
    if settings.mini_app and chat is not None:
        try:
            await context.bot.set_chat_menu_button(
                chat_id=chat.id,
                menu_button=MenuButtonWebApp(_(view.WORKSPACE_BUTTON), WebAppInfo(f"{base}/app")),
            )
        except TelegramError as exc:  # the link above still works; the menu is a convenience
            log.warning("could not set the workspace menu button: %s", type(exc).__name__)


COMMANDS: dict[str, Callable[[Update, Context], Coroutine[Any, Any, None]]] = {
    "dashboard": dashboard_command,
}
