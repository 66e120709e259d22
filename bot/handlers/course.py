"""`/sessions <pseudonym>` and its buttons: move (a menu of wall-clock shifts) and cancel
(with a confirmation) a planned session. Every press re-checks role and ownership in the
service, and a press on a message drawn before a move is refused as stale."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update

from bot.db.models import Therapist
from bot.handlers.common import Context, answer, effects, kick_dispatcher
from bot.handlers.console import ButtonHandler, ack, edit, pseudonym_arg, therapist_button
from bot.handlers.therapist import therapist_only
from bot.i18n import _
from bot.services import course
from bot.services.errors import STALE_BUTTON, UserError
from bot.views import course as view
from bot.views.callbacks import Callback

USAGE = "/sessions <pseudonym>"


@therapist_only
async def sessions_command(update: Update, context: Context, therapist: Therapist) -> None:
    pseudonym = await pseudonym_arg(update, context, USAGE)
    if pseudonym is None:
        return
    async with effects(context) as session:
        listing = await course.list_sessions(
            session, therapist_id=therapist.id, pseudonym=pseudonym, now=context.runtime.clock.now()
        )
    await answer(
        update, view.sessions_text(listing), view.sessions_keyboard(context.codec, listing)
    )


async def _show(
    update: Update, context: Context, therapist: Therapist, patient_id: int, note: str = ""
) -> None:
    async with effects(context) as session:
        listing = await course.list_sessions(
            session,
            therapist_id=therapist.id,
            patient_id=patient_id,
            now=context.runtime.clock.now(),
        )
    await edit(
        update, view.sessions_text(listing, note), view.sessions_keyboard(context.codec, listing)
    )


@therapist_button
async def sessions_button(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    await _show(update, context, therapist, data.int_arg(0))
    await ack(update)


async def _ask(
    update: Update, context: Context, data: Callback, therapist: Therapist, verb: str
) -> None:
    """The move menu or the cancel question, for a session that is still planned."""
    async with effects(context) as session:
        change = await course.planned_session(
            session,
            therapist_id=therapist.id,
            session_id=data.int_arg(0),
            verb=verb,
            seen=data.int_arg(1),
        )
    if verb == "moved":
        await edit(update, view.move_text(change), view.move_menu(context.codec, change))
    else:
        await edit(update, view.cancel_text(change), view.cancel_menu(context.codec, change))
    await ack(update)


@therapist_button
async def move_menu(update: Update, context: Context, data: Callback, therapist: Therapist) -> None:
    await _ask(update, context, data, therapist, "moved")


@therapist_button
async def move(update: Update, context: Context, data: Callback, therapist: Therapist) -> None:
    shift = view.shift_key(data.int_arg(1))
    if shift is None:
        raise UserError(_(STALE_BUTTON))
    rt = context.runtime
    async with effects(context) as session:
        change = await course.move_session(
            session,
            therapist_id=therapist.id,
            session_id=data.int_arg(0),
            shift=shift,
            now=rt.clock.now(),
            grace=rt.settings.misfire_grace,
            seen=data.int_arg(2),
        )
    note = view.moved_note(change)
    await _show(update, context, therapist, change.patient_id, note)
    await ack(update, _("Moved."))
    kick_dispatcher(context, "session moved")  # not shown: a log reason


@therapist_button
async def cancel_ask(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    await _ask(update, context, data, therapist, "cancelled")


@therapist_button
async def cancel(update: Update, context: Context, data: Callback, therapist: Therapist) -> None:
    async with effects(context) as session:
        change = await course.cancel_session(
            session,
            therapist_id=therapist.id,
            session_id=data.int_arg(0),
            now=context.runtime.clock.now(),
            seen=data.int_arg(1),
        )
    await _show(update, context, therapist, change.patient_id, view.cancelled_note(change))
    await ack(update, _("Cancelled."))


COMMANDS: dict[str, Callable[[Update, Context], Coroutine[Any, Any, None]]] = {
    "sessions": sessions_command,
}

BUTTONS: dict[str, ButtonHandler] = {
    "ty": sessions_button,
    "tb": move_menu,
    "tj": move,
    "tc": cancel_ask,
    "tf": cancel,
}
