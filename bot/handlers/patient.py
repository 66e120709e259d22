"""Patient-facing handlers: onboarding, replies, check-in taps and help."""

from __future__ import annotations

import contextlib
import logging

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot import i18n, metrics
from bot.db import queries
from bot.db.models import AlertKind, InviteKind, PatientStatus
from bot.domain import languages
from bot.handlers import controls, safety, strangers
from bot.handlers.common import (
    Context,
    answer,
    effects,
    refresh_menu,
    telegram_language,
    telegram_user,
    tell,
    who,
)
from bot.i18n import _
from bot.services import alerts, enrollment, participation, reachability, replies, therapists
from bot.services.errors import STALE_BUTTON, UserError
from bot.views import render
from bot.views.callbacks import Callback

log = logging.getLogger(__name__)

# A stopped or paused patient's words are still theirs to record; an erased one starts over.
RECORDING = (
    PatientStatus.ACTIVE,
    PatientStatus.PAUSED,
    PatientStatus.STOPPED,
    PatientStatus.UNREACHABLE,
)


async def start(update: Update, context: Context) -> None:
    """`/start` with an invite token (deep link) or on its own."""
    rt = context.runtime
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or update.effective_chat is None:
        return
    token = context.args[0] if context.args else None
    if token is None:
        await _start_without_token(update, context)
        return

    try:
        async with effects(context) as session:
            opened = await enrollment.open_invite(
                session,
                token=token,
                user=telegram_user(context, user.id),
                chat_id=update.effective_chat.id,
                now=rt.clock.now(),
            )
    except UserError as exc:
        await answer(update, render.esc(exc.message))
        return
    if opened.kind is InviteKind.THERAPIST:
        await answer(update, render.therapist_welcome(opened.therapist_name or ""))
        await refresh_menu(
            context, update.effective_chat.id, telegram_language(update, context), therapist=True
        )
        return
    settings = rt.settings
    offered = settings.offered_languages
    if len(offered) == 1:
        await _show_consent(update, context, opened.invite_id, offered[0])
        return
    # The language comes first: the consent must be read in the language it is agreed in.
    codes = languages.offer(offered, user.language_code, settings.default_language)
    await answer(
        update,
        render.language_question(),
        render.language_keyboard(context.codec, opened.invite_id, codes),
    )


async def _show_consent(update: Update, context: Context, invite_id: int, language: str) -> None:
    i18n.use(language)
    await answer(
        update,
        render.consent_text(context.runtime.settings.clinic_name),
        render.consent_keyboard(context.codec, invite_id, language),
    )


async def language_button(update: Update, context: Context, data: Callback) -> None:
    """A language chosen on the first screen: the consent follows in it. Nothing is stored
    yet (the choice rides on the consent buttons until the patient agrees)."""
    query = update.callback_query
    if query is None:
        return
    settings = context.runtime.settings
    code = data.args[1] if len(data.args) > 1 else ""
    if code not in settings.offered_languages:
        code = settings.default_language  # a language removed since the button was shown
    with contextlib.suppress(TelegramError):  # cosmetic
        await query.answer()
        await query.edit_message_text(render.language_chosen(code), parse_mode=ParseMode.HTML)
    await _show_consent(update, context, data.int_arg(0), code)


async def _start_without_token(update: Update, context: Context) -> None:
    rt = context.runtime
    async with rt.sessions() as session:
        role = await who(session, update, context)
    if role.therapist is not None:
        chat = update.effective_chat
        confirmed = False
        if chat is not None and chat.type == "private":
            async with effects(context) as session:
                confirmed = await therapists.confirm_chat(
                    session, therapist_id=role.therapist.id, chat_id=chat.id, now=rt.clock.now()
                )
        await answer(update, render.therapist_welcome_back(role.therapist.name, confirmed))
        if chat is not None:
            await refresh_menu(context, chat.id, telegram_language(update, context), therapist=True)
    elif role.patient is not None and role.patient.status is PatientStatus.ONBOARDING:
        await _ask_timezone(update, context)
    elif role.patient is not None and role.patient.status is PatientStatus.STOPPED:
        await controls.rejoin_prompt(update, context, role.patient)
    elif role.patient is not None and role.patient.status is not PatientStatus.ERASED:
        await answer(update, _(render.PATIENT_HELP))
    else:
        await strangers.not_enrolled(update, context)


