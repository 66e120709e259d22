"""What every benchmark shares: the machine's description, result files, tables, throwaway
databases, fast seeding, and the Afterglow runtime wired to the emulator.

Nothing here is timed; each benchmark times only its own loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.config import Settings
from bot.db import identity
from bot.db.crypto import Cipher
from bot.db.models import (
    Base,
    Delivery,
    DeliveryState,
    Patient,
    PatientStatus,
    PromptKind,
    Therapist,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
TOKEN = "424242:BENCH-token_abc"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PACKAGES = (
    "afterglow",
    "python-telegram-bot",
    "APScheduler",
    "SQLAlchemy",
    "aiosqlite",
    "asyncpg",
    "cryptography",
    "httpx",
    "starlette",
    "uvicorn",
    "pydantic",
)
# Every prompt of the built-in `standard` template, so sends mix education snippets,
# reflections (ForceReply) and check-ins (signed scale buttons) the way a real week does.
STANDARD_KEYS = (
    "edu-after-session",
    "ref-one-word",
    "chk-sleep",
    "edu-window",
    "chk-mood",
    "ref-what-stood-out",
    "edu-default-mode-network",
    "ref-looping-thought",
    "edu-self-compassion",
    "chk-mood-today",
    "ref-kind-words",
    "edu-values",
    "chk-connection",
    "ref-small-step",
    "chk-mood-week",
    "ref-notes-for-therapist",
)
KIND_OF = {"edu": PromptKind.EDUCATION, "ref": PromptKind.REFLECTION, "chk": PromptKind.CHECKIN}
FIRST_USER_ID = 1_000_000
THERAPIST_USER_ID = 7


def prompt_kind(key: str) -> PromptKind:
    return KIND_OF[key.split("-", 1)[0]]


# ------------------------------------------------------------------------------ machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}{'-dirty' if dirty else ''}"


async def postgres_version(url: str | None) -> str | None:
    if not url:
        return None
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return str(await conn.scalar(text("SHOW server_version")))
    except Exception as exc:  # no server: say so in the results rather than fail
        return f"unavailable ({type(exc).__name__})"
    finally:
        await engine.dispose()


def calibration_us() -> float:
    """Best-of-5 time of a fixed pure-Python loop: this VM's speed drifts by tens of percent
    over an hour (other guests on the host), so every result carries a yardstick to compare
    runs by. 11 µs on the reference machine when quiet."""
    best = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5))
    return round(best / 2000 * 1e6, 2)


def machine(pg_version: str | None = None) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
        "packages": versions,
        "commit": _git_commit(),
        # Other work on a shared machine shows up here: read timings in that light.
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "calibration_us": calibration_us(),
    }


def describe_machine(info: dict[str, Any]) -> str:
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM; "
        f"Python {info['python']}, SQLite {info['sqlite']}, "
        f"PostgreSQL {info['postgresql'] or 'n/a'}; "
        f"PTB {info['packages'].get('python-telegram-bot')}, "
        f"SQLAlchemy {info['packages'].get('SQLAlchemy')}; "
        f"calibration {info.get('calibration_us')} µs, load {info.get('load_average')}"
    )


# ------------------------------------------------------------------------------ results


def write_results(
    name: str,
    *,
    params: dict[str, Any],
    rows: list[dict[str, Any]],
    pg_url: str | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    pg_version = asyncio.run(postgres_version(pg_url)) if pg_url else None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    payload = {
        "bench": name,
        "timestamp": stamp,
        "machine": machine(pg_version),
        "params": params,
        "results": rows,
        **(extra or {}),
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"\nmachine: {describe_machine(payload['machine'])}")
    print(f"results: {path.relative_to(ROOT)}")
    return path


Column = tuple[str, str, str]  # key, header, format spec


def print_table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> None:
    def cell(row: dict[str, Any], key: str, spec: str) -> str:
        value = row.get(key)
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "NO"
        try:
            return format(value, spec)
        except (TypeError, ValueError):
            return str(value)

    table = [[header for _, header, _ in columns]]
    table += [[cell(row, key, spec) for key, _, spec in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    # Text columns read left to right; numbers line up on the right.
    numeric = [
        all(isinstance(row.get(key), int | float) or row.get(key) is None for row in rows)
        for key, _, _ in columns
    ]
    print(f"\n{title}")
    for n, line in enumerate(table):
        print(
            "  ".join(
                c.rjust(w) if numeric[i] else c.ljust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a fast look")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("AFTERGLOW_BENCH_POSTGRES_URL"),
        help="a PostgreSQL server (postgresql+asyncpg://…) to create throwaway databases on; "
        "without it only SQLite runs",
    )
    return parser


def backends(pg_url: str | None) -> list[str]:
    return ["sqlite", "postgres"] if pg_url else ["sqlite"]


def quiet_logs() -> None:
    logging.basicConfig(level=logging.ERROR)
    for name in ("apscheduler", "telegram", "httpx", "uvicorn", "bot"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ------------------------------------------------------------------------------ process


def rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc (Linux)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return round(fields["VmRSS"], 1), round(fields["VmHWM"], 1)


def settle_memory() -> tuple[float, float]:
    gc.collect()
    return rss_mib()


@dataclass
class Stopwatch:
    wall: float = 0.0
    cpu: float = 0.0

    @classmethod
    @asynccontextmanager
    async def running(cls) -> AsyncIterator[Stopwatch]:
        watch = cls()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield watch
        finally:
            watch.wall = time.perf_counter() - wall
            watch.cpu = time.process_time() - cpu


def run_child(module: str, args: Sequence[str], *, timeout: float = 600) -> dict[str, Any]:
    """Run `python -m <module> <args>` in a fresh interpreter; its last stdout line is JSON."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------------------ databases


