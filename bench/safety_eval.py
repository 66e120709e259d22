"""The screener's quality on the held-out split, and its cost per message.

    python bench/safety_eval.py [--splits heldout] [--timing]

Quality: recall and false-alert rate per category on each split (default: the held-out one,
which is never read while tuning; see docs/safety.md), with the first layer that caught each
risk message. Timing: p50 / p99 / max per message with every layer on, against the phrase
list alone as the baseline, measured in this process over the whole corpus. Prints numbers;
asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.domain.content import builtin_dir  # noqa: E402
from bot.domain.safety import Screener, load_screener  # noqa: E402
from bot.domain.safety.evaluation import Labelled, evaluate, read_labelled  # noqa: E402
from bot.domain.safety.phrases import PhraseMatcher  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "safety" / "corpus"
CORPORA = {"en": CORPUS, "es": CORPUS.parent / "es", "de": CORPUS.parent / "de"}
SPLITS = ("train", "dev", "heldout")


def quality(screener: Screener, name: str, items: list[Labelled]) -> None:
    report = evaluate(screener, items)
    print(f"\n{name}: {report.summary()}")
    layers = ", ".join(f"{k} {v}" for k, v in sorted(report.by_layer.items()))
    print(f"  caught first by: {layers}")
    for line in report.category_lines():
        print(f"  {line}")


def per_message(screener: Screener, texts: list[str], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        for text in texts:
            start = time.perf_counter()
            screener.screen(text)
            times.append(time.perf_counter() - start)
    return times


def timing(full: Screener, texts: list[str]) -> None:
    baseline = Screener(PhraseMatcher(full.phrases))
    per_message(full, texts, 1)  # warm caches and lazy patterns for both
    per_message(baseline, texts, 1)
    rows = []
    for label, screener in (("phrases only (baseline)", baseline), ("everything on", full)):
        times = sorted(per_message(screener, texts, 3))
        p50 = statistics.median(times) * 1e3
        p99 = times[int(len(times) * 0.99) - 1] * 1e3
        rows.append((label, p50, p99, times[-1] * 1e3))
    print(f"\ntiming over {len(texts)} messages x 3:")
    for label, p50, p99, worst in rows:
        print(f"  {label:24} p50 {p50:.3f} ms  p99 {p99:.3f} ms  max {worst:.3f} ms")
    print(f"  ratio everything/baseline: p50 x{rows[1][1] / rows[0][1]:.1f}, "
          f"p99 x{rows[1][2] / rows[0][2]:.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="heldout", help="comma-separated: train,dev,heldout")
    parser.add_argument("--timing", action="store_true", help="also time the screener")
    parser.add_argument(
        "--language",
        default="en",
        choices=sorted(CORPORA),
        help="whose corpus: en (corpus/), es or de (es/, de/: their own writers and split)",
    )
    args = parser.parse_args()
    corpus = CORPORA[args.language]
    screener = load_screener([builtin_dir()])
    print(f"{len(screener.phrases)} phrases, "
          f"{sum(len(c.rules) for c in screener.concepts)} concept rules, "
          f"{len(screener.models)} model(s)")  # fmt: skip
    everything: list[str] = []
    for name in args.splits.split(","):
        if name not in SPLITS:
            parser.error(f"unknown split {name!r}")
        items = read_labelled(corpus / f"{name}.jsonl")
        quality(screener, name, items)
    if args.timing:
        for name in SPLITS:
            everything.extend(i.text for i in read_labelled(corpus / f"{name}.jsonl"))
        timing(screener, everything)


if __name__ == "__main__":
    main()
