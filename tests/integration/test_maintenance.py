"""`afterglow keys rotate`, `export` and `purge` against a real database (SQLite and PostgreSQL).

The CLI runs in a worker thread (it owns its event loop, as it does for an operator); the test
seeds and inspects the same database from its own loop.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import LargeBinary, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from typer.testing import CliRunner

from bot.cli import app
from bot.db.crypto import Cipher, CryptoKeyError
from bot.db.engine import make_session_factory
from bot.db.models import (
    Alert,
    AlertKind,
    AuditEntry,
    Base,
    Delivery,
    DeliveryState,
    Patient,
    PatientStatus,
    ProcessedUpdate,
    PromptKind,
    Reply,
    ReplyKind,
    Therapist,
)
from bot.services import maintenance

OLD_KEY = Fernet.generate_key()
NEW_KEY = Fernet.generate_key()
FOREIGN_KEY = Fernet.generate_key()  # a key the clinic never configured
OLD = Cipher([OLD_KEY])
NEW = Cipher([NEW_KEY])
FOREIGN = Cipher([FOREIGN_KEY])
NOW = datetime.now(UTC)
OPERATOR = "operator:clinic-admin"


@pytest.fixture
def env(engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AFTERGLOW_"):
            monkeypatch.delenv(name)
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("AFTERGLOW_DATABASE_URL", url)
    monkeypatch.setenv("AFTERGLOW_ENCRYPTION_KEYS", f"{NEW_KEY.decode()},{OLD_KEY.decode()}")
    monkeypatch.setenv("LOGNAME", "clinic-admin")  # the OS account audit entries name


async def cli(*args: str) -> tuple[int, str, str]:
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("afterglow")


async def session_of(engine: AsyncEngine) -> AsyncSession:
    return make_session_factory(engine)()


@dataclass
class Clinic:
    therapist: int
    other_therapist: int
    river: int  # therapist's patient
    lake: int  # therapist's other patient
    river_elsewhere: int  # the other therapist's patient, also called "river"


async def make_clinic(engine: AsyncEngine) -> Clinic:
    async with await session_of(engine) as s, s.begin():
        kim = Therapist(name="Dr Kim", telegram_user_id=1001, created_at=NOW)
        lee = Therapist(name="Dr Lee", telegram_user_id=1002, created_at=NOW)
        s.add_all([kim, lee])
        await s.flush()
        patients = [
            Patient(
                therapist_id=therapist.id,
                pseudonym=name,
                status=PatientStatus.ACTIVE,
                timezone="Europe/Berlin",
                created_at=NOW,
            )
            for therapist, name in ((kim, "river"), (kim, "lake"), (lee, "River"))
        ]
        s.add_all(patients)
        await s.flush()
        return Clinic(kim.id, lee.id, patients[0].id, patients[1].id, patients[2].id)


def delivery(patient: int, due: datetime, **fields: object) -> Delivery:
    values: dict[str, object] = {
        "kind": PromptKind.REFLECTION,
        "state": DeliveryState.SENT,
        "planned_at": due,
        "sent_at": due,
        "updated_at": due,
        **fields,
    }
    return Delivery(patient_id=patient, due_at=due, **values)


def reply(patient: int, at: datetime, **fields: object) -> Reply:
    values: dict[str, object] = {"kind": ReplyKind.TEXT, "updated_at": at, **fields}
    return Reply(patient_id=patient, received_at=at, **values)


async def add(engine: AsyncEngine, *rows: Base) -> list[int]:
    async with await session_of(engine) as s, s.begin():
        s.add_all(rows)
        await s.flush()
        return [int(getattr(row, "id", None) or getattr(row, "update_id", 0) or 0) for row in rows]


async def tokens(engine: AsyncEngine) -> dict[tuple[str, int], bytes]:
    async with await session_of(engine) as s:
        found: dict[tuple[str, int], bytes] = {}
        for rid, body in await s.execute(select(Reply.id, Reply.body_enc)):
            if body is not None:
                found["replies", rid] = body
        for did, text in await s.execute(select(Delivery.id, Delivery.custom_text_enc)):
            if text is not None:
                found["deliveries", did] = text
        return found


async def audit_entries(engine: AsyncEngine, action: str) -> list[AuditEntry]:
    async with await session_of(engine) as s:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list(await s.scalars(query))


def decrypts(cipher: Cipher, token: bytes) -> bool:
    try:
        cipher.decrypt(token)
    except CryptoKeyError:
        return False
    return True


# --- every verb ------------------------------------------------------------------------------


def test_encrypted_columns_are_every_binary_column() -> None:
    binary = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        # HMAC indexes are keyed digests, not tokens: re-indexed, not re-encrypted.
        if isinstance(column.type, LargeBinary) and not column.name.endswith("_index")
    }
    found = {f"{c.table.name}.{c.name}" for c in maintenance.encrypted_columns()}
    assert (
        found
        == binary
        == {
            "replies.body_enc",
            "replies.choice_value_enc",
            "patients.telegram_enc",
            "deliveries.custom_text_enc",
            "alerts.text_enc",
            "key_checks.value_enc",  # rotated too, so the check value opens with the new key
        }
    )


async def test_new_verbs_have_help(env: None) -> None:
    for verb in (["keys"], ["keys", "rotate"], ["export"], ["purge"]):
        code, out, _ = await cli(*verb, "--help")
        assert code == 0 and "Usage" in out, verb


# --- keys rotate ----------------------------------------------------------------------------


async def test_rotate_reencrypts_under_the_newest_key(env: None, engine: AsyncEngine) -> None:
    clinic = await make_clinic(engine)
    texts = {"first": "I slept well.", "second": "Tight chest, then calm.", "third": "Ünïcødé ✓"}
    await add(
        engine,
        reply(clinic.river, NOW, body_enc=OLD.encrypt(texts["first"])),
        reply(clinic.river, NOW, body_enc=OLD.encrypt(texts["second"])),
        reply(clinic.lake, NOW, body_enc=NEW.encrypt(texts["third"])),  # already current
        reply(clinic.lake, NOW, kind=ReplyKind.CHOICE),  # nothing encrypted at all
        delivery(clinic.river, NOW, custom_text_enc=OLD.encrypt("How was the walk?")),
        delivery(clinic.lake, NOW),
    )
    before = await tokens(engine)
    assert len(before) == 4

    code, out, err = await cli("keys", "rotate", "--batch-size", "1")
    assert code == 0, err
    assert out.splitlines()[0] == "re-encrypted 3, already current 1"
    assert "replies.body_enc: re-encrypted 2, already current 1" in out
    assert "deliveries.custom_text_enc: re-encrypted 1, already current 0" in out

    after = await tokens(engine)
    assert after.keys() == before.keys()
    plain = {key: NEW.decrypt(token) for key, token in after.items()}  # the new key alone reads all
    assert set(plain.values()) == {*texts.values(), "How was the walk?"}
    assert not any(decrypts(OLD, token) for token in after.values())  # the old key alone: nothing
    current = [key for key, token in before.items() if NEW.is_current(token)]
    assert len(current) == 1 and after[current[0]] == before[current[0]]  # untouched

    code, out, _ = await cli("keys", "rotate")  # idempotent
    assert code == 0 and out.startswith("re-encrypted 0, already current 4")
    assert await tokens(engine) == after

    entries = await audit_entries(engine, "keys.rotate")
    assert [(e.actor, e.detail["rotated"], e.detail["current"]) for e in entries] == [
        (OPERATOR, 3, 1),
        (OPERATOR, 0, 4),
    ]


async def test_rotate_stops_at_a_token_no_key_can_read(env: None, engine: AsyncEngine) -> None:
    clinic = await make_clinic(engine)
    ids = await add(
        engine,
        *(reply(clinic.river, NOW, body_enc=OLD.encrypt(f"answer {n}")) for n in range(3)),
        reply(clinic.river, NOW, body_enc=FOREIGN.encrypt("written with a lost key")),
        reply(clinic.river, NOW, body_enc=OLD.encrypt("after the bad one")),
        delivery(clinic.river, NOW, custom_text_enc=OLD.encrypt("therapist's words")),
    )
    bad = ids[3]
    before = await tokens(engine)

    code, out, err = await cli("keys", "rotate", "--batch-size", "2")
    assert code == 1 and out == ""
    assert one_line(err) and f"replies row {bad}" in err
    # Tables go in schema order: deliveries (1 row), then replies' first batch (2 rows).
    assert "re-encrypting 3" in err

    after = await tokens(engine)
    for rid in ids[:2]:
        assert NEW.is_current(after["replies", rid])
    for rid in ids[2:5]:  # the failing batch and everything after it: unchanged
        assert after["replies", rid] == before["replies", rid]
    assert NEW.is_current(after["deliveries", ids[5]])

    [entry] = await audit_entries(engine, "keys.rotate")
    assert entry.detail["failed"] == f"replies#{bad}" and entry.detail["rotated"] == 3


async def test_rotate_without_keys_fails_in_one_line(
    env: None, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AFTERGLOW_ENCRYPTION_KEYS")
    code, _, err = await cli("keys", "rotate")
    assert code == 1 and one_line(err) and "AFTERGLOW_ENCRYPTION_KEYS" in err
    assert not (tmp_path / "afterglow.key").exists()  # no fresh key is invented
    monkeypatch.setenv("AFTERGLOW_ENCRYPTION_KEYS", "not-a-key")
    code, _, err = await cli("keys", "rotate")
    assert code == 1 and one_line(err) and "AFTERGLOW_ENCRYPTION_KEYS" in err


# --- export ---------------------------------------------------------------------------------


async def seed_answers(engine: AsyncEngine, clinic: Clinic) -> None:
    day = NOW - timedelta(days=2)
    [custom, builtin, _] = await add(
        engine,
        delivery(clinic.river, day, custom_text_enc=NEW.encrypt("How was the walk?")),
        delivery(clinic.river, day + timedelta(hours=1), prompt_key="ref-body-now"),
        delivery(clinic.lake, day, custom_text_enc=NEW.encrypt("Lake's own question")),
    )
    await add(
        engine,
        reply(clinic.river, day + timedelta(minutes=5), delivery_id=custom,
              body_enc=OLD.encrypt("Long, quiet, I cried a little")),
        reply(clinic.river, day + timedelta(hours=2), delivery_id=builtin,
              body_enc=NEW.encrypt("Warm hands, \"heavy\" legs, a, b")),
        reply(clinic.river, day + timedelta(hours=3), kind=ReplyKind.NOTE,
              body_enc=NEW.encrypt("A note of my own")),
        reply(clinic.lake, day, body_enc=NEW.encrypt("Lake's private answer")),
        reply(clinic.river_elsewhere, day, body_enc=NEW.encrypt("Another clinic's River")),
    )  # fmt: skip


async def test_export_csv_and_json(env: None, engine: AsyncEngine, tmp_path: Path) -> None:
    clinic = await make_clinic(engine)
    await seed_answers(engine, clinic)

    code, out, err = await cli("export", "--patient", "river", "--format", "csv",
                               "--therapist", str(clinic.therapist))  # fmt: skip
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["type"], r["answer"]) for r in rows] == [
        ("delivery", "Long, quiet, I cried a little"),  # old key: still read
        ("delivery", 'Warm hands, "heavy" legs, a, b'),
        ("note", "A note of my own"),
    ]
    assert rows[0]["question"] == "How was the walk?"
    assert rows[1]["question"].startswith("Take one slow breath")
    assert "Lake" not in out and "Another clinic" not in out

    target = tmp_path / "river.json"
    code, out, err = await cli(
        "export", "--patient", "River", "--format", "json",
        "--therapist", f"#{clinic.therapist}", "--output", str(target),
    )  # fmt: skip
    assert code == 0, err
    assert "3 row(s)" in out and str(target) in out
    assert target.stat().st_mode & 0o777 == 0o600
    data = json.loads(target.read_text(encoding="utf-8"))
    assert [row["answer"] for row in data] == [r["answer"] for r in rows]

    folder = tmp_path / "exports"
    folder.mkdir()
    code, out, err = await cli("export", "--patient", "lake", "--format", "json",
                               "--output", str(folder))  # fmt: skip
    assert code == 0, err
    [written] = folder.iterdir()
    assert written.name.startswith("afterglow-lake-") and written.suffix == ".json"
    lake = json.loads(written.read_bytes())
    assert [(row["question"], row["answer"]) for row in lake] == [
        ("Lake's own question", None),  # unanswered
        (None, "Lake's private answer"),  # a reply tied to no delivery
    ]

    entries = await audit_entries(engine, "export.csv") + await audit_entries(engine, "export.json")
    assert sorted((e.action, e.actor, e.patient_id, e.detail["rows"]) for e in entries) == sorted(
        [
            ("export.csv", OPERATOR, clinic.river, 3),
            ("export.json", OPERATOR, clinic.river, 3),
            ("export.json", OPERATOR, clinic.lake, 2),
        ]
    )


async def test_export_of_an_ambiguous_pseudonym_needs_the_therapist(
    env: None, engine: AsyncEngine
) -> None:
    clinic = await make_clinic(engine)
    code, out, err = await cli("export", "--patient", "river", "--format", "csv")
    assert code == 1 and out == "" and one_line(err)
    assert "--therapist" in err
    assert f"{clinic.therapist}, {clinic.other_therapist}" in err
    code, out, err = await cli("export", "--patient", "river", "--format", "json",
                               "--therapist", str(clinic.other_therapist))  # fmt: skip
    assert code == 0, err
    assert json.loads(out) == []  # River of the other therapist has nothing yet
    assert await audit_entries(engine, "export.csv") == []  # the refused export left no entry


async def test_export_errors_are_one_line(env: None, engine: AsyncEngine, tmp_path: Path) -> None:
    clinic = await make_clinic(engine)
    existing = tmp_path / "taken.csv"
    existing.write_text("keep me")
    cases = [
        (["--patient", "nobody", "--format", "csv"], "no patient 'nobody'"),
        (["--patient", "lake", "--format", "csv", "--therapist", str(clinic.other_therapist)],
         f"of therapist #{clinic.other_therapist}"),
        (["--patient", "lake", "--format", "xml"], "--format"),
        (["--patient", "lake", "--format", "csv", "--therapist", "Dr Kim"], "--therapist"),
        (["--patient", "lake", "--format", "csv", "--output", str(existing)], "already exists"),
        (["--patient", "lake", "--format", "csv", "--output", str(tmp_path / "no" / "x.csv")],
         "no folder"),
        (["--format", "csv"], "--patient"),
    ]  # fmt: skip
    for args, expected in cases:
        code, out, err = await cli("export", *args)
        assert code != 0 and out == "" and one_line(err), (args, err)
        assert expected in err, (args, err)
    assert existing.read_text() == "keep me"


# --- purge ----------------------------------------------------------------------------------


async def test_purge_removes_only_old_data_and_dry_run_changes_nothing(
    env: None, engine: AsyncEngine
) -> None:
    clinic = await make_clinic(engine)
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=5)
    [old_sent, old_held, recent_sent] = await add(
        engine,
        delivery(clinic.river, old, custom_text_enc=NEW.encrypt("Old question")),
        delivery(clinic.river, old, custom_text_enc=NEW.encrypt("Held while paused"),
                 state=DeliveryState.HELD, sent_at=None),
        delivery(clinic.river, recent, custom_text_enc=NEW.encrypt("Recent question")),
    )  # fmt: skip
    old_replies = await add(
        engine,
        *(reply(clinic.river, old + timedelta(minutes=n), delivery_id=old_sent,
                body_enc=NEW.encrypt(f"old {n}")) for n in range(5)),
    )  # fmt: skip
    [kept] = await add(engine, reply(clinic.river, recent, body_enc=NEW.encrypt("recent")))
    [alert] = await add(
        engine,
        Alert(patient_id=clinic.river, therapist_id=clinic.therapist, reply_id=old_replies[0],
              kind=AlertKind.CRISIS, created_at=old),
    )  # fmt: skip
    await add(
        engine,
        ProcessedUpdate(update_id=1, processed_at=old),
        ProcessedUpdate(update_id=2, processed_at=recent),
    )
    before = await tokens(engine)

    code, out, err = await cli("purge", "--older-than", "30", "--dry-run")
    assert code == 0, err
    assert out.startswith("would delete 5 replies (1 alerts unlinked), would clear 1 therapist")
    assert "would delete 1 processed updates" in out
    assert await tokens(engine) == before

    code, out, err = await cli("purge", "--older-than", "30", "--batch-size", "2")
    assert code == 0, err
    assert out.startswith("deleted 5 replies (1 alerts unlinked), cleared 1 therapist prompt")
    assert "deleted 1 processed updates" in out
    after = await tokens(engine)
    assert set(after) == {
        ("replies", kept),
        ("deliveries", old_held),  # not sent yet: it still needs its text
        ("deliveries", recent_sent),
    }
    async with await session_of(engine) as s:
        assert (await s.get_one(Alert, alert)).reply_id is None  # the alert itself stays
        assert (await s.get_one(Delivery, old_sent)).state is DeliveryState.SENT
        assert list(await s.scalars(select(ProcessedUpdate.update_id))) == [2]

    code, out, _ = await cli("purge", "--older-than", "30")
    assert code == 0 and out.startswith("deleted 0 replies")

    entries = await audit_entries(engine, "purge")
    assert [
        (e.actor, e.detail["dry_run"], e.detail["replies"], e.detail["days"]) for e in entries
    ] == [
        (OPERATOR, True, 5, 30),
        (OPERATOR, False, 5, 30),
        (OPERATOR, False, 0, 30),
    ]


async def test_purge_rejects_bad_days_in_one_line(env: None, engine: AsyncEngine) -> None:
    await make_clinic(engine)
    for args in (["0"], ["-3"], ["abc"], ["99999999"], []):
        option = ["--older-than", *args] if args else []
        code, out, err = await cli("purge", *option)
        assert code != 0 and out == "" and one_line(err), (args, err)
        assert "DAYS" in err or "--older-than" in err, err
    assert await audit_entries(engine, "purge") == []


async def test_purge_service_works_in_batches(engine: AsyncEngine) -> None:
    clinic = await make_clinic(engine)
    old = NOW - timedelta(days=10)
    await add(engine, *(reply(clinic.lake, old, body_enc=NEW.encrypt("x")) for _ in range(7)))
    result = await maintenance.purge(engine, older_than_days=3, now=NOW, batch_size=3)
    assert (result.replies, result.dry_run) == (7, False)
    assert await tokens(engine) == {}