@asynccontextmanager
async def database(backend: str, pg_url: str | None) -> AsyncIterator[str]:
    """A new empty database URL (a SQLite file in a temp dir, or a fresh PostgreSQL database),
    removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="afterglow-bench-") as tmp:
            yield f"sqlite+aiosqlite:///{tmp}/bench.db"
        return
    assert pg_url, "postgres needs --postgres URL"
    admin = create_async_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"afterglow_bench_{uuid.uuid4().hex[:12]}"
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


# One fixed key for every bench process: a child process (bench.scale) must open what its
# parent seeded. Bench databases are throwaway; never use this key for anything else.
BENCH_KEY = "kLfeKfQXS4_eb43UdZY1gAro4b4082uTUzQcPHFEf7g="
BENCH_CIPHER = Cipher([BENCH_KEY.encode()])


def bench_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "bot_token": TOKEN,
        "database_url": database_url,
        "encryption_keys": BENCH_KEY,
        "clinic_timezone": "UTC",
        "clinic_name": "Bench Clinic",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def create_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


def chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def patient_row(
    cipher: Cipher, therapist_id: int, pseudonym: str, user_id: int, now: datetime
) -> dict[str, Any]:
    """An active, consented patient in UTC with no quiet hours, for bulk inserts."""
    midnight = dtime(0, 0)
    return {
        "therapist_id": therapist_id,
        "pseudonym": pseudonym,
        **identity.columns(cipher, user_id),
        "status": PatientStatus.ACTIVE,
        "timezone": "UTC",
        "quiet_start": midnight,
        "quiet_end": midnight,
        "language": "en",
        "consent_version": "1",
        "consent_at": now,
        "created_at": now,
    }


async def seed_patients(
    engine: AsyncEngine, count: int, *, now: datetime, first_user_id: int = FIRST_USER_ID
) -> None:
    """One therapist (id 1, chat THERAPIST_USER_ID) and `count` active patients with ids
    1..count, chat ids first_user_id + i, time zone UTC and no quiet hours."""
    async with engine.begin() as conn:
        await conn.execute(
            insert(Therapist).values(
                id=1,
                name="Dr Bench",
                telegram_user_id=THERAPIST_USER_ID,
                chat_id=THERAPIST_USER_ID,
                active=True,
                created_at=now,
            )
        )
        rows = (
            {"id": i + 1, **patient_row(BENCH_CIPHER, 1, f"p{i}", first_user_id + i, now)}
            for i in range(count)
        )
        for batch in chunks(rows, 5000):
            await conn.execute(insert(Patient), batch)
    await _reset_sequences(engine, ("therapists", "patients"))


def delivery_row(
    patient_id: int,
    key: str,
    due_at: datetime,
    now: datetime,
    *,
    state: DeliveryState = DeliveryState.SCHEDULED,
    **extra: Any,
) -> dict[str, Any]:
    row = {
        "patient_id": patient_id,
        "prompt_key": key,
        "kind": prompt_kind(key),
        "state": state,
        "due_at": due_at,
        "planned_at": now,
        "updated_at": now,
        "attempts": 0,
    }
    row.update(extra)
    return row


async def insert_deliveries(
    engine: AsyncEngine, rows: Iterable[dict[str, Any]], *, chunk: int = 10_000
) -> int:
    count = 0
    for batch in chunks(rows, chunk):
        async with engine.begin() as conn:
            await conn.execute(insert(Delivery), batch)
        count += len(batch)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE deliveries"))
            await conn.execute(text("ANALYZE patients"))
    return count


async def _reset_sequences(engine: AsyncEngine, tables: Sequence[str]) -> None:
    """Explicit ids leave PostgreSQL's sequences behind; move them past the rows."""
    if engine.dialect.name != "postgresql":
        return
    async with engine.begin() as conn:
        for table in tables:
            await conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
            )


async def open_chats(state: Any, count: int, *, first_user_id: int = FIRST_USER_ID) -> list[Any]:
    """Telegram only lets a bot write to people who wrote first: each patient says hi."""
    people = [state.user(first_user_id + i, f"P{i}") for i in range(count)]
    for person in people:
        await state.send_text(person, "hi")
    state.drain_updates()
    return people


class SqlCounter:
    """Counts what the bot asks of the database: statements sent, connections checked out of
    the pool (each a transaction here; on PostgreSQL each also pays a pre-ping round trip),
    and commits. Counts are noise-free, unlike timings on a shared machine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements = self.checkouts = self.commits = 0
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._statement)
        event.listen(sync, "commit", self._commit)
        event.listen(sync.pool, "checkout", self._checkout)

    def _statement(self, *_args: Any) -> None:
        self.statements += 1

    def _commit(self, *_args: Any) -> None:
        self.commits += 1

    def _checkout(self, *_args: Any) -> None:
        self.checkouts += 1

    def reset(self) -> None:
        self.statements = self.checkouts = self.commits = 0

    def per(self, n: int) -> dict[str, float]:
        return {
            "sql_statements_per_item": round(self.statements / n, 2),
            "pool_checkouts_per_item": round(self.checkouts / n, 2),
            "commits_per_item": round(self.commits / n, 2),
        }


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def utcnow() -> datetime:
    return datetime.now(UTC)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


Main = Callable[[argparse.Namespace], Any]
