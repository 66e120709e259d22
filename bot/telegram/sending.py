"""Sending a message when only its id is needed.

`Bot.send_message` builds a full `Message` from Telegram's answer (`Message.de_json`); in the
profiles that was a quarter of the CPU of dispatching a prompt and a sixth of handling a reply,
and nothing used it beyond `message_id`. `Bot.do_api_request` makes the same request through
the same rate limiter and raises the same errors, but returns the raw answer. PTB warns that a
dedicated method exists; for exactly this call that is the point, so the warning is filtered.

`before_send` is awaited right before the request leaves: behind a `PacedRateLimiter` once the
limiter has admitted it (see bot.telegram.ratelimit), otherwise — no limiter, or one that would
not know to call it — before the request is handed to the bot at all. Either way nothing is
sent unless it returned True; if it returned False, `Withdrawn` is raised.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from telegram import Bot, ReplyParameters
from telegram.constants import ParseMode
from telegram.warnings import PTBUserWarning

from bot import metrics
from bot.telegram.outcomes import classify
from bot.telegram.ratelimit import BeforeSend, PacedRateLimiter, Withdrawn

log = logging.getLogger(__name__)

warnings.filterwarnings(
    "ignore", message=r"Please use 'Bot\.send_message'", category=PTBUserWarning
)


async def send_html(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    reply_markup: object | None = None,
    reply_to: int | None = None,
    protect_content: bool = False,
    rate_limit_args: dict[str, Any] | None = None,
    before_send: BeforeSend | None = None,
) -> int:
    """Send `text` (HTML, escaped by the caller) and return Telegram's message id."""
    params: dict[str, Any] = {"chat_id": chat_id, "text": text, "parse_mode": ParseMode.HTML}
    if reply_markup is not None:
        params["reply_markup"] = reply_markup
    if reply_to is not None:
        # A reply to a message the person may have deleted still goes out, unthreaded.
        params["reply_parameters"] = ReplyParameters(reply_to, allow_sending_without_reply=True)
    if protect_content:
        params["protect_content"] = True
    if before_send is not None:
        if isinstance(getattr(bot, "rate_limiter", None), PacedRateLimiter):
            rate_limit_args = {**(rate_limit_args or {}), "before_send": before_send}
        elif not await before_send():
            raise Withdrawn
    extra: dict[str, Any] = {}
    if rate_limit_args is not None:
        extra["rate_limit_args"] = rate_limit_args  # only ExtBot takes it
    sent = await bot.do_api_request("send_message", api_kwargs=params, **extra)
    return int(sent["message_id"])


async def notify(
    bot: Bot,
    chat_id: int | None,
    text: str,
    *,
    reply_markup: object | None = None,
    reply_to: int | None = None,
    protect_content: bool = False,
    rate_limit_args: dict[str, Any] | None = None,
    metric: str | None = None,
) -> int | None:
    """Every unprompted message — a reminder, an alert, a notice to a therapist — goes out here.
    Returns the message id, or None if it could not be sent. Never raises: a message that
    cannot be delivered must not undo what was just done, nor stop the dispatcher; the caller
    decides whether to try again. `metric` labels the failure (default: what it means)."""
    if chat_id is None:
        return None
    try:
        return await send_html(
            bot,
            chat_id,
            text,
            reply_markup=reply_markup,
            reply_to=reply_to,
            protect_content=protect_content,
            rate_limit_args=rate_limit_args,
        )
    except Exception as exc:  # any failure: the caller hears None
        outcome, _ = classify(exc)
        metrics.TELEGRAM_ERRORS.labels(kind=metric or outcome.value).inc()
        log.warning("a message to a chat failed: %s", type(exc).__name__)
        return None
