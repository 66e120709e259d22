"""What every handler needs: the runtime, who is talking, and safe ways to answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot import i18n
from bot.db import identity, queries, seen_updates
from bot.db.crypto import CryptoKeyError
from bot.db.identity import TelegramUser
from bot.db.models import Patient, Therapist
from bot.dispatch import staff
from bot.domain import languages
from bot.handlers.context import Context as Context
from bot.i18n import _
from bot.services import disclosures
from bot.telegram import menus
from bot.telegram.ratelimit import interactive
from bot.telegram.sending import notify, send_html
from bot.views import render

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Who:
    therapist: Therapist | None
    patient: Patient | None


def telegram_user(context: Context, user_id: int) -> TelegramUser:
    """The user as the database may see them (their id's HMACs; bot/db/identity.py)."""
    return identity.telegram_user(context.runtime.cipher, user_id)


async def who(session: AsyncSession, update: Update, context: Context) -> Who:
    """The sender's roles; also sets the language of this update's texts to theirs."""
    user = update.effective_user
    if user is None:
        return Who(None, None)
    role = Who(*await queries.roles_by_user(session, telegram_user(context, user.id)))
    if role.patient is not None:
        settings = context.runtime.settings
        i18n.use(
            languages.effective(
                role.patient.language, settings.offered_languages, settings.default_language
            )
        )
    return role


async def answer(
    update: Update,
    text: str,
    markup: InlineKeyboardMarkup | ReplyKeyboardRemove | None = None,
    *,
    protect: bool = False,
) -> int | None:
    """Reply in the chat the update came from; HTML, escaped by the caller. Returns the sent
    message's id. `protect`: patient words shown to staff, not to be forwarded or saved.

    Answers take the interactive lane: they keep Telegram's per-chat and overall limits but go
    before scheduled prompts still waiting, so an acknowledgement during a burst of prompts
    waits for a slot, not behind the burst. Only this chat's later updates wait for it (see
    bot/telegram/updates.py); a crisis message from someone else is handled meanwhile."""
    chat = update.effective_chat
    if chat is None:
        return None
    bot: Any = update.get_bot()
    return await send_html(
        bot,
        chat.id,
        render.clip(text),
        reply_markup=markup,
        protect_content=protect,
        rate_limit_args=interactive(bot),
    )


async def remember_shown(
    context: Context, update: Update, patient_id: int, message_id: int | None, kind: str
) -> None:
    """Note a message that shows a patient's words in a staff chat, for /forgetme to delete.
    After the send, in its own transaction: the read it shows has committed already."""
    chat = update.effective_chat
    if chat is None or message_id is None:
        return
    rt = context.runtime
    async with rt.sessions() as session, session.begin():
        disclosures.shown(
            session,
            patient_id=patient_id,
            chat_id=chat.id,
            message_id=message_id,
            kind=kind,
            now=rt.clock.now(),
        )


# The update being handled whose id is not yet recorded. Handlers of one update run in one
# task, so the first `effects()` transaction of that update records it.
_unrecorded: ContextVar[int | None] = ContextVar("afterglow_unrecorded_update", default=None)


class DuplicateUpdate(Exception):
    """This update's effects were already committed (webhook redelivery, a re-read batch)."""


async def mark_processed(update: Update, context: Context) -> None:
    """Runs first for every update: one seen before is dropped; a new one is recorded later,
    in the same transaction as its effects, so a crash in between loses nothing."""
    _unrecorded.set(update.update_id)
    rt = context.runtime
    # Until the sender's record says otherwise (`who`): their Telegram language if offered.
    user = update.effective_user
    telegram = languages.from_telegram(user.language_code if user is not None else None)
    offered = rt.settings.offered_languages
    i18n.use(telegram if telegram in offered else rt.settings.default_language)
    try:
        async with rt.engine.connect() as conn:
            seen = await seen_updates.seen(conn, update.update_id)
    except Exception as exc:  # database down: still let "Need help now" and /crisis through
        log.error("could not check update %s: %s", update.update_id, type(exc).__name__)
        return
    if seen:
        log.info("update %s already processed; skipped", update.update_id)
        raise ApplicationHandlerStop
    if user is not None:
        await _remember_language(context, user.id, i18n.current())


_STORED_LANGUAGE = "stored_language"


async def _remember_language(context: Context, user_id: int, language: str) -> None:
    """A therapist's chat texts follow their Telegram language (set above for this update);
    it is also stored for what reaches them unprompted: alerts, notices, briefs, the
    workspace. Checked once per user and process, written only when it changed — here,
    before any handler's transaction, so the write never waits on one of this update's."""
    remembered = context.user_data if context.user_data is not None else {}
    if remembered.get(_STORED_LANGUAGE) == language:
        return
    rt = context.runtime
    try:
        async with rt.sessions() as session, session.begin():
            found = await queries.set_therapist_language(session, user_id, language)
    except Exception as exc:  # the next update tries again; texts use the default meanwhile
        log.warning("could not store a therapist's language: %s", type(exc).__name__)
        return
    remembered[_STORED_LANGUAGE] = language
    if found is not None and found.chat_id is not None and found.active and found.changed:
        await refresh_menu(context, found.chat_id, language, therapist=True)


async def finish_update(update: Update, context: Context) -> None:
    """Runs last: an update whose handler wrote nothing (help, a refusal) is recorded now, so
    a redelivery does not answer twice."""
    if _unrecorded.get() is None:
        return
    _unrecorded.set(None)
    rt = context.runtime
    try:
        async with rt.sessions() as session, session.begin():
            await seen_updates.record(session, update.update_id, rt.clock.now())
    except Exception as exc:  # a duplicate raced us, or the database is down: nothing to undo
        log.info("update %s not recorded: %s", update.update_id, type(exc).__name__)


@asynccontextmanager
async def effects(context: Context) -> AsyncIterator[AsyncSession]:
    """A write transaction of a handler. The first one of each update also records the
    update id, so the update's effects commit exactly once; a concurrent duplicate fails
    on the unique key and changes nothing."""
    rt = context.runtime
    async with rt.sessions() as session, session.begin():
        update_id = _unrecorded.get()
        if update_id is not None:
            _unrecorded.set(None)
            try:
                await seen_updates.record(session, update_id, rt.clock.now())
            except seen_updates.AlreadyRecorded:
                raise DuplicateUpdate(update_id) from None
        yield session


async def on_error(update: object, context: Context) -> None:
    """Log the failure without message content; tell the person kindly, never a traceback."""
    error = context.error
    update_id = update.update_id if isinstance(update, Update) else None
    if isinstance(error, DuplicateUpdate):
        log.info("update %s was handled concurrently elsewhere; skipped", update_id)
        return
    log.error(
        "handler failed for update %s: %s",
        update_id,
        type(error).__name__,
        exc_info=error if not isinstance(error, TelegramError) else None,
    )
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            if update.callback_query is not None:
                await update.callback_query.answer()
            if _read_only(update):  # "may not have been saved" would be untrue and alarming
                unreadable = isinstance(error, CryptoKeyError)
                await answer(
                    update, _(render.READ_FAILED_KEYS) if unreadable else _(render.READ_FAILED)
                )
            else:
                await answer(update, _(render.SOMETHING_WRONG))
        except TelegramError:
            log.warning("could not tell chat about the failure of update %s", update_id)


# Commands and buttons that only show what is stored: their failure changed nothing.
READ_ONLY_COMMANDS = frozenset(
    {"mydata", "replies", "export", "schedule", "patients", "templates", "help", "crisis"}
)
READ_ONLY_BUTTONS = frozenset({"tr", "tx", "tp", "ts", "tl", "to", "td", "tq"})


def _read_only(update: Update) -> bool:
    if update.callback_query is not None:
        action = (update.callback_query.data or "").split(":", 1)[0]
        return action in READ_ONLY_BUTTONS
    message = update.effective_message
    text = message.text if message is not None else None
    if not text or not text.startswith("/"):
        return False
    command = text.split(maxsplit=1)[0][1:].split("@", 1)[0].lower()
    return command in READ_ONLY_COMMANDS or (command == "settings" and text.strip() == "/settings")


async def tell(context: Context, chat_id: int | None, text: Callable[[], str]) -> bool:
    """An unprompted notice to a therapist's chat, worded in their language (`text` builds
    it); False if it failed.

    Never raises: a notice that cannot be delivered must not undo what the patient just did.
    """
    if chat_id is None:
        return False
    language = await staff.language_of(context.runtime, chat_id)
    with i18n.using(language):
        body = render.clip(text())
    return await notify(context.bot, chat_id, body) is not None


def kick_dispatcher(context: Context, why: str) -> None:
    """Something is due now: look at once rather than at the next tick — on the leader only
    (a follower's dispatcher is stopped), and only in a running application."""
    dispatcher = context.bot_data.get("dispatcher")
    if dispatcher is None or dispatcher.stopping or not context.application.running:
        return
    context.application.create_task(dispatcher.tick(), name=f"dispatch-after-{why}")


async def refresh_menu(context: Context, chat_id: int, language: str, *, therapist: bool) -> None:
    """After a language or role change: that chat's command menu in its language."""
    await menus.set_chat_menu(
        context.bot,
        chat_id,
        language,
        therapist=therapist,
        show_progress=context.runtime.settings.show_scores_to_patient,
    )


def telegram_language(update: Update, context: Context) -> str:
    """The sender's Telegram language if we offer it, else the clinic's default."""
    user = update.effective_user
    settings = context.runtime.settings
    found = languages.from_telegram(user.language_code if user is not None else None)
    return found if found in settings.offered_languages else settings.default_language
