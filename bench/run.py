"""Run every benchmark, each in its own interpreter, and summarise them against the goals.

    python bench/run.py [--quick] [--postgres URL] [--only dispatch,scale]

Each benchmark prints its own table and writes bench/results/<name>-<timestamp>.json; this
script adds bench/results/run-<timestamp>.json with the machine, every benchmark's rows and the
goal summary. Without --postgres only SQLite runs. On the 2-core reference machine a full run
takes ~25 minutes with PostgreSQL (the 10k cases run at the speeds they measure); --quick ~6.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402 - after making the checkout importable
    RESULTS_DIR,
    describe_machine,
    print_table,
)

ORDER = (
    "dispatch",
    "ratelimited",
    "ingest",
    "scale",
    "planning",
    "trends",
    "baseline",
    "crashloss",
)
RESULT_LINE = re.compile(r"^results: (\S+\.json)$", re.MULTILINE)


def run_one(name: str, args: argparse.Namespace) -> tuple[dict[str, Any] | None, float]:
    argv = [sys.executable, "-m", f"bench.{name}"]
    if args.quick:
        argv.append("--quick")
    if args.postgres and name != "baseline":
        argv += ["--postgres", args.postgres]
    print(f"\n=== {name}: {' '.join(argv[1:])}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    output = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        output.append(line)
    proc.wait()
    seconds = time.monotonic() - started
    match = RESULT_LINE.search("".join(output))
    if proc.returncode != 0 or match is None:
        print(f"!!! {name} failed (exit {proc.returncode})", flush=True)
        return None, seconds
    result: dict[str, Any] = json.loads((ROOT / match.group(1)).read_text())
    return result, seconds


def goals(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(goal: str, measured: str, met: bool | None) -> None:
        rows.append({"goal": goal, "measured": measured, "met": met})

    if dispatch := results.get("dispatch"):
        for backend in ("sqlite", "postgres"):
            mine = [r for r in dispatch["results"] if r["backend"] == backend]
            if mine:
                worst = min(mine, key=lambda r: r["per_second"])
                add(
                    f"dispatch >= 1,000/s unthrottled ({backend})",
                    ", ".join(
                        f"{r['transport']} {r['n']:,}: {r['per_second']:,.0f}/s" for r in mine
                    ),
                    worst["per_second"] >= 1000,
                )
    if limited := results.get("ratelimited"):
        for r in limited["results"]:
            add(
                f"rate-limited efficiency >= 0.97, zero 429s ({r['backend']})",
                f"{r['efficiency']:.3f} ({r['steady_rate']}/s of {r['configured_rate']:.0f}), "
                f"{r['http_429']} x 429, lag p50 {r['lag_p50_s']} s / p99 {r['lag_p99_s']} s",
                r["goal_met"],
            )
    if ingest := results.get("ingest"):
        for backend in ("sqlite", "postgres"):
            mine = [
                r for r in ingest["results"] if r["backend"] == backend and r["limiter"] == "off"
            ]
            if mine:
                add(
                    f"ingestion >= 1,000 replies/s ({backend})",
                    ", ".join(f"{r['n']:,}: {r['per_second']:,.0f}/s" for r in mine),
                    min(r["per_second"] for r in mine) >= 1000,
                )
    if scale := results.get("scale"):
        for backend in ("sqlite", "postgres"):
            mine = [r for r in scale["results"] if r["backend"] == backend]
            if mine:
                top = mine[-1]
                add(
                    f"RSS at {top['scheduled']:,} <= 1.2 x RSS at 1k ({backend})",
                    f"{top['rss_after_tick_mib']} MiB vs {mine[0]['rss_after_tick_mib']} MiB "
                    f"= x{top['ratio_to_1k']}",
                    top["goal_met"],
                )
    if baseline := results.get("baseline"):
        base, mine, _ = baseline["results"]
        add(
            f"baseline: {base['prompts']:,} JobQueue jobs vs Afterglow (info)",
            f"RSS {base['rss_mib']} vs {mine['rss_mib']} MiB "
            f"(x{base['rss_mib'] / mine['rss_mib']:.2f}; growth {base['rss_growth_mib']} vs "
            f"{mine['rss_growth_mib']} MiB); scheduling {base['us_per_prompt']} vs "
            f"{mine['us_per_prompt']} µs/prompt",
            None,
        )
    if crash := results.get("crashloss"):
        for r in crash["results"]:
            add(
                f"0 lost, 0 duplicated over kills ({r['backend']})",
                f"{r['kills']} kills: lost {r['lost']}, duplicated {r['duplicated']}, "
                f"unknown {r['unknown']} ({r['unknown_arrived']} arrived)",
                r["goal_met"],
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--postgres", metavar="URL", default=os.environ.get("AFTERGLOW_BENCH_POSTGRES_URL")
    )
    parser.add_argument("--only", default=",".join(ORDER), help="comma-separated subset")
    args = parser.parse_args()
    wanted = [name for name in ORDER if name in args.only.split(",")]
    results: dict[str, dict[str, Any]] = {}
    durations: dict[str, float] = {}
    for name in wanted:
        result, seconds = run_one(name, args)
        durations[name] = round(seconds, 1)
        if result is not None:
            results[name] = result
    summary = goals(results)
    print_table(
        "Goals",
        summary,
        [("goal", "goal", ""), ("measured", "measured", ""), ("met", "met", "")],
    )
    if results:
        machine = next(iter(results.values()))["machine"]
        print(f"\nmachine: {describe_machine(machine)}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"run-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "timestamp": stamp,
                "quick": args.quick,
                "durations_s": durations,
                "machine": machine if results else None,
                "goals": summary,
                "benchmarks": results,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(f"durations: {durations}")
    print(f"results: {path.relative_to(ROOT)}")
    sys.exit(0 if len(results) == len(wanted) else 1)


if __name__ == "__main__":
    main()
