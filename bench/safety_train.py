"""Train the screener's optional local model on the corpus's train and dev splits.

    python bench/safety_train.py [--out prompts/safety/en.model.json] [--max-false-alerts 0.02]

Logistic regression over word stems and stem pairs (bot/domain/safety/model.py), pure Python,
deterministic (no random state: examples are visited in a fixed order). The threshold comes
from k-fold cross-validation over train + dev: the lowest one whose *added* false alerts
(safe messages the phrases and concepts did not already flag, scored by a model that did not
see them) stay within --max-false-alerts. The final model then learns from all of train and
dev. The held-out split is never read here. Prints out-of-fold figures; writes the model file.
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
EPOCHS = 10
# 0.3 before round 4; 0.2 did best in cross-validation (88.7 % vs 87.1 %) and keeps
# labelled.yaml under 5 % false alerts (0.1 did not).
RATE = 0.2
L2 = 1e-2
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


def oof_scores(items: list[Labelled], language: str, folds: int) -> list[float]:
    """Each message scored by a model that never saw it (k-fold, fixed fold by position)."""
    scores = [0.0] * len(items)
    for k in range(folds):
        train_part = [it for i, it in enumerate(items) if i % folds != k]
        bias, weights = train(train_part, language)
        model = LinearModel("cv", language, bias, 0.5, weights)
        for i, it in enumerate(items):
            if i % folds == k:
                scores[i] = window_score(model, it.text)
    return scores


def window_score(model: LinearModel, text: str) -> float:
    forms = sentences(text)
    windows = [forms]
    if len(forms) > 2:
        windows += [forms[i : i + 2] for i in range(len(forms) - 1)]
    return max(model.score(w) for w in windows)


def choose_threshold(
    items: list[Labelled], scores: list[float], rules: Screener, max_added: float
) -> float:
    """The lowest threshold whose alerts on safe messages the rules missed stay within
    max_added of all safe messages (out-of-fold scores: no message judges its own model)."""
    n_safe = sum(1 for i in items if i.label == "safe")
    unflagged = [s for i, s in zip(items, scores, strict=True)
                 if i.label == "safe" and rules.screen(i.text) is None]  # fmt: skip
    for t in [x / 100 for x in range(5, 100)]:
        if sum(1 for s in unflagged if s >= t) / n_safe <= max_added:
            return t
    return 0.99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "prompts" / "safety" / "en.model.json")
    parser.add_argument("--max-false-alerts", type=float, default=0.01)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--language", default="en")
    args = parser.parse_args()
    items = read_labelled(CORPUS / "train.jsonl") + read_labelled(CORPUS / "dev.jsonl")
    full = load_screener([builtin_dir()])
    # The model decides only where phrases and concepts did not: measure it against those.
    rules = Screener(PhraseMatcher(full.phrases), full.concepts, ())
    scores = oof_scores(items, args.language, args.folds)
    threshold = choose_threshold(items, scores, rules, args.max_false_alerts)
    risk = [(i, s) for i, s in zip(items, scores, strict=True) if i.label == "risk"]
    safe = [(i, s) for i, s in zip(items, scores, strict=True) if i.label == "safe"]
    for label, use_model in (("rules", False), ("rules+model", True)):
        caught = sum(1 for i, s in risk if rules.screen(i.text) or (use_model and s >= threshold))
        false = sum(1 for i, s in safe if rules.screen(i.text) or (use_model and s >= threshold))
        print(f"train+dev, out-of-fold, {label:11}: recall {caught / len(risk):6.1%} "
              f"({caught}/{len(risk)})  false alerts {false / len(safe):5.1%} "
              f"({false}/{len(safe)})")  # fmt: skip
    bias, weights = train(items, args.language)
    data = {
        "name": f"{args.language}-stems-v1",
        "language": args.language,
        "about": "Logistic regression over word stems and stem pairs; trained by "
        "bench/safety_train.py on tests/fixtures/safety/corpus/train.jsonl and dev.jsonl, "
        f"threshold chosen by {args.folds}-fold cross-validation so that it adds at most "
        f"{args.max_false_alerts:.0%} false alerts to the rules. Only adds alerts.",
        "threshold": threshold,
        "bias": round(bias, 4),
        "weights": dict(sorted(weights.items())),
    }
    args.out.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"threshold {threshold}, {len(weights)} weights -> {args.out}")


if __name__ == "__main__":
    main()
