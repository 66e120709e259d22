"""The migrations build exactly the models' schema, and come back down cleanly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import Integer, column, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from bot.config import ConfigError
from bot.db import migrate
from bot.db.crypto import Cipher, CryptoKeyError
from bot.db.engine import make_engine
from bot.db.models import Base
from bot.db.types import UTCDateTime
from tests.support.pg import backends, database_url


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _inspect(url: str, fn: object) -> object:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", backends())
async def test_upgrade_to_head_then_down_to_base(backend: str, tmp_path: Path) -> None:
    async with database_url(backend, tmp_path) as url:
        await asyncio.to_thread(migrate.upgrade, url)
        tables = await _inspect(url, _tables)
        assert {"patients", "deliveries", "replies", "alerts", "audit_log"} <= tables  # type: ignore[operator]
        assert "(head)" in await asyncio.to_thread(migrate.current, url)

        await asyncio.to_thread(migrate.downgrade, url, "base")
        assert await _inspect(url, _tables) <= {"alembic_version"}  # type: ignore[operator]

        await asyncio.to_thread(migrate.upgrade, url)  # and up again: downgrade left no debris
        assert "(head)" in await asyncio.to_thread(migrate.current, url)


@pytest.mark.parametrize("backend", backends())
async def test_models_and_migrations_agree(backend: str, tmp_path: Path) -> None:
    async with database_url(backend, tmp_path) as url:
        await asyncio.to_thread(migrate.upgrade, url)
        assert await _inspect(url, _diff) == []


@pytest.mark.parametrize("backend", backends())
async def test_0002_keeps_existing_alerts_and_invites_both_ways(
    backend: str, tmp_path: Path
) -> None:
    """Alert text and who opened an invite arrive as empty columns; nothing existing moves."""
    from sqlalchemy import text

    async with database_url(backend, tmp_path) as url:
        await asyncio.to_thread(migrate.upgrade, url, "0001")
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(
                    "INSERT INTO therapists (id, name, active, created_at) "
                    "VALUES (1, 'Dr Ames', true, '2026-11-01 10:00:00+00')"
                ))  # fmt: skip
                await conn.execute(text(
                    "INSERT INTO patients (id, therapist_id, pseudonym, status, quiet_start, "
                    "quiet_end, language, created_at) VALUES (1, 1, 'lake', 'active', "
                    "'21:00', '08:00', 'en', '2026-11-01 10:00:00+00')"
                ))  # fmt: skip
                await conn.execute(text(
                    "INSERT INTO alerts (id, patient_id, therapist_id, kind, created_at) "
                    "VALUES (7, 1, 1, 'crisis', '2026-11-02 10:00:00+00')"
                ))  # fmt: skip
                await conn.execute(text(
                    "INSERT INTO invites (id, token_hash, kind, patient_id, created_at, "
                    "expires_at) VALUES (3, 'h', 'patient', 1, '2026-11-01 10:00:00+00', "
                    "'2026-11-08 10:00:00+00')"
                ))  # fmt: skip
        finally:
            await engine.dispose()

        async def rows() -> tuple[object, ...]:
            db = make_engine(url)
            try:
                async with db.connect() as conn:
                    alert = (await conn.execute(text("SELECT id, kind FROM alerts"))).all()
                    invite = (await conn.execute(text("SELECT id, patient_id FROM invites"))).all()
                    return tuple(alert), tuple(invite)
            finally:
                await db.dispose()

        before = await rows()
        await asyncio.to_thread(migrate.upgrade, url, "0002")
        assert await rows() == before
        db = make_engine(url)
        try:
            async with db.connect() as conn:
                new = (
                    await conn.execute(
                        text("SELECT text_enc, update_id, acknowledged_as FROM alerts")
                    )
                ).one()
                opened = (await conn.execute(text("SELECT opened_by FROM invites"))).one()
        finally:
            await db.dispose()
        assert tuple(new) == (None, None, None) and tuple(opened) == (None,)
        # Every later migration, some rebuilding the patients and replies tables on SQLite,
        # keeps the rows that point at them (foreign keys must not cascade a rebuild).
        await asyncio.to_thread(migrate.upgrade, url)
        assert await rows() == before
        await asyncio.to_thread(migrate.downgrade, url, "0001")
        assert await rows() == before


# One therapist and their patient "lake" (id 1), as raw SQL valid at every revision.
LAKE = (
    "INSERT INTO therapists (id, name, active, created_at) "
    "VALUES (1, 'Dr Ames', true, '2026-11-01 10:00:00+00')",
    "INSERT INTO patients (id, therapist_id, pseudonym, status, quiet_start, "
    "quiet_end, language, created_at) VALUES (1, 1, 'lake', 'active', "
    "'21:00', '08:00', 'en', '2026-11-01 10:00:00+00')",
)


async def _run(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Execute statements in one transaction; the last one's rows, if it returns any."""
    from sqlalchemy import text

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            result = None
            for statement in statements:
                result = await conn.execute(text(statement))
            return [tuple(r) for r in result.all()] if result and result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", backends())
