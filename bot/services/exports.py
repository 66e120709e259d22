"""Everything delivered to and received from one patient, as rows for a CSV or JSON file.

`patient_rows` reads (and decrypts); `to_csv` / `to_json` are pure. They are shared by the
therapist's `/export` and the operator's `afterglow export` — the caller writes the audit entry.

One row per delivery (with the reply or replies that answer it) and one per reply tied to no
delivery (a journal note). Times are ISO 8601, in UTC and in the patient's time zone.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.crypto import Cipher
from bot.db.models import Delivery, Patient, Reply, ReplyKind
from bot.domain.content import ContentLibrary
from bot.i18n import _
from bot.services import audit
from bot.services.access import own_patient, own_patient_by_id
from bot.services.replies import ACK_ANSWER, choice_of, item_question, question_text
from bot.services.sessions import zone_of

COLUMNS = (
    "type",
    "delivery_id",
    "session_id",
    "offset",
    "prompt_key",
    "kind",
    "question",
    "state",
    "due_utc",
    "due_local",
    "sent_utc",
    "sent_local",
    "answered_utc",
    "answered_local",
    "answer",
    "choice_value",
    "flagged",
)
ANSWER_SEPARATOR = "\n\n"
# A cell starting like a formula is neutralised for spreadsheets (CSV only; OWASP advice).
_FORMULA_CHARS = frozenset("=+-@")
_RISKY_FIRST = ("\t", "\r")  # OWASP lists these as dangerous first characters themselves
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf"})  # controls; zero-width space, BOM, bidi marks


@dataclass(frozen=True)
class ExportRow:
    type: str  # "delivery", or the reply kind of a reply tied to no delivery ("note", "text")
    delivery_id: int | None
    session_id: int | None
    offset: str | None
    prompt_key: str | None
    kind: str | None
    question: str | None  # plain text
    state: str | None
    due_utc: str | None
    due_local: str | None
    sent_utc: str | None
    sent_local: str | None
    answered_utc: str | None
    answered_local: str | None
    answer: str | None
    choice_value: str | None
    flagged: bool


def _utc(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


def _local(moment: datetime | None, tz: ZoneInfo) -> str | None:
    return moment.astimezone(tz).isoformat(timespec="seconds") if moment is not None else None


def _answer(
    reply: Reply, delivery: Delivery | None, content: ContentLibrary, cipher: Cipher
) -> str:
    if reply.kind is ReplyKind.ITEM and delivery is not None:
        question, answer = item_question(reply, delivery, content, cipher)
        return f"{question} → {answer}"
    if reply.kind is ReplyKind.CHOICE:
        prompt = content.prompts.get(delivery.prompt_key or "") if delivery else None
        value = choice_of(reply, cipher) or ""
        label = prompt.choice_label(value) if prompt else None
        return label or value
    if reply.kind is ReplyKind.ACK:
        return _(ACK_ANSWER)
    return cipher.decrypt(reply.body_enc) if reply.body_enc else ""


async def patient_rows(
    session: AsyncSession, patient: Patient, content: ContentLibrary, cipher: Cipher
) -> list[ExportRow]:
    """All of one patient's deliveries and replies, decrypted, oldest first (two queries)."""
    tz = zone_of(patient)
    deliveries = list(
        await session.scalars(
            select(Delivery)
            .where(Delivery.patient_id == patient.id)
            .order_by(Delivery.due_at, Delivery.id)
        )
    )
    replies = list(
        await session.scalars(
            select(Reply)
            .where(Reply.patient_id == patient.id)
            .order_by(Reply.received_at, Reply.id)
        )
    )
    by_delivery: dict[int, list[Reply]] = {}
    loose: list[Reply] = []
    known = {d.id for d in deliveries}
    for reply in replies:
        if reply.delivery_id is not None and reply.delivery_id in known:
            by_delivery.setdefault(reply.delivery_id, []).append(reply)
        else:
            loose.append(reply)

    rows: list[tuple[datetime, ExportRow]] = []
    for d in deliveries:
        answers = by_delivery.get(d.id, [])
        choice = next((choice_of(r, cipher) for r in answers if r.kind is ReplyKind.CHOICE), None)
        answered = d.answered_at or (answers[0].received_at if answers else None)
        row = ExportRow(
            type="delivery",
            delivery_id=d.id,
            session_id=d.session_id,
            offset=d.offset,
            prompt_key=d.prompt_key,
            kind=d.kind.value,
            question=question_text(d, content, cipher),
            state=d.state.value,
            due_utc=_utc(d.due_at),
            due_local=_local(d.due_at, tz),
            sent_utc=_utc(d.sent_at),
            sent_local=_local(d.sent_at, tz),
            answered_utc=_utc(answered),
            answered_local=_local(answered, tz),
            answer=ANSWER_SEPARATOR.join(_answer(r, d, content, cipher) for r in answers)
            if answers
            else None,
            choice_value=choice,
            flagged=any(r.flagged for r in answers),
        )
        rows.append((d.sent_at or d.due_at, row))
    for reply in loose:
        row = ExportRow(
            type=reply.kind.value,
            delivery_id=None,
            session_id=None,
            offset=None,
            prompt_key=None,
            kind=None,
            question=None,
            state=None,
            due_utc=None,
            due_local=None,
            sent_utc=None,
            sent_local=None,
            answered_utc=_utc(reply.received_at),
            answered_local=_local(reply.received_at, tz),
            answer=_answer(reply, None, content, cipher),
            choice_value=choice_of(reply, cipher),
            flagged=reply.flagged,
        )
        rows.append((reply.received_at, row))
    rows.sort(key=lambda item: item[0])  # stable: ties keep delivery order, then notes
    return [row for _key, row in rows]


