"""Recording what patients send, and therapists reading it."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import queries
from bot.db.crypto import Cipher, CryptoKeyError
from bot.db.models import Delivery, DeliveryState, Patient, PromptKind, Reply, ReplyKind
from bot.domain import linking
from bot.domain.content import ContentLibrary, plain_text
from bot.i18n import N_, _
from bot.services import audit
from bot.services.errors import STALE_BUTTON, NotFound, UserError

log = logging.getLogger(__name__)

# i18n: "Got it" is the label of the button under an education snippet
ACK_ANSWER = N_("(read: Got it)")
QUESTION_CLOSED = N_("This question is closed.")


class Recorded(enum.Enum):
    ANSWER = "answer"
    JOINED = "joined"
    NOTE = "note"
    CHOICE = "choice"  # a check-in answered by typing its number or label


@dataclass(frozen=True)
class TextOutcome:
    recorded: Recorded
    reply_id: int
    delivery_id: int | None
    question: str | None = None  # what it was filed under, as plain text; None for a note
    choice: ChoiceOutcome | None = None  # for Recorded.CHOICE
    checkin_message_id: int | None = None  # the check-in's message, to edit as a tap would


def _question(candidate: queries.Candidate | None) -> linking.Question | None:
    if candidate is None:
        return None
    # A check-in takes one answer: once answered, typing a number no longer goes to it.
    answered = candidate.kind is PromptKind.CHECKIN and candidate.state is not DeliveryState.SENT
    return linking.Question(
        candidate.id,
        candidate.kind.value,
        candidate.sent_at,
        candidate.closed_at is not None or answered,
        candidate.closes_at,
    )


def _previous(
    last: queries.LastReply | None, now: datetime, cipher: Cipher
) -> tuple[linking.Previous | None, str]:
    """The last text reply as `linking` sees it, and its text when it might be joined (only
    then is it decrypted)."""
    if last is None or last.kind not in (ReplyKind.TEXT, ReplyKind.NOTE) or not last.body_enc:
        return None, ""
    if now - last.updated_at > linking.JOIN_PAUSE:  # too old to join: no need to decrypt
        return linking.Previous(last.delivery_id, last.received_at, last.updated_at, 0), ""
    try:
        before = cipher.decrypt(last.body_enc)
    except CryptoKeyError:
        # Unreadable (a lost key): never join it. The new message is kept on its own, and
        # the failure is the operator's to see (`afterglow keys check`), not the patient's.
        log.error("reply %s cannot be decrypted with the configured keys; not joined", last.id)
        return None, ""
    previous = linking.Previous(last.delivery_id, last.received_at, last.updated_at, len(before))
    return previous, before


def _prompt_text(
    key: str | None, custom_enc: bytes | None, content: ContentLibrary, cipher: Cipher
) -> str:
    """The question as plain text: the words the patient read (a therapist's own, or the
    content's without its markup); views escape and format it."""
    if custom_enc is not None:
        return cipher.decrypt(custom_enc)
    prompt = content.prompts.get(key or "")
    if prompt is not None:
        return plain_text(prompt.text)
    questionnaire = content.questionnaires.get(key or "")
    return questionnaire.title if questionnaire is not None else f"[{key}]"


# Built once, run with parameters (Core: nothing on this path needs the identity map).
_NEW_REPLY = insert(queries.REPLIES).returning(queries.REPLIES.c.id)
_JOIN_REPLY = (
    update(queries.REPLIES)
    .where(queries.REPLIES.c.id == bindparam("reply_id"))
    .values(
        body_enc=bindparam("body_enc"), updated_at=bindparam("now"), flagged=bindparam("flagged")
    )
)
_ANSWERED = (
    update(queries.DELIVERIES)
    .where(
        queries.DELIVERIES.c.id == bindparam("delivery_id"),
        queries.DELIVERIES.c.state == DeliveryState.SENT,
    )
    .values(state=DeliveryState.ANSWERED, answered_at=bindparam("now"), updated_at=bindparam("now"))
)


async def record_text(
    session: AsyncSession,
    *,
    patient: Patient,
    text: str,
    message_id: int,
    reply_to_message_id: int | None,
    update_id: int | None,
    cipher: Cipher,
    content: ContentLibrary,
    answer_window: timedelta,
    now: datetime,
    flagged: bool = False,
) -> TextOutcome:
    """One read, then the writes `linking.file` decides: a check-in's typed answer, the text
    joined to the last reply, or a new reply (marking the question it answers answered)."""
    content = content.in_language(patient.language)  # questions quoted as they were asked
    found = await queries.reply_context(
        session, patient.id, reply_to_message_id, now - linking.FALLBACK_WINDOW
    )
    candidates = {c.id: c for c in (found.replied_to, found.latest_open, found.latest_checkin) if c}
    previous, before = _previous(found.last_reply, now, cipher)

    def choice_value(delivery_id: int) -> str | None:
        prompt = content.prompts.get(candidates[delivery_id].prompt_key or "")
        if prompt is None:
            return None
        if prompt.typed_out_of_range(text) and prompt.scale is not None:
            raise UserError(
                _(
                    "That number is outside the scale. Please tap a number above, or type one "
                    "from {low} to {high}."
                ).format(low=prompt.scale.min, high=prompt.scale.max)
            )
        return prompt.typed_value(text)

    filing = linking.file(
        linking.Facts(
            _question(found.replied_to),
            _question(found.latest_open),
            _question(found.latest_checkin),
            previous,
            found.last_asked,
        ),
        now=now,
        answer_window=answer_window,
        added_length=len(text),
        choice_value=choice_value,
    )

    if isinstance(filing, linking.Choice):
        checkin = candidates[filing.delivery_id]
        choice = await record_choice(
            session,
            patient=patient,
            delivery_id=checkin.id,
            value=filing.value,
            update_id=update_id,
            content=content,
            cipher=cipher,
            now=now,
        )
        assert choice.reply_id is not None  # the check-in was open, so this is its first answer
        return TextOutcome(
            Recorded.CHOICE,
            choice.reply_id,
            checkin.id,
            choice.prompt_text,
            choice,
            checkin.telegram_message_id,
        )

    last = found.last_reply
    if isinstance(filing, linking.Join):
        assert last is not None
        await session.execute(
            _JOIN_REPLY,
            {
                "reply_id": last.id,
                "body_enc": cipher.encrypt(f"{before}\n{text}"),
                "now": now,
                "flagged": last.flagged or flagged,
            },
        )
        question = (
            _prompt_text(last.question_key, last.question_custom_enc, content, cipher)
            if last.delivery_id is not None
            else None
        )
        return TextOutcome(Recorded.JOINED, last.id, last.delivery_id, question)

    target = filing.delivery_id if isinstance(filing, linking.Answer) else None
    reply_id = await session.scalar(
        _NEW_REPLY,
        {
            "patient_id": patient.id,
            "delivery_id": target,
            "kind": ReplyKind.TEXT if target is not None else ReplyKind.NOTE,
            "body_enc": cipher.encrypt(text),
            "update_id": update_id,
            "telegram_message_id": message_id,
            "flagged": flagged,
            "received_at": now,
            "updated_at": now,
        },
    )
    assert reply_id is not None
    if target is None:
        return TextOutcome(Recorded.NOTE, reply_id, None)
    await session.execute(_ANSWERED, {"delivery_id": target, "now": now})
    answered = candidates[target]
    question = _prompt_text(answered.prompt_key, answered.custom_text_enc, content, cipher)
    return TextOutcome(Recorded.ANSWER, reply_id, target, question)


def _mark_answered(delivery: Delivery, now: datetime) -> None:
    if delivery.state is DeliveryState.SENT:
        delivery.state = DeliveryState.ANSWERED
        delivery.answered_at = now
        delivery.updated_at = now


@dataclass(frozen=True)
class ChoiceOutcome:
    prompt_text: str
    label: str
    already: bool
    risk: bool
    reply_id: int | None = None


async def _own_sent_delivery(
    session: AsyncSession, patient: Patient, delivery_id: int, kind: PromptKind
) -> Delivery:
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None or delivery.patient_id != patient.id or delivery.kind is not kind:
        raise NotFound(_(STALE_BUTTON))
    if delivery.state not in (DeliveryState.SENT, DeliveryState.ANSWERED):
        raise UserError(_(QUESTION_CLOSED))
    return delivery


async def record_choice(
    session: AsyncSession,
    *,
    patient: Patient,
    delivery_id: int,
    value: str,
    update_id: int | None,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> ChoiceOutcome:
    """One tap records a check-in; a second tap (stale message) changes nothing."""
    delivery = await _own_sent_delivery(session, patient, delivery_id, PromptKind.CHECKIN)
    # The patient's words back to them, in the language the question was asked in.
    prompt = content.in_language(patient.language).prompts.get(delivery.prompt_key or "")
    if prompt is None:
        raise NotFound(_("This question is no longer available."))
    if delivery.state is DeliveryState.ANSWERED:
        existing = await session.scalar(
            Reply.__table__.select()
            .with_only_columns(Reply.choice_value_enc)
            .where(Reply.delivery_id == delivery.id, Reply.kind == ReplyKind.CHOICE)
        )
        label = prompt.choice_label(cipher.decrypt(existing)) if existing is not None else None
        return ChoiceOutcome(prompt.text, label or value, True, False)
    if delivery.closed_at is not None or (
        delivery.closes_at is not None and now >= delivery.closes_at
    ):
        raise UserError(_(QUESTION_CLOSED))
    label = prompt.choice_label(value)
    if label is None:
        raise UserError(_("That answer isn't one of the options."))
    risk = prompt.is_risk_answer(value)
    reply = Reply(
        patient_id=patient.id,
        delivery_id=delivery.id,
        kind=ReplyKind.CHOICE,
        choice_value_enc=cipher.encrypt(value),
        update_id=update_id,
        flagged=risk,
        received_at=now,
        updated_at=now,
    )
    session.add(reply)
    _mark_answered(delivery, now)
    await session.flush()
    return ChoiceOutcome(prompt.text, label, False, risk, reply.id)


async def record_ack(
    session: AsyncSession, *, patient: Patient, delivery_id: int, now: datetime
) -> bool:
    """ "Got it" on an education snippet; returns False when it was already pressed."""
    delivery = await _own_sent_delivery(session, patient, delivery_id, PromptKind.EDUCATION)
    if delivery.state is DeliveryState.ANSWERED:
        return False
    session.add(
        Reply(
            patient_id=patient.id,
            delivery_id=delivery.id,
            kind=ReplyKind.ACK,
            received_at=now,
            updated_at=now,
        )
    )
    _mark_answered(delivery, now)
    return True


@dataclass(frozen=True)
class ReplyView:
    received_at: datetime
    question: str | None  # the question as plain text, or None for a note
    answer: str


def question_text(delivery: Delivery, content: ContentLibrary, cipher: Cipher) -> str:
    """The question as plain text (see `_prompt_text`)."""
    return _prompt_text(delivery.prompt_key, delivery.custom_text_enc, content, cipher)


async def read_replies(
    session: AsyncSession,
    *,
    therapist_id: int,
    pseudonym: str,
    limit: int,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> tuple[Patient, list[ReplyView]]:
    patient = await queries.patient_of(session, therapist_id, pseudonym)
    if patient is None:
        raise NotFound(_("You have no patient called “{pseudonym}”.").format(pseudonym=pseudonym))
    rows = await queries.recent_replies(session, patient.id, limit)
    views: list[ReplyView] = []
    for reply, delivery in rows:
        question = question_text(delivery, content, cipher) if delivery is not None else None
        if reply.kind is ReplyKind.ITEM and delivery is not None:
            question, answer = item_question(reply, delivery, content, cipher)
            answer += " ⚠" if reply.flagged else ""
        elif reply.kind is ReplyKind.CHOICE:
            prompt = content.prompts.get(delivery.prompt_key or "") if delivery else None
            value = choice_of(reply, cipher) or ""
            label = prompt.choice_label(value) if prompt else None
            answer = f"{label or value}" + (" ⚠" if reply.flagged else "")
        elif reply.kind is ReplyKind.ACK:
            answer = _(ACK_ANSWER)
        else:
            answer = cipher.decrypt(reply.body_enc) if reply.body_enc else ""
        views.append(ReplyView(reply.received_at, question, answer))
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="replies.read",
        patient_id=patient.id,
        count=len(views),
    )
    return patient, views


def item_question(
    reply: Reply, delivery: Delivery, content: ContentLibrary, cipher: Cipher
) -> tuple[str, str]:
    """A questionnaire item's answer as plain (question, answer): which item of which
    questionnaire, and the option's label with its value."""
    value = choice_of(reply, cipher) or ""
    questionnaire = content.questionnaires.get(delivery.prompt_key or "")
    number = reply.item or 0
    if questionnaire is None or not 1 <= number <= len(questionnaire.items):
        # i18n: {key} is a questionnaire's key (it is no longer in the content)
        return _("[{key}] item {number}").format(key=delivery.prompt_key, number=number), value
    item = questionnaire.items[number - 1]
    label = next((o.label for o in item.options if str(o.value) == value), value)
    # i18n: {questionnaire} is its title, {question} the item's own text
    where = _("{questionnaire}, item {number} of {total}: {question}").format(
        questionnaire=questionnaire.title,
        number=number,
        total=len(questionnaire.items),
        question=item.text,
    )
    return where, f"{label} ({value})"


def choice_of(reply: Reply, cipher: Cipher) -> str | None:
    """A check-in answer's stored value, decrypted (None for a text reply)."""
    return cipher.decrypt(reply.choice_value_enc) if reply.choice_value_enc is not None else None
