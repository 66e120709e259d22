"""The therapist's console: /patients (list → patient card), /schedule with its buttons,
/postpone, /add, /templates, /export, and /pause, /resume for a patient.

Handlers parse, check the role, call a service and render. Every button re-checks that the
presser is an active therapist and (in the service) that the ids are theirs; a refused press
is answered with an alert and changes nothing. Changes are confirmed by editing the message.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from telegram import InlineKeyboardMarkup, InputFile, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.db.models import Therapist
from bot.handlers.common import Context, answer, effects, kick_dispatcher, remember_shown, who
from bot.handlers.therapist import therapist_only
from bot.i18n import N_, _
from bot.services import (
    access,
    console,
    exports,
    own_templates,
    replies,
    schedule_edits,
    sessions,
)
from bot.services.errors import STALE_BUTTON, UserError
from bot.telegram.ratelimit import interactive
from bot.views import console as view
from bot.views import render
from bot.views.callbacks import Callback

log = logging.getLogger(__name__)

ButtonHandler = Callable[[Update, Context, Callback], Coroutine[Any, Any, None]]
TherapistButton = Callable[[Update, Context, Callback, Therapist], Awaitable[None]]
ADD = re.compile(r"^/add(?:@\w+)?\s+(\S+)\s+(\S+)\s+(.+)$", re.DOTALL)
POSTPONE_USAGE = N_("Usage: /postpone [pseudonym] <n> <offset>   e.g. /postpone 3 +1d@10:00")


# --- plumbing -------------------------------------------------------------------------------


def therapist_button(handler: TherapistButton) -> ButtonHandler:
    """Only an active therapist may press; a refusal (UserError) is a polite alert."""

    @wraps(handler)
    async def checked(update: Update, context: Context, data: Callback) -> None:
        query = update.callback_query
        if query is None:
            return
        async with context.runtime.sessions() as session:
            role = await who(session, update, context)
        if role.therapist is None:
            await query.answer(_(STALE_BUTTON), show_alert=True)
            return
        try:
            await handler(update, context, data, role.therapist)
        except UserError as exc:
            await query.answer(exc.message, show_alert=True)

    return checked


async def edit(update: Update, text: str, markup: InlineKeyboardMarkup | None) -> None:
    query = update.callback_query
    assert query is not None
    try:
        await query.edit_message_text(
            render.clip(text), parse_mode=ParseMode.HTML, reply_markup=markup
        )
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():  # not shown: a Telegram error
            raise


def _args(context: Context) -> list[str]:
    return list(context.args or [])


async def pseudonym_arg(update: Update, context: Context, usage: str) -> str | None:
    """The one pseudonym a command takes; otherwise the usage line is the answer."""
    args = _args(context)
    if len(args) != 1:
        await answer(update, render.usage(usage))
        return None
    return args[0]


# --- /patients and the patient card ---------------------------------------------------------


@therapist_only
async def patients_command(update: Update, context: Context, therapist: Therapist) -> None:
    args = _args(context)
    if len(args) > 1 or (args and not args[0].isdigit()):
        await answer(update, render.usage("/patients [page]"))
        return
    rt = context.runtime
    async with effects(context) as session:
        page = await console.list_patients(
            session,
            therapist_id=therapist.id,
            page=int(args[0]) - 1 if args else 0,
            now=rt.clock.now(),
            exact=bool(args),
        )
    await answer(update, view.patients_text(page), view.patients_keyboard(context.codec, page))


@therapist_button
async def list_page(update: Update, context: Context, data: Callback, therapist: Therapist) -> None:
    rt = context.runtime
    async with effects(context) as session:
        page = await console.list_patients(
            session, therapist_id=therapist.id, page=data.int_arg(0), now=rt.clock.now()
        )
    await edit(update, view.patients_text(page), view.patients_keyboard(context.codec, page))
    await ack(update)


async def ack(update: Update, text: str | None = None) -> None:
    assert update.callback_query is not None
    await update.callback_query.answer(text)


async def _card(context: Context, therapist: Therapist, patient_id: int) -> console.PatientSummary:
    rt = context.runtime
    async with effects(context) as session:
        return await console.patient_card(
            session,
            therapist_id=therapist.id,
            patient_id=patient_id,
            now=rt.clock.now(),
            content=rt.content,
            cipher=rt.cipher,
        )


@therapist_button
async def open_card(update: Update, context: Context, data: Callback, therapist: Therapist) -> None:
    page = data.int_arg(1) if len(data.args) > 1 else 0
    card = await _card(context, therapist, data.int_arg(0))
    await edit(update, view.card_text(card), view.card_keyboard(context.codec, card, page))
    await ack(update)


@therapist_button
async def card_message(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    """The card as a new message, for buttons on messages that must stay (the brief)."""
    card = await _card(context, therapist, data.int_arg(0))
    await answer(update, view.card_text(card), view.card_keyboard(context.codec, card, 0))
    await ack(update)


@therapist_button
async def template_menu(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    card = await _card(context, therapist, data.int_arg(0))
    rt = context.runtime
    await edit(
        update, view.template_menu_text(card), view.template_menu(context.codec, card, rt.content)
    )
    await ack(update)


@therapist_button
async def set_template(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    rt = context.runtime
    name = data.args[1] if data.args[1] != view.NO_TEMPLATE else None
    async with effects(context) as session:
        card = await console.set_default_template(
            session,
            therapist_id=therapist.id,
            patient_id=data.int_arg(0),
            name=name,
            content=rt.content,
            now=rt.clock.now(),
            cipher=rt.cipher,
        )
    note = view.default_template_set(card)
    await edit(update, view.card_text(card), view.card_keyboard(context.codec, card, 0))
    await ack(update, note)


@therapist_button
async def quiet_menu(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    card = await _card(context, therapist, data.int_arg(0))
    await edit(update, view.quiet_menu_text(card), view.quiet_menu(context.codec, card))
    await ack(update)


@therapist_button
async def set_quiet(update: Update, context: Context, data: Callback, therapist: Therapist) -> None:
    rt = context.runtime
    preset = console.QUIET_PRESETS[data.int_arg(1)]
    async with effects(context) as session:
        change = await console.set_quiet_hours(
            session,
            therapist_id=therapist.id,
            patient_id=data.int_arg(0),
            quiet=preset,
            now=rt.clock.now(),
            content=rt.content,
            cipher=rt.cipher,
        )
    card = change.card
    await edit(update, view.card_text(card), view.card_keyboard(context.codec, card, 0))
    await ack(update, view.quiet_set(card, change.moved))


@therapist_button
async def replies_button(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    rt = context.runtime
    async with effects(context) as session:
        patient = await access.own_patient_by_id(session, therapist.id, data.int_arg(0))
        patient, views = await replies.read_replies(
            session,
            therapist_id=therapist.id,
            pseudonym=patient.pseudonym,
            limit=10,
            content=rt.content,
            cipher=rt.cipher,
            now=rt.clock.now(),
        )
    await ack(update)
    shown = await answer(
        update,
        render.replies_listing(
            render.with_language(patient.pseudonym, patient.language), patient.timezone, views
        ),
        protect=True,
    )
    await remember_shown(context, update, patient.id, shown, "replies")


@therapist_button
async def export_button(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    rt = context.runtime
    async with effects(context) as session:
        export = await exports.export_csv_by_id(
            session,
            therapist_id=therapist.id,
            patient_id=data.int_arg(0),
            content=rt.content,
            cipher=rt.cipher,
            now=rt.clock.now(),
        )
    await ack(update)
    await _send_export(update, context, export)


@therapist_button
async def pause_button(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    rt = context.runtime
    async with effects(context) as session:
        patient = await access.own_patient_by_id(session, therapist.id, data.int_arg(0))
        outcome = await console.pause(
            session, therapist_id=therapist.id, patient=patient, now=rt.clock.now()
        )
    card = await _card(context, therapist, data.int_arg(0))
    await edit(update, view.card_text(card), view.card_keyboard(context.codec, card, 0))
    await ack(update, view.paused_note(outcome))


@therapist_button
async def resume_button(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    rt = context.runtime
    async with effects(context) as session:
        patient = await access.own_patient_by_id(session, therapist.id, data.int_arg(0))
        outcome = await console.resume(
            session,
            therapist_id=therapist.id,
            patient=patient,
            grace=rt.settings.misfire_grace,
            now=rt.clock.now(),
        )
    card = await _card(context, therapist, data.int_arg(0))
    await edit(update, view.card_text(card), view.card_keyboard(context.codec, card, 0))
    await ack(update, view.resumed_note(outcome))
    if outcome.sent_soon:
        kick_dispatcher(context, "console")


# --- /schedule, its buttons, /postpone ------------------------------------------------------


@therapist_only
async def schedule_command(update: Update, context: Context, therapist: Therapist) -> None:
    pseudonym = await pseudonym_arg(update, context, "/schedule <pseudonym>")
    if pseudonym is None:
        return
    rt = context.runtime
    async with effects(context) as session:
        shown = await console.schedule_for(
            session,
            therapist_id=therapist.id,
            pseudonym=pseudonym,
            cipher=rt.cipher,
            now=rt.clock.now(),
        )
    await answer(update, view.schedule_text(shown), view.schedule_keyboard(context.codec, shown))


async def _schedule_view(
    context: Context, therapist: Therapist, patient_id: int
) -> console.ScheduleView:
    rt = context.runtime
    async with effects(context) as session:
        return await console.schedule_by_id(
            session,
            therapist_id=therapist.id,
            patient_id=patient_id,
            cipher=rt.cipher,
            now=rt.clock.now(),
        )


@therapist_button
async def schedule_button(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    shown = await _schedule_view(context, therapist, data.int_arg(0))
    await edit(update, view.schedule_text(shown), view.schedule_keyboard(context.codec, shown))
    await ack(update)


@therapist_button
async def postpone_menu(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    rt = context.runtime
    async with rt.sessions() as session:
        patient_id = await schedule_edits.pending_delivery(
            session,
            therapist_id=therapist.id,
            delivery_id=data.int_arg(0),
            version=data.int_arg(1),
        )
    shown = await _schedule_view(context, therapist, patient_id)
    line = shown.line(data.int_arg(0))
    if line is None:  # beyond the shown part of a very long schedule
        raise UserError(_("Open the schedule again to postpone this prompt."))
    await edit(
        update,
        view.schedule_text(shown, footer=view.postpone_footer(line, shown.timezone)),
        view.postpone_keyboard(context.codec, line, shown.patient_id),
    )
    await ack(update)


# Button verbs whose service takes just the delivery (postponing also takes how).
_SIMPLE_EDITS = {
    "skip": schedule_edits.skip,
    "send": schedule_edits.send_now,
    "again": schedule_edits.send_again,
}


def _change(verb: str) -> TherapistButton:
    async def change(
        update: Update, context: Context, data: Callback, therapist: Therapist
    ) -> None:
        rt = context.runtime
        now = rt.clock.now()
        delivery_id, version = data.int_arg(0), data.int_arg(1)
        async with effects(context) as session:
            if verb in _SIMPLE_EDITS:
                changed = await _SIMPLE_EDITS[verb](
                    session,
                    therapist_id=therapist.id,
                    delivery_id=delivery_id,
                    version=version,
                    now=now,
                )
            else:
                changed = await schedule_edits.postpone(
                    session,
                    therapist_id=therapist.id,
                    delivery_id=delivery_id,
                    version=version,
                    how=schedule_edits.Postpone(verb),
                    now=now,
                )
        shown = await _schedule_view(context, therapist, changed.patient_id)
        note = view.changed_note(verb, changed)
        await edit(
            update,
            view.schedule_text(shown, note=f"<i>{render.esc(note)}</i>"),
            view.schedule_keyboard(context.codec, shown),
        )
        await ack(update, note)
        if verb in ("send", "again") and not changed.deferred:
            kick_dispatcher(context, "console")

    change.__name__ = f"{verb}_button"
    return change


skip_button = therapist_button(_change("skip"))
send_now_button = therapist_button(_change("send"))
send_again_button = therapist_button(_change("again"))
postpone_hour_button = therapist_button(_change(schedule_edits.Postpone.HOUR.value))
postpone_morning_button = therapist_button(_change(schedule_edits.Postpone.MORNING.value))


def parse_postpone_args(args: list[str]) -> tuple[str | None, int, str]:
    """`[pseudonym] <n> <offset>` → (pseudonym or None, n, offset text)."""
    if len(args) == 2:
        pseudonym, number, offset = None, args[0], args[1]
    elif len(args) == 3:
        pseudonym, number, offset = args
    else:
        raise UserError(_(POSTPONE_USAGE))
    if not number.isdigit() or not 0 < int(number) < 10_000:
        raise UserError(_(POSTPONE_USAGE))
    return pseudonym, int(number), offset


@therapist_only
async def postpone_command(update: Update, context: Context, therapist: Therapist) -> None:
    pseudonym, number, offset = parse_postpone_args(_args(context))
    rt = context.runtime
    now = rt.clock.now()
    async with effects(context) as session:
        changed = await schedule_edits.postpone_to_offset(
            session,
            therapist_id=therapist.id,
            number=number,
            offset_text=offset,
            pseudonym=pseudonym,
            now=now,
        )
    note = view.changed_note("postpone", changed, number)
    shown = await _schedule_view(context, therapist, changed.patient_id)
    await answer(
        update,
        view.schedule_text(shown, note=f"<b>{render.esc(note)}</b>"),
        view.schedule_keyboard(context.codec, shown),
    )
    if changed.due_at <= now:
        kick_dispatcher(context, "console")


# --- /add, /templates, /export --------------------------------------------------------------


def parse_add(text: str) -> tuple[str, str, str]:
    """`/add <pseudonym> <offset> <prompt-key | free text>` from the whole message text, so
    line breaks in the therapist's own words survive."""
    match = ADD.match(text.strip())
    if match is None:
        raise UserError(
            _(
                "Usage: /add <pseudonym> <offset> <prompt-key or your own words>\n"
                "e.g. /add river-7 +2h What felt different today?"
            )
        )
    pseudonym, offset, what = match.groups()
    return pseudonym, offset, what.strip()


