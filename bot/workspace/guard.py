"""Who is asking, and what every workspace response carries.

Two ways in (SPEC "Therapist workspace"): `Authorization: tma <initData>` from the Mini App,
validated on every request, or the browser session cookie from a sign-in link. Either way
the Telegram user or session must belong to an active therapist, checked on every request.
A state-changing request from a browser session must carry its CSRF token (form field or
`X-CSRF-Token`) and, when the browser says where it comes from, our own origin. The header
way needs no CSRF token: another site's page cannot set that header on a request to us.

Every page is in the therapist's language (their record's, which follows their Telegram
language), set here once the therapist is known; a refusal before that is in the clinic's
default language, or in the Mini App user's Telegram language when the clinic offers it.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import i18n
from bot.db.models import Therapist
from bot.domain import languages
from bot.i18n import _
from bot.runtime import Runtime
from bot.services import signin
from bot.services.errors import UserError
from bot.workspace import initdata

log = logging.getLogger(__name__)

COOKIE = "afterglow_workspace"
# Telegram's web clients show a Mini App in a frame; the apps use a web view (no frame).
FRAME_ANCESTORS = (
    "'self' https://web.telegram.org https://*.telegram.org"  # not shown: a security header
)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; "
    f"frame-ancestors {FRAME_ANCESTORS}"
)
# The chart: an SVG document with matplotlib's own <style>, shown only as an image.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


@dataclass(frozen=True)
class Caller:
    therapist_id: int
    name: str
    csrf: str | None  # a browser session's form token; None for the Mini App's header
    session_token: str | None = None


class Refused(UserError):
    """Not signed in (401) or a forged request (403): a page says so, nothing changes."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


def anonymous(rt: Runtime) -> None:
    """A page for someone not (yet) signed in: in the clinic's default language."""
    i18n.use(rt.settings.default_language)


def _offered(rt: Runtime, language_code: str | None) -> str | None:
    """Telegram's language code as a language the clinic offers, or None."""
    found = languages.from_telegram(language_code)
    return found if found in rt.settings.offered_languages else None


def _caller(
    rt: Runtime, therapist: Therapist, csrf: str | None, token: str | None = None
) -> Caller:
    """The one place a request's therapist is known: the rest of it is in their language."""
    settings = rt.settings
    i18n.use(
        languages.effective(
            therapist.language, settings.offered_languages, settings.default_language
        )
    )
    return Caller(therapist.id, therapist.name, csrf, token)


async def identify(request: Request, rt: Runtime) -> Caller:
    """The therapist behind this request, or Refused. Each check runs in its own committed
    transaction, so a timed-out session is closed even though the request is refused."""
    scheme, _sep, value = request.headers.get("Authorization", "").partition(" ")
    now = rt.clock.now()
    if scheme.lower() == "tma":
        # Until the data is checked, its language only words a refusal.
        i18n.use(_offered(rt, initdata.language_hint(value)) or rt.settings.default_language)
        try:
            user = initdata.user(value, bot_token=rt.settings.bot_token or "", now=now)
        except initdata.BadInitData as exc:
            log.info("workspace: Mini App data refused (%s)", exc)
            raise Refused(_("Open the workspace again from Telegram.")) from None
        telegram = _offered(rt, user.language_code)
        i18n.use(telegram or rt.settings.default_language)
        async with rt.sessions() as session, session.begin():
            try:
                therapist = await signin.telegram_therapist(session, user_id=user.id)
            except signin.SignedOut as exc:
                raise Refused(exc.message, 403) from None
            if telegram is not None and therapist.language != telegram:
                # As in the chat: their texts follow Telegram's language of their latest action.
                therapist.language = telegram
            return _caller(rt, therapist, None)
    anonymous(rt)
    token = request.cookies.get(COOKIE)
    if not token:
        raise Refused(_("You are not signed in."))
    refused: signin.SignedOut | None = None
    async with rt.sessions() as session, session.begin():
        try:
            therapist = await signin.session_therapist(session, token=token, now=now)
        except signin.SignedOut as exc:
            refused = exc
    if refused is not None:
        raise Refused(refused.message)
    return _caller(rt, therapist, signin.csrf_token(token), token)


def same_origin(request: Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        # Browsers send Origin on every cross-site POST; "null" only from sandboxed frames.
        return origin is None
    mine = urlsplit(str(request.base_url))
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (mine.scheme, mine.netloc)


async def check_post(request: Request, caller: Caller, form_token: str | None) -> None:
    if not same_origin(request):
        raise Refused(_("This request came from another site and was refused."), 403)
    if caller.csrf is None:
        return  # the Mini App's header: not something another site can send
    given = form_token or request.headers.get("X-CSRF-Token", "")
    if not hmac.compare_digest(given.encode(), caller.csrf.encode()):
        raise Refused(_("This form is out of date. Reload the page and try again."), 403)


def loopback(request: Request) -> bool:
    host = (request.url.hostname or "").lower()
    return host in ("127.0.0.1", "localhost", "::1")


class SecurityHeaders:
    """Every /app response: the CSP, no sniffing, a referrer only to our own pages (a
    sign-in link must not leak to another site; `no-referrer` would make browsers send
    `Origin: null` on our own form posts), and `no-store` unless it is a fingerprinted
    static file."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/app"):
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/app/static/")

        async def headed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        # The route sets this request's language (`identify`); afterwards the caller's is back.
        with i18n.using(i18n.current()):
            await self.app(scope, receive, headed)
