"""Train the screener's optional local model on the corpus's train split.

    python bench/safety_train.py [--out prompts/safety/en.model.json] [--max-false-alerts 0.03]

Logistic regression over word stems and stem pairs (bot/domain/safety/model.py), pure Python,
deterministic (no random state: examples are visited in a fixed order). The threshold is the
lowest one whose *added* false alerts on the dev split stay within --max-false-alerts, where
"added" means safe dev messages the phrases and concepts did not already flag. The held-out
split is never read here. Prints dev figures; writes the model file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.domain.content import builtin_dir  # noqa: E402
from bot.domain.safety import Screener, load_screener  # noqa: E402
from bot.domain.safety.concepts import sentences  # noqa: E402
from bot.domain.safety.evaluation import Labelled, read_labelled  # noqa: E402
from bot.domain.safety.model import LinearModel, features  # noqa: E402
from bot.domain.safety.phrases import PhraseMatcher  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "safety" / "corpus"
EPOCHS = 30
RATE = 0.3
L2 = 1e-3
MIN_COUNT = 2  # features seen fewer times in train are dropped (noise, and a smaller file)


def train(items: list[Labelled], language: str) -> tuple[float, dict[str, float]]:
    rows = [
        (features(sentences(i.text), language), 1.0 if i.label == "risk" else 0.0) for i in items
    ]
    counts = Counter(f for feats, _ in rows for f in feats)
    keep = {f for f, n in counts.items() if n >= MIN_COUNT}
    rows = [({f for f in feats if f in keep}, y) for feats, y in rows]
    weights: dict[str, float] = dict.fromkeys(keep, 0.0)
    grad_sq: dict[str, float] = dict.fromkeys(keep, 1e-8)
    bias, bias_sq = 0.0, 1e-8
    positives = sum(y for _, y in rows)
    # Balance the classes: a missed risk message costs as much as all safe ones together.
    w_pos = len(rows) / (2 * positives)
    w_neg = len(rows) / (2 * (len(rows) - positives))
    for _ in range(EPOCHS):
        for feats, y in rows:
            z = bias + sum(weights[f] for f in feats)
            p = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))
            g = (p - y) * (w_pos if y else w_neg)
            bias_sq += g * g
            bias -= RATE * g / math.sqrt(bias_sq)
            for f in feats:
                gf = g + L2 * weights[f]
                grad_sq[f] += gf * gf
                weights[f] -= RATE * gf / math.sqrt(grad_sq[f])
    return bias, {f: round(w, 4) for f, w in weights.items() if abs(w) >= 1e-3}


def choose_threshold(
    model: LinearModel, dev: list[Labelled], rules: Screener, max_added: float
) -> float:
    safe = [i for i in dev if i.label == "safe" and rules.screen(i.text) is None]
    n_safe = sum(1 for i in dev if i.label == "safe")
    for t in [x / 100 for x in range(5, 100)]:
        candidate = LinearModel(model.name, model.language, model.bias, t, model.weights)
        added = sum(1 for i in safe if candidate.flags(sentences(i.text)))
        if added / n_safe <= max_added:
            return t
    return 0.99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "prompts" / "safety" / "en.model.json")
    parser.add_argument("--max-false-alerts", type=float, default=0.03)
    parser.add_argument("--language", default="en")
    args = parser.parse_args()
    train_items = read_labelled(CORPUS / "train.jsonl")
    dev_items = read_labelled(CORPUS / "dev.jsonl")
    bias, weights = train(train_items, args.language)
    full = load_screener([builtin_dir()])
    # The model decides only where phrases and concepts did not: measure it against those.
    rules = Screener(PhraseMatcher(full.phrases), full.concepts, ())
    draft = LinearModel(f"{args.language}-stems-v1", args.language, bias, 0.5, weights)
    threshold = choose_threshold(draft, dev_items, rules, args.max_false_alerts)
    data = {
        "name": draft.name,
        "language": args.language,
        "about": "Logistic regression over word stems and stem pairs; trained by "
        "bench/safety_train.py on tests/fixtures/safety/corpus/train.jsonl, threshold chosen "
        "on dev.jsonl. Only adds alerts.",
        "threshold": threshold,
        "bias": round(bias, 4),
        "weights": dict(sorted(weights.items())),
    }
    args.out.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    model = LinearModel(draft.name, args.language, bias, threshold, weights)
    with_model = Screener(PhraseMatcher(full.phrases), full.concepts, (model,))
    for name, items in (("train", train_items), ("dev", dev_items)):
        risk = [i for i in items if i.label == "risk"]
        safe = [i for i in items if i.label == "safe"]
        for label, screener in (("rules", rules), ("rules+model", with_model)):
            caught = sum(1 for i in risk if screener.screen(i.text) is not None)
            false = sum(1 for i in safe if screener.screen(i.text) is not None)
            print(
                f"{name:5} {label:11} recall {caught / len(risk):6.1%} ({caught}/{len(risk)})  "
                f"false alerts {false / len(safe):5.1%} ({false}/{len(safe)})"
            )
    print(f"threshold {threshold}, {len(weights)} weights -> {args.out}")


if __name__ == "__main__":
    main()
