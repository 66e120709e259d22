"""Wires updates to handlers: the one place to look for "where is /x handled"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.db.models import Patient, Therapist
from bot.handlers import (
    console,
    controls,
    course,
    measures,
    patient,
    questionnaire,
    safety,
    strangers,
    therapist,
    workspace,
)
from bot.handlers.common import Context, answer, finish_update, mark_processed, on_error, who
from bot.i18n import _
from bot.services.errors import STALE_BUTTON
from bot.views import render
from bot.views.callbacks import HELP, Callback

PRIVATE = filters.ChatType.PRIVATE
ButtonHandler = Callable[[Update, Context, Callback], Coroutine[Any, Any, None]]


async def help_command(update: Update, context: Context) -> None:
    async with context.runtime.sessions() as session:
        role = await who(session, update, context)
    if role.therapist is not None:
        await answer(update, _(render.THERAPIST_HELP))
    elif role.patient is not None:
        await answer(update, _(render.PATIENT_HELP))
    else:
        await strangers.not_enrolled(update, context)


def shared(
    for_therapist: Callable[[Update, Context, Therapist], Awaitable[None]],
    for_patient: Callable[[Update, Context, Patient], Awaitable[None]],
) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """A command both roles use with different meanings (/pause, /resume): a therapist acts
    on a patient, a patient on themselves."""

    async def by_role(update: Update, context: Context) -> None:
        async with context.runtime.sessions() as session:
            role = await who(session, update, context)
        if role.therapist is not None:
            await for_therapist(update, context, role.therapist)
        elif role.patient is not None:
            await for_patient(update, context, role.patient)
        else:
            await strangers.not_enrolled(update, context)

    return by_role


async def unknown_command(update: Update, context: Context) -> None:
    async with context.runtime.sessions() as session:
        role = await who(session, update, context)
    if role.therapist is not None or role.patient is not None:
        await answer(update, _(render.NOT_AVAILABLE))
    else:
        await strangers.not_enrolled(update, context)


# Button action codes → handlers. Codes are short because they travel in callback data;
# patient-side codes start with a lowercase letter other than "t", therapist-side with "t".
BUTTONS: dict[str, ButtonHandler] = {
    "lg": patient.language_button,
    "ca": patient.consent,
    "cd": patient.consent,
    "tz": patient.timezone_button,
    "ck": patient.checkin_tap,
    **questionnaire.BUTTONS,
    "ok": patient.got_it,
    "ak": safety.acknowledge_button,
    **controls.BUTTONS,
    **console.BUTTONS,
    **course.BUTTONS,
}


async def on_callback(update: Update, context: Context) -> None:
    query = update.callback_query
    if query is None:
        return
    if query.data == HELP:
        # Static and database-free on purpose: it must work when everything else is down.
        await safety.help_button(update, context)
        return
    data = context.codec.decode(query.data)
    handler = BUTTONS.get(data.action) if data is not None else None
    if data is None or handler is None:
        await query.answer(_(STALE_BUTTON), show_alert=True)
        return
    try:
        await handler(update, context, data)
    except (ValueError, IndexError):
        await query.answer(_(STALE_BUTTON), show_alert=True)


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(TypeHandler(Update, mark_processed), group=-1)
    app.add_handler(TypeHandler(Update, finish_update), group=1)
    commands = {
        "start": patient.start,
        "help": help_command,
        "crisis": safety.crisis,
        "invite": therapist.invite,
        "session": therapist.session_command,
        "replies": therapist.replies_command,
        "pause": shared(console.pause_patient, controls.pause_self),
        "resume": shared(console.resume_patient, controls.resume_self),
        **controls.COMMANDS,
        **console.COMMANDS,
        **course.COMMANDS,
        **measures.COMMANDS,
        **workspace.COMMANDS,
    }
    for name, callback in commands.items():
        app.add_handler(CommandHandler(name, callback, filters=PRIVATE))
    app.add_handler(CallbackQueryHandler(on_callback))
    app.add_handler(ChatMemberHandler(patient.chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(PRIVATE & filters.COMMAND, unknown_command))
    app.add_handler(MessageHandler(PRIVATE & filters.TEXT, patient.text_message))
    app.add_handler(
        MessageHandler(PRIVATE & ~filters.TEXT & ~filters.StatusUpdate.ALL, patient.non_text)
    )
    app.add_error_handler(on_error)
