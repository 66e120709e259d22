"""Operator maintenance: key rotation, one patient's export, retention.

The use cases behind `afterglow keys rotate`, `afterglow export` and `afterglow purge`. They print
nothing and return plain counts. Rotation and purge may touch many rows, so they take the engine
and work in batches, one short transaction each (keyset pagination by primary key): a big table
never sits in memory or in one long transaction beside the running bot. Export is one read and
takes a session, like every other service.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    CursorResult,
    LargeBinary,
    Select,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from bot.db import identity
from bot.db.crypto import Cipher, CryptoKeyError
from bot.db.engine import SessionFactory, make_session_factory
from bot.db.models import (
    Alert,
    Base,
    Delivery,
    DeliveryState,
    Patient,
    PatientStatus,
    ProcessedUpdate,
    Reply,
)
from bot.domain.content import ContentLibrary
from bot.services import audit, exports, fhir
from bot.services.errors import NotFound, UserError
from bot.services.participation import scrub_storage

BATCH_SIZE = 500
OPERATOR = "operator"
MAX_RETENTION_DAYS = 36500
ExportFormat = Literal["csv", "json", "fhir"]
# A delivery not sent yet still needs its text: retention never clears these.
UNSENT_STATES = (DeliveryState.SCHEDULED, DeliveryState.HELD, DeliveryState.SENDING)


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


# --- keys rotate ----------------------------------------------------------------------------


def encrypted_columns() -> list[Column[Any]]:
    """Every Fernet-token column of the schema: `LargeBinary` named `*_enc`, in table order.

    Found from the models, so a new encrypted column is rotated without touching this file.
    """
    found: list[Column[Any]] = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, LargeBinary) and column.name.endswith("_enc"):
                found.append(column)
    return found


@dataclass(frozen=True)
class ColumnRotation:
    table: str
    column: str
    rotated: int  # re-encrypted under the newest key
    current: int  # already under the newest key: left alone
    changed: int  # rewritten or deleted by the bot between our read and our write: left alone


@dataclass(frozen=True)
class RotateResult:
    columns: tuple[ColumnRotation, ...]
    reindexed: int = 0  # patients whose Telegram id HMAC moved to the newest key

    @property
    def rotated(self) -> int:
        return sum(c.rotated for c in self.columns)

    @property
    def current(self) -> int:
        return sum(c.current for c in self.columns)

    @property
    def changed(self) -> int:
        return sum(c.changed for c in self.columns)


class UndecryptableToken(UserError):
    """A stored token that no configured key opens. Rotation stopped before its batch."""

    def __init__(self, table: str, row_id: int, done: RotateResult) -> None:
        super().__init__(
            f"{table} row {row_id}: no configured key can decrypt it; stopped after "
            f"re-encrypting {done.rotated} (already current {done.current}), nothing from "
            f"that row's batch on was changed: add the key that wrote it to the key list"
        )
        self.table = table
        self.row_id = row_id
        self.done = done


async def rotate_keys(
    engine: AsyncEngine,
    cipher: Cipher,
    *,
    now: datetime,
    batch_size: int = BATCH_SIZE,
) -> RotateResult:
    """Re-encrypt every token not under the newest key; audit-logged, even when it stops.

    Each batch is checked whole before anything is written, so an undecryptable token leaves
    its batch and everything after it untouched. A row is only overwritten if it still holds the
    token that was read (the bot may rewrite a reply meanwhile; its new token is then kept).
    """
    if batch_size < 1:
        raise UserError("batch size must be at least 1")
    sessions = make_session_factory(engine)
    done: list[ColumnRotation] = []
    try:
        for column in encrypted_columns():
            done.append(await _rotate_column(sessions, column, cipher, batch_size, done))
    except UndecryptableToken as exc:
        async with sessions() as session, session.begin():
            audit.record(
                session,
                at=now,
                actor=OPERATOR,
                action="keys.rotate",
                keys=cipher.key_count,
                rotated=exc.done.rotated,
                current=exc.done.current,
                changed=exc.done.changed,
                failed=f"{exc.table}#{exc.row_id}",
            )
        raise
    result = RotateResult(tuple(done), await _reindex(sessions, cipher, batch_size))
    async with sessions() as session, session.begin():
        audit.record(
            session,
            at=now,
            actor=OPERATOR,
            action="keys.rotate",
            keys=cipher.key_count,
            rotated=result.rotated,
            current=result.current,
            changed=result.changed,
            reindexed=result.reindexed,
            columns={
                f"{c.table}.{c.column}": {"rotated": c.rotated, "current": c.current}
                for c in result.columns
            },
        )
    return result


async def _reindex(sessions: SessionFactory, cipher: Cipher, batch_size: int) -> int:
    """Move each patient's Telegram id HMAC to the newest key, from the ids in `telegram_enc`
    (re-encrypted just before). Lookups match any configured key's HMAC meanwhile, so this
    only has to finish before the old key is removed. An invite's opener has no stored id to
    re-index from; an unanswered consent screen outlives the old key only by its 7-day link."""
    moved, last = 0, 0
    while True:
        async with sessions() as session, session.begin():
            patients = list(
                await session.scalars(
                    select(Patient)
                    .where(Patient.id > last, Patient.telegram_enc.is_not(None))
                    .order_by(Patient.id)
                    .limit(batch_size)
                )
            )
            if not patients:
                return moved
            for patient in patients:
                assert patient.telegram_enc is not None
                user_id, _ = identity.unseal(cipher, patient.telegram_enc)
                index = cipher.indexes(user_id)[0]
                if patient.telegram_index != index:
                    patient.telegram_index = index
                    moved += 1
            last = patients[-1].id


async def _rotate_column(
    sessions: SessionFactory,
    column: Column[Any],
    cipher: Cipher,
    batch_size: int,
    before: list[ColumnRotation],
) -> ColumnRotation:
    table = column.table
    key = table.c.id
    rotated = current = changed = 0
    last: int | None = None
    while True:
        query = select(key, column).where(column.is_not(None)).order_by(key).limit(batch_size)
        if last is not None:
            query = query.where(key > last)
        async with sessions() as session, session.begin():
            rows = (await session.execute(query)).all()
            if not rows:
                break
            pending: list[tuple[int, bytes, bytes]] = []
            for row_id, token in rows:
                if cipher.is_current(token):
                    current += 1
                    continue
                try:
                    pending.append((row_id, token, cipher.rotate(token)))
                except CryptoKeyError:
                    so_far = ColumnRotation(table.name, column.name, rotated, current, changed)
                    raise UndecryptableToken(
                        table.name, row_id, RotateResult((*before, so_far))
                    ) from None
            for row_id, old, new in pending:
                result = await session.execute(
                    update(table).where(key == row_id, column == old).values({column.name: new})
                )
                if _rowcount(result):
                    rotated += 1
                else:
                    changed += 1
        last = rows[-1][0]
    return ColumnRotation(table.name, column.name, rotated, current, changed)


# --- export ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorExport:
    patient_id: int
    therapist_id: int
    pseudonym: str
    filename: str
    data: bytes
    rows: int


async def find_patient(
    session: AsyncSession, pseudonym: str, therapist_id: int | None = None
) -> Patient:
    """A patient by pseudonym (case-insensitive, as therapists type it), across therapists.

    Pseudonyms are unique per therapist only: when several therapists have one, the caller
    must say whose patient is meant.
    """
    query = select(Patient).where(
        func.lower(Patient.pseudonym) == pseudonym.lower(),
        Patient.status != PatientStatus.ERASED,
    )
    if therapist_id is not None:
        query = query.where(Patient.therapist_id == therapist_id)
    found = list(await session.scalars(query.order_by(Patient.therapist_id, Patient.id)))
    whose = f" of therapist #{therapist_id}" if therapist_id is not None else ""
    if not found:
        raise NotFound(f"no patient {pseudonym!r}{whose}")
    therapists = sorted({p.therapist_id for p in found})
    if len(therapists) > 1:
        listed = ", ".join(str(t) for t in therapists)
        raise UserError(
            f"{len(therapists)} therapists have a patient {pseudonym!r} "
            f"(therapist ids {listed}): choose one with --therapist ID"
        )
    if len(found) > 1:
        exact = [p for p in found if p.pseudonym == pseudonym]
        if len(exact) != 1:
            raise UserError(
                f"several patients{whose} match {pseudonym!r} ignoring case: "
                f"give the pseudonym exactly"
            )
        return exact[0]
    return found[0]


async def export_patient(
    session: AsyncSession,
    *,
    pseudonym: str,
    fmt: ExportFormat,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
    therapist_id: int | None = None,
) -> OperatorExport:
    """Everything delivered to and received from one patient, decrypted; audit-logged. `fhir`:
    their questionnaires and check-ins as a FHIR R4 Bundle (`bot/services/fhir.py`)."""
    if fmt not in ("csv", "json", "fhir"):
        raise UserError(f"unknown export format {fmt!r}: csv, json or fhir")
    patient = await find_patient(session, pseudonym, therapist_id)
    try:
        if fmt == "fhir":
            bundle = await fhir.patient_bundle(session, patient, content, cipher, now)
            rows: Sequence[object] = bundle["entry"]
            data = fhir.to_json(bundle)
        else:
            export_rows = await exports.patient_rows(session, patient, content, cipher)
            rows = export_rows
            data = exports.to_csv(export_rows) if fmt == "csv" else exports.to_json(export_rows)
    except CryptoKeyError:
        raise UserError(
            f"patient #{patient.id}: stored text cannot be decrypted with the configured keys"
        ) from None
    audit.record(
        session,
        at=now,
        actor=OPERATOR,
        action=f"export.{fmt}",
        patient_id=patient.id,
        therapist_id=patient.therapist_id,
        rows=len(rows),
    )
    return OperatorExport(
        patient_id=patient.id,
        therapist_id=patient.therapist_id,
        pseudonym=patient.pseudonym,
        filename=exports.filename(patient.pseudonym, now, "fhir.json" if fmt == "fhir" else fmt),
        data=data,
        rows=len(rows),
    )


# --- purge ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime
    dry_run: bool
    replies: int  # reply rows deleted (or, dry run, that would be)
    alerts_unlinked: int  # alerts that pointed at those replies; the alerts themselves stay
    prompt_texts: int  # therapists' free-text prompts cleared from old deliveries
    processed_updates: int  # update-id bookkeeping rows deleted


def retention_cutoff(now: datetime, days: int) -> datetime:
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise UserError(f"DAYS must be a whole number from 1 to {MAX_RETENTION_DAYS}, got {days}")
    return now - timedelta(days=days)


async def purge(
    engine: AsyncEngine,
    *,
    older_than_days: int,
    now: datetime,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> PurgeResult:
    """Retention: delete replies received before the cutoff (alerts keep their row, unlinked),
    clear therapists' free-text prompts of deliveries due before it that were already sent or
    closed, and delete processed-update bookkeeping older than it. Audit-logged."""
    cutoff = retention_cutoff(now, older_than_days)
    if batch_size < 1:
        raise UserError("batch size must be at least 1")
    sessions = make_session_factory(engine)
    old_reply = Reply.received_at < cutoff
    old_prompt = (
        (Delivery.due_at < cutoff)
        & Delivery.custom_text_enc.is_not(None)
        & Delivery.state.not_in(UNSENT_STATES)
    )
    old_update = ProcessedUpdate.processed_at < cutoff
    if dry_run:
        async with sessions() as session:
            replies = await _count(session, select(func.count(Reply.id)).where(old_reply))
            alerts = await _count(
                session,
                select(func.count(Alert.id)).where(
                    Alert.reply_id.in_(select(Reply.id).where(old_reply))
                ),
            )
            prompts = await _count(session, select(func.count(Delivery.id)).where(old_prompt))
            updates = await _count(
                session, select(func.count(ProcessedUpdate.update_id)).where(old_update)
            )
        result = PurgeResult(cutoff, True, replies, alerts, prompts, updates)
    else:
        counts: Counter[str] = Counter()

        async def drop_replies(session: AsyncSession, ids: list[int]) -> None:
            linked = await session.execute(
                update(Alert).where(Alert.reply_id.in_(ids)).values(reply_id=None)
            )
            counts["alerts"] += _rowcount(linked)
            gone = await session.execute(
                delete(Reply)
                .where(Reply.id.in_(ids), old_reply)
                .execution_options(synchronize_session=False)
            )
            counts["replies"] += _rowcount(gone)

        async def clear_prompts(session: AsyncSession, ids: list[int]) -> None:
            cleared = await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), old_prompt)
                .values(custom_text_enc=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            counts["prompts"] += _rowcount(cleared)

        async def drop_updates(session: AsyncSession, ids: list[int]) -> None:
            gone = await session.execute(
                delete(ProcessedUpdate)
                .where(ProcessedUpdate.update_id.in_(ids), old_update)
                .execution_options(synchronize_session=False)
            )
            counts["updates"] += _rowcount(gone)

        await _in_batches(sessions, Reply.id, old_reply, batch_size, drop_replies)
        await _in_batches(sessions, Delivery.id, old_prompt, batch_size, clear_prompts)
        await _in_batches(sessions, ProcessedUpdate.update_id, old_update, batch_size, drop_updates)
        replies, alerts = counts["replies"], counts["alerts"]
        prompts, updates = counts["prompts"], counts["updates"]
        result = PurgeResult(cutoff, False, replies, alerts, prompts, updates)
    async with sessions() as session, session.begin():
        audit.record(
            session,
            at=now,
            actor=OPERATOR,
            action="purge",
            days=older_than_days,
            cutoff=cutoff.isoformat(timespec="seconds"),
            dry_run=dry_run,
            replies=result.replies,
            alerts_unlinked=result.alerts_unlinked,
            prompt_texts=result.prompt_texts,
            processed_updates=result.processed_updates,
        )
    if not dry_run and (result.replies or result.prompt_texts):
        await scrub_storage(engine)  # SQLite: deleted text must not linger in the WAL
    return result


async def _count(session: AsyncSession, query: Select[int]) -> int:
    return int(await session.scalar(query) or 0)


async def _in_batches(
    sessions: SessionFactory,
    key: InstrumentedAttribute[int],
    condition: ColumnElement[bool],
    batch_size: int,
    step: Callable[[AsyncSession, list[int]], Awaitable[None]],
) -> None:
    """Run `step` on the ids matching `condition`, `batch_size` at a time, one transaction
    each, in id order (keyset pagination: each batch starts after the last one's highest id)."""
    last: int | None = None
    while True:
        query = select(key).where(condition).order_by(key).limit(batch_size)
        if last is not None:
            query = query.where(key > last)
        async with sessions() as session, session.begin():
            ids = list(await session.scalars(query))
            if not ids:
                return
            await step(session, ids)
        last = ids[-1]
