"""Dispatch throughput: N due deliveries, rate limit off, one `Dispatcher.tick()`.

    python -m bench.dispatch [--quick] [--postgres URL]

Two transports: the fake Bot API in-process (`FakeBotApi`, a PTB `BaseRequest`; its own CPU is
measured and reported apart) and the emulator over local HTTP in a separate process (PTB's real
`HTTPXRequest`). Each case gets a fresh database and a warm-up tick; the timed tick claims, sends
and records every delivery. CPU is this process's `time.process_time()` (all threads, so
aiosqlite's worker thread counts; PostgreSQL's server processes do not).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from sqlalchemy import func, select
from telegram._utils.types import ODVInput
from telegram.request import BaseRequest, RequestData

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
    minutes,
    open_chats,
    print_table,
    quiet_logs,
    seed_patients,
    utcnow,
    write_results,
)
from bench.emuproc import EmulatorProcess
from bot.app import build_application, build_runtime
from bot.db.models import Delivery, DeliveryState
from bot.emulator import BotApiState
from bot.emulator.request import FakeBotApi

WARMUP = 200
GOAL = 1000.0  # deliveries/s


class MeteredFakeBotApi(FakeBotApi):
    """FakeBotApi that adds up the CPU spent answering (the emulator's share, not the bot's)."""

    cpu = 0.0

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        started = time.process_time()
        try:
            return await super().do_request(
                url,
                method,
                request_data,
                read_timeout,
                write_timeout,
                connect_timeout,
                pool_timeout,
            )
        finally:
            self.cpu += time.process_time() - started


async def one_case(backend: str, transport: str, n: int, pg_url: str | None) -> dict[str, Any]:
    async with database(backend, pg_url) as url:
        emu: EmulatorProcess | None = None
        fake: MeteredFakeBotApi | None = None
        try:
            if transport == "http":
                emu = await EmulatorProcess(chats=n + WARMUP).__aenter__()
                settings = bench_settings(url, telegram_api_url=emu.api_url)
            else:
                settings = bench_settings(url)
            rt = build_runtime(settings)
            await create_schema(rt.engine)
            now = utcnow()
            await seed_patients(rt.engine, n + WARMUP, now=now)
            if transport == "in-process":
                state = BotApiState(token=settings.require_token())
                await open_chats(state, n + WARMUP)
                fake = MeteredFakeBotApi(state)
            app = build_application(rt, request=fake, rate_limit=False, dispatch_job=False)
            await app.initialize()
            sql = SqlCounter(rt.engine)
            dispatcher = app.bot_data["dispatcher"]
            due = now - minutes(1)
            await insert_deliveries(
                rt.engine,
                (
                    delivery_row(n + 1 + i, STANDARD_KEYS[i % len(STANDARD_KEYS)], due, now)
                    for i in range(WARMUP)
                ),
            )
            await dispatcher.tick()  # warm-up: connections, statement caches, first imports
            await insert_deliveries(
                rt.engine,
                (
                    delivery_row(i + 1, STANDARD_KEYS[i % len(STANDARD_KEYS)], due, now)
                    for i in range(n)
                ),
            )
            gc.collect()
            if fake is not None:
                fake.cpu = 0.0
            sql.reset()
            async with Stopwatch.running() as watch:
                report = await dispatcher.tick()
            async with rt.sessions() as session:
                sent = await session.scalar(
                    select(func.count()).where(Delivery.state == DeliveryState.SENT)
                )
            await app.shutdown()
            await rt.engine.dispose()
        finally:
            if emu is not None:
                await emu.__aexit__(None, None, None)
    assert report.sent == n and sent == n + WARMUP, (report, sent)
    row: dict[str, Any] = {
        "backend": backend,
        "transport": transport,
        "n": n,
        "seconds": round(watch.wall, 3),
        "per_second": round(n / watch.wall, 1),
        "cpu_s_per_1k": round(watch.cpu / n * 1000, 3),
        "fake_api_cpu_s_per_1k": round(fake.cpu / n * 1000, 3) if fake else None,
    }
    row["bot_cpu_s_per_1k"] = round(row["cpu_s_per_1k"] - (row["fake_api_cpu_s_per_1k"] or 0), 3)
    row["cpu_bound_per_second"] = round(1000 / row["cpu_s_per_1k"], 1)
    row.update(sql.per(n))
    row["goal_met"] = row["per_second"] >= GOAL
    return row


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    sizes = (1_000,) if args.quick else (1_000, 10_000)
    rows = []
    for backend in backends(args.postgres):
        for transport in ("in-process", "http"):
            for n in sizes:
                row = await one_case(backend, transport, n, args.postgres)
                print(
                    f"  {backend:8} {transport:10} {n:>6}: {row['per_second']:8.1f}/s, "
                    f"{row['cpu_s_per_1k']:.3f} CPU s per 1k",
                    flush=True,
                )
                rows.append(row)
    return rows


COLUMNS = [
    ("backend", "database", ""),
    ("transport", "Bot API", ""),
    ("n", "deliveries", ","),
    ("seconds", "wall s", ".2f"),
    ("per_second", "deliveries/s", ",.0f"),
    ("cpu_s_per_1k", "CPU s/1k", ".3f"),
    ("fake_api_cpu_s_per_1k", "of it fake API", ".3f"),
    ("bot_cpu_s_per_1k", "bot CPU s/1k", ".3f"),
    ("cpu_bound_per_second", "CPU-bound/s", ",.0f"),
    ("sql_statements_per_item", "SQL/delivery", ".2f"),
    ("commits_per_item", "commits/delivery", ".2f"),
    ("goal_met", f">= {GOAL:.0f}/s", ""),
]


def main(argv: list[str] | None = None) -> None:
    args = base_parser(__doc__ or "").parse_args(argv)
    quiet_logs()
    rows = asyncio.run(run(args))
    print_table("Dispatch throughput (rate limit off)", rows, COLUMNS)
    write_results(
        "dispatch",
        params={"quick": args.quick, "warmup": WARMUP, "goal_per_second": GOAL},
        rows=rows,
        pg_url=args.postgres,
    )


if __name__ == "__main__":
    main()
