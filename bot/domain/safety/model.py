"""The optional local model: a linear classifier over word stems, shipped as a JSON file.

It only *adds* alerts after the phrases and concepts found none. It runs offline in pure
Python (no download, no network, well under a millisecond) from
`<content dir>/safety/<language>.model.json`, written by `bench/safety_train.py` from the
labelled corpus's train split, with its threshold chosen on the dev split (docs/safety.md).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import Stemmer  # type: ignore[import-not-found]

from bot.domain.safety.files import SafetyContentError

__all__ = ["MODEL_SUFFIX", "LinearModel", "features", "load_model"]

MODEL_SUFFIX = ".model.json"
_STEMMERS = {"en": "english", "es": "spanish", "de": "german"}


@lru_cache(maxsize=8)
def _stemmer(language: str) -> Any:
    return Stemmer.Stemmer(_STEMMERS.get(language, "english"))


def sentence_features(form: str, language: str) -> frozenset[str]:
    """Stems and stem pairs of one normalised sentence."""
    stems = _stemmer(language).stemWords(form.split())
    return frozenset([*stems, *(f"{a} {b}" for a, b in itertools.pairwise(stems))])


def features(forms: Sequence[str], language: str) -> set[str]:
    """Stems and stem pairs of the normalised sentences (pairs never cross a sentence)."""
    out: set[str] = set()
    for form in forms:
        out |= sentence_features(form, language)
    return out


@dataclass(frozen=True)
class LinearModel:
    name: str
    language: str
    bias: float
    threshold: float
    weights: dict[str, float] = field(repr=False)

    def _probability(self, feats: Iterable[str]) -> float:
        z = self.bias + sum(self.weights.get(f, 0.0) for f in feats)
        return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))

    def score(self, forms: Sequence[str]) -> float:
        return self._probability(features(forms, self.language))

    def flags(self, forms: Sequence[str]) -> bool:
        """True when the message, or any two neighbouring sentences of it, score high."""
        if not forms:
            return False
        per_sentence = [sentence_features(f, self.language) for f in forms]
        windows: list[frozenset[str]] = [frozenset().union(*per_sentence)]
        if len(per_sentence) > 2:
            windows += [a | b for a, b in itertools.pairwise(per_sentence)]
        return any(self._probability(w) >= self.threshold for w in windows)


def load_model(path: Path) -> LinearModel:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        model = LinearModel(
            name=str(data["name"]),
            language=str(data["language"]),
            bias=float(data["bias"]),
            threshold=float(data["threshold"]),
            weights={str(k): float(v) for k, v in data["weights"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SafetyContentError(path, 1, f"not a screening model file ({exc})") from exc
    if not 0.0 < model.threshold < 1.0:
        raise SafetyContentError(path, 1, "threshold must be between 0 and 1")
    return model
