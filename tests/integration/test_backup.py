"""`afterglow backup` and the restore procedure, against the real bot writing replies.

SQLite: a copy taken while patients' replies are being committed holds every reply committed
before it started, nothing half-written, and restores into a database the keys open and the
bot runs on. PostgreSQL: the printed pg_dump line, run as printed, makes a dump.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from bot.cli import app
from bot.db.backup import BackupError, backup_sqlite, pg_dump_command
from bot.db.crypto import Cipher
from bot.db.models import AuditEntry, Patient, Reply, ReplyKind
from bot.emulator.people import EmuUser
from tests.integration.world import World, close_world, make_world
from tests.support.pg import PG_URL, SKIP_REASON, fresh_database

PROBE = "backup probe"
# Enough pages that copying takes a while, so the bot's commits land while a copy runs.
FILLER = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 384) "
    "INSERT INTO backup_filler (b) SELECT randomblob(32768) FROM n"
)

# The documented restore, steps 2 to 4 (1 is stopping the bot; 5 and 6 are below), run as is.
RESTORE = """\
set -eu
cp "$BACKUP" "$DB"
rm -f "$DB-wal" "$DB-shm"
chmod 600 "$DB"
"""


@dataclass
class Clinic:
    world: World
    db: Path
    therapist: EmuUser
    patient: EmuUser


@pytest.fixture
async def clinic(tmp_path: Path) -> AsyncIterator[Clinic]:
    db = tmp_path / "live" / "afterglow.db"
    db.parent.mkdir()
    world = await make_world(f"sqlite+aiosqlite:///{db}")
    try:
        dr = await world.therapist()
        river = await world.enrolled_patient(dr, "river")
        yield Clinic(world, db, dr, river)
    finally:
        await close_world(world)


async def say_replies(clinic: Clinic, first: int, count: int) -> list[int]:
    world = clinic.world
    for n in range(first, first + count):
        world.clock.advance(timedelta(minutes=4))  # past the join pause: one reply each
        await world.say(clinic.patient, f"{PROBE} {n:05d}")
    return list(range(first, first + count))


def probes(cipher: Cipher, rows: list[bytes]) -> list[int]:
    texts = [cipher.decrypt(row) for row in rows]
    return sorted(int(text.rsplit(" ", 1)[1]) for text in texts if text.startswith(PROBE))


def probes_in_file(path: Path, cipher: Cipher) -> list[int]:
    """The probe replies in a backup file, read with plain sqlite3 (as a restore would)."""
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = db.execute("SELECT body_enc FROM replies WHERE body_enc IS NOT NULL").fetchall()
    return probes(cipher, [bytes(row[0]) for row in rows])


async def probes_live(world: World) -> list[int]:
    async with world.rt.sessions() as session:
        rows = await session.scalars(select(Reply.body_enc).where(Reply.body_enc.is_not(None)))
        return probes(world.rt.cipher, [row for row in rows if row is not None])


def assert_private_single_file(path: Path) -> None:
    assert path.stat().st_mode & 0o777 == 0o600
    header = path.read_bytes()[:20]
    assert header[18:20] == b"\x01\x01"  # rollback journal, not WAL: the file is the whole copy
    for suffix in ("-journal", "-wal", "-shm"):
        assert not Path(f"{path}{suffix}").exists()


async def test_a_backup_taken_mid_traffic_holds_every_reply_committed_before_it(
    clinic: Clinic, tmp_path: Path
) -> None:
    world = clinic.world
    async with world.rt.engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE backup_filler (b BLOB)")
        await conn.exec_driver_sql(FILLER)
    committed = await say_replies(clinic, 0, 3)
    stop = asyncio.Event()

    async def patient_keeps_writing() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set():
            assert time.monotonic() < deadline, "the writer was never stopped"
            committed.extend(await say_replies(clinic, len(committed), 1))

    writer = asyncio.create_task(patient_keeps_writing())
    copies: list[tuple[Path, int, int]] = []  # file, replies committed before, and after it
    deadline = time.monotonic() + 30
    try:
        while not any(after > before for _, before, after in copies):
            assert time.monotonic() < deadline, f"no reply committed during a copy: {copies}"
            await asyncio.sleep(0.01)  # let the writer commit a few between copies
            target = tmp_path / f"copy-{len(copies)}.db"
            before = len(committed)
            await asyncio.to_thread(backup_sqlite, clinic.db, target)
            copies.append((target, before, len(committed)))
    finally:
        stop.set()
        await asyncio.wait_for(writer, timeout=30)
    assert await probes_live(world) == committed  # every reply the writer counted is real

    for target, before, _ in copies:
        assert_private_single_file(target)
        found = probes_in_file(target, world.rt.cipher)
        # One snapshot: every reply committed before the copy began, then a gapless run of
        # later ones (a copy never holds a reply without the ones committed before it).
        assert found == list(range(len(found))), (target, found)
        assert before <= len(found) <= len(committed), (target, before, found)


async def test_a_backup_does_not_wait_for_or_copy_an_open_transaction(
    clinic: Clinic, tmp_path: Path
) -> None:
    world = clinic.world
    await say_replies(clinic, 0, 2)
    async with world.rt.sessions() as session:
        patient = await session.scalar(select(Patient).where(Patient.pseudonym == "river"))
        assert patient is not None
    async with world.rt.engine.connect() as conn, AsyncSession(bind=conn) as session:
        await session.begin()
        now = world.clock.now()
        session.add(
            Reply(
                patient_id=patient.id,
                kind=ReplyKind.NOTE,
                body_enc=world.rt.cipher.encrypt(f"{PROBE} 00099"),
                received_at=now,
                updated_at=now,
            )
        )
        await session.flush()  # the bot mid-transaction: it holds SQLite's write lock
        target = tmp_path / "copy.db"
        await asyncio.wait_for(asyncio.to_thread(backup_sqlite, clinic.db, target), timeout=10)
        await session.rollback()
    assert probes_in_file(target, world.rt.cipher) == [0, 1]


def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def operator_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AFTERGLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOGNAME", "alice")  # the OS account audit entries name


def env_for(db: Path, keys: str) -> dict[str, str]:
    return {
        "AFTERGLOW_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "AFTERGLOW_ENCRYPTION_KEYS": keys,
    }


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


async def test_restore_procedure_gives_back_the_data_and_a_working_bot(
    clinic: Clinic, tmp_path: Path, operator_env: None
) -> None:
    world = clinic.world
    keys = world.rt.settings.encryption_keys
    assert keys is not None
    env = env_for(clinic.db, keys)
    code, out, err = await asyncio.to_thread(cli, env, "keys", "check")
    assert code == 0 and "check value stored now" in out, err
    kept = await say_replies(clinic, 0, 3)

    backup = tmp_path / "backups" / "afterglow-backup.db"
    backup.parent.mkdir()
    with umask(0):  # the copy is private whatever the operator's umask
        code, out, err = await asyncio.to_thread(cli, env, "backup", str(backup))
    assert code == 0, err
    assert out.startswith(f"backup of {clinic.db} written to {backup}") and "integrity ok" in out
    assert_private_single_file(backup)
    async with world.rt.sessions() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "backup"))
    assert entry is not None and entry.actor == "operator:alice"
    assert entry.detail == {"path": str(backup), "bytes": backup.stat().st_size}

    lost = await say_replies(clinic, 3, 2)  # after the backup: a restore cannot have them
    stale = {suffix: Path(f"{clinic.db}{suffix}").read_bytes() for suffix in ("-wal", "-shm")}

    # 1. Stop the bot. Its WAL files left behind belong to the old database, not the backup.
    await close_world(world)
    for suffix, data in stale.items():
        Path(f"{clinic.db}{suffix}").write_bytes(data)
    # 2-4. Copy the backup into place, remove the stale -wal/-shm, mode 0600.
    steps = subprocess.run(
        ["sh", "-c", RESTORE],
        env={**os.environ, "BACKUP": str(backup), "DB": str(clinic.db)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert steps.returncode == 0, steps.stderr
    assert clinic.db.stat().st_mode & 0o777 == 0o600
    assert not Path(f"{clinic.db}-wal").exists() and not Path(f"{clinic.db}-shm").exists()

    # 5. The configured keys open the restored data; other keys do not.
    code, out, err = await asyncio.to_thread(cli, env, "keys", "check")
    assert code == 0 and "they open the check value stored" in out, err
    other = env_for(clinic.db, Fernet.generate_key().decode())
    assert (await asyncio.to_thread(cli, other, "keys", "check"))[0] == 1
    code, out, err = await asyncio.to_thread(
        cli, env, "export", "--patient", "river", "--format", "json"
    )
    assert code == 0, err
    answers = [row["answer"] for row in json.loads(out)]
    assert answers == [f"{PROBE} {n:05d}" for n in kept]
    assert not any(f"{PROBE} {n:05d}" in out for n in lost)

    # 6. Start the bot on it: the same patient is known and their next words are kept.
    restarted = await make_world(f"sqlite+aiosqlite:///{clinic.db}", encryption_keys=keys)
    try:
        # Telegram's update ids go on from where they were, not from 1 (those are done).
        restarted.state.updates.next_update_id = world.state.next_update_id
        river = restarted.state.user(clinic.patient.id, "River")
        dr = restarted.state.user(clinic.therapist.id, "Dr Rivera")
        restarted.clock.advance(timedelta(hours=2))
        await restarted.say(river, f"{PROBE} 00100")
        assert await probes_live(restarted) == [*kept, 100]
        await restarted.say(dr, "/replies river")
        assert f"{PROBE} 00100" in restarted.last(dr)["text"]
    finally:
        await close_world(restarted)


def test_backup_refuses_what_it_cannot_do_in_one_line(tmp_path: Path, operator_env: None) -> None:
    db = tmp_path / "afterglow.db"
    env = {"AFTERGLOW_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}  # no keys: it copies ciphertext
    code, _, err = cli(env, "backup", str(tmp_path / "none.db"))
    assert (
        code == 1
        and err.count("\n") == 1
        and f"no database file at {db} (AFTERGLOW_DATABASE_URL)" in err
    )
    assert not (tmp_path / "none.db").exists()

    assert cli(env, "db", "upgrade")[0] == 0
    existing = tmp_path / "taken.db"
    existing.write_bytes(b"keep me")
    cases = [
        (str(existing), "already exists: a backup never overwrites"),
        (str(tmp_path / "no" / "such" / "x.db"), "no folder"),
    ]
    for target, expected in cases:
        code, out, err = cli(env, "backup", target)
        assert code == 1 and out == "" and err.count("\n") == 1, err
        assert err.startswith("afterglow: ") and expected in err, err
    assert existing.read_bytes() == b"keep me"
    os.symlink(tmp_path / "elsewhere.db", tmp_path / "link.db")  # dangling: not followed
    code, _, err = cli(env, "backup", str(tmp_path / "link.db"))
    assert code == 1 and "already exists" in err and not (tmp_path / "elsewhere.db").exists()

    code, _, err = cli({"AFTERGLOW_DATABASE_URL": "sqlite+aiosqlite://"}, "backup", "x.db")
    assert code == 1 and err.count("\n") == 1 and "in-memory" in err
    code, out, _ = cli(env, "backup", "--help")
    assert code == 0 and "0600" in out and "pg_dump" in out


def test_backup_on_postgres_prints_the_pg_dump_line_without_the_password(
    tmp_path: Path, operator_env: None
) -> None:
    url = "postgresql+asyncpg://afterglow:s3cr%40t@db.internal:5433/clinic?ssl=require"
    target = tmp_path / "dump.pgc"
    code, out, err = cli({"AFTERGLOW_DATABASE_URL": url}, "backup", str(target))
    assert code == 0, err
    assert out == (
        f"(umask 077 && pg_dump --format=custom --file={target} "
        "'--dbname=postgresql://afterglow@db.internal:5433/clinic?sslmode=require')\n"
    )
    assert "s3cr" not in out + err and "password" in err
    assert not target.exists()
    target.write_bytes(b"")
    code, _, err = cli({"AFTERGLOW_DATABASE_URL": url}, "backup", str(target))
    assert code == 1 and "already exists" in err
    with pytest.raises(BackupError):
        pg_dump_command("not a url", target)


@pytest.mark.skipif(not PG_URL, reason=SKIP_REASON)
@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="no pg_dump on this machine")
async def test_the_printed_pg_dump_line_makes_a_private_dump(
    tmp_path: Path, operator_env: None
) -> None:
    async with fresh_database() as url:
        assert (await asyncio.to_thread(cli, {"AFTERGLOW_DATABASE_URL": url}, "db", "upgrade"))[
            0
        ] == 0
        target = tmp_path / "dump.pgc"
        code, out, err = await asyncio.to_thread(
            cli, {"AFTERGLOW_DATABASE_URL": url}, "backup", str(target)
        )
        assert code == 0, err
        ran = await asyncio.to_thread(
            subprocess.run, ["sh", "-c", out], capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 0, ran.stderr
    assert target.stat().st_mode & 0o777 == 0o600
    listing = subprocess.run(
        ["pg_restore", "--list", str(target)], capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0 and "TABLE public replies" in listing.stdout, listing.stderr
