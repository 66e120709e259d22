"""Leader election: never two leaders, even when the leader's connection drops and its process
keeps running; a follower leads only after the old leader has stepped down."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.db.engine import make_engine
from bot.dispatch.leader import LOCK_KEY, Leadership
from tests.support.pg import PG_URL, SKIP_REASON, fresh_database

pg_only = pytest.mark.skipif(not PG_URL, reason=SKIP_REASON)

INTERVAL = 0.05
TIMEOUT = 0.25  # roomy for a loaded test machine; a takeover then waits 0.6 s
DEADLINE = 3.0  # a bound for a bug to fail on, not a wait: a takeover takes well under 1 s
SAMPLE = 0.005

LOCK_HOLDER = text(
    """
    SELECT pid FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 1
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((classid::bigint << 32) | objid::bigint) = :k
    """
)


def leadership(engine: AsyncEngine) -> Leadership:
    return Leadership(engine, interval=INTERVAL, timeout=TIMEOUT)


@dataclass
class Replica:
    name: str
    engine: AsyncEngine
    leadership: Leadership
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    statements: int = 0

    @property
    def conn(self) -> AsyncConnection:
        assert self.leadership._conn is not None, f"{self.name} has no leadership connection"
        return self.leadership._conn

    async def quiet(self) -> None:
        """Wait until this replica has just finished a check (statement and commit): it then
        pauses a whole interval, so what the test does next is not raced by its own check."""
        seen = self.statements
        end = time.monotonic() + DEADLINE
        while self.statements == seen or self._busy():
            assert time.monotonic() < end, f"{self.name} ran no check within {DEADLINE} s"
            await asyncio.sleep(0.001)

    def _busy(self) -> bool:
        conn = self.leadership._conn
        return conn is None or conn.in_transaction()


@dataclass
class Cluster:
    replicas: list[Replica]
    admin: AsyncEngine
    events: list[tuple[int, str]] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def start(self, replica: Replica) -> None:
        async def gain() -> None:
            # The moment that matters: nobody else may still lead when this one starts.
            others = [r.name for r in self.replicas if r is not replica and r.leadership.is_leader]
            if others:
                self.overlaps.append(f"{replica.name} gained while {others} led")
            self.events.append((next(self._seq), f"{replica.name}+"))

        async def lose() -> None:
            self.events.append((next(self._seq), f"{replica.name}-"))

        replica.task = asyncio.create_task(replica.leadership.run(gain, lose, replica.stop))

    def leaders(self) -> list[str]:
        return [r.name for r in self.replicas if r.leadership.is_leader]

    def labels(self) -> list[str]:
        return [label for _, label in sorted(self.events)]

    async def watch(self, until: Callable[[], bool], what: str) -> None:
        """Sample who leads until `until()` holds: at no sampled moment may two lead."""
        end = time.monotonic() + DEADLINE
        while True:
            leading = self.leaders()
            assert len(leading) <= 1, f"two leaders at once: {leading}; events {self.labels()}"
            assert not self.overlaps, self.overlaps
            if until():
                return
            assert time.monotonic() < end, f"{what} within {DEADLINE} s; events {self.labels()}"
            await asyncio.sleep(SAMPLE)

    async def hold(self, seconds: float) -> None:
        """Watch for `seconds` that the current leader, and only it, stays the leader."""
        leading = self.leaders()
        end = time.monotonic() + seconds

        def steady() -> bool:
            assert self.leaders() == leading, f"{leading} became {self.leaders()}"
            return time.monotonic() >= end

        await self.watch(steady, "a quiet spell")

    async def holder_pid(self) -> int:
        async with self.admin.connect() as conn:
            pids = (await conn.scalars(LOCK_HOLDER, {"k": LOCK_KEY})).all()
        assert len(pids) == 1, f"lock holders: {pids}"
        return int(pids[0])


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with fresh_database() as url:
        engines = [make_engine(url), make_engine(url)]
        replicas = [Replica(n, e, leadership(e)) for n, e in zip("ab", engines, strict=True)]
        for replica in replicas:

            def count(*_: Any, replica: Replica = replica) -> None:
                replica.statements += 1

            event.listen(replica.engine.sync_engine, "after_cursor_execute", count)
        admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
        group = Cluster(replicas, admin)
        try:
            yield group
        finally:
            for replica in replicas:
                replica.stop.set()
            for replica in replicas:
                if replica.task is not None:
                    await asyncio.wait_for(replica.task, timeout=DEADLINE)
            for replica in replicas:
                await replica.engine.dispose()
            await admin.dispose()


async def lead_with_a_follower(cluster: Cluster) -> tuple[Replica, Replica]:
    a, b = cluster.replicas
    cluster.start(a)
    await cluster.watch(lambda: a.leadership.is_leader, "a first leader")
    cluster.start(b)
    await b.quiet()  # b has tried the lock, and failed
    await cluster.hold(2 * INTERVAL)
    assert cluster.leaders() == ["a"] and cluster.labels() == ["a+"]
    return a, b


async def drop(cluster: Cluster, replica: Replica, how: str, follower: Replica) -> None:
    pid = await cluster.holder_pid()
    assert pid == replica.leadership._pid
    async with cluster.admin.connect() as admin:  # connected beforehand: no delay below
        # The worst moment: the follower's next try for the lock comes before the leader's
        # next check, so a follower that led as soon as it took the lock would overlap.
        await follower.quiet()
        await replica.quiet()
        if how == "terminate":  # e.g. an operator, a failover, idle_session_timeout
            assert await admin.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        elif how == "invalidate":  # SQLAlchemy would reconnect it from the pool on next use
            await replica.conn.invalidate()
        elif how == "unlock":  # the session lives on, without the lock
            await replica.conn.execute(text("SELECT pg_advisory_unlock_all()"))
            await replica.conn.commit()
        else:
            assert how == "stop"
            replica.stop.set()


@pg_only
@pytest.mark.parametrize("how", ["terminate", "invalidate", "unlock", "stop"])
async def test_one_leader_while_the_leaders_connection_drops_and_a_follower_takes_over(
    cluster: Cluster, how: str
) -> None:
    a, b = await lead_with_a_follower(cluster)

    await drop(cluster, a, how, b)
    await cluster.watch(lambda: b.leadership.is_leader, "a takeover by b")
    # The old leader stepped down before the new one started, and does not come back.
    assert cluster.labels() == ["a+", "a-", "b+"]
    (lost,) = [seq for seq, label in cluster.events if label == "a-"]
    (gained,) = [seq for seq, label in cluster.events if label == "b+"]
    assert lost < gained
    await cluster.hold(4 * INTERVAL)
    assert cluster.leaders() == ["b"]
    if how != "stop":
        assert a.task is not None and not a.task.done()  # a kept running, as a follower
    assert await cluster.holder_pid() == b.leadership._pid


@pg_only
async def test_leadership_passes_back_and_forth_without_overlap(cluster: Cluster) -> None:
    a, b = await lead_with_a_follower(cluster)
    for old, new in ((a, b), (b, a), (a, b)):
        await drop(cluster, old, "terminate", new)
        await cluster.watch(lambda: new.leadership.is_leader, f"a takeover by {new.name}")  # noqa: B023 - awaited here
    assert cluster.labels() == ["a+", "a-", "b+", "b-", "a+", "a-", "b+"]


@pg_only
async def test_replicas_starting_together_elect_one(cluster: Cluster) -> None:
    for replica in cluster.replicas:
        cluster.start(replica)
    await cluster.watch(lambda: bool(cluster.leaders()), "a leader")
    await cluster.hold(4 * INTERVAL)
    assert len(cluster.labels()) == 1


async def test_sqlite_is_a_single_replica_that_always_leads(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/leader.db")
    seen: list[str] = []

    async def gain() -> None:
        seen.append("+")

    async def lose() -> None:
        seen.append("-")

    try:
        lead, stop = leadership(engine), asyncio.Event()
        task = asyncio.create_task(lead.run(gain, lose, stop))
        end = time.monotonic() + DEADLINE
        while not lead.is_leader:
            assert time.monotonic() < end, "sqlite never led"
            await asyncio.sleep(SAMPLE)
        stop.set()
        await asyncio.wait_for(task, timeout=DEADLINE)
        assert seen == ["+"]
    finally:
        await engine.dispose()
