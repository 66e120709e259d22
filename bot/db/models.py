"""The data model: every table the SPEC needs, typed SQLAlchemy 2 style.

Times are aware UTC (`UTCDateTime`); patient free text is stored only as Fernet tokens
(`*_enc` columns), encrypted and decrypted by the services with the configured `Cipher`.
"""

from __future__ import annotations

import enum
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.db.types import UTCDateTime
from bot.domain.states import (
    PENDING_STATES as PENDING_STATES,
)
from bot.domain.states import (
    AlertKind as AlertKind,
)
from bot.domain.states import (
    DeliveryState as DeliveryState,
)
from bot.domain.states import (
    InviteKind as InviteKind,
)
from bot.domain.states import (
    PatientStatus as PatientStatus,
)
from bot.domain.states import (
    PromptKind as PromptKind,
)
from bot.domain.states import (
    ReplyKind as ReplyKind,
)
from bot.domain.states import (
    SessionState as SessionState,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as VARCHAR + CHECK so SQLite and PostgreSQL share one migration path.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Therapist(Base):
    __tablename__ = "therapists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The language of their texts: Telegram's language code of their latest message, if the
    # clinic offers it. None until they write; alerts then go in the clinic's default.
    language: Mapped[str | None] = mapped_column(String(8))

    patients: Mapped[list[Patient]] = relationship(back_populates="therapist")

    @property
    def reachable_chat(self) -> int | None:
        """Where alerts and notices go: only a chat the therapist opened with the bot
        themselves (an invite link, or /start after `therapist add`), never an id typed in
        by the operator that nobody has confirmed."""
        return self.chat_id if self.active else None


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("therapist_id", "pseudonym", name="uq_patients_therapist_pseudonym"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapists.id", ondelete="RESTRICT"), index=True
    )
    pseudonym: Mapped[str] = mapped_column(String(64))
    # No Telegram id in clear (bot/db/identity.py): an HMAC to look the patient up by, and
    # the user and chat ids encrypted for sending.
    telegram_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    telegram_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[PatientStatus] = mapped_column(
        _enum(PatientStatus, "patient_status"), default=PatientStatus.INVITED
    )
    timezone: Mapped[str | None] = mapped_column(String(64))
    quiet_start: Mapped[time] = mapped_column(Time(), default=time(21, 0))
    quiet_end: Mapped[time] = mapped_column(Time(), default=time(8, 0))
    language: Mapped[str] = mapped_column(String(8), default="en")
    default_template: Mapped[str | None] = mapped_column(String(32))
    consent_version: Mapped[str | None] = mapped_column(String(16))
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    therapist: Mapped[Therapist] = relationship(back_populates="patients")


class Invite(Base):
    __tablename__ = "invites"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'patient' AND patient_id IS NOT NULL) OR "
            "(kind = 'therapist' AND therapist_name IS NOT NULL)",
            name="target",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[InviteKind] = mapped_column(_enum(InviteKind, "invite_kind"))
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    therapist_name: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Who opened the link and sits on its consent screen: so a crisis message written there
    # reaches the inviting therapist. Cleared when they decline; spent links keep nothing new.
    # The user id's HMAC, never the id (bot/db/identity.py).
    opened_by_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))


