"""The screener: phrases first, then concepts, then the optional local model.

Each layer only adds: nothing in a later layer (or anywhere) can cancel an earlier layer's
match, so "I'm not suicidal" still alerts on the phrase list. A `Match` names the list entry,
rule or model that fired, never the patient's words, so it can be logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.domain.safety.concepts import CONCEPTS_SUFFIX, ConceptSet, load_concept_file, sentences
from bot.domain.safety.files import (
    SAFETY_SUBDIR,
    SafetyContentError,
    iter_safety_files,
    resources_language,
)
from bot.domain.safety.model import MODEL_SUFFIX, LinearModel, load_model
from bot.domain.safety.normalise import fallback_form, screen_forms
from bot.domain.safety.phrases import Phrase, PhraseMatcher, load_phrase_file, phrase_key

__all__ = ["Match", "Screener", "load_screener"]


@dataclass(frozen=True)
class Match:
    """Why a message alerted. `phrase` is the list entry, rule or model name — never the text."""

    phrase: str
    category: str
    language: str
    layer: str = "phrase"  # "phrase", "concept" or "model"
    terms: tuple[str, ...] = ()  # for a concept rule: the concept terms that met

    def explain(self) -> str:
        if self.layer == "concept":
            return f"concept rule {self.phrase!r} ({self.category}): " + " + ".join(self.terms)
        if self.layer == "model":
            return f"local model {self.phrase!r} ({self.category})"
        return f"phrase {self.phrase!r} ({self.category})"


@dataclass(frozen=True)
class Screener:
    """Screens text. Build with `load_screener`; `screen` never raises on any `str`."""

    matcher: PhraseMatcher
    concepts: tuple[ConceptSet, ...] = ()
    models: tuple[LinearModel, ...] = ()

    @property
    def phrases(self) -> tuple[Phrase, ...]:
        return self.matcher.phrases

    def _forms(self, text: str) -> list[tuple[str, bool]]:
        try:
            return screen_forms(text)
        except Exception:  # never let an odd input skip screening
            return fallback_form(text)

    def _sentences(self, text: str) -> list[str]:
        try:
            return sentences(text)
        except Exception:
            return [form.strip() for form, _ in fallback_form(text)]

    def screen(self, text: str) -> Match | None:
        """Why `text` alerts (the leftmost phrase, else the first rule or model), or None."""
        found = self.matcher.first(self._forms(text))
        if found is not None:
            return Match(found.phrase, found.category, found.language)
        matches = self._deeper(text, first_only=True)
        return matches[0] if matches else None

    def screen_all(self, text: str) -> list[Match]:
        """Every phrase (in order of position), every concept rule and model that fires."""
        phrases = [
            Match(p.phrase, p.category, p.language) for p in self.matcher.all(self._forms(text))
        ]
        return phrases + self._deeper(text, first_only=False)

    def _deeper(self, text: str, *, first_only: bool) -> list[Match]:
        if not self.concepts and not self.models:
            return []
        forms = self._sentences(text)
        out: list[Match] = []
        for concepts in self.concepts:
            for hit in concepts.screen(forms, first_only=first_only):
                out.append(Match(hit.rule, hit.category, hit.language, "concept", hit.terms))
                if first_only:
                    return out
        for model in self.models:
            if model.flags(forms):
                out.append(Match(model.name, "model", model.language, "model"))
                if first_only:
                    return out
        return out


# Compiling about 2,500 patterns takes a second; the files do not change while the process
# runs (a change means a restart), so one process compiles them once (tests build many bots).
_LOADED: dict[tuple[tuple[str, int, int], ...], Screener] = {}


def _signature(dirs: Sequence[Path]) -> tuple[tuple[str, int, int], ...] | None:
    try:
        files = iter_safety_files(dirs)
        models = [
            p for d in dirs for p in sorted((Path(d) / SAFETY_SUBDIR).glob(f"*{MODEL_SUFFIX}"))
        ]
        return tuple(
            (str(p.resolve()), p.stat().st_mtime_ns, p.stat().st_size) for p in [*files, *models]
        )
    except (OSError, SafetyContentError):
        return None  # let the real load report it


def load_screener(dirs: Sequence[Path]) -> Screener:
    """Load every `<dir>/safety/` phrase, concept and model file, in order.

    Pass the same folders as the content loader: `[builtin_dir(), *dirs_from_env()]`. Later
    folders only add; nothing can remove a built-in phrase, concept rule or model. Raises
    SafetyContentError on the first problem, and when no phrase at all was found.
    """
    key = _signature(dirs)
    if key is not None and key in _LOADED:
        return _LOADED[key]
    screener = _load(dirs)
    if key is not None:
        if len(_LOADED) >= 8:
            _LOADED.clear()
        _LOADED[key] = screener
    return screener


def _load(dirs: Sequence[Path]) -> Screener:
    phrases: list[Phrase] = []
    seen: set[tuple[str, str]] = set()
    concepts: list[ConceptSet] = []
    models: list[LinearModel] = []
    for path in iter_safety_files(dirs):
        if resources_language(path) is not None:
            continue
        if path.name.endswith(CONCEPTS_SUFFIX):
            concepts.append(load_concept_file(path))
            continue
        for phrase in load_phrase_file(path):
            key = (phrase.language, phrase_key(phrase.phrase))
            if key not in seen:
                seen.add(key)
                phrases.append(phrase)
    for folder in dirs:
        safety = Path(folder) / SAFETY_SUBDIR
        if safety.is_dir():
            models.extend(load_model(p) for p in sorted(safety.glob(f"*{MODEL_SUFFIX}")))
    if not phrases:
        where = Path(dirs[0]) / SAFETY_SUBDIR if dirs else Path(SAFETY_SUBDIR)
        raise SafetyContentError(
            where, 1, "no safety phrases found: expected <content dir>/safety/<language>.yaml"
        )
    return Screener(PhraseMatcher(tuple(phrases)), tuple(concepts), tuple(models))