@therapist_only
async def add_command(update: Update, context: Context, therapist: Therapist) -> None:
    message = update.effective_message
    if message is None or message.text is None:
        return
    pseudonym, offset, what = parse_add(message.text)
    rt = context.runtime
    now = rt.clock.now()
    async with effects(context) as session:
        result = await schedule_edits.add_prompt(
            session,
            therapist_id=therapist.id,
            pseudonym=pseudonym,
            offset_text=offset,
            what=what,
            content=rt.content,
            cipher=rt.cipher,
            now=now,
        )
    await answer(update, view.added(result))
    if result.due_at <= now and not result.held:
        kick_dispatcher(context, "console")


@therapist_only
async def templates_command(update: Update, context: Context, therapist: Therapist) -> None:
    async with context.runtime.sessions() as session:
        own = await own_templates.names(session, therapist_id=therapist.id)
    await answer(update, view.templates_text(context.runtime.content, own))


async def _send_export(update: Update, context: Context, export: exports.PatientExport) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    bot: Any = update.get_bot()
    sent = await bot.send_document(
        chat.id,
        InputFile(io.BytesIO(export.data), filename=export.filename),
        filename=export.filename,
        caption=view.export_caption(export),
        parse_mode=ParseMode.HTML,
        protect_content=True,
        rate_limit_args=interactive(bot),
    )
    await remember_shown(context, update, export.patient_id, sent.message_id, "export")