def _first_visible(text: str) -> str:
    for ch in text:
        if not ch.isspace() and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES:
            return ch
    return ""


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet might evaluate `text`: spreadsheets trim blanks before reading a
    cell and some map full-width or compatibility forms ("＝", "﹢") to the ASCII ones, so the
    first visible character counts, as typed and in its NFKC form, and the text's NFKC form
    too (it can turn a blank-looking start into a formula character)."""
    if text.startswith(_RISKY_FIRST):
        return True
    first = _first_visible(text)
    if not first:
        return False
    candidates = (
        first,
        _first_visible(unicodedata.normalize("NFKC", first)),
        _first_visible(unicodedata.normalize("NFKC", text)),
    )
    return any(ch in _FORMULA_CHARS for ch in candidates)


def _cell(value: object, safe: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if safe and looks_like_formula(text):
        return "'" + text
    return text


def to_csv(rows: list[ExportRow], *, spreadsheet_safe: bool = True) -> bytes:
    """UTF-8 CSV with a header row, every field quoted. With `spreadsheet_safe`, free text
    (question, answer) that could start a formula (`looks_like_formula`) gets a leading
    apostrophe, so opening the file in a spreadsheet cannot run it."""
    out = io.StringIO(newline="")
    # Quoting every field keeps a cell's leading blanks and separators inside the cell.
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(COLUMNS)
    for row in rows:
        values = dataclasses.asdict(row)
        writer.writerow(
            _cell(values[c], spreadsheet_safe and c in ("question", "answer")) for c in COLUMNS
        )
    return out.getvalue().encode("utf-8")


def to_json(rows: list[ExportRow]) -> bytes:
    """A UTF-8 JSON array of objects with the CSV's columns (null where empty)."""
    data = [dataclasses.asdict(row) for row in rows]
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


def filename(pseudonym: str, now: datetime, extension: str = "csv") -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", pseudonym) or "patient"
    return f"afterglow-{safe}-{now:%Y%m%d}.{extension}"


@dataclass(frozen=True)
class PatientExport:
    patient_id: int
    pseudonym: str
    filename: str
    data: bytes
    rows: int


async def export_csv(
    session: AsyncSession,
    *,
    therapist_id: int,
    pseudonym: str,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> PatientExport:
    """`/export <pseudonym>`: the therapist's own patient only; audit-logged."""
    patient = await own_patient(session, therapist_id, pseudonym)
    return await _export(session, therapist_id, patient, content, cipher, now)


async def export_csv_by_id(
    session: AsyncSession,
    *,
    therapist_id: int,
    patient_id: int,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> PatientExport:
    patient = await own_patient_by_id(session, therapist_id, patient_id)
    return await _export(session, therapist_id, patient, content, cipher, now)


async def _export(
    session: AsyncSession,
    therapist_id: int,
    patient: Patient,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> PatientExport:
    rows = await patient_rows(session, patient, content, cipher)
    audit.record(
        session,
        at=now,
        actor=audit.as_therapist(therapist_id),
        action="export.csv",
        patient_id=patient.id,
        rows=len(rows),
    )
    return PatientExport(
        patient.id, patient.pseudonym, filename(patient.pseudonym, now), to_csv(rows), len(rows)
    )
