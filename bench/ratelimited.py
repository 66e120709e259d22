"""Rate-limited dispatch: 2,000 prompts due at the same moment to 2,000 patients, sent at the
default `AFTERGLOW_SEND_RATE` through the real `PacedRateLimiter` and the JobQueue tick, to an
emulator (own process, over HTTP) that enforces Telegram's limits — 30 messages in any one
second overall, one per second per chat — and answers 429 past them.

    python -m bench.ratelimited [--quick] [--postgres URL] [--prompts N]

Reported: achieved rate ÷ configured rate (steady state, from the server's arrival times, and
end to end from the due time to the last arrival), lag p50/p99 (`sent_at − due_at` from the
database, next to the lag a perfect sender at the configured rate would have), 429 count, and
stalls: gaps between two arrivals longer than 2.5 slots, with the time they cost.
Takes prompts ÷ rate seconds of real time (80 s for 2,000 at 25/s); `--quick` sends 500.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from typing import Any

from sqlalchemy import func, select

from bench.common import (
    STANDARD_KEYS,
    backends,
    base_parser,
    bench_settings,
    create_schema,
    database,
    delivery_row,
    insert_deliveries,
    percentile,
    print_table,
    quiet_logs,
    seed_patients,
    utcnow,
    write_results,
)
from bench.emuproc import EmulatorProcess
from bot.app import build_application, build_runtime
from bot.db.models import Delivery, DeliveryState

GOAL_EFFICIENCY = 0.97


async def one_case(backend: str, prompts: int, pg_url: str | None) -> dict[str, Any]:
    async with (
        database(backend, pg_url) as url,
        EmulatorProcess(chats=prompts, enforce=True, overall=30, per_chat=1.0) as emu,
    ):
        settings = bench_settings(url, telegram_api_url=emu.api_url)
        rate = settings.send_rate
        rt = build_runtime(settings)
        await create_schema(rt.engine)
        now = utcnow()
        await seed_patients(rt.engine, prompts, now=now)
        due = utcnow()
        await insert_deliveries(
            rt.engine,
            (
                delivery_row(i + 1, STANDARD_KEYS[i % len(STANDARD_KEYS)], due, now)
                for i in range(prompts)
            ),
        )
        app = build_application(rt)  # the production limiter and the JobQueue tick
        limiter = app.bot._rate_limiter  # PTB keeps it private
        await app.initialize()
        await app.start()
        started = time.monotonic()
        try:
            while True:
                await asyncio.sleep(0.5)
                async with rt.sessions() as session:
                    open_rows = await session.scalar(
                        select(func.count()).where(
                            Delivery.state.in_([DeliveryState.SCHEDULED, DeliveryState.SENDING])
                        )
                    )
                if not open_rows:
                    break
                if time.monotonic() - started > prompts / rate * 3 + 60:
                    raise TimeoutError(f"{open_rows} deliveries still open")
        finally:
            await app.stop()
            await app.shutdown()
        async with rt.sessions() as session:
            rows = (
                await session.execute(select(Delivery.state, Delivery.due_at, Delivery.sent_at))
            ).all()
        await rt.engine.dispose()
        stats = await emu.stats(arrivals=True)
    sent = [r for r in rows if r.state is DeliveryState.SENT]
    lags = [(r.sent_at - r.due_at).total_seconds() for r in sent]
    arrivals = sorted(stats["arrivals"])
    steady = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    first_due_to_last = max(r.sent_at for r in sent) - due
    end_to_end = len(sent) / first_due_to_last.total_seconds()
    ideal = [(i + 1) / rate for i in range(prompts)]
    too_many = sum(stats["too_many"].values())
    # Where the missing throughput went: gaps between arrivals well over one slot.
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    stalls = [g for g in gaps if g > 2.5 / rate]
    return {
        "backend": backend,
        "prompts": prompts,
        "configured_rate": rate,
        "sent": len(sent),
        "other_states": len(rows) - len(sent),
        "steady_rate": round(steady, 2),
        "efficiency": round(steady / rate, 3),
        "end_to_end_rate": round(end_to_end, 2),
        "end_to_end_efficiency": round(end_to_end / rate, 3),
        "lag_p50_s": round(percentile(lags, 50) or 0, 2),
        "lag_p99_s": round(percentile(lags, 99) or 0, 2),
        "ideal_lag_p50_s": round(percentile(ideal, 50) or 0, 2),
        "ideal_lag_p99_s": round(percentile(ideal, 99) or 0, 2),
        "stalls": len(stalls),
        "stall_excess_s": round(sum(g - 1 / rate for g in stalls), 2),
        "max_gap_s": round(max(gaps, default=0.0), 3),
        "http_429": too_many,
        "http_429_by_limit": stats["too_many"],
        "limiter_429_seen": limiter.retry_after_count,
        "goal_met": steady / rate >= GOAL_EFFICIENCY and too_many == 0 and len(sent) == prompts,
    }


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    prompts = args.prompts or (500 if args.quick else 2000)
    rows = []
    for backend in backends(args.postgres):
        print(f"  {backend}: {prompts} prompts at the default rate …", flush=True)
        rows.append(await one_case(backend, prompts, args.postgres))
    return rows


COLUMNS = [
    ("backend", "database", ""),
    ("prompts", "prompts", ","),
    ("sent", "sent", ","),
    ("configured_rate", "rate/s", ".0f"),
    ("steady_rate", "achieved/s", ".2f"),
    ("efficiency", "efficiency", ".3f"),
    ("end_to_end_efficiency", "end-to-end", ".3f"),
    ("lag_p50_s", "lag p50 s", ".1f"),
    ("ideal_lag_p50_s", "(ideal)", ".1f"),
    ("lag_p99_s", "lag p99 s", ".1f"),
    ("ideal_lag_p99_s", "(ideal)", ".1f"),
    ("stalls", "stalls", "d"),
    ("stall_excess_s", "stalled s", ".2f"),
    ("http_429", "429s", "d"),
    ("goal_met", f">= {GOAL_EFFICIENCY}, 0 429s", ""),
]


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--prompts", type=int, default=None)
    args = parser.parse_args(argv)
    quiet_logs()
    rows = asyncio.run(run(args))
    print_table(
        "Rate-limited dispatch (emulator enforcing 30/s overall, 1/s per chat)", rows, COLUMNS
    )
    write_results(
        "ratelimited",
        params={
            "quick": args.quick,
            "server_overall_per_second": 30,
            "server_per_chat_interval_s": 1.0,
            "goal_efficiency": GOAL_EFFICIENCY,
        },
        rows=rows,
        pg_url=args.postgres,
    )


if __name__ == "__main__":
    main()