async def test_0003_adds_the_key_check_table_and_keeps_existing_rows_both_ways(
    backend: str, tmp_path: Path
) -> None:
    async with database_url(backend, tmp_path) as url:
        await asyncio.to_thread(migrate.upgrade, url, "0002")
        await _run(
            url,
            *LAKE,
            "INSERT INTO replies (id, patient_id, kind, body_enc, flagged, received_at, "
            "updated_at) VALUES (5, 1, 'note', 'token', false, '2026-11-02 10:00:00+00', "
            "'2026-11-02 10:00:00+00')",
        )
        kept = "SELECT id, patient_id, kind FROM replies"
        before = await _run(url, kept)
        assert before == [(5, 1, "note")]

        await asyncio.to_thread(migrate.upgrade, url)
        assert await _run(url, kept) == before
        assert await _run(url, "SELECT count(*) FROM key_checks") == [(0,)]
        await _run(
            url,
            "INSERT INTO key_checks (id, value_enc, created_at) "
            "VALUES (1, 'check', '2026-12-02 10:00:00+00')",
        )

        await asyncio.to_thread(migrate.downgrade, url, "0002")
        assert await _run(url, kept) == before
        assert "key_checks" not in await _inspect(url, _tables)  # type: ignore[operator]


@pytest.mark.parametrize("backend", backends())
async def test_0004_and_0005_encrypt_check_in_values_and_decrypt_them_back(
    backend: str, tmp_path: Path
) -> None:
    cipher = Cipher([Fernet.generate_key()])
    async with database_url(backend, tmp_path) as url:
        await asyncio.to_thread(migrate.upgrade, url, "0003")
        await _run(
            url,
            *LAKE,
            "INSERT INTO replies (id, patient_id, kind, choice_value, flagged, received_at, "
            "updated_at) VALUES (5, 1, 'choice', '2', true, '2026-11-02 10:00:00+00', "
            "'2026-11-02 10:00:00+00'), (6, 1, 'choice', 'barely', false, "
            "'2026-11-02 11:00:00+00', '2026-11-02 11:00:00+00'), (7, 1, 'text', NULL, false, "
            "'2026-11-02 12:00:00+00', '2026-11-02 12:00:00+00')",
        )
        kept = "SELECT id, patient_id, kind, flagged FROM replies ORDER BY id"
        before = await _run(url, kept)

        await asyncio.to_thread(lambda: migrate.upgrade(url, cipher=cipher))
        assert await _run(url, kept) == before
        stored = await _run(url, "SELECT id, choice_value_enc FROM replies ORDER BY id")
        values = {
            row_id: cipher.decrypt(bytes(token)) if token else None for row_id, token in stored
        }
        assert values == {5: "2", 6: "barely", 7: None}
        assert all(b"barely" not in bytes(token) for _, token in stored if token)
        columns = await _inspect(
            url, lambda c: {col["name"] for col in inspect(c).get_columns("replies")}
        )
        assert "choice_value" not in columns  # type: ignore[operator]
        assert "staff_messages" in await _inspect(url, _tables)  # type: ignore[operator]

        await asyncio.to_thread(lambda: migrate.downgrade(url, "0003", cipher=cipher))
        assert await _run(url, kept) == before
        assert await _run(url, "SELECT id, choice_value FROM replies ORDER BY id") == [
            (5, "2"),
            (6, "barely"),
            (7, None),
        ]
        assert "staff_messages" not in await _inspect(url, _tables)  # type: ignore[operator]


