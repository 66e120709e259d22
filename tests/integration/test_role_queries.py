"""`queries.roles_by_user`: who a Telegram user is, in one statement, with the answers of the two
lookups it replaces (`therapist_by_user`, then `patient_by_user` only when there is no therapist),
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import identity, queries
from bot.db.crypto import Cipher
from bot.db.engine import SessionFactory, make_session_factory
from bot.db.models import Patient, PatientStatus, Therapist

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
THERAPIST = 1001
INACTIVE = 1002
PATIENT = 2001
BOTH = 3001  # a therapist who is also enrolled as a patient
INACTIVE_BOTH = 3002  # a deactivated therapist who is also a patient
NOBODY = 9999


CIPHER = Cipher([Fernet.generate_key()])


def _user(user_id: int) -> identity.TelegramUser:
    return identity.telegram_user(CIPHER, user_id)


@pytest.fixture
async def db(engine: AsyncEngine) -> SessionFactory:
    sessions = make_session_factory(engine)
    async with sessions() as s, s.begin():
        therapists = {
            user_id: Therapist(
                name=f"Dr {user_id}", telegram_user_id=user_id, active=active, created_at=NOW
            )
            for user_id, active in (
                (THERAPIST, True),
                (INACTIVE, False),
                (BOTH, True),
                (INACTIVE_BOTH, False),
            )
        }
        s.add_all(therapists.values())
        await s.flush()
        s.add_all(
            Patient(
                therapist_id=therapists[THERAPIST].id,
                pseudonym=f"p{user_id}",
                **identity.columns(CIPHER, user_id),
                status=PatientStatus.ACTIVE,
                created_at=NOW,
            )
            for user_id in (PATIENT, BOTH, INACTIVE_BOTH)
        )
    return sessions


async def two_lookups(db: SessionFactory, user_id: int) -> tuple[Any, Any]:
    """What `handlers.common.who()` did before: the reference behaviour."""
    async with db() as s:
        therapist = await queries.therapist_by_user(s, user_id)
        patient = None if therapist else await queries.patient_by_user(s, _user(user_id))
        return (
            therapist.id if therapist else None,
            patient.id if patient else None,
        )


async def roles(db: SessionFactory, user_id: int) -> tuple[Therapist | None, Patient | None]:
    async with db() as s:
        return await queries.roles_by_user(s, _user(user_id))


@pytest.mark.parametrize(
    ("user_id", "therapist", "patient"),
    [
        pytest.param(THERAPIST, True, False, id="therapist"),
        pytest.param(PATIENT, False, True, id="patient"),
        pytest.param(BOTH, True, False, id="both-therapist-wins"),
        pytest.param(INACTIVE, False, False, id="inactive-therapist"),
        pytest.param(INACTIVE_BOTH, False, True, id="inactive-therapist-who-is-a-patient"),
        pytest.param(NOBODY, False, False, id="neither"),
    ],
)
async def test_roles_match_the_two_lookups(
    db: SessionFactory, user_id: int, therapist: bool, patient: bool
) -> None:
    found_therapist, found_patient = await roles(db, user_id)
    assert (found_therapist is not None, found_patient is not None) == (therapist, patient)
    ids = (
        found_therapist.id if found_therapist else None,
        found_patient.id if found_patient else None,
    )
    assert ids == await two_lookups(db, user_id)
    if found_therapist is not None:
        assert found_therapist.telegram_user_id == user_id and found_therapist.active
    if found_patient is not None:
        assert found_patient.telegram_index == CIPHER.indexes(user_id)[0]


async def test_roles_are_session_objects_in_one_statement(
    engine: AsyncEngine, db: SessionFactory
) -> None:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db() as s, s.begin():
            _, patient = await queries.roles_by_user(s, _user(PATIENT))
            therapist, _ = await queries.roles_by_user(s, _user(THERAPIST))
            assert patient is not None and therapist is not None
            assert patient in s and therapist in s  # handlers change and flush them
            assert await s.get(Patient, patient.id) is patient
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert len(seen) == 2
    assert patient.therapist_id == therapist.id
