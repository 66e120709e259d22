"""Planning cost: what `log_session` costs per delivery and per session, for a 16-step template
(`standard`) and a 60-occurrence one (a daily check-in for 60 days), on SQLite and
PostgreSQL, against the in-memory peer: PTB's JobQueue scheduling the same deliveries with
`run_once`, measured in the same process.

    python -m bench.planning [--quick] [--postgres URL] [--sessions 500]

Reported per case: deliveries planned per second, µs per delivery (wall), CPU ms per
session, and the SQL statements per session (counted, noise-free): constant whatever the
template's length, because every delivery of a session goes in one INSERT.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    FIRST_USER_ID,
    TOKEN,
    SqlCounter,
    Stopwatch,
    backends,
    base_parser,
    bench_settings,
    create_schema,
    database,
    print_table,
    quiet_logs,
    seed_patients,
    utcnow,
    write_results,
)

GOAL_US = 100.0  # issue 16: durable planning at least as fast as the in-memory peer
LONG = "long60"
LONG_TEMPLATE = f"""name: {LONG}
description: Bench - one daily check-in for sixty days.
steps:
  - offset: "+1d@20:00"
    prompt: chk-mood-today
    every: "1d"
    count: 60
"""


def content_dir(root: Path) -> Path:
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "templates" / f"{LONG}.yaml").write_text(LONG_TEMPLATE)
    return root


async def plan(backend: str, template: str, sessions: int, pg_url: str | None) -> dict[str, Any]:
    from bot.app import build_runtime
    from bot.services.sessions import log_session

    with tempfile.TemporaryDirectory(prefix="afterglow-bench-content-") as tmp:
        async with database(backend, pg_url) as url:
            rt = build_runtime(bench_settings(url, content_dirs=str(content_dir(Path(tmp)))))
            await create_schema(rt.engine)
            now = utcnow()
            await seed_patients(rt.engine, sessions + 1, now=now)
            grace = rt.settings.misfire_grace

            async def one(i: int) -> int:
                async with rt.sessions() as session, session.begin():
                    result = await log_session(
                        session,
                        therapist_id=1,
                        pseudonym=f"p{i}",
                        template_name=template,
                        content=rt.content,
                        grace=grace,
                        now=now,
                    )
                return len(result.items)

            await one(sessions)  # warm-up: caches, the template snapshot, a connection
            sql = SqlCounter(rt.engine)
            planned = 0
            async with Stopwatch.running() as watch:
                for i in range(sessions):
                    planned += await one(i)
            await rt.engine.dispose()
    return {
        "backend": backend,
        "template": template,
        "sessions": sessions,
        "deliveries": planned,
        "deliveries_per_s": round(planned / watch.wall),
        "us_per_delivery": round(watch.wall / planned * 1e6, 1),
        "cpu_ms_per_session": round(watch.cpu / sessions * 1000, 2),
        "sql_per_session": round(sql.statements / sessions, 2),
        "commits_per_session": round(sql.commits / sessions, 2),
    }


async def jobqueue(deliveries: int) -> dict[str, Any]:
    """The in-memory peer: one `run_once` job per delivery, as a JobQueue-based bot plans."""
    from telegram.ext import ApplicationBuilder, ContextTypes

    from bot.emulator import BotApiState
    from bot.emulator.request import FakeBotApi

    app = ApplicationBuilder().token(TOKEN).request(FakeBotApi(BotApiState(token=TOKEN))).build()
    assert app.job_queue is not None

    async def send_prompt(context: ContextTypes.DEFAULT_TYPE) -> None:  # never runs
        del context

    await app.initialize()
    await app.start()
    started = time.perf_counter()
    for i in range(deliveries):
        app.job_queue.run_once(
            send_prompt,
            when=timedelta(hours=1, seconds=(i * 7919) % (7 * 86400)),
            chat_id=FIRST_USER_ID + i % 1000,
            data={"delivery": i},
            name=f"prompt-{i}",
        )
    wall = time.perf_counter() - started
    await app.stop()
    await app.shutdown()
    return {
        "backend": "JobQueue (memory)",
        "template": "-",
        "sessions": "-",
        "deliveries": deliveries,
        "deliveries_per_s": round(deliveries / wall),
        "us_per_delivery": round(wall / deliveries * 1e6, 1),
    }


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    quiet_logs()
    sessions = 100 if args.quick else args.sessions
    rows: list[dict[str, Any]] = []
    for backend in backends(args.postgres):
        for template in ("standard", LONG):
            row = await plan(backend, template, sessions, args.postgres)
            print(
                f"  {backend:8} {template:8} {row['us_per_delivery']:>7} µs/delivery, "
                f"{row['sql_per_session']} statements/session",
                flush=True,
            )
            rows.append(row)
    peer = await jobqueue(sum(r["deliveries"] for r in rows) // len(rows))
    print(f"  JobQueue          {peer['us_per_delivery']:>7} µs/delivery", flush=True)
    for row in rows:
        row["ratio_to_jobqueue"] = round(row["us_per_delivery"] / peer["us_per_delivery"], 2)
        row["goal_met"] = row["us_per_delivery"] <= GOAL_US
    rows.append(peer)
    return rows


COLUMNS = [
    ("backend", "backend", ""),
    ("template", "template", ""),
    ("deliveries", "deliveries", ","),
    ("deliveries_per_s", "deliveries/s", ","),
    ("us_per_delivery", "µs/delivery", ".1f"),
    ("ratio_to_jobqueue", "× JobQueue", ".2f"),
    ("cpu_ms_per_session", "CPU ms/session", ".2f"),
    ("sql_per_session", "SQL/session", ".2f"),
    ("goal_met", f"≤ {GOAL_US:.0f} µs", ""),
]


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--sessions", type=int, default=500)
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args))
    print_table("Planning a session", rows, COLUMNS)
    write_results("planning", params={"sessions": args.sessions}, rows=rows, pg_url=args.postgres)


if __name__ == "__main__":
    main()