async def test_0005_without_keys_refuses_instead_of_inventing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/k.db"
    monkeypatch.delenv("AFTERGLOW_ENCRYPTION_KEYS", raising=False)
    monkeypatch.setenv("AFTERGLOW_KEY_FILE", str(tmp_path / "absent.key"))
    await asyncio.to_thread(migrate.upgrade, url, "0003")
    await _run(
        url,
        *LAKE,
        "INSERT INTO replies (id, patient_id, kind, choice_value, flagged, received_at, "
        "updated_at) VALUES (5, 1, 'choice', '2', true, '2026-11-02 10:00:00+00', "
        "'2026-11-02 10:00:00+00')",
    )
    with pytest.raises(CryptoKeyError, match="no encryption key"):
        await asyncio.to_thread(migrate.upgrade, url)
    assert not (tmp_path / "absent.key").exists()
    assert await _run(url, "SELECT choice_value FROM replies") == [("2",)]  # rolled back


async def test_0006_without_keys_refuses_and_keeps_the_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/k.db"
    monkeypatch.delenv("AFTERGLOW_ENCRYPTION_KEYS", raising=False)
    monkeypatch.setenv("AFTERGLOW_KEY_FILE", str(tmp_path / "absent.key"))
    await asyncio.to_thread(migrate.upgrade, url, "0005")
    await _run(url, *LAKE, "UPDATE patients SET telegram_user_id = 7345001, chat_id = 7345001")
    with pytest.raises(CryptoKeyError, match="no encryption key"):
        await asyncio.to_thread(migrate.upgrade, url)
    assert not (tmp_path / "absent.key").exists()
    assert await _run(url, "SELECT telegram_user_id, chat_id FROM patients") == [
        (7345001, 7345001)
    ]  # rolled back: the ids are neither lost nor half-converted


@pytest.mark.parametrize("backend", backends())
async def test_0006_replaces_patients_telegram_ids_with_an_index_and_back(
    backend: str, tmp_path: Path
) -> None:
    cipher = Cipher([Fernet.generate_key()])
    async with database_url(backend, tmp_path) as url:
        await asyncio.to_thread(lambda: migrate.upgrade(url, "0005", cipher=cipher))
        await _run(
            url,
            "INSERT INTO therapists (id, name, telegram_user_id, active, created_at) "
            "VALUES (1, 'Dr Ames', 900001, true, '2026-11-01 10:00:00+00')",
            "INSERT INTO patients (id, therapist_id, pseudonym, status, telegram_user_id, "
            "chat_id, quiet_start, quiet_end, language, created_at) VALUES "
            "(1, 1, 'lake', 'active', 7345001, 7345001, '21:00', '08:00', 'en', "
            "'2026-11-01 10:00:00+00'), (2, 1, 'fern', 'invited', NULL, NULL, '21:00', "
            "'08:00', 'en', '2026-11-01 10:00:00+00')",
            "INSERT INTO invites (id, token_hash, kind, patient_id, created_at, expires_at, "
            "opened_by) VALUES (3, 'h', 'patient', 2, '2026-11-01 10:00:00+00', "
            "'2026-11-08 10:00:00+00', 7345002)",
            "INSERT INTO alerts (id, patient_id, therapist_id, kind, created_at) "
            "VALUES (7, 1, 1, 'crisis', '2026-11-02 10:00:00+00')",
        )
        await asyncio.to_thread(lambda: migrate.upgrade(url, cipher=cipher))

        (lake, fern) = await _run(
            url, "SELECT telegram_index, telegram_enc FROM patients ORDER BY id"
        )
        assert bytes(lake[0]) == cipher.indexes(7345001)[0]
        assert cipher.decrypt(bytes(lake[1])) == "7345001:7345001"
        assert fern == (None, None)
        (opened,) = await _run(url, "SELECT opened_by_index FROM invites")
        assert bytes(opened[0]) == cipher.indexes(7345002)[0]
        raw = b"".join(bytes(v) for v in lake if v) + bytes(opened[0])
        assert b"7345001" not in raw and b"7345002" not in raw
        assert await _run(url, "SELECT id FROM alerts") == [(7,)]
        assert await _run(url, "SELECT telegram_user_id FROM therapists") == [(900001,)]

        await asyncio.to_thread(lambda: migrate.downgrade(url, "0005", cipher=cipher))
        assert await _run(
            url, "SELECT id, telegram_user_id, chat_id FROM patients ORDER BY id"
        ) == [(1, 7345001, 7345001), (2, None, None)]
        assert await _run(url, "SELECT id FROM alerts") == [(7,)]
        assert await _run(url, "SELECT opened_by FROM invites") == [(None,)]


