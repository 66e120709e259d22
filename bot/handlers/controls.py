"""The patient's own controls: /pause, /resume, /stop (and /start after it), /settings,
/mydata, /forgetme.

Every handler resolves the caller first; a therapist or a stranger learns nothing. Every
button carries the patient's id and is re-checked against the person pressing it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from functools import wraps
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, InlineKeyboardMarkup, InputFile, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot import i18n
from bot.db.models import Patient, PatientStatus
from bot.domain import languages
from bot.handlers import safety, strangers
from bot.handlers.common import (
    Context,
    answer,
    effects,
    kick_dispatcher,
    refresh_menu,
    tell,
    who,
)
from bot.i18n import _
from bot.services import audit, mydata, participation
from bot.services import languages as language_service
from bot.services.errors import STALE_BUTTON, UserError
from bot.services.sessions import quiet_hours
from bot.telegram.ratelimit import interactive
from bot.views import controls as cr
from bot.views import render
from bot.views.callbacks import Callback

log = logging.getLogger(__name__)

PatientHandler = Callable[[Update, Context, Patient], Awaitable[None]]
CommandCallback = Callable[[Update, Context], Coroutine[Any, Any, None]]
ButtonHandler = Callable[[Update, Context, Callback], Coroutine[Any, Any, None]]

# Nobody's data to act on: never joined, declined, or erased.
GONE = (PatientStatus.INVITED, PatientStatus.DECLINED, PatientStatus.ERASED)
MAX_PAUSE_DAYS = 90
_DAYS = re.compile(r"([0-9]{1,3})\s*(?:d|day|days)?")
_QUIET_CODE = re.compile(r"([0-9]{2})([0-9]{2})-([0-9]{2})([0-9]{2})")


def parse_days(args: list[str]) -> int | None:
    """`/pause` → None (until /resume); `/pause 7`, `/pause 7d`, `/pause 7 days` → 7.
    ValueError for anything else or outside 1–90."""
    if not args:
        return None
    match = _DAYS.fullmatch(" ".join(args).strip().lower())
    if match is None or not 1 <= int(match.group(1)) <= MAX_PAUSE_DAYS:
        raise ValueError("pause days must be 1 to 90")  # not shown: answered with the usage
    return int(match.group(1))


def quiet_from_code(code: str) -> str:
    """`2200-0700` (from a button) → `22:00-07:00`; ValueError if it isn't that shape."""
    match = _QUIET_CODE.fullmatch(code)
    if match is None:
        raise ValueError("not a quiet-hours code")  # not shown: a stale button
    h1, m1, h2, m2 = match.groups()
    return f"{h1}:{m1}-{h2}:{m2}"


def _user_errors(handler: PatientHandler) -> PatientHandler:
    """A request that can't be done gets its message; nothing else is caught here (the
    application's error handler answers unexpected failures without details)."""

    @wraps(handler)
    async def guarded(update: Update, context: Context, patient: Patient) -> None:
        try:
            await handler(update, context, patient)
        except UserError as exc:
            await answer(update, render.esc(exc.message))

    return guarded


def patient_only(handler: PatientHandler) -> CommandCallback:
    """Resolve the caller; anyone who isn't a current patient gets the neutral answers."""

    @wraps(handler)
    async def checked(update: Update, context: Context) -> None:
        async with context.runtime.sessions() as session:
            role = await who(session, update, context)
        patient = role.patient
        if patient is None or patient.status in GONE:
            if role.therapist is not None:
                await answer(update, _(render.NOT_AVAILABLE))
            else:
                await strangers.not_enrolled(update, context)
            return
        await _user_errors(handler)(update, context, patient)

    return checked


async def _me(
    session: AsyncSession,
    update: Update,
    context: Context,
    patient_id: int,
    problem: str | None = None,
) -> Patient:
    """The pressing (or typing) user, in this transaction, only if they are `patient_id`;
    otherwise `problem` (already in the reader's language), or the stale-button answer."""
    patient = (await who(session, update, context)).patient
    if patient is None or patient.id != patient_id or patient.status in GONE:
        raise UserError(problem if problem is not None else _(STALE_BUTTON))
    return patient