@therapist_only
async def export_command(update: Update, context: Context, therapist: Therapist) -> None:
    pseudonym = await pseudonym_arg(update, context, "/export <pseudonym>")
    if pseudonym is None:
        return
    rt = context.runtime
    async with effects(context) as session:
        export = await exports.export_csv(
            session,
            therapist_id=therapist.id,
            pseudonym=pseudonym,
            content=rt.content,
            cipher=rt.cipher,
            now=rt.clock.now(),
        )
    await _send_export(update, context, export)


# --- /pause, /resume <pseudonym> (the router calls these for therapists) --------------------


async def pause_patient(update: Update, context: Context, therapist: Therapist) -> None:
    """`/pause <pseudonym>` from a therapist (patients pause themselves with /pause [days])."""
    pseudonym = await pseudonym_arg(update, context, "/pause <pseudonym>")
    if pseudonym is None:
        return
    rt = context.runtime
    try:
        async with effects(context) as session:
            patient = await access.own_patient(session, therapist.id, pseudonym)
            outcome = await console.pause(
                session, therapist_id=therapist.id, patient=patient, now=rt.clock.now()
            )
    except UserError as exc:
        await answer(update, render.esc(exc.message))
        return
    await answer(update, view.paused(outcome))


async def resume_patient(update: Update, context: Context, therapist: Therapist) -> None:
    """`/resume <pseudonym>` from a therapist: the SPEC's grace rule decides what still goes."""
    pseudonym = await pseudonym_arg(update, context, "/resume <pseudonym>")
    if pseudonym is None:
        return
    rt = context.runtime
    try:
        async with effects(context) as session:
            patient = await access.own_patient(session, therapist.id, pseudonym)
            outcome = await console.resume(
                session,
                therapist_id=therapist.id,
                patient=patient,
                grace=rt.settings.misfire_grace,
                now=rt.clock.now(),
            )
    except UserError as exc:
        await answer(update, render.esc(exc.message))
        return
    await answer(update, view.resumed(outcome))
    if outcome.sent_soon:
        kick_dispatcher(context, "console")


