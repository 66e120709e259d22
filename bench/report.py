"""Markdown tables for docs/performance.md from a `bench/run.py` result file.

python -m bench.report [bench/results/run-<timestamp>.json]   # default: the newest
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, describe_machine


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    def cell(row: dict[str, Any], key: str, spec: str) -> str:
        value = row.get(key)
        if value is None:
            return "–"
        if isinstance(value, bool):
            return "yes" if value else "**no**"
        try:
            return format(value, spec)
        except (TypeError, ValueError):
            return str(value)

    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |"]
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    lines += ["| " + " | ".join(cell(r, k, s) for k, _, s in columns) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else max(RESULTS_DIR.glob("run-*.json"))
    run = json.loads(path.read_text())
    bench = run["benchmarks"]
    out = [f"Source: `{path.name}`; {describe_machine(run['machine'])}."]
    out.append(f"Durations (s): {run['durations_s']}.")
    out.append("\n**Goals**\n")
    out.append(
        table(
            run["goals"], [("goal", "goal", ""), ("measured", "measured", ""), ("met", "met", "")]
        )
    )
    if "dispatch" in bench:
        out.append("\n**Dispatch throughput** (rate limit off, one tick)\n")
        out.append(
            table(
                bench["dispatch"]["results"],
                [
                    ("backend", "database", ""),
                    ("transport", "Bot API", ""),
                    ("n", "deliveries", ","),
                    ("per_second", "deliveries/s", ",.0f"),
                    ("cpu_s_per_1k", "CPU s / 1k", ".2f"),
                    ("fake_api_cpu_s_per_1k", "of it: fake API", ".2f"),
                    ("sql_statements_per_item", "SQL / delivery", ".2f"),
                    ("commits_per_item", "commits / delivery", ".2f"),
                ],
            )
        )
    if "ratelimited" in bench:
        out.append("\n**Rate-limited dispatch** (2,000 prompts due at once, default 25/s)\n")
        out.append(
            table(
                bench["ratelimited"]["results"],
                [
                    ("backend", "database", ""),
                    ("sent", "sent", ","),
                    ("steady_rate", "achieved/s", ".2f"),
                    ("efficiency", "efficiency", ".3f"),
                    ("end_to_end_efficiency", "end to end", ".3f"),
                    ("lag_p50_s", "lag p50 s", ".1f"),
                    ("ideal_lag_p50_s", "ideal p50", ".1f"),
                    ("lag_p99_s", "lag p99 s", ".1f"),
                    ("ideal_lag_p99_s", "ideal p99", ".1f"),
                    ("stalls", "stalls", "d"),
                    ("stall_excess_s", "stalled s", ".2f"),
                    ("http_429", "429s", "d"),
                ],
            )
        )
    if "ingest" in bench:
        out.append("\n**Reply ingestion** (`Application.process_update`, one at a time)\n")
        out.append(
            table(
                bench["ingest"]["results"],
                [
                    ("backend", "database", ""),
                    ("limiter", "outgoing limiter", ""),
                    ("n", "replies", ","),
                    ("per_second", "replies/s", ",.1f"),
                    ("cpu_ms_per_update", "CPU ms / reply", ".2f"),
                    ("sql_statements_per_item", "SQL / reply", ".2f"),
                    ("pool_checkouts_per_item", "transactions / reply", ".2f"),
                    ("crisis_wait_s", "crisis message waited s", ".2f"),
                    ("http_429", "429s", "d"),
                ],
            )
        )
    if "scale" in bench:
        out.append("\n**Memory vs scheduled deliveries** (fresh process per size, after a tick)\n")
        out.append(
            table(
                bench["scale"]["results"],
                [
                    ("backend", "database", ""),
                    ("scheduled", "scheduled", ","),
                    ("rss_after_tick_mib", "RSS MiB", ".1f"),
                    ("ratio_to_1k", "× 1k", ".3f"),
                    ("tick_s", "tick s (500 sent)", ".2f"),
                    ("idle_tick_ms", "idle tick ms", ".1f"),
                    ("seed_s", "seeding s", ".1f"),
                ],
            )
        )
        out.append("\n**Planning sessions** (`log_session`, one transaction each)\n")
        out.append(
            table(
                bench["scale"]["planning"],
                [
                    ("backend", "database", ""),
                    ("patients", "sessions", ","),
                    ("deliveries_planned", "deliveries", ","),
                    ("seconds", "wall s", ".1f"),
                    ("sessions_per_second", "sessions/s", ".1f"),
                    ("cpu_ms_per_session", "CPU ms / session", ".1f"),
                    ("sql_statements_per_item", "SQL / session", ".1f"),
                ],
            )
        )
    if "baseline" in bench:
        out.append("\n**Baseline: one PTB JobQueue job per prompt** (100,000 prompts)\n")
        out.append(
            table(
                bench["baseline"]["results"],
                [
                    ("approach", "approach", ""),
                    ("scheduling_s", "scheduling s", ".1f"),
                    ("us_per_prompt", "µs / prompt", ".1f"),
                    ("rss_mib", "RSS MiB", ".1f"),
                    ("rss_growth_mib", "RSS growth MiB", ".1f"),
                    ("persists", "survives a restart", ""),
                ],
            )
        )
    if "crashloss" in bench:
        out.append("\n**Crash loss** (SIGKILL mid-burst, restart, per-delivery account)\n")
        out.append(
            table(
                bench["crashloss"]["results"],
                [
                    ("backend", "database", ""),
                    ("kills", "kills", "d"),
                    ("prompts", "prompts", ","),
                    ("sent", "sent", ","),
                    ("unknown", "unknown", ","),
                    ("unknown_arrived", "of which arrived", ","),
                    ("max_unknown_per_kill", "max unknown / kill", "d"),
                    ("lost", "lost", "d"),
                    ("duplicated", "duplicated", "d"),
                ],
            )
        )
    print("\n".join(out))


if __name__ == "__main__":
    main()
