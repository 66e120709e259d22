"""Who is using the workspace: browser sign-in links and sessions, and Mini App users.

A link from /dashboard is single use and valid for 10 minutes; opening it starts a browser
session that ends after 30 idle minutes or 12 hours whatever happens, or at sign-out. Tokens
are random; the database holds only their SHA-256, so a leaked backup signs nobody in. A
deactivated therapist's sessions stop working at their next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Therapist, WorkspaceLink, WorkspaceSession
from bot.i18n import N_, _
from bot.services import audit
from bot.services.errors import UserError

LINK_VALID = timedelta(minutes=10)
IDLE = timedelta(minutes=30)
LONGEST = timedelta(hours=12)

LINK_GONE = N_(  # `_(LINK_GONE)` where used
    "This sign-in link has expired or was used already. Send /dashboard to the bot in "
    "Telegram for a new one."
)


class SignedOut(UserError):
    """No session (never signed in, timed out, signed out, or the therapist was deactivated)."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(session_token: str) -> str:
    """The form token of a browser session: derived from the cookie's secret, which a page
    on another site can neither read nor guess, so nothing more needs storing."""
    return hmac.new(b"afterglow-workspace-csrf", session_token.encode(), "sha256").hexdigest()


async def issue_link(session: AsyncSession, *, therapist_id: int, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        WorkspaceLink(
            therapist_id=therapist_id,
            token_hash=digest(token),
            created_at=now,
            expires_at=now + LINK_VALID,
        )
    )
    audit.record(session, at=now, actor=audit.as_therapist(therapist_id), action="workspace.link")
    return token


@dataclass(frozen=True)
class Started:
    token: str  # for the cookie; never stored
    therapist_id: int


async def redeem_link(session: AsyncSession, *, token: str, now: datetime) -> Started:
    """Use a link once: the guarded update lets one of two simultaneous openings win."""
    therapist_id = await session.scalar(
        update(WorkspaceLink)
        .where(
            WorkspaceLink.token_hash == digest(token),
            WorkspaceLink.used_at.is_(None),
            WorkspaceLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(WorkspaceLink.therapist_id)
    )
    therapist = await session.get(Therapist, therapist_id) if therapist_id is not None else None
    if therapist is None or not therapist.active:
        raise SignedOut(_(LINK_GONE))
    started = secrets.token_urlsafe(32)
    session.add(
        WorkspaceSession(
            therapist_id=therapist.id,
            token_hash=digest(started),
            created_at=now,
            last_seen_at=now,
        )
    )
    audit.record(session, at=now, actor=audit.as_therapist(therapist.id), action="workspace.signin")
    return Started(started, therapist.id)


async def session_therapist(session: AsyncSession, *, token: str, now: datetime) -> Therapist:
    """The active therapist behind a browser session, which this request keeps alive."""
    row = (
        await session.execute(
            select(WorkspaceSession, Therapist)
            .join(Therapist, Therapist.id == WorkspaceSession.therapist_id)
            .where(WorkspaceSession.token_hash == digest(token))
        )
    ).one_or_none()
    if row is None:
        raise SignedOut(_("You are not signed in."))
    browser, therapist = row
    if browser.ended_at is not None:
        raise SignedOut(_("You signed out."))
    if now - browser.last_seen_at > IDLE or now - browser.created_at > LONGEST:
        browser.ended_at = now
        raise SignedOut(_("Your session timed out."))
    if not therapist.active:
        browser.ended_at = now
        raise SignedOut(_("You are not signed in."))
    browser.last_seen_at = now
    return therapist


async def sign_out(session: AsyncSession, *, token: str, now: datetime) -> None:
    browser = await session.scalar(
        select(WorkspaceSession).where(WorkspaceSession.token_hash == digest(token))
    )
    if browser is not None and browser.ended_at is None:
        browser.ended_at = now
        audit.record(
            session, at=now, actor=audit.as_therapist(browser.therapist_id),
            action="workspace.signout",
        )  # fmt: skip


async def telegram_therapist(session: AsyncSession, *, user_id: int) -> Therapist:
    """The active therapist a Mini App user is (the Telegram id is in clear for staff)."""
    therapist = await session.scalar(
        select(Therapist).where(Therapist.telegram_user_id == user_id, Therapist.active)
    )
    if therapist is None:
        raise SignedOut(_("This workspace is for the clinic's therapists."))
    return therapist
