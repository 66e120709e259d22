"""What a failed Telegram call means for a delivery. At-most-once decides the hard cases:
when the request may have reached Telegram, the outcome is `unknown`, never a silent retry."""

from __future__ import annotations

import enum

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

# NetworkError messages for requests that never left this machine (PTB wraps httpx errors
# as "httpx.<ClassName>: …"); anything else may have been received.
_NOT_SENT = ("httpx.ConnectError", "httpx.UnsupportedProtocol", "Pool timeout")


class Outcome(enum.Enum):
    RETRY = "retry"  # Telegram did not take it: try again later
    BLOCKED = "blocked"  # the patient blocked the bot
    FAILED = "failed"  # Telegram refused it for good
    UNKNOWN = "unknown"  # it may or may not have been delivered


def classify(exc: BaseException) -> tuple[Outcome, str]:
    """(outcome, a short reason for `last_error`; never message text)."""
    name = type(exc).__name__
    if isinstance(exc, RetryAfter):
        return Outcome.RETRY, f"rate limited (retry after {exc.retry_after})"
    if isinstance(exc, Forbidden):
        return Outcome.BLOCKED, "forbidden: the patient blocked the bot"
    if isinstance(exc, BadRequest | ChatMigrated):
        return Outcome.FAILED, f"bad request: {exc.message}"[:300]
    if isinstance(exc, InvalidToken):
        return Outcome.RETRY, "the bot token was refused"
    if isinstance(exc, TimedOut):
        if any(marker in exc.message for marker in _NOT_SENT):
            return Outcome.RETRY, "timed out before sending"
        return Outcome.UNKNOWN, "timed out waiting for Telegram"
    if isinstance(exc, NetworkError):
        if exc.message.startswith(_NOT_SENT):
            return Outcome.RETRY, f"network: {exc.message.split(':', 1)[0]}"
        if "(5" in exc.message or exc.message.startswith(("Bad Gateway", "Internal Server")):
            return Outcome.RETRY, f"telegram server error: {exc.message[:80]}"
        return Outcome.UNKNOWN, f"network: {name}"
    if isinstance(exc, TelegramError):
        return Outcome.UNKNOWN, f"telegram: {name}"
    return Outcome.UNKNOWN, f"unexpected: {name}"
