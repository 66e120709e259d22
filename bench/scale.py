"""Scale: does memory grow with the number of scheduled deliveries? And how long does planning
sessions for many patients take?

    python -m bench.scale [--quick] [--postgres URL]

RSS: for each size (1k, 100k, 1M scheduled deliveries; `--quick` stops at 100k) a database is
seeded (16 deliveries per patient, a week ahead, as the `standard` template plans them, plus
500 due now), then a fresh interpreter builds the real runtime and Application (fake Bot API
in-process), runs one `Dispatcher.tick()` — the due query, claiming and sending the 500 — and a
second, idle tick, and reports its RSS. One process per size, so sizes cannot contaminate each
other.

Planning: `services.sessions.log_session` for each of 10k patients (1k with `--quick`), one
transaction each, as `/session` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import datetime, timedelta
from typing import Any

from bench.common import (
    STANDARD_KEYS,
    SqlCounter,
    Stopwatch,
    backends,
    base_parser,
    bench_settings,
    create_schema,
    database,
    delivery_row,
    insert_deliveries,
    open_chats,
    print_table,
    quiet_logs,
    run_child,
    seed_patients,
    settle_memory,
    utcnow,
    write_results,
)

DUE_NOW = 500
GOAL_RATIO = 1.2  # RSS at 1M ≤ 1.2 × RSS at 1k


def patients_for(size: int) -> int:
    return max(DUE_NOW, size // len(STANDARD_KEYS))


def future_rows(size: int, now: datetime) -> Any:
    """`size` scheduled deliveries over the coming week, 16 per patient, the first DUE_NOW
    of them due now (one per patient, so no chat needs per-chat pacing)."""
    patients = patients_for(size)
    for i in range(size):
        key = STANDARD_KEYS[(i // patients) % len(STANDARD_KEYS)]
        if i < DUE_NOW:
            due = now - timedelta(seconds=30)
        else:
            due = now + timedelta(hours=1, seconds=(i * 7919) % (7 * 86400))
        yield delivery_row(i % patients + 1, key, due, now)


async def seed(url: str, size: int) -> float:
    from bot.db.engine import make_engine

    engine = make_engine(url)
    started = time.perf_counter()
    await create_schema(engine)
    now = utcnow()
    await seed_patients(engine, patients_for(size), now=now)
    await insert_deliveries(engine, future_rows(size, now), chunk=20_000)
    await engine.dispose()
    return time.perf_counter() - started


async def child_tick(url: str) -> dict[str, Any]:
    """In a fresh interpreter: the running bot's dispatcher against a seeded database."""
    from bot.app import build_application, build_runtime
    from bot.emulator import BotApiState
    from bot.emulator.request import FakeBotApi

    quiet_logs()
    settings = bench_settings(url)
    rt = build_runtime(settings)
    state = BotApiState(token=settings.require_token())
    await open_chats(state, DUE_NOW)
    app = build_application(rt, request=FakeBotApi(state), rate_limit=False, dispatch_job=False)
    await app.initialize()
    sql = SqlCounter(rt.engine)
    before, _ = settle_memory()
    dispatcher = app.bot_data["dispatcher"]
    async with Stopwatch.running() as first:
        report = await dispatcher.tick()
    async with Stopwatch.running() as idle:
        await dispatcher.tick()
    after, peak = settle_memory()
    await app.shutdown()
    await rt.engine.dispose()
    return {
        "rss_before_tick_mib": before,
        "rss_after_tick_mib": after,
        "peak_rss_mib": peak,
        "sent": report.sent,
        "tick_s": round(first.wall, 3),
        "idle_tick_ms": round(idle.wall * 1000, 1),
        "sql_statements": sql.statements,
    }


async def measure_rss(backend: str, size: int, pg_url: str | None) -> dict[str, Any]:
    async with database(backend, pg_url) as url:
        seed_s = await seed(url, size)
        child = await asyncio.to_thread(run_child, "bench.scale", ["--child-tick", url])
    assert child["sent"] == DUE_NOW, child
    return {"backend": backend, "scheduled": size, "seed_s": round(seed_s, 1), **child}