class Template(Base):
    """A snapshot of the template a session was planned from (content files may change)."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("name", "digest", name="uq_templates_name_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    steps: Mapped[list[TemplateStep]] = relationship(
        order_by="TemplateStep.position", cascade="all, delete-orphan"
    )


class TemplateStep(Base):
    __tablename__ = "template_steps"
    __table_args__ = (
        UniqueConstraint("template_id", "position", name="uq_template_steps_position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    offset: Mapped[str] = mapped_column(String(32))
    prompt_key: Mapped[str] = mapped_column(String(64))
    every: Mapped[str | None] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    remind: Mapped[str | None] = mapped_column(String(32))  # "24h,48h"; "" none; NULL default
    expires: Mapped[str | None] = mapped_column(String(16))  # NULL: AFTERGLOW_ANSWER_WINDOW


class TreatmentSession(Base):
    __tablename__ = "treatment_sessions"
    # The dispatcher's tick: planned sessions whose start has come.
    __table_args__ = (Index("ix_treatment_sessions_state_start", "state", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id", ondelete="SET NULL"))
    template_name: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    logged_by: Mapped[int | None] = mapped_column(ForeignKey("therapists.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state: Mapped[SessionState] = mapped_column(
        _enum(SessionState, "session_state"),
        default=SessionState.STARTED,
        server_default=SessionState.STARTED.value,
    )
    # When it became the anchor (the dispatcher's tick for a planned one), for the record.
    anchored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When its therapist got the pre-session brief: at most one per planned session.
    briefed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Delivery(Base):
    """One prompt to one patient at one time, with its whole history."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # The dispatcher's due-query: WHERE state = 'scheduled' AND due_at <= now ORDER BY due_at.
        Index("ix_deliveries_state_due", "state", "due_at"),
        Index("ix_deliveries_patient_due", "patient_id", "due_at"),
        Index("ix_deliveries_chat_message", "patient_id", "telegram_message_id"),
        # The reminder query: WHERE state = 'sent' AND remind_at <= now.
        Index("ix_deliveries_state_remind", "state", "remind_at"),
        CheckConstraint("attempts >= 0", name="attempts"),
        CheckConstraint("reminders_sent >= 0", name="reminders_sent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("treatment_sessions.id", ondelete="CASCADE"), index=True
    )
    step_index: Mapped[int | None] = mapped_column(Integer)
    # A questionnaire: the item its message shows now (0-based); None for other kinds.
    position: Mapped[int | None] = mapped_column(Integer)
    offset: Mapped[str | None] = mapped_column(String(32))
    # A recurring step: how it repeats, and which repeat this is (0 is the first).
    every: Mapped[str | None] = mapped_column(String(16))
    occurrence: Mapped[int | None] = mapped_column(Integer)
    # The step's reminder delays after sending ("24h,48h"; "" none; NULL: the default for its
    # kind) and answer window (NULL: AFTERGLOW_ANSWER_WINDOW), copied from the template.
    remind: Mapped[str | None] = mapped_column(String(32))
    expires: Mapped[str | None] = mapped_column(String(16))
    prompt_key: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[PromptKind] = mapped_column(_enum(PromptKind, "prompt_kind"))
    # A therapist's free-text prompt from /add: encrypted like patient text, it may be personal.
    custom_text_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[DeliveryState] = mapped_column(
        _enum(DeliveryState, "delivery_state"), default=DeliveryState.SCHEDULED
    )
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    nudged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the latest reminder
    nudge_message_id: Mapped[int | None] = mapped_column(BigInteger)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the next reminder
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # end of answer window
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Backoff after a transient Telegram error; `due_at` keeps the intended time.
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Reply(Base):
    __tablename__ = "replies"
    __table_args__ = (
        Index("ix_replies_patient_received", "patient_id", "received_at"),
        # One answer per questionnaire item: Back and a new tap replace it.
        Index(
            "uq_replies_delivery_item",
            "delivery_id",
            "item",
            unique=True,
            sqlite_where=text("item IS NOT NULL"),
            postgresql_where=text("item IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[ReplyKind] = mapped_column(_enum(ReplyKind, "reply_kind"))
    body_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # A check-in's answer is health data like free text: encrypted (see bot/services/replies.py).
    choice_value_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    item: Mapped[int | None] = mapped_column(Integer)  # a questionnaire item's number, from 1
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProcessedUpdate(Base):
    """Telegram update ids already handled: redelivery must not repeat effects."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_open", "acknowledged_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="RESTRICT"))
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("replies.id", ondelete="SET NULL"))
    kind: Mapped[AlertKind] = mapped_column(_enum(AlertKind, "alert_kind"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    therapist_message_id: Mapped[int | None] = mapped_column(BigInteger)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[int | None] = mapped_column(BigInteger)
    acknowledged_as: Mapped[str | None] = mapped_column(String(16))  # "therapist" / "oncall"
    # The flagged words, encrypted, on the alert itself: the alert must not depend on the reply
    # being stored (onboarding and captions store no reply; a reply's transaction may fail).
    text_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    update_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)  # a redelivery finds it


class AuditEntry(Base):
    """Who read or changed what. Never holds patient text."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(64))  # "therapist:3", "operator", "patient:7"
    action: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id", ondelete="SET NULL"), index=True
    )
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class KeyCheck(Base):
    """A known text encrypted at first start: keys that cannot open it cannot open the
    database either, so start-up refuses them before a patient's message meets them."""

    __tablename__ = "key_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    value_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StaffMessage(Base):
    """A bot message in a therapist's or on-call chat that shows a patient's words (an alert,
    an escalation, a /replies listing, an export): /forgetme deletes it from that chat while
    Telegram still allows (48 hours after it was sent)."""

    __tablename__ = "staff_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # "alert", "escalation", "replies", "export"
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkspaceLink(Base):
    """A browser sign-in link from /dashboard: single use, 10 minutes, stored as a hash."""

    __tablename__ = "workspace_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WorkspaceSession(Base):
    """A signed-in browser: the cookie holds a random token, the row only its hash."""

    __tablename__ = "workspace_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OwnTemplate(Base):
    """A therapist's own schedule template: template YAML, checked like a content file,
    usable in /session by its name (never a library template's name)."""

    __tablename__ = "own_templates"
    __table_args__ = (UniqueConstraint("therapist_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
