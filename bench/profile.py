"""Profile one benchmark case with pyinstrument (`pip install pyinstrument`; not a dependency).

    python -m bench.profile dispatch [--backend sqlite] [--transport in-process] [--n 1000]
    python -m bench.profile ingest [--backend postgres --postgres URL] [--n 500]

Only the timed part is sampled (the same `Stopwatch` the benchmark reads); the text tree goes to
stdout and an HTML flame view to bench/results/profile-<case>-<timestamp>.html.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from bench import common
from bench.common import RESULTS_DIR, Stopwatch, quiet_logs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("case", choices=["dispatch", "ingest"])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--transport", choices=["in-process", "http"], default="in-process")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--postgres", metavar="URL", default=common.DEFAULT_PG)
    parser.add_argument("--interval", type=float, default=0.0005, help="sampling interval, s")
    args = parser.parse_args(argv)
    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit("pyinstrument is not installed: pip install pyinstrument") from None
    quiet_logs()
    profiler = Profiler(interval=args.interval, async_mode="disabled")
    plain = Stopwatch.running

    @asynccontextmanager
    async def profiled() -> AsyncIterator[Stopwatch]:
        profiler.start()
        try:
            async with plain() as watch:
                yield watch
        finally:
            profiler.stop()

    Stopwatch.running = profiled  # type: ignore[method-assign]
    row: dict[str, Any]
    if args.case == "dispatch":
        from bench.dispatch import one_case

        row = asyncio.run(one_case(args.backend, args.transport, args.n, args.postgres))
    else:
        from bench.ingest import one_case as ingest_case

        row = asyncio.run(ingest_case(args.backend, args.n, args.postgres))
    show_all = bool(os.environ.get("PROFILE_SHOW_ALL"))  # library frames too
    print(profiler.output_text(unicode=True, color=False, show_all=show_all))
    print(row)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"profile-{args.case}-{args.backend}-{stamp}.html"
    path.write_text(profiler.output_html())
    print(f"profile: {path.relative_to(common.ROOT)} (the timings above include the profiler)")


if __name__ == "__main__":
    main()
