"""Which language a patient is spoken to in: the built-in ones, what a clinic offers, fallbacks.

Pure functions: the chat handlers ask `offer` which buttons to show (the one matching
Telegram's `language_code` first), the dispatcher and the views ask `effective` which language
a patient's texts are in. A language the clinic stopped offering falls back to its default,
so a configuration change never leaves a patient without messages.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["BUILT_IN", "NAMES", "effective", "from_telegram", "offer", "parse_languages"]

BUILT_IN: tuple[str, ...] = ("en", "es", "de")
# Each language named in itself: a patient looks for their own language's name.
NAMES = {"en": "English", "es": "Español", "de": "Deutsch"}


def parse_languages(value: str) -> tuple[str, ...]:
    """`AFTERGLOW_LANGUAGES` ("en,es,de") as a tuple; ValueError names what is wrong."""
    codes = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    if not codes:
        raise ValueError("list at least one language, e.g. en,es,de")
    unknown = [c for c in codes if c not in BUILT_IN]
    if unknown:
        raise ValueError(f"unknown language {unknown[0]!r}; built in: {', '.join(BUILT_IN)}")
    return codes


def from_telegram(language_code: str | None) -> str | None:
    """Telegram's IETF tag ("es-MX", "de") as one of ours, or None."""
    if not language_code:
        return None
    base = language_code.split("-")[0].split("_")[0].lower()
    return base if base in BUILT_IN else None


def offer(offered: Sequence[str], language_code: str | None, default: str) -> list[str]:
    """The language buttons, in order: Telegram's language first, then the default, then
    the rest as configured."""
    first = from_telegram(language_code)
    order = [first, default, *offered]
    return [c for c in dict.fromkeys(order) if c is not None and c in offered]


def effective(language: str | None, offered: Sequence[str], default: str) -> str:
    """The language a patient's texts are in now."""
    return language if language is not None and language in offered else default