# --- confirming a back-dated /session -------------------------------------------------------


@therapist_button
async def confirm_session(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    rt = context.runtime
    start = datetime.fromtimestamp(data.int_arg(1) * 60, UTC)
    async with effects(context) as session:
        plan = await sessions.log_session(
            session,
            therapist_id=therapist.id,
            patient_id=data.int_arg(0),
            start_at=start,
            template_name=data.args[2],
            content=rt.content,
            grace=rt.settings.misfire_grace,
            now=rt.clock.now(),
            confirmed=True,
        )
    await edit(update, render.session_planned(plan), None)
    await ack(update)
    kick_dispatcher(context, "session")


@therapist_button
async def cancel_session(
    update: Update, context: Context, data: Callback, therapist: Therapist
) -> None:
    await edit(update, _(render.SESSION_NOT_LOGGED), None)
    await ack(update)


# --- what the router wires ------------------------------------------------------------------

COMMANDS: dict[str, Callable[[Update, Context], Coroutine[Any, Any, None]]] = {
    "patients": patients_command,
    "schedule": schedule_command,
    "postpone": postpone_command,
    "add": add_command,
    "templates": templates_command,
    "export": export_command,
}

# Therapist-side button codes all start with "t" ("tz" is the patient's time-zone button).
BUTTONS: dict[str, ButtonHandler] = {
    "tl": list_page,
    "tp": open_card,
    "ti": card_message,
    "td": template_menu,
    "tt": set_template,
    "tq": quiet_menu,
    "tw": set_quiet,
    "tr": replies_button,
    "tx": export_button,
    "th": pause_button,
    "tg": resume_button,
    "ts": schedule_button,
    "to": postpone_menu,
    "tk": skip_button,
    "tn": send_now_button,
    "ta": send_again_button,
    "t1": postpone_hour_button,
    "tm": postpone_morning_button,
    "tv": confirm_session,
    "tu": cancel_session,
}
