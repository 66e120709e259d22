"""Baseline: the common way to build this — one PTB JobQueue (APScheduler) job per scheduled
prompt — against Afterglow's one repeating tick over database rows.

    python -m bench.baseline [--quick] [--jobs 100000]

Same method on both sides: a fresh interpreter per measurement, RSS after `gc.collect()`.

* Baseline: a plain PTB Application (fake Bot API in-process, JobQueue started) schedules
  `app.job_queue.run_once(send_prompt, when=…, chat_id=…, data=…)` for each of N prompts spread
  over the coming week; reported: the time that takes and the RSS, next to the same process with
  no jobs.
* Afterglow: the dispatching process with N scheduled deliveries in the database (SQLite), RSS
  after a tick (as in bench.scale), and the time `log_session` takes per planned prompt (1,000
  sessions, 15,000 prompts, measured in its own process, scaled to N: every session is planned
  independently, so the cost per prompt does not depend on N).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import timedelta
from typing import Any

from bench.common import (
    FIRST_USER_ID,
    STANDARD_KEYS,
    TOKEN,
    base_parser,
    print_table,
    quiet_logs,
    run_child,
    settle_memory,
    write_results,
)

PLAN_SESSIONS = 1_000


async def child_jobqueue(jobs: int) -> dict[str, Any]:
    from telegram.ext import ApplicationBuilder, ContextTypes

    from bot.emulator import BotApiState
    from bot.emulator.request import FakeBotApi

    quiet_logs()
    state = BotApiState(token=TOKEN)
    app = ApplicationBuilder().token(TOKEN).request(FakeBotApi(state)).build()
    assert app.job_queue is not None

    async def send_prompt(context: ContextTypes.DEFAULT_TYPE) -> None:
        job = context.job
        assert job is not None and job.chat_id is not None and isinstance(job.data, dict)
        await context.bot.send_message(job.chat_id, job.data["prompt_key"])

    await app.initialize()
    await app.start()
    before, _ = settle_memory()
    patients = max(1, jobs // len(STANDARD_KEYS))
    started = time.perf_counter()
    for i in range(jobs):
        app.job_queue.run_once(
            send_prompt,
            when=timedelta(hours=1, seconds=(i * 7919) % (7 * 86400)),
            chat_id=FIRST_USER_ID + i % patients,
            data={"delivery": i, "prompt_key": STANDARD_KEYS[(i // patients) % 16]},
            name=f"prompt-{i}",
        )
    await asyncio.sleep(0.2)  # let the scheduler take the jobs in
    scheduling_s = time.perf_counter() - started
    after, peak = settle_memory()
    scheduled = len(app.job_queue.jobs())
    await app.stop()
    await app.shutdown()
    return {
        "jobs": scheduled,
        "scheduling_s": round(scheduling_s, 3),
        "rss_before_mib": before,
        "rss_mib": after,
        "peak_rss_mib": peak,
    }


async def child_plan(sessions: int) -> dict[str, Any]:
    from bench.scale import plan_sessions

    quiet_logs()
    return await plan_sessions("sqlite", sessions, None)


async def afterglow_rss(jobs: int) -> dict[str, Any]:
    from bench.scale import measure_rss

    return await measure_rss("sqlite", jobs, None)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    jobs = args.jobs
    empty = run_child("bench.baseline", ["--child-jobqueue", "0"])
    full = run_child("bench.baseline", ["--child-jobqueue", str(jobs)])
    print(f"  JobQueue: {jobs:,} jobs in {full['scheduling_s']} s, RSS {full['rss_mib']} MiB")
    small = asyncio.run(afterglow_rss(1_000))
    mine = asyncio.run(afterglow_rss(jobs))
    plan = run_child("bench.baseline", ["--child-plan", str(PLAN_SESSIONS)])
    per_prompt = plan["seconds"] / plan["deliveries_planned"]
    print(f"  Afterglow: {jobs:,} scheduled, RSS {mine['rss_after_tick_mib']} MiB")
    baseline = {
        "approach": "PTB JobQueue, one job per prompt",
        "prompts": jobs,
        "scheduling_s": full["scheduling_s"],
        "us_per_prompt": round(full["scheduling_s"] / jobs * 1e6, 1),
        "rss_mib": full["rss_mib"],
        "rss_growth_mib": round(full["rss_mib"] - empty["rss_mib"], 1),
        "persists": False,
        "empty_rss_mib": empty["rss_mib"],
    }
    afterglow = {
        "approach": "Afterglow, rows + one tick",
        "prompts": jobs,
        "scheduling_s": round(per_prompt * jobs, 1),
        "us_per_prompt": round(per_prompt * 1e6, 1),
        "rss_mib": mine["rss_after_tick_mib"],
        "rss_growth_mib": round(mine["rss_after_tick_mib"] - small["rss_after_tick_mib"], 1),
        "persists": True,
        "scheduling_measured": f"{plan['patients']:,} log_session calls, "
        f"{plan['deliveries_planned']:,} prompts in {plan['seconds']} s",
    }
    growth_floor = max(afterglow["rss_growth_mib"], 1.0)
    ratio = {
        "approach": "ratio baseline / Afterglow",
        "prompts": jobs,
        "rss_mib": f"x{baseline['rss_mib'] / afterglow['rss_mib']:.2f}",
        "us_per_prompt": f"x{baseline['us_per_prompt'] / afterglow['us_per_prompt']:.2f}",
        "scheduling_s": f"x{baseline['scheduling_s'] / afterglow['scheduling_s']:.2f}",
        "rss_growth_mib": f"x{baseline['rss_growth_mib'] / growth_floor:.0f}",
    }
    return [baseline, afterglow, ratio]


COLUMNS = [
    ("approach", "approach", ""),
    ("prompts", "prompts", ","),
    ("scheduling_s", "schedule s", ".2f"),
    ("us_per_prompt", "µs/prompt", ".1f"),
    ("rss_mib", "RSS MiB", ".1f"),
    ("rss_growth_mib", "RSS growth MiB", ".1f"),
    ("persists", "survives restart", ""),
]


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--child-jobqueue", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-plan", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_jobqueue is not None:
        print(json.dumps(asyncio.run(child_jobqueue(args.child_jobqueue))))
        return
    if args.child_plan is not None:
        print(json.dumps(asyncio.run(child_plan(args.child_plan))))
        return
    quiet_logs()
    rows = run(args)
    print_table("Baseline: one JobQueue job per prompt vs Afterglow", rows, COLUMNS)
    print(
        "  RSS growth: baseline = RSS with N jobs − RSS with none; "
        "Afterglow = RSS at N scheduled − RSS at 1k (ratio floors Afterglow's growth at 1 MiB)"
    )
    write_results(
        "baseline",
        params={"jobs": args.jobs, "plan_sessions": PLAN_SESSIONS},
        rows=rows,
        pg_url=None,
    )


if __name__ == "__main__":
    main()
