"""The states and kinds the product talks about (a delivery's state, a patient's status, what
kind a prompt or reply is): plain enums, so views and domain logic use them without the
database layer. The models store them (bot/db/models.py)."""

from __future__ import annotations

import enum


class PatientStatus(enum.StrEnum):
    INVITED = "invited"  # pseudonym reserved by the therapist, nobody has joined yet
    ONBOARDING = "onboarding"  # consented, time zone not chosen yet
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"
    UNREACHABLE = "unreachable"  # blocked the bot
    DECLINED = "declined"
    ERASED = "erased"


class InviteKind(enum.StrEnum):
    PATIENT = "patient"
    THERAPIST = "therapist"


class DeliveryState(enum.StrEnum):
    SCHEDULED = "scheduled"
    HELD = "held"
    SENDING = "sending"
    SENT = "sent"
    ANSWERED = "answered"
    SKIPPED = "skipped"
    MISSED = "missed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    UNKNOWN = "unknown"
    PARTIAL = "partial"  # a questionnaire whose window closed with some items unanswered


PENDING_STATES = (DeliveryState.SCHEDULED, DeliveryState.HELD)


class SessionState(enum.StrEnum):
    PLANNED = "planned"  # in the future: its preparation steps run, the previous session's too
    STARTED = "started"  # the anchor: its start cancelled the previous session's rest
    CANCELLED = "cancelled"


class PromptKind(enum.StrEnum):
    EDUCATION = "education"
    REFLECTION = "reflection"
    CHECKIN = "checkin"
    QUESTIONNAIRE = "questionnaire"


class ReplyKind(enum.StrEnum):
    TEXT = "text"  # free-text answer to a reflection
    CHOICE = "choice"  # check-in tap
    NOTE = "note"  # free text with no open question: kept as a journal note
    ACK = "ack"  # "Got it" on an education snippet
    ITEM = "item"  # one questionnaire item's answer (Reply.item says which)


class AlertKind(enum.StrEnum):
    CRISIS = "crisis"
    CHECKIN_RISK = "checkin_risk"
    QUESTIONNAIRE = "questionnaire"  # an item at or above its risk rule (e.g. PHQ-9 item 9)
