"""Invites, consent and onboarding: how therapists and patients come to use the bot."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import identity, queries
from bot.db.crypto import Cipher
from bot.db.identity import TelegramUser
from bot.db.models import Invite, InviteKind, Patient, PatientStatus, Therapist
from bot.domain.timezones import resolve_zone
from bot.i18n import N_, _
from bot.services import audit
from bot.services.errors import UserError

# The version of the consent text (bot/views/render.py consent_text) stored with each
# agreement: change it whenever the text's meaning changes.
CONSENT_VERSION = "2026-11"


def consent_version(language: str) -> str:
    """The English text is the version itself; each translation is its own text version."""
    return CONSENT_VERSION if language == "en" else f"{CONSENT_VERSION}.{language}"


INVITE_LIFETIME = timedelta(days=7)
PSEUDONYM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def new_token() -> tuple[str, str]:
    """256 random bits, URL-safe (43 chars, fits Telegram's 64-char start parameter)."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def deep_link(bot_username: str, token: str) -> str:
    return f"https://t.me/{bot_username}?start={token}"


def check_pseudonym(pseudonym: str) -> str:
    if not PSEUDONYM.match(pseudonym):
        raise UserError(
            _(
                "A pseudonym is 1–32 letters, digits, dots, dashes or underscores, no spaces "
                "(e.g. river-7). Please don't use real names."
            )
        )
    return pseudonym


async def invite_therapist(session: AsyncSession, *, name: str, now: datetime) -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 120:
        raise UserError("name must be 1 to 120 characters")  # not shown: operator CLI
    token, digest = new_token()
    session.add(
        Invite(
            token_hash=digest,
            kind=InviteKind.THERAPIST,
            therapist_name=name,
            created_at=now,
            expires_at=now + INVITE_LIFETIME,
        )
    )
    audit.record(session, at=now, actor="operator", action="therapist.invite")
    return token


async def invite_patient(
    session: AsyncSession, *, therapist_id: int, pseudonym: str, now: datetime
) -> str:
    """Reserve the pseudonym and issue a fresh single-use link (earlier links stop working)."""
    check_pseudonym(pseudonym)
    patient = await queries.patient_of(session, therapist_id, pseudonym)
    if patient is None:
        patient = Patient(therapist_id=therapist_id, pseudonym=pseudonym, created_at=now)
        session.add(patient)
        await session.flush()
    elif patient.status not in (PatientStatus.INVITED, PatientStatus.DECLINED):
        raise UserError(_("{name} has already joined.").format(name=patient.pseudonym))
    else:
        patient.status = PatientStatus.INVITED
        await session.execute(
            update(Invite)
            .where(Invite.patient_id == patient.id, Invite.used_at.is_(None))
            .values(used_at=now)
        )
    token, digest = new_token()
    session.add(
        Invite(
            token_hash=digest,
            kind=InviteKind.PATIENT,
            patient_id=patient.id,
            created_at=now,
            expires_at=now + INVITE_LIFETIME,
        )
    )
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="patient.invite",
        patient_id=patient.id,
    )
    return token


@dataclass(frozen=True)
class OpenedInvite:
    kind: InviteKind
    invite_id: int
    therapist_name: str | None = None  # set when a therapist invite was just redeemed


ALREADY_SET_UP = N_("You're already set up with us. Send /help to see what you can do.")
THERAPIST_NOT_PATIENT = N_(
    "This link invites a patient, and your Telegram account is a therapist account, so it "
    "can't join with it. To try the patient side, open the link from another account."
)
USED_BY_SOMEONE_ELSE = N_(
    "This link has already been used by another Telegram account. If that wasn't you, "
    "please tell your clinic; they can send a new one."
)
LINK_INVALID = N_("This link isn't valid. Please ask your therapist or clinic for a new one.")
INVITATION_INVALID = N_("This invitation is no longer valid.")
INVITATION_INVALID_ASK = N_(
    "This invitation is no longer valid. Please ask your therapist for a new link."
)


async def _valid_invite(
    session: AsyncSession, token_hash: str, now: datetime, user: TelegramUser
) -> Invite:
    invite = await queries.invite_by_hash(session, token_hash)
    if invite is None:
        raise UserError(_(LINK_INVALID))
    if invite.used_at is not None:
        raise UserError(await _why_spent(session, invite, user))
    if invite.expires_at <= now:
        raise UserError(_("This link has expired. Please ask your therapist for a new one."))
    return invite


async def _why_spent(session: AsyncSession, invite: Invite, user: TelegramUser) -> str:
    """A spent link is answered by what spent it. Only a link someone else really used gets
    the alarming answer; a second tap, one's own "No, thanks" or a newer link get calm ones."""
    if invite.kind is InviteKind.THERAPIST:
        if await queries.therapist_by_user(session, user.id) is not None:
            return _("You're already registered as a therapist. Send /help to see your commands.")
        return _(USED_BY_SOMEONE_ELSE)
    patient = await session.get(Patient, invite.patient_id) if invite.patient_id else None
    if patient is None:
        return _(INVITATION_INVALID_ASK)
    if patient.telegram_index in user.indexes:
        if patient.status is PatientStatus.ONBOARDING:
            return _("You've already agreed ✓ One more step: tell me your time zone.")
        return _(ALREADY_SET_UP)
    if patient.telegram_index is not None:
        return _(USED_BY_SOMEONE_ELSE)
    newer = await queries.newer_patient_invite(session, invite)
    if newer:
        return _(
            "Your therapist has sent you a newer link, so this one no longer works. "
            "Please open the most recent link they gave you."
        )
    if patient.status is PatientStatus.DECLINED:
        return _(
            "This invitation was declined, so nothing was stored. If you've changed your mind, "
            "please ask your therapist for a new link."
        )
    return _(INVITATION_INVALID_ASK)


