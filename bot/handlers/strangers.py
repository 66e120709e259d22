"""What someone hears who is neither an active therapist nor a patient of this bot.

Most are strangers, and learn nothing. Two are not: a person looking at the consent screen
(they opened an invite and have not answered it), who is answered as the consent step, and a
therapist whose account the clinic deactivated, who is told so instead of being greeted as a
stranger."""

from __future__ import annotations

from telegram import Update

from bot.db import queries
from bot.handlers.common import Context, answer, telegram_user
from bot.i18n import _
from bot.telegram import menus
from bot.views import render

DECLINE_COMMANDS = ("/stop", "/delete", "/erase")


async def not_enrolled(update: Update, context: Context) -> None:
    rt = context.runtime
    user, message = update.effective_user, update.effective_message
    if user is None:
        return
    async with rt.sessions() as session:
        invite = await queries.invite_opened_by(
            session, telegram_user(context, user.id), rt.clock.now()
        )
        former = (
            await queries.inactive_therapist_by_user(session, user.id) if invite is None else None
        )
    if invite is not None:
        text = (message.text or "") if message is not None else ""
        declining = text.split(maxsplit=1)[0].split("@")[0] in DECLINE_COMMANDS if text else False
        hint = _(render.CONSENT_DECLINE_HINT) if declining else _(render.CONSENT_STEP_HINT)
        await answer(
            update,
            f"{hint}\n\n{render.consent_text(rt.settings.clinic_name)}",
            render.consent_keyboard(context.codec, invite.id),
        )
    elif former is not None:
        await answer(update, render.therapist_deactivated(rt.settings.clinic_name))
        if former.chat_id is not None:  # the staff commands went with the account
            await menus.clear_chat_menu(context.bot, former.chat_id)
    else:
        await answer(update, _(render.NOT_ENROLLED))