async def _edit(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Confirm by editing the message that carried the buttons (no keyboard unless given)."""
    try:
        await query.edit_message_text(
            render.clip(text), parse_mode=ParseMode.HTML, reply_markup=markup
        )
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():  # not shown: a Telegram error
            raise


# --- /pause and /resume (the router calls these when the caller is a patient) ---------------


@_user_errors
async def pause_self(update: Update, context: Context, patient: Patient) -> None:
    try:
        days = parse_days(list(context.args or []))
    except ValueError:
        await answer(update, _(cr.PAUSE_USAGE))
        return
    rt = context.runtime
    now = rt.clock.now()
    until = now + timedelta(days=days) if days is not None else None
    async with effects(context) as session:
        me = await _me(session, update, context, patient.id, _(render.NOT_ENROLLED))
        again = me.status is PatientStatus.PAUSED
        await participation.pause(
            session, patient=me, until=until, actor=audit.as_patient(me.id), now=now
        )
        zone = me.timezone
    await answer(update, cr.paused(until, zone, again=again))


@_user_errors
async def resume_self(update: Update, context: Context, patient: Patient) -> None:
    rt = context.runtime
    async with effects(context) as session:
        me = await _me(session, update, context, patient.id, _(render.NOT_ENROLLED))
        result = await participation.resume(
            session,
            patient=me,
            actor=audit.as_patient(me.id),
            now=rt.clock.now(),
            grace=rt.settings.misfire_grace,
        )
    await answer(update, cr.resumed(result.sent_soon, result.missed))
    if result.sent_soon:
        kick_dispatcher(context, "resume")


# --- /stop, and /start after it ---------------------------------------------------------------


@patient_only
async def stop_command(update: Update, context: Context, patient: Patient) -> None:
    if patient.status is PatientStatus.STOPPED:
        await answer(update, _(cr.ALREADY_STOPPED))
    elif patient.status not in participation.RECEIVING:
        await answer(update, render.esc(_(participation.FINISH_SETUP)))
    else:
        await answer(update, _(cr.STOP_CONFIRM), cr.stop_keyboard(context.codec, patient.id))


async def _confirm(query: CallbackQuery, text: str) -> None:
    """Edit the confirmation message and stop the spinner; the change is already committed,
    so a Telegram hiccup here must not read as failure."""
    with contextlib.suppress(TelegramError):
        await _edit(query, text)
        await query.answer()


async def stop_button(update: Update, context: Context, data: Callback) -> None:
    query = update.callback_query
    if query is None:
        return
    patient_id, confirmed = data.int_arg(0), data.args[1] == cr.YES
    rt = context.runtime
    notice_to: int | None = None
    pseudonym = ""
    try:
        async with effects(context) as session:
            me = await _me(session, update, context, patient_id)
            if confirmed:
                await participation.stop(session, patient=me, now=rt.clock.now())
                notice_to = await participation.therapist_chat_id(session, me)
                pseudonym = me.pseudonym
            elif me.status is PatientStatus.STOPPED:
                raise UserError(_(cr.ALREADY_STOPPED))
    except UserError as exc:
        await query.answer(exc.message, show_alert=True)
        return
    if confirmed:  # the therapist must hear it even if the edit below fails
        await tell(context, notice_to, lambda: cr.therapist_stopped(pseudonym))
    await _confirm(query, _(cr.STOPPED) if confirmed else _(cr.STOP_KEPT))


async def rejoin_prompt(update: Update, context: Context, patient: Patient) -> None:
    """`/start` from a patient who stopped: ask whether to start again."""
    await answer(update, _(cr.REJOIN_QUESTION), cr.rejoin_keyboard(context.codec, patient.id))


async def rejoin_button(update: Update, context: Context, data: Callback) -> None:
    query = update.callback_query
    if query is None:
        return
    patient_id, confirmed = data.int_arg(0), data.args[1] == cr.YES
    rt = context.runtime
    notice_to: int | None = None
    pseudonym = ""
    try:
        async with effects(context) as session:
            me = await _me(session, update, context, patient_id)
            if confirmed:
                await participation.rejoin(session, patient=me, now=rt.clock.now())
                notice_to = await participation.therapist_chat_id(session, me)
                pseudonym = me.pseudonym
            elif me.status is not PatientStatus.STOPPED:
                raise UserError(_("You're already receiving messages."))
    except UserError as exc:
        await query.answer(exc.message, show_alert=True)
        return
    if confirmed:
        await tell(context, notice_to, lambda: cr.therapist_rejoined(pseudonym))
    await _confirm(query, _(cr.REJOINED) if confirmed else _(cr.REJOIN_DECLINED))


# --- /mydata and /forgetme --------------------------------------------------------------------


@patient_only
async def mydata_command(update: Update, context: Context, patient: Patient) -> None:
    rt = context.runtime
    chat = update.effective_chat
    if chat is None:
        return
    async with effects(context) as session:
        me = await _me(session, update, context, patient.id, _(render.NOT_ENROLLED))
        data = await mydata.my_data(
            session, patient=me, cipher=rt.cipher, content=rt.content, now=rt.clock.now()
        )
    payload = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    bot: Any = update.get_bot()
    await bot.send_document(
        chat.id,
        document=InputFile(payload, filename=mydata.FILENAME),
        caption=_(cr.MYDATA_CAPTION),
        parse_mode=ParseMode.HTML,
        rate_limit_args=interactive(bot),
    )


@patient_only
async def forgetme_command(update: Update, context: Context, patient: Patient) -> None:
    await answer(update, _(cr.FORGET_CONFIRM), cr.forget_keyboard(context.codec, patient.id))


async def forget_button(update: Update, context: Context, data: Callback) -> None:
    query = update.callback_query
    if query is None:
        return
    patient_id, confirmed = data.int_arg(0), data.args[1] == cr.YES
    rt = context.runtime
    result: participation.ForgetResult | None = None
    try:
        async with effects(context) as session:
            me = await _me(session, update, context, patient_id)
            if confirmed:
                result = await participation.forget(session, patient=me, now=rt.clock.now())
    except UserError as exc:
        await query.answer(exc.message, show_alert=True)
        return
    if result is None:
        await _confirm(query, _(cr.FORGET_KEPT))
        return
    await tell(context, result.therapist_chat_id, lambda: cr.therapist_forgot(result.pseudonym))
    await _confirm(query, cr.forgotten(result.deleted_replies))
    await _delete_staff_copies(context, result.staff_messages)
    try:
        await participation.scrub_storage(rt.engine)
    except SQLAlchemyError as exc:  # the erasure itself is committed; this is housekeeping
        log.warning("storage scrub after erasure failed: %s", type(exc).__name__)


async def _delete_staff_copies(context: Context, messages: list[tuple[int, int]]) -> None:
    """Best effort: a therapist may have deleted the message already, or it aged past the
    48 hours Telegram allows; what stays is documented in docs/operations.md."""
    for chat_id, message_id in messages:
        try:
            await context.bot.delete_message(chat_id, message_id)
        except TelegramError as exc:
            log.info("erasure: a staff message could not be deleted: %s", type(exc).__name__)


# --- /settings --------------------------------------------------------------------------------


def _card(context: Context, patient: Patient) -> tuple[str, InlineKeyboardMarkup]:
    rt = context.runtime
    quiet = quiet_hours(patient)
    offered = rt.settings.offered_languages
    language = languages.effective(patient.language, offered, rt.settings.default_language)
    return (
        cr.settings_card(patient.timezone, quiet, rt.clock.now(), language),
        cr.settings_keyboard(
            context.codec,
            patient.id,
            rt.settings.clinic_timezone,
            patient.timezone,
            quiet,
            language,
            offered,
        ),
    )


@patient_only
async def settings_command(update: Update, context: Context, patient: Patient) -> None:
    rt = context.runtime
    args = list(context.args or [])
    what = args[0].lower() if args else ""
    if not args:
        if patient.status not in participation.JOINED:
            raise UserError(_(participation.FINISH_SETUP))
        await answer(update, *_card(context, patient))
        return
    if what not in ("zone", "quiet", "language") or len(args) < 2:
        await answer(update, _(cr.SETTINGS_USAGE))
        return
    value = " ".join(args[1:])
    changed_to: str | None = None
    async with effects(context) as session:
        me = await _me(session, update, context, patient.id, _(render.NOT_ENROLLED))
        if what == "language":
            chosen = await language_service.change_language(
                session,
                patient=me,
                code=value,
                offered=rt.settings.offered_languages,
                now=rt.clock.now(),
            )
            i18n.use(chosen)
            safety.forget_locale(context)
            text = cr.language_changed(chosen)
            changed_to = chosen
        elif what == "zone":
            zone, moved = await participation.change_zone(
                session, patient=me, zone_text=value, now=rt.clock.now()
            )
            safety.forget_locale(context)
            text = cr.zone_changed(zone, moved)
        else:
            quiet, moved = await participation.change_quiet_hours(
                session, patient=me, text=value, now=rt.clock.now()
            )
            text = cr.quiet_changed(quiet, moved)
    await answer(update, text)
    if changed_to is not None and update.effective_chat is not None:
        await refresh_menu(context, update.effective_chat.id, changed_to, therapist=False)


async def _settings_button(
    update: Update,
    context: Context,
    data: Callback,
    *,
    zone: str | None = None,
    quiet: str | None = None,
    language: str | None = None,
) -> None:
    query = update.callback_query
    if query is None:
        return
    rt = context.runtime
    try:
        async with effects(context) as session:
            me = await _me(session, update, context, data.int_arg(0))
            if language is not None:
                chosen = await language_service.change_language(
                    session,
                    patient=me,
                    code=language,
                    offered=rt.settings.offered_languages,
                    now=rt.clock.now(),
                )
                i18n.use(chosen)
                done = cr.language_changed(chosen)
            elif zone is not None:
                name, moved = await participation.change_zone(
                    session, patient=me, zone_text=zone, now=rt.clock.now()
                )
                done = cr.zone_changed(name, moved)
            else:
                assert quiet is not None
                hours, moved = await participation.change_quiet_hours(
                    session, patient=me, text=quiet, now=rt.clock.now()
                )
                done = cr.quiet_changed(hours, moved)
            text, markup = _card(context, me)
    except UserError as exc:
        await query.answer(exc.message, show_alert=True)
        return
    await _edit(query, f"{text}\n\n✓ {done}", markup)
    await query.answer(render.plain(done))


async def zone_button(update: Update, context: Context, data: Callback) -> None:
    await _settings_button(update, context, data, zone=data.args[1])
    safety.forget_locale(context)


async def quiet_button(update: Update, context: Context, data: Callback) -> None:
    await _settings_button(update, context, data, quiet=quiet_from_code(data.args[1]))


async def language_button(update: Update, context: Context, data: Callback) -> None:
    await _settings_button(update, context, data, language=data.args[1])
    safety.forget_locale(context)
    if (
        update.effective_chat is not None
        and data.args[1] in context.runtime.settings.offered_languages
    ):
        await refresh_menu(context, update.effective_chat.id, data.args[1], therapist=False)


# --- what the router wires --------------------------------------------------------------------

COMMANDS: dict[str, CommandCallback] = {
    "stop": stop_command,
    "mydata": mydata_command,
    "forgetme": forgetme_command,
    "settings": settings_command,
}

BUTTONS: dict[str, ButtonHandler] = {
    "ps": stop_button,
    "pf": forget_button,
    "pr": rejoin_button,
    "pz": zone_button,
    "pq": quiet_button,
    "pl": language_button,
}