async def plan_sessions(backend: str, patients: int, pg_url: str | None) -> dict[str, Any]:
    from bot.app import build_runtime
    from bot.services.sessions import log_session

    async with database(backend, pg_url) as url:
        rt = build_runtime(bench_settings(url))
        await create_schema(rt.engine)
        now = utcnow()
        await seed_patients(rt.engine, patients, now=now)
        planned = 0
        sql = SqlCounter(rt.engine)
        async with Stopwatch.running() as watch:
            for i in range(patients):
                async with rt.sessions() as session, session.begin():
                    plan = await log_session(
                        session,
                        therapist_id=1,
                        pseudonym=f"p{i}",
                        local_start=None,
                        template_name="standard",
                        content=rt.content,
                        grace=rt.settings.misfire_grace,
                        now=now,
                    )
                planned += len(plan.items)
        await rt.engine.dispose()
    return {
        "backend": backend,
        "patients": patients,
        "deliveries_planned": planned,
        "seconds": round(watch.wall, 2),
        "sessions_per_second": round(patients / watch.wall, 1),
        "deliveries_per_second": round(planned / watch.wall, 0),
        "cpu_ms_per_session": round(watch.cpu / patients * 1000, 2),
        **sql.per(patients),
    }


async def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sizes = (1_000, 100_000) if args.quick else (1_000, 100_000, 1_000_000)
    rss_rows: list[dict[str, Any]] = []
    for backend in backends(args.postgres):
        base: dict[str, Any] | None = None
        for size in sizes:
            row = await measure_rss(backend, size, args.postgres)
            base = base or row
            row["ratio_to_1k"] = round(row["rss_after_tick_mib"] / base["rss_after_tick_mib"], 3)
            row["goal_met"] = row["ratio_to_1k"] <= GOAL_RATIO
            print(
                f"  {backend:8} {size:>9,} scheduled: RSS {row['rss_after_tick_mib']} MiB "
                f"(x{row['ratio_to_1k']}), tick {row['tick_s']} s",
                flush=True,
            )
            rss_rows.append(row)
    plan_rows = []
    patients = 1_000 if args.quick else 10_000
    for backend in backends(args.postgres):
        row = await plan_sessions(backend, patients, args.postgres)
        print(f"  {backend:8} planned {patients:,} sessions in {row['seconds']} s", flush=True)
        plan_rows.append(row)
    return rss_rows, plan_rows


RSS_COLUMNS = [
    ("backend", "database", ""),
    ("scheduled", "scheduled", ","),
    ("rss_before_tick_mib", "RSS before MiB", ".1f"),
    ("rss_after_tick_mib", "RSS after tick MiB", ".1f"),
    ("peak_rss_mib", "peak MiB", ".1f"),
    ("ratio_to_1k", "x 1k", ".3f"),
    ("tick_s", "tick s (500 sent)", ".2f"),
    ("idle_tick_ms", "idle tick ms", ".1f"),
    ("goal_met", f"<= {GOAL_RATIO} x", ""),
]
PLAN_COLUMNS = [
    ("backend", "database", ""),
    ("patients", "sessions", ","),
    ("deliveries_planned", "deliveries", ","),
    ("seconds", "wall s", ".1f"),
    ("sessions_per_second", "sessions/s", ",.0f"),
    ("deliveries_per_second", "deliveries/s", ",.0f"),
    ("cpu_ms_per_session", "CPU ms/session", ".2f"),
    ("sql_statements_per_item", "SQL/session", ".1f"),
]


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--child-tick", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_tick:
        print(json.dumps(asyncio.run(child_tick(args.child_tick))))
        return
    quiet_logs()
    rss_rows, plan_rows = asyncio.run(run(args))
    print_table("Memory of the dispatching process vs scheduled deliveries", rss_rows, RSS_COLUMNS)
    print_table("Planning sessions (log_session, one transaction each)", plan_rows, PLAN_COLUMNS)
    write_results(
        "scale",
        params={"quick": args.quick, "due_now": DUE_NOW, "goal_ratio": GOAL_RATIO},
        rows=rss_rows,
        pg_url=args.postgres,
        extra={"planning": plan_rows},
    )


if __name__ == "__main__":
    main()