# 0006 rows for 0007: lake's two sessions (the second cancelled), a template step, and the
# deliveries whose reminders and answer windows the upgrade stores.
COURSE = (
    "INSERT INTO templates (id, name, digest, created_at) "
    "VALUES (1, 'standard', 'abc', '2026-11-01 10:00:00+00')",
    'INSERT INTO template_steps (id, template_id, position, "offset", prompt_key) '
    "VALUES (1, 1, 0, '+1d', 'reflect.day1')",
    "INSERT INTO treatment_sessions (id, patient_id, template_id, template_name, started_at, "
    "logged_by, created_at, cancelled_at) VALUES "
    "(1, 1, 1, 'standard', '2026-11-02 09:00:00+00', 1, '2026-11-01 12:00:00+00', NULL), "
    "(2, 1, 1, 'standard', '2026-11-20 09:00:00+00', 1, '2026-11-03 12:00:00+00', "
    "'2026-11-04 08:00:00+00')",
    # 10 sent, not yet reminded; 11 sent and reminded; 12 answered; 13 a check-in (never got
    # reminders or windows); 14 a reflection whose window already closed; 15 not sent yet.
    "INSERT INTO deliveries (id, patient_id, session_id, step_index, prompt_key, kind, state, "
    "due_at, planned_at, sent_at, answered_at, nudged_at, closed_at, attempts, updated_at) "
    "VALUES "
    "(10, 1, 1, 0, 'reflect.day1', 'reflection', 'sent', '2026-11-03 18:00:00+00', "
    "'2026-11-03 18:00:00+00', '2026-11-03 18:00:00+00', NULL, NULL, NULL, 1, "
    "'2026-11-03 18:00:00+00'), "
    "(11, 1, 1, 1, 'reflect.day2', 'reflection', 'sent', '2026-11-04 18:00:00+00', "
    "'2026-11-04 18:00:00+00', '2026-11-04 18:05:00+00', NULL, '2026-11-05 18:05:00+00', "
    "NULL, 1, '2026-11-05 18:05:00+00'), "
    "(12, 1, 1, 2, 'reflect.day3', 'reflection', 'answered', '2026-11-05 18:00:00+00', "
    "'2026-11-05 18:00:00+00', '2026-11-05 18:00:00+00', '2026-11-05 20:00:00+00', NULL, "
    "NULL, 1, '2026-11-05 20:00:00+00'), "
    "(13, 1, 1, 3, 'checkin.mood', 'checkin', 'sent', '2026-11-05 19:00:00+00', "
    "'2026-11-05 19:00:00+00', '2026-11-05 19:00:00+00', NULL, NULL, NULL, 1, "
    "'2026-11-05 19:00:00+00'), "
    "(14, 1, 1, 4, 'reflect.day0', 'reflection', 'sent', '2026-11-02 18:00:00+00', "
    "'2026-11-02 18:00:00+00', '2026-11-02 18:00:00+00', NULL, '2026-11-03 18:00:00+00', "
    "'2026-11-05 18:00:00+00', 1, '2026-11-05 18:00:00+00'), "
    "(15, 1, 1, 5, 'learn.week1', 'education', 'scheduled', '2026-11-09 10:00:00+00', "
    "'2026-11-09 10:00:00+00', NULL, NULL, NULL, NULL, 0, '2026-11-01 12:00:00+00')",
)
# What 0006 has, at every revision after it.
KEPT_0006 = (
    "SELECT id, patient_id, template_id, template_name, logged_by FROM treatment_sessions "
    "ORDER BY id",
    'SELECT id, template_id, position, "offset", prompt_key FROM template_steps ORDER BY id',
    "SELECT id, session_id, step_index, prompt_key, kind, state, attempts FROM deliveries "
    "ORDER BY id",
)
SESSION_TIMES = ("started_at", "created_at", "cancelled_at")
DELIVERY_TIMES = ("due_at", "planned_at", "sent_at", "answered_at", "nudged_at", "closed_at")


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


