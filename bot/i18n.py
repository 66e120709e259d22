"""Bot texts in the reader's language: gettext catalogues (`bot/locale/<lang>/LC_MESSAGES`).

The language is per update, not per call: the first handler of every update sets it from
the sender's record (or Telegram's language code), the dispatcher sets it per message, and
the views call `_()` as they build text. A context variable carries it, so a view function
needs no language parameter and two updates handled at once never mix languages.

Catalogues are edited as `.po` files and compiled to `.mo` (`afterglow i18n compile`); the
compiled files ship in the wheel. A text missing from a catalogue shows in English.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

__all__ = [
    "DOMAIN",
    "LOCALE_DIR",
    "NC_",
    "N_",
    "_",
    "current",
    "ngettext",
    "pgettext",
    "use",
    "using",
]

DOMAIN = "afterglow"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SOURCE_LANGUAGE = "en"  # the msgids are the English texts

_current: ContextVar[str] = ContextVar("afterglow_language", default=SOURCE_LANGUAGE)


@cache
def _catalogue(language: str) -> _gettext.NullTranslations:
    if language == SOURCE_LANGUAGE:
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


def current() -> str:
    return _current.get()


def use(language: str | None) -> None:
    """Set the language for the rest of this update (or task)."""
    _current.set(language or SOURCE_LANGUAGE)


@contextmanager
def using(language: str | None) -> Iterator[None]:
    """The language for one block (a message the dispatcher builds), then back."""
    token = _current.set(language or SOURCE_LANGUAGE)
    try:
        yield
    finally:
        _current.reset(token)


def _(message: str) -> str:
    return _catalogue(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _catalogue(_current.get()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """A short word whose translation depends on what it describes: "cancelled" is
    "cancelado" for a prompt but "cancelada" for a session in Spanish."""
    return _catalogue(_current.get()).pgettext(context, message)


def NC_(context: str, message: str) -> str:
    """`N_` with a context; translate where used with `pgettext(context, message)`."""
    del context
    return message


def N_(message: str) -> str:
    """Marks a text for the catalogue where it is defined; `_()` translates it where used."""
    return message