async def _ask_timezone(update: Update, context: Context) -> None:
    zone = context.runtime.settings.clinic_timezone
    await answer(
        update, render.timezone_question(zone), render.timezone_keyboard(context.codec, zone)
    )


async def consent(update: Update, context: Context, data: Callback) -> None:
    rt = context.runtime
    query, user, chat = update.callback_query, update.effective_user, update.effective_chat
    if query is None or user is None or chat is None:
        return
    agreed = data.action == "ca"
    # Buttons from before languages carry none: they showed the English text.
    language = data.args[1] if len(data.args) > 1 else languages.BUILT_IN[0]
    if language not in languages.BUILT_IN:
        language = languages.BUILT_IN[0]
    i18n.use(language)
    try:
        async with effects(context) as session:
            if agreed:
                await enrollment.accept_consent(
                    session,
                    invite_id=data.int_arg(0),
                    user=telegram_user(context, user.id),
                    chat_id=chat.id,
                    cipher=rt.cipher,
                    now=rt.clock.now(),
                    language=language,
                )
            else:
                await enrollment.decline_consent(
                    session,
                    invite_id=data.int_arg(0),
                    user=telegram_user(context, user.id),
                    now=rt.clock.now(),
                )
    except UserError as exc:
        await query.answer(exc.message, show_alert=True)
        return
    choice = _("✓ You agreed.") if agreed else _("You declined.")
    with contextlib.suppress(TelegramError):  # cosmetic: the next message matters more
        await query.answer()
        await query.edit_message_text(
            f"{render.consent_text(rt.settings.clinic_name)}\n\n<b>{choice}</b>",
            parse_mode=ParseMode.HTML,
        )
    if agreed:
        await refresh_menu(context, chat.id, language, therapist=False)
        await _ask_timezone(update, context)
    else:
        await answer(update, _(render.DECLINED))


async def timezone_button(update: Update, context: Context, data: Callback) -> None:
    query = update.callback_query
    if query is None:
        return
    with contextlib.suppress(TelegramError):
        await query.answer()
        await query.edit_message_reply_markup(None)
    await _set_timezone(update, context, data.args[0] if data.args else "")


async def _set_timezone(update: Update, context: Context, text: str) -> bool:
    rt = context.runtime
    try:
        async with effects(context) as session:
            patient = (await who(session, update, context)).patient
            if patient is None or patient.status in (PatientStatus.ERASED, PatientStatus.DECLINED):
                raise UserError(STALE_BUTTON)
            if patient.status is PatientStatus.ONBOARDING:
                zone, finished = await enrollment.set_timezone(
                    session, patient=patient, text=text, now=rt.clock.now()
                )
            else:  # an old onboarding button: a real change, so pending prompts re-plan
                zone, _moved = await participation.change_zone(
                    session, patient=patient, zone_text=text, now=rt.clock.now()
                )
                finished = False
    except UserError as exc:
        await answer(update, render.esc(exc.message))
        return False
    await answer(
        update,
        render.welcome(zone)
        if finished
        else _("Time zone set to {zone}.").format(zone=render.esc(zone)),
    )
    return True