async def _timed(url: str, table: str, *columns: str) -> list[tuple[object, ...]]:
    """`id` and these datetime columns of every row, read as aware UTC on both databases."""
    from sqlalchemy import text

    query = text(f"SELECT id, {', '.join(columns)} FROM {table} ORDER BY id").columns(
        column("id", Integer()), *(column(name, UTCDateTime()) for name in columns)
    )
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(query)).all()]
    finally:
        await engine.dispose()


async def _kept_0006(url: str) -> tuple[object, ...]:
    rows = [await _run(url, query) for query in KEPT_0006]
    return (
        *rows,
        await _timed(url, "treatment_sessions", *SESSION_TIMES),
        await _timed(url, "deliveries", *DELIVERY_TIMES),
    )


def _columns_and_indexes(connection: Connection) -> dict[str, set[str]]:
    found = inspect(connection)
    return {
        table: {c["name"] for c in found.get_columns(table)}
        | {str(i["name"]) for i in found.get_indexes(table)}
        for table in ("treatment_sessions", "template_steps", "deliveries")
    }


NEW_IN_0007 = {
    "treatment_sessions": {"state", "anchored_at", "ix_treatment_sessions_state_start"},
    "template_steps": {"every", "count", "remind", "expires"},
    "deliveries": {
        "every",
        "occurrence",
        "remind",
        "expires",
        "reminders_sent",
        "remind_at",
        "closes_at",
        "ix_deliveries_state_remind",
    },
}


