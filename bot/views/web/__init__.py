"""The workspace's pages: Jinja2 templates (autoescaped) and the static files they load.

Words shared with the chat (delivery states, patient statuses, change confirmations) come
from the chat views, so a therapist reads the same thing in both places. Every text is in the
current language (`bot.i18n`, set per request by the guard): templates mark theirs with
`{{ _("…") }}` / `ngettext(…)` (Jinja's i18n extension, new style: the result is trusted
markup, placeholders are `{braces}` filled with `.format()`, which escapes the values) and
pass a catalogue constant of the chat views through `translate(…)`. Static files are
served with a content hash in their URL (cached for a year) and a Subresource Integrity
hash on their tag.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot import i18n
from bot.domain import languages
from bot.domain.content import plain_text
from bot.services.course import version as session_version
from bot.views import console as chat_console
from bot.views import course as chat_course
from bot.views.render import cadence, local

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
HTMX = "htmx-2.0.11.min.js"


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    media_type: str
    integrity: str  # "sha384-…", for the tag's integrity attribute
    version: str  # a short content hash, for the URL

    @property
    def url(self) -> str:
        return f"/app/static/{self.name}?v={self.version}"


_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def _assets() -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for path in sorted(STATIC.iterdir()):
        if path.suffix not in _TYPES:
            continue
        body = path.read_bytes()
        sri = base64.b64encode(hashlib.sha384(body).digest()).decode()
        found[path.name] = Asset(
            path.name,
            body,
            _TYPES[path.suffix],
            f"sha384-{sri}",
            hashlib.sha256(body).hexdigest()[:12],
        )
    return found


ASSETS = _assets()


def when(moment: datetime | None, zone: str | None) -> str:
    return local(moment, zone) if moment is not None else "—"


def plain(html_text: str) -> str:
    """A chat text (Telegram HTML) as plain text, for a page that escapes it again."""
    return plain_text(html_text)


_ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.i18n"],
)
# bot.i18n reads the language per call, so one Environment serves every language.
_ENV.install_gettext_callables(  # type: ignore[attr-defined]
    gettext=i18n._, ngettext=i18n.ngettext, newstyle=True
)
_ENV.globals.update(
    translate=i18n._,  # a text marked N_() where it is defined (STATUS[…]): escaped as usual
    assets=ASSETS,
    htmx=ASSETS[HTMX],
    STATUS=chat_console.STATUS,
    STATE=chat_console.STATE,
    LANGUAGES=languages.NAMES,
    session_state=chat_course.session_state,
    SHIFT_LABELS=chat_course.SHIFT_LABELS,
    quiet_text=chat_console.quiet_text,
    next_prompt=chat_console.next_prompt,
    when=when,
    cadence=cadence,
    plain=plain,
    delivery_what=lambda line: plain(chat_console.delivery_what(line)),
    session_version=session_version,
)


def page(name: str, **context: Any) -> str:
    return _ENV.get_template(name).render(lang=i18n.current(), **context)
