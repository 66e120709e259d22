"""Publishing the command menus: patients' in every offered language (Telegram picks by the
app's language), and per chat where we know better — a patient's chosen language, a
therapist's commands — refreshed when a language or a role changes. Best effort: a menu that
fails to update never fails the action that changed it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Bot, BotCommandScopeChat
from telegram.error import TelegramError

from bot import i18n
from bot.views.menus import patient_menu, therapist_menu

__all__ = ["clear_chat_menu", "publish_patient_menus", "set_chat_menu"]

log = logging.getLogger(__name__)


async def publish_patient_menus(
    bot: Bot, offered: Sequence[str], default: str, *, show_progress: bool
) -> None:
    """The default menu (for anyone without a chat menu) in the default language, and one
    per offered language for Telegram to choose by the app's language."""
    with i18n.using(default):
        await bot.set_my_commands(patient_menu(show_progress))
    for language in offered:
        with i18n.using(language):
            await bot.set_my_commands(patient_menu(show_progress), language_code=language)


async def set_chat_menu(
    bot: Bot, chat_id: int, language: str, *, therapist: bool, show_progress: bool = False
) -> None:
    """One chat's menu: a therapist's commands, or a patient's in their chosen language."""
    with i18n.using(language):
        commands = therapist_menu() if therapist else patient_menu(show_progress)
    try:
        await bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id))
    except TelegramError as exc:
        log.warning("chat menu not updated: %s", type(exc).__name__)


async def clear_chat_menu(bot: Bot, chat_id: int) -> None:
    """A chat back to the menu everyone gets (a deactivated therapist's, say)."""
    try:
        await bot.delete_my_commands(scope=BotCommandScopeChat(chat_id))
    except TelegramError as exc:
        log.warning("chat menu not cleared: %s", type(exc).__name__)