@pytest.mark.parametrize("backend", backends())
async def test_0007_fills_in_session_states_and_reminders_and_comes_back_down(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions get their state, open reflections the reminder and window end the dispatcher
    used to compute (from the configured delays); the downgrade takes only the new columns."""
    monkeypatch.setenv("AFTERGLOW_NUDGE_AFTER", "12h")
    monkeypatch.setenv("AFTERGLOW_ANSWER_WINDOW", "2d")
    async with database_url(backend, tmp_path) as url:
        await asyncio.to_thread(migrate.upgrade, url, "0006")
        await _run(url, *LAKE, *COURSE)
        before = await _kept_0006(url)

        await asyncio.to_thread(migrate.upgrade, url, "0007")
        assert await _kept_0006(url) == before
        assert await _run(url, "SELECT id, state FROM treatment_sessions ORDER BY id") == [
            (1, "started"),
            (2, "cancelled"),
        ]
        assert await _timed(url, "treatment_sessions", "anchored_at") == [
            (1, _at(2, 9)),
            (2, None),
        ]
        assert await _run(url, "SELECT id, every, count, remind, expires FROM template_steps") == [
            (1, None, 1, None, None)
        ]
        assert await _run(
            url,
            "SELECT id, every, occurrence, remind, expires, reminders_sent FROM deliveries "
            "ORDER BY id",
        ) == [
            (10, None, None, None, None, 0),
            (11, None, None, None, None, 1),
            (12, None, None, None, None, 0),
            (13, None, None, None, None, 0),
            (14, None, None, None, None, 1),
            (15, None, None, None, None, 0),
        ]
        assert await _timed(url, "deliveries", "remind_at", "closes_at") == [
            (10, _at(4, 6), _at(5, 18)),  # sent 3 Nov 18:00: +12h, +2d
            (11, None, _at(6, 18, 5)),  # reminded already
            (12, None, _at(7, 18)),  # answered: the window still ends
            (13, None, None),
            (14, None, None),
            (15, None, None),
        ]

        # The new columns' defaults and checks hold on rows written after the upgrade.
        await _run(
            url,
            "INSERT INTO treatment_sessions (id, patient_id, template_name, started_at, "
            "created_at) VALUES (3, 1, 'standard', '2026-12-01 09:00:00+00', "
            "'2026-11-30 12:00:00+00')",
        )
        assert await _run(url, "SELECT state FROM treatment_sessions WHERE id = 3") == [
            ("started",)
        ]
        for broken in (
            "UPDATE treatment_sessions SET state = 'paused' WHERE id = 3",
            "UPDATE deliveries SET reminders_sent = -1 WHERE id = 10",
        ):
            with pytest.raises(IntegrityError):
                await _run(url, broken)
        await _run(url, "DELETE FROM treatment_sessions WHERE id = 3")

        await asyncio.to_thread(migrate.downgrade, url, "0006")
        assert "0006" in await asyncio.to_thread(migrate.current, url)
        assert await _kept_0006(url) == before
        left = await _inspect(url, _columns_and_indexes)
        for table, new in NEW_IN_0007.items():
            assert not new & left[table], table  # type: ignore[index]

        await asyncio.to_thread(migrate.upgrade, url)  # and up again: the downgrade left no debris
        assert await _kept_0006(url) == before
        assert await _timed(url, "deliveries", "remind_at", "closes_at") == [
            (10, _at(4, 6), _at(5, 18)),
            (11, None, _at(6, 18, 5)),
            (12, None, _at(7, 18)),
            (13, None, None),
            (14, None, None),
            (15, None, None),
        ]
        assert await _inspect(url, _diff) == []


async def test_0007_uses_the_default_delays_when_other_settings_are_invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset delays are the defaults (24h, 72h); a wrong unrelated setting does not matter."""
    url = f"sqlite+aiosqlite:///{tmp_path}/d.db"
    monkeypatch.delenv("AFTERGLOW_NUDGE_AFTER", raising=False)
    monkeypatch.delenv("AFTERGLOW_ANSWER_WINDOW", raising=False)
    monkeypatch.setenv("AFTERGLOW_BOT_TOKEN", "not a token")
    monkeypatch.setenv("AFTERGLOW_MODE", "webhook")  # without its URL and secret
    await asyncio.to_thread(migrate.upgrade, url, "0006")
    await _run(url, *LAKE, *COURSE)
    await asyncio.to_thread(migrate.upgrade, url)
    assert (await _timed(url, "deliveries", "remind_at", "closes_at"))[:3] == [
        (10, _at(4, 18), _at(6, 18)),
        (11, None, _at(7, 18, 5)),
        (12, None, _at(8, 18)),
    ]


async def test_0007_with_an_invalid_delay_refuses_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/w.db"
    monkeypatch.setenv("AFTERGLOW_ANSWER_WINDOW", "three days")
    await asyncio.to_thread(migrate.upgrade, url, "0006")
    await _run(url, *LAKE, *COURSE)
    before = await _kept_0006(url)
    with pytest.raises(ConfigError, match="AFTERGLOW_ANSWER_WINDOW"):
        await asyncio.to_thread(migrate.upgrade, url)
    assert "0006" in await asyncio.to_thread(migrate.current, url)
    assert await _kept_0006(url) == before  # rolled back: no column added, nothing filled in
    left = await _inspect(url, _columns_and_indexes)
    assert "closes_at" not in left["deliveries"]  # type: ignore[index]


@pytest.mark.parametrize("backend", backends())
async def test_0008_takes_questionnaires_and_refuses_to_go_down_while_they_exist(
    backend: str, tmp_path: Path
) -> None:
    """Existing rows pass through 0008 both ways; the new kinds and states are accepted only
    after it, and the downgrade refuses while a row uses one (it cannot say what it was)."""
    async with database_url(backend, tmp_path) as url:
        await asyncio.to_thread(migrate.upgrade, url, "0007")
        await _run(url, *LAKE, *COURSE)
        before = await _kept_0006(url)
        questionnaire = (
            "INSERT INTO deliveries (id, patient_id, session_id, step_index, prompt_key, kind, "
            "state, due_at, planned_at, attempts, updated_at, reminders_sent) VALUES (20, 1, 1, "
            "6, 'phq9', 'questionnaire', 'partial', '2026-11-09 10:00:00+00', "
            "'2026-11-09 10:00:00+00', 1, '2026-11-09 10:00:00+00', 0)"
        )
        with pytest.raises(IntegrityError):
            await _run(url, questionnaire)

        await asyncio.to_thread(migrate.upgrade, url, "0008")
        assert await _kept_0006(url) == before
        await _run(
            url,
            questionnaire,
            "INSERT INTO replies (id, patient_id, delivery_id, kind, item, received_at, "
            "updated_at) VALUES (1, 1, 20, 'item', 1, '2026-11-09 10:01:00+00', "
            "'2026-11-09 10:01:00+00')",
        )
        with pytest.raises(IntegrityError):  # one answer per item
            await _run(
                url,
                "INSERT INTO replies (id, patient_id, delivery_id, kind, item, received_at, "
                "updated_at) VALUES (2, 1, 20, 'item', 1, '2026-11-09 10:02:00+00', "
                "'2026-11-09 10:02:00+00')",
            )
        with pytest.raises(RuntimeError, match="cannot hold"):
            await asyncio.to_thread(migrate.downgrade, url, "0007")
        assert await _run(url, "SELECT count(*) FROM replies") == [(1,)]

        await _run(url, "DELETE FROM replies", "DELETE FROM deliveries WHERE id = 20")
        await asyncio.to_thread(migrate.downgrade, url, "0007")
        assert await _kept_0006(url) == before
        with pytest.raises(IntegrityError):
            await _run(url, questionnaire)


@pytest.mark.parametrize("backend", backends())
async def test_0009_adds_the_workspace_tables_and_keeps_everything(
    backend: str, tmp_path: Path
) -> None:
    """0009 only adds tables: existing rows pass through both ways; an own template is unique
    per therapist and name; the downgrade drops the three tables and nothing else."""
    async with database_url(backend, tmp_path) as url:
        await asyncio.to_thread(migrate.upgrade, url, "0008")
        await _run(url, *LAKE, *COURSE)
        before = await _kept_0006(url)
        await asyncio.to_thread(migrate.upgrade, url, "0009")
        assert await _kept_0006(url) == before
        own = (
            "INSERT INTO own_templates (therapist_id, name, body, created_at, updated_at) "
            "VALUES (1, 'mine', 'name: mine', '2026-11-09 10:00:00+00', '2026-11-09 10:00:00+00')"
        )
        await _run(
            url,
            own,
            "INSERT INTO workspace_links (therapist_id, token_hash, created_at, expires_at) "
            f"VALUES (1, '{'a' * 64}', '2026-11-09 10:00:00+00', '2026-11-09 10:10:00+00')",
            "INSERT INTO workspace_sessions (therapist_id, token_hash, created_at, last_seen_at) "
            f"VALUES (1, '{'b' * 64}', '2026-11-09 10:00:00+00', '2026-11-09 10:00:00+00')",
        )
        with pytest.raises(IntegrityError):
            await _run(url, own)
        await asyncio.to_thread(migrate.downgrade, url, "0008")
        assert await _kept_0006(url) == before
        with pytest.raises(ProgrammingError if backend == "postgres" else OperationalError):
            await _run(url, "SELECT count(*) FROM own_templates")


@pytest.mark.parametrize("backend", backends())
async def test_0010_gives_therapists_a_language_and_keeps_everything(
    backend: str, tmp_path: Path
) -> None:
    """0010 adds one nullable column: existing therapists have no language (the default
    applies) and every row passes through both ways; a set language goes with the column."""
    async with database_url(backend, tmp_path) as url:
        await asyncio.to_thread(migrate.upgrade, url, "0009")
        await _run(url, *LAKE, *COURSE)
        before = await _kept_0006(url)
        await asyncio.to_thread(migrate.upgrade, url, "0010")
        assert await _kept_0006(url) == before
        assert await _run(url, "SELECT DISTINCT language FROM therapists") == [(None,)]
        await _run(url, "UPDATE therapists SET language = 'de'")
        assert await _run(url, "SELECT DISTINCT language FROM therapists") == [("de",)]
        await asyncio.to_thread(migrate.downgrade, url, "0009")
        assert await _kept_0006(url) == before
        with pytest.raises(ProgrammingError if backend == "postgres" else OperationalError):
            await _run(url, "SELECT language FROM therapists")
