"""The audit log: every therapist read of patient data and every admin action."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import AuditEntry

AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]

OPERATOR = "operator"
_ACTOR_LENGTH = 64  # AuditEntry.actor's column width
# Who "operator" is in this context: set by the CLI around its work, so services keep saying
# actor="operator" and need not know how the CLI names the person at the keyboard.
_operator: ContextVar[str | None] = ContextVar("afterglow_operator", default=None)


def os_account() -> str:
    """The OS account running this process, or its uid when it has no name."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name and no passwd entry for the uid
        return f"uid={os.getuid()}"
    # Printable, one token: it is read back in audit listings and must not fake another field.
    cleaned = "".join(ch if ch.isprintable() and not ch.isspace() else "?" for ch in name)
    return cleaned or f"uid={os.getuid()}"


@contextmanager
def as_operator(account: str) -> Iterator[None]:
    """Attribute every "operator" entry recorded inside the block to `account`."""
    token = _operator.set(f"{OPERATOR}:{account}"[:_ACTOR_LENGTH])
    try:
        yield
    finally:
        _operator.reset(token)


def as_therapist(therapist_id: int) -> str:
    return f"therapist:{therapist_id}"


def as_patient(patient_id: int) -> str:
    return f"patient:{patient_id}"


def is_operator(actor: str) -> bool:
    """An entry made by the clinic's operator, named or not (entries before names existed)."""
    return actor == OPERATOR or actor.startswith(f"{OPERATOR}:")


def record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    patient_id: int | None = None,
    **detail: Any,
) -> None:
    """Add an entry to the caller's transaction: it commits with the action it describes."""
    session.add(AuditEntry(**_values(at, actor, action, patient_id, detail)))


def _values(
    at: datetime, actor: str, action: str, patient_id: int | None, detail: dict[str, Any]
) -> dict[str, Any]:
    if actor == OPERATOR:
        actor = _operator.get() or OPERATOR
    return {"at": at, "actor": actor, "action": action, "patient_id": patient_id, "detail": detail}


async def write(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    patient_id: int | None = None,
    **detail: Any,
) -> None:
    """`record` as one Core INSERT now, for hot paths (planning a session): no object for the
    unit of work to flush at commit. Same transaction, same entry."""
    await session.execute(insert(AUDIT), _values(at, actor, action, patient_id, detail))