async def open_invite(
    session: AsyncSession, *, token: str, user: TelegramUser, chat_id: int, now: datetime
) -> OpenedInvite:
    """A therapist invite registers at once; a patient invite waits for consent."""
    if not 8 <= len(token) <= 64:
        raise UserError(_(LINK_INVALID))
    invite = await _valid_invite(session, hash_token(token), now, user)
    as_patient = await queries.patient_by_user(session, user)
    as_therapist = await queries.therapist_by_user(session, user.id)
    if invite.kind is InviteKind.THERAPIST:
        if as_therapist is not None:
            raise UserError(_("You're already registered as a therapist."))
        if as_patient is not None:
            raise UserError(
                _(
                    "This link sets up a therapist account, but this Telegram account is already "
                    "set up as a patient, and one account can't be both. If you work at the "
                    "clinic, please open the link from another Telegram account, or ask the "
                    "clinic for help."
                )
            )
        assert invite.therapist_name is not None
        therapist = Therapist(
            name=invite.therapist_name, telegram_user_id=user.id, chat_id=chat_id, created_at=now
        )
        session.add(therapist)
        invite.used_at = now
        await session.flush()
        audit.record(
            session, at=now, actor=audit.as_therapist(therapist.id), action="therapist.join"
        )
        return OpenedInvite(InviteKind.THERAPIST, invite.id, therapist.name)
    if as_therapist is not None:
        raise UserError(_(THERAPIST_NOT_PATIENT))
    if as_patient is not None:
        raise UserError(_(ALREADY_SET_UP))
    invite.opened_by_index = user.index
    return OpenedInvite(InviteKind.PATIENT, invite.id)


async def _patient_invite(
    session: AsyncSession, invite_id: int, now: datetime, user: TelegramUser
) -> Invite:
    invite = await session.get(Invite, invite_id)
    if invite is None or invite.kind is not InviteKind.PATIENT:
        raise UserError(_(INVITATION_INVALID))
    return await _valid_invite(session, invite.token_hash, now, user)


async def accept_consent(
    session: AsyncSession,
    *,
    invite_id: int,
    user: TelegramUser,
    chat_id: int,
    cipher: Cipher,
    now: datetime,
    language: str = "en",
) -> Patient:
    """Agree to the consent text shown in `language`: the patient's language from now on,
    and the version recorded (a consent in Spanish is its own text: "2026-11.es")."""
    invite = await _patient_invite(session, invite_id, now, user)
    if await queries.patient_by_user(session, user) is not None:
        raise UserError(_(ALREADY_SET_UP))
    if await queries.therapist_by_user(session, user.id) is not None:
        raise UserError(_(THERAPIST_NOT_PATIENT))
    assert invite.patient_id is not None
    patient = await session.get(Patient, invite.patient_id)
    if patient is None or patient.status is not PatientStatus.INVITED:
        raise UserError(_(INVITATION_INVALID))
    invite.used_at = now
    identity.link(patient, cipher, user, chat_id)
    version = consent_version(language)
    patient.consent_version = version
    patient.consent_at = now
    patient.language = language
    patient.status = PatientStatus.ONBOARDING
    audit.record(
        session,
        at=now,
        actor=audit.as_patient(patient.id),
        action="consent.agree",
        patient_id=patient.id,
        version=version,
        language=language,
    )
    return patient


async def decline_consent(
    session: AsyncSession, *, invite_id: int, user: TelegramUser, now: datetime
) -> Patient:
    """Nothing about the person is stored: only the invite is spent."""
    invite = await _patient_invite(session, invite_id, now, user)
    invite.used_at = now
    invite.opened_by_index = None
    assert invite.patient_id is not None
    patient = await session.get(Patient, invite.patient_id)
    if patient is None:
        raise UserError(_(INVITATION_INVALID))
    patient.status = PatientStatus.DECLINED
    audit.record(session, at=now, actor="system", action="consent.decline", patient_id=patient.id)
    return patient


async def set_timezone(
    session: AsyncSession, *, patient: Patient, text: str, now: datetime
) -> tuple[str, bool]:
    """Returns (zone name, just finished onboarding)."""
    zone = resolve_zone(text)
    if zone is None:
        raise UserError(
            _(
                "I couldn't find that time zone. Try a city (like Chicago) or a name "
                "like America/Chicago."
            )
        )
    patient.timezone = zone
    finished = patient.status is PatientStatus.ONBOARDING
    if finished:
        patient.status = PatientStatus.ACTIVE
    audit.record(
        session,
        at=now,
        actor=audit.as_patient(patient.id),
        action="patient.timezone",
        patient_id=patient.id,
    )
    return zone, finished