async def text_message(update: Update, context: Context) -> None:
    """Free text from a patient: a time zone during onboarding, otherwise an answer or a note."""
    rt = context.runtime
    message = update.effective_message
    if message is None or message.text is None:
        return
    reply_to = message.reply_to_message.message_id if message.reply_to_message else None
    # Screen before anything touches the database: help must not wait for it, or need it.
    match = rt.screener.screen(message.text)
    alert_id: int | None = None
    if match is not None:
        # The alert commits on its own first: a reply that cannot be stored must not take
        # the alert down with it.
        alert_id = await safety.on_crisis_words(update, context, message.text, match)
    outcome: replies.TextOutcome | None = None
    choice_alert: int | None = None
    try:
        async with effects(context) as session:
            role = await who(session, update, context)
            patient = role.patient
            if patient is not None and patient.status in RECORDING:
                now = rt.clock.now()
                outcome = await replies.record_text(
                    session,
                    patient=patient,
                    text=message.text,
                    message_id=message.message_id,
                    reply_to_message_id=reply_to,
                    update_id=update.update_id,
                    cipher=rt.cipher,
                    content=rt.content,
                    answer_window=rt.settings.answer_window,
                    now=now,
                    flagged=match is not None,
                )
                if alert_id is not None:
                    await alerts.link_reply(session, alert_id=alert_id, reply_id=outcome.reply_id)
                if outcome.choice is not None and outcome.choice.risk and alert_id is None:
                    # A typed risk answer takes the same path as the tapped one.
                    choice_alert = await alerts.raise_alert(
                        session,
                        patient=patient,
                        reply_id=outcome.reply_id,
                        kind=AlertKind.CHECKIN_RISK,
                        now=now,
                    )
    except UserError as exc:
        await answer(update, render.esc(exc.message))
        return
    if outcome is not None:
        metrics.REPLIES.labels(kind=outcome.recorded.value).inc()
        if choice_alert is not None:
            await _checkin_risk(update, context, choice_alert)
        if outcome.choice is not None:
            await _show_checkin_answered(update, context, outcome)
        if match is None:
            await answer(update, _acknowledgement(outcome))
    elif match is not None:
        return  # the resources were the answer; no onboarding text stacked after them
    elif role.therapist is not None:
        await answer(update, _(render.THERAPIST_HELP))
    elif patient is not None and patient.status is PatientStatus.ONBOARDING:
        await _set_timezone(update, context, message.text)
    else:
        await strangers.not_enrolled(update, context)


def _acknowledgement(outcome: replies.TextOutcome) -> str:
    """Says what the text was filed as, so a patient sees at once if it went astray."""
    if outcome.choice is not None:
        return render.ack_choice(outcome.choice.prompt_text, outcome.choice.label)
    if outcome.recorded is replies.Recorded.JOINED:
        return render.ack_joined(outcome.question)
    if outcome.recorded is replies.Recorded.ANSWER and outcome.question is not None:
        return render.ack_answer(outcome.question)
    return _(render.ACK_NOTE)


async def _show_checkin_answered(
    update: Update, context: Context, outcome: replies.TextOutcome
) -> None:
    """The check-in message shows the typed answer, exactly as a tap leaves it."""
    chat, choice = update.effective_chat, outcome.choice
    if chat is None or choice is None or outcome.checkin_message_id is None:
        return
    with contextlib.suppress(TelegramError):  # cosmetic: the answer is saved either way
        await context.bot.edit_message_text(
            render.checkin_recorded(choice.prompt_text, choice.label),
            chat_id=chat.id,
            message_id=outcome.checkin_message_id,
            parse_mode=ParseMode.HTML,
        )


def carried_text(message: Message) -> str:
    """The words a non-text message carries (a caption, a poll, a venue): screened, never
    stored."""
    parts = [message.caption or ""]
    if message.poll is not None:
        parts.append(message.poll.question)
        parts.extend(option.text for option in message.poll.options)
    if message.venue is not None:
        parts.extend((message.venue.title, message.venue.address))
    if message.document is not None and message.document.file_name:
        parts.append(message.document.file_name)
    return "\n".join(p for p in parts if p)


async def non_text(update: Update, context: Context) -> None:
    """Voice, photo, sticker…: its content is not kept; ask kindly for words instead. Any
    words it carries (a caption) are screened first, like a message."""
    rt = context.runtime
    message = update.effective_message
    carried = carried_text(message) if message is not None else ""
    match = rt.screener.screen(carried) if carried else None
    if match is not None:
        await safety.on_crisis_words(update, context, carried, match)
        return  # the resources are the answer: "please write in text" would read as a rebuff
    async with rt.sessions() as session:
        role = await who(session, update, context)
    if role.patient is not None and role.patient.status is not PatientStatus.ERASED:
        await answer(update, _(render.TEXT_PLEASE))
    elif role.therapist is None:
        await strangers.not_enrolled(update, context)


async def checkin_tap(update: Update, context: Context, data: Callback) -> None:
    rt = context.runtime
    query = update.callback_query
    if query is None or len(data.args) != 2:
        return
    alert_id: int | None = None
    try:
        async with effects(context) as session:
            patient = (await who(session, update, context)).patient
            if patient is None:
                raise UserError(STALE_BUTTON)
            now = rt.clock.now()
            outcome = await replies.record_choice(
                session,
                patient=patient,
                delivery_id=data.int_arg(0),
                value=data.args[1],
                update_id=update.update_id,
                content=rt.content,
                cipher=rt.cipher,
                now=now,
            )
            if outcome.risk and outcome.reply_id is not None:
                # A risk-flagged answer (e.g. the lowest mood) takes the crisis path; the
                # alert commits with the answer, so neither exists without the other.
                alert_id = await alerts.raise_alert(
                    session,
                    patient=patient,
                    reply_id=outcome.reply_id,
                    kind=AlertKind.CHECKIN_RISK,
                    now=now,
                )
    except UserError as exc:
        await query.answer(exc.message, show_alert=True)
        return
    if alert_id is not None:
        await _checkin_risk(update, context, alert_id)
    # Cosmetic from here on: a late or failed edit must not look like a lost answer.
    with contextlib.suppress(TelegramError):
        if not outcome.already:
            await query.edit_message_text(
                render.checkin_recorded(outcome.prompt_text, outcome.label),
                parse_mode=ParseMode.HTML,
            )
        await query.answer(_("Already recorded.") if outcome.already else _("Thank you, saved."))


async def _checkin_risk(update: Update, context: Context, alert_id: int) -> None:
    """A risk answer to a check-in, tapped or typed: resources first, then the alert."""
    await safety.send_resources(update, context)
    metrics.ALERTS.labels(kind=AlertKind.CHECKIN_RISK.value).inc()
    await safety.raise_and_notify(context, alert_id)


async def got_it(update: Update, context: Context, data: Callback) -> None:
    rt = context.runtime
    query = update.callback_query
    if query is None:
        return
    try:
        async with effects(context) as session:
            patient = (await who(session, update, context)).patient
            if patient is None:
                raise UserError(STALE_BUTTON)
            first = await replies.record_ack(
                session, patient=patient, delivery_id=data.int_arg(0), now=rt.clock.now()
            )
    except UserError as exc:
        await query.answer(exc.message, show_alert=True)
        return
    with contextlib.suppress(TelegramError):
        if first and query.message is not None:
            await query.edit_message_reply_markup(InlineKeyboardMarkup([[render.help_button()]]))
        await query.answer(_(render.ACK_GOT_IT))


async def help_patient(update: Update) -> None:
    await answer(update, _(render.PATIENT_HELP))


async def chat_member(update: Update, context: Context) -> None:
    """Telegram tells us when a patient blocks or unblocks the bot (`my_chat_member`)."""
    change = update.my_chat_member
    if change is None or change.chat.type != "private":
        return
    rt = context.runtime
    now = rt.clock.now()
    blocked = change.new_chat_member.status in ("kicked", "left")
    async with effects(context) as session:
        if blocked:
            patient = await queries.patient_by_user(
                session, telegram_user(context, change.from_user.id)
            )
            notice = (
                await reachability.mark_unreachable(session, patient_id=patient.id, now=now)
                if patient is not None
                else None
            )
        else:
            notice = await reachability.mark_reachable(
                session,
                user=telegram_user(context, change.from_user.id),
                now=now,
                grace=rt.settings.misfire_grace,
            )
    if notice is not None:
        text = render.unreachable if blocked else render.reachable_again
        await tell(context, notice.therapist_chat_id, lambda: text(notice.pseudonym))
