"""The concept layer: risk said in words no phrase lists.

A phrase catches "I want to kill myself". People in crisis more often say it sideways: "I've
counted what's left in the bottle, Friday", "cut until it bled", "they'd manage fine once I'm
gone". None of those share a phrase, but each combines *kinds* of words: a means with a time, an
act on the body with a first-person marker, a burden with an exit. A concept file
(`<content dir>/safety/<language>.concepts.yaml`) names those kinds (concepts, each a list of
terms in the phrase syntax) and the rules that combine them within a few words of each other.

Rules may name `unless` concepts for narrowly scoped look-alikes (a film, a haircut, a
prescription): they silence only that rule, only near its own words, and never a phrase match.

Typos: a word of five or more letters that is not a concept word but is one edit away from one
("tablests", "brige") is read as that word, for concepts only (phrases stay exact, so "skill
myself" never reads as "kill myself").
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.domain.safety.files import SafetyContentError, compose, line_of, mapping, scalar
from bot.domain.safety.normalise import concept_form
from bot.domain.safety.phrases import (
    CATEGORY_RE,
    LANGUAGE_RE,
    PhraseError,
    compile_phrase,
    first_words,
)

__all__ = ["CONCEPTS_SUFFIX", "ConceptHit", "ConceptSet", "load_concept_file", "sentences"]

CONCEPTS_SUFFIX = ".concepts.yaml"
_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
_MAX_WINDOW = 40
_TYPO_MIN = 5
# Sentence ends, line breaks and emoji-free separators: where one thought ends.
_SENTENCE_SPLIT_RE = re.compile(r"(?:[.!?;]+(?=\s|$)|\n+|[.!?]{2,})")
_DEFAULT_SENTENCE_GAP = 4
_TERM_NORMAL_RE = re.compile(r"[()|?]|\.\.\.")


# Stands for a sentence end while the whole message is normalised in one pass: letters only,
# so normalisation keeps it, and no word of any language looks like it.
_BREAK = "qxsentencexq"


def sentences(text: str) -> list[str]:
    """The normalised sentences of a message (empty ones dropped)."""
    marked = _SENTENCE_SPLIT_RE.sub(f" {_BREAK} ", text)
    return [part.strip() for part in concept_form(marked).split(_BREAK) if part.strip()]


@dataclass(frozen=True)
class Rule:
    name: str
    category: str
    need: tuple[tuple[str, ...], ...]  # each slot: any one of these concepts
    window: int
    unless: tuple[str, ...]
    line: int
    unless_window: int = 0  # how far outside the rule's own words `unless` reaches


@dataclass(frozen=True)
class ConceptHit:
    rule: str
    category: str
    language: str
    terms: tuple[str, ...]  # the concept-file terms that met, as written (never the message)


@dataclass(frozen=True)
class _Term:
    concept: str
    term: str  # as written in the file
    pattern: str
    words: tuple[str, ...] = ()  # squashed words it can start with
    stems: tuple[str, ...] = ()  # squashed stems of wildcards it can start with
    single: bool = False  # every reading is one word: looked up per word, no regex scan


def _squash(word: str) -> str:
    """Runs of one letter made one ("kiiill" and "kill" -> "kil"): a prefilter key only."""
    return "".join(letter for letter, _ in groupby(word))


_PREFIX = 3


@dataclass
class _Found:
    """Where each concept's terms were found: token position -> term, per concept."""

    at: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def add(self, concept: str, pos: int, term: str) -> None:
        self.at.setdefault(concept, []).append((pos, term))


def _swaps(word: str) -> Iterator[str]:
    for i in range(len(word) - 1):
        yield word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _deletes(word: str) -> Iterator[str]:
    for i in range(len(word)):
        yield word[:i] + word[i + 1 :]


@dataclass(frozen=True)
class ConceptSet:
    """One language's concepts and rules, compiled."""

    language: str
    path: Path
    rules: tuple[Rule, ...]
    terms: tuple[_Term, ...]
    sentence_gap: int = _DEFAULT_SENTENCE_GAP
    # Look-alike expressions (see `ignore:`): regex body, squashed first words and stems.
    ignore: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()
    _singles: Mapping[str, tuple[tuple[_Term, re.Pattern[str]], ...]] = field(
        init=False, repr=False, compare=False
    )
    _multis: Mapping[str, dict[tuple[str, str], re.Pattern[str]]] = field(
        init=False, repr=False, compare=False
    )
    _prefixed: Mapping[str, tuple[tuple[str, _Term, re.Pattern[str]], ...]] = field(
        init=False, repr=False, compare=False
    )
    _vocab: frozenset[str] = field(init=False, repr=False, compare=False)
    _typos: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _stems: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _pairs: frozenset[str] = field(init=False, repr=False, compare=False)
    _by_length: Mapping[int, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _ignore_words: Mapping[str, list[re.Pattern[str]]] = field(
        init=False, repr=False, compare=False
    )
    _ignore_prefixed: Mapping[str, list[tuple[str, re.Pattern[str]]]] = field(
        init=False, repr=False, compare=False
    )
    _needs: tuple[tuple[frozenset[str], ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        needs = tuple(tuple(frozenset(slot) for slot in rule.need) for rule in self.rules)
        object.__setattr__(self, "_needs", needs)
        # Every term is indexed by the words (and stems) it can start with, so a sentence
        # only tries the terms whose first word it holds: screening stays well under 1 ms.
        singles: dict[str, list[tuple[_Term, re.Pattern[str]]]] = {}
        multis: dict[str, list[tuple[_Term, re.Pattern[str]]]] = {}
        prefixed: dict[str, list[tuple[str, _Term, re.Pattern[str]]]] = {}
        for term in self.terms:
            if term.single:
                regex = re.compile(term.pattern)
            else:
                regex = re.compile(f"(?<= )(?:{term.pattern})(?= )")
            for word in term.words:
                (singles if term.single else multis).setdefault(word, []).append((term, regex))
            for stem in term.stems:
                prefixed.setdefault(stem[:_PREFIX], []).append((stem, term, regex))
        object.__setattr__(self, "_singles", {k: tuple(v) for k, v in singles.items()})
        object.__setattr__(
            self,
            "_multis",
            {k: {(t.concept, t.term): r for t, r in v} for k, v in multis.items()},
        )
        object.__setattr__(self, "_prefixed", {k: tuple(v) for k, v in prefixed.items()})
        ignore_words: dict[str, list[re.Pattern[str]]] = {}
        ignore_prefixed: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        for raw, first, first_stems in self.ignore:
            regex = re.compile(f"(?<= )(?:{raw})(?= )")
            for word in first:
                ignore_words.setdefault(word, []).append(regex)
            for stem in first_stems:
                ignore_prefixed.setdefault(stem[:_PREFIX], []).append((stem, regex))
        object.__setattr__(self, "_ignore_words", ignore_words)
        object.__setattr__(self, "_ignore_prefixed", ignore_prefixed)
        vocab: set[str] = set()
        stems: set[str] = set()
        for term in self.terms:
            for word in re.findall(r"[a-z]+\*?", _TERM_NORMAL_RE.sub(" ", term.term.lower())):
                (stems if word.endswith("*") else vocab).add(word.rstrip("*"))
        object.__setattr__(self, "_vocab", frozenset(vocab))
        by_length: dict[int, list[str]] = {}
        for word in sorted(vocab):
            by_length.setdefault(len(word), []).append(word)
        object.__setattr__(self, "_by_length", {k: tuple(v) for k, v in by_length.items()})
        object.__setattr__(self, "_stems", tuple(sorted(stems)))
        # One letter too many or too few, or two swapped, never a changed letter: "brain"
        # must not become "train", nor "warning" "wanting".
        typos: dict[str, str | None] = {}
        for word in sorted(vocab | stems):
            if len(word) < _TYPO_MIN + 1:
                continue
            # a letter missing from the message's word, or two neighbours swapped
            for key in (*_deletes(word), *_swaps(word)):
                if key != word:
                    typos[key] = word if typos.get(key, word) == word else None
        object.__setattr__(self, "_typos", {k: v for k, v in typos.items() if v is not None})
        long_words = [w for w in vocab | stems if len(w) > _TYPO_MIN]
        pairs = {p for w in long_words for p in (w[:2], w[1:3], w[0] + w[2])}
        object.__setattr__(self, "_pairs", frozenset(pairs))

    def _correct(self, token: str) -> str:
        if "*" in token:
            return self._unmask(token)
        if len(token) < _TYPO_MIN or token in self._vocab:
            return token
        # A slip keeps the word's first two letters, or shifts them by one: others are no
        # concept word's typo (a cheap test that spares most words the full search).
        pairs = self._pairs
        if token[:2] not in pairs and token[1:3] not in pairs and token[0] + token[2] not in pairs:
            return token
        if not token.isalpha():
            return token
        if token.startswith(self._stems):
            return token  # "shaving" is "shav*", not "saving" with a slip
        missing = self._typos.get(token)
        if missing is not None:
            return missing
        for key in _deletes(token):  # a letter too many in the message's word
            if key in self._vocab and len(key) >= _TYPO_MIN + 1:
                return key
        return token

    def _unmask(self, token: str) -> str:
        """ "s*icidal" -> "suicidal": a "*" standing for one letter of a concept word."""

        def fits(word: str) -> bool:
            return all(a in (b, "*") for a, b in zip(token, word, strict=False))

        if len(token) < 4 or token.count("*") > 2:
            return token.replace("*", "")
        for word in self._by_length.get(len(token), ()):
            if fits(word):
                return word
        for stem in self._stems:
            if len(stem) >= 4 and len(token) >= len(stem) and fits(stem):
                return stem + token[len(stem) :].replace("*", "")
        return token.replace("*", "")

    def _blank_lookalikes(self, tokens: list[str], squashed: list[str]) -> str:
        """The sentence with each look-alike expression ("suicide prevention", "dying to
        see") blanked word for word: positions stay, and its words meet no concept."""
        padded = " " + " ".join(tokens) + " "
        regexes: list[re.Pattern[str]] = []
        for key in squashed:
            regexes.extend(self._ignore_words.get(key, ()))
            for stem, regex in self._ignore_prefixed.get(key[:_PREFIX], ()):
                if key.startswith(stem):
                    regexes.append(regex)
        for regex in dict.fromkeys(regexes):
            padded = regex.sub(lambda m: " ".join("_" * len(m.group(0).split())), padded)
        return padded

    def _find(self, forms: Sequence[str]) -> _Found:
        found = _Found()
        offset = 0
        singles, multis, prefixed = self._singles, self._multis, self._prefixed
        for form in forms:
            tokens = [self._correct(t) for t in form.split()]
            squashed = [_squash(t) for t in tokens]
            padded = self._blank_lookalikes(tokens, squashed)
            if "_" in padded:
                tokens = padded.split()
            # Terms of several words are scanned once per sentence, if it holds a first word.
            scan: dict[tuple[str, str], re.Pattern[str]] = {}
            for index, token in enumerate(tokens):
                if token[0] == "_":
                    continue
                key = squashed[index]
                for term, regex in singles.get(key, ()):
                    if regex.fullmatch(token):
                        found.add(term.concept, offset + index, term.term)
                more = multis.get(key)
                if more is not None:
                    scan.update(more)
                for stem, term, regex in prefixed.get(key[:_PREFIX], ()):
                    if not key.startswith(stem):
                        continue
                    if not term.single:
                        scan[(term.concept, term.term)] = regex
                    elif regex.fullmatch(token):
                        found.add(term.concept, offset + index, term.term)
            for (concept, term_text), regex in scan.items():
                for m in regex.finditer(padded):
                    found.add(concept, offset + padded.count(" ", 0, m.start()) - 1, term_text)
            offset += len(tokens) + self.sentence_gap
        return found

    def screen(self, forms: Sequence[str], *, first_only: bool = True) -> list[ConceptHit]:
        """Rules met by the normalised sentences `forms` (see `sentences`)."""
        found = self._find(forms)
        hits: list[ConceptHit] = []
        present = found.at.keys()
        if not present:
            return hits
        for rule, needs in zip(self.rules, self._needs, strict=True):
            if any(present.isdisjoint(slot) for slot in needs):
                continue  # a slot no word filled: most rules, for most messages
            terms = _meets(rule, found)
            if terms is not None:
                hits.append(ConceptHit(rule.name, rule.category, self.language, terms))
                if first_only:
                    break
        return hits


def _meets(rule: Rule, found: _Found) -> tuple[str, ...] | None:
    """The terms of a window holding every slot of the rule and none of its `unless`."""
    slots: list[list[tuple[int, str]]] = []
    for slot in rule.need:
        first_term: dict[int, str] = {}
        for concept in slot:
            for pos, term in found.at.get(concept, ()):
                first_term.setdefault(pos, term)
        if not first_term:
            return None
        slots.append(sorted(first_term.items()))
    blockers = sorted(p for c in rule.unless for p, _ in found.at.get(c, ()))
    starts = sorted({p for positions in slots for p, _ in positions})
    for start in starts:
        end = start + rule.window
        chosen = _assign([[pt for pt in ps if start <= pt[0] <= end] for ps in slots])
        if chosen is not None:
            lo, hi = min(p for p, _ in chosen), max(p for p, _ in chosen)
            reach = rule.unless_window
            if any(lo - reach <= b <= hi + reach for b in blockers):
                continue
            return tuple(term for _, term in chosen)
    return None


def _assign(
    slots: list[list[tuple[int, str]]], used: frozenset[int] = frozenset()
) -> list[tuple[int, str]] | None:
    """One word per slot, no word twice ("goodbye" is not both halves of a farewell)."""
    if not slots:
        return []
    for pick in slots[0]:
        if pick[0] in used:
            continue
        rest = _assign(slots[1:], used | {pick[0]})
        if rest is not None:
            return [pick, *rest]
    return None


# --- loading -----------------------------------------------------------------------------

_TOP_FIELDS = ("language", "window", "sentence_gap", "ignore", "concepts", "rules")
_RULE_FIELDS = ("name", "category", "need", "window", "unless", "unless_window")


def _int(path: Path, node: Node, what: str, lo: int, hi: int) -> int:
    raw = scalar(node)
    if raw is None or not raw.isdigit() or not lo <= int(raw) <= hi:
        raise SafetyContentError(path, line_of(node), f"{what} must be a number {lo}-{hi}")
    return int(raw)


def _names(path: Path, node: Node, known: Mapping[str, int], what: str) -> tuple[str, ...]:
    items = node.value if isinstance(node, SequenceNode) else [node]
    out = []
    for item in items:
        name = scalar(item) if isinstance(item, ScalarNode) else None
        if name is None:
            raise SafetyContentError(path, line_of(item), f"{what}: expected a concept name")
        if name not in known:
            raise SafetyContentError(
                path, line_of(item), f"{what}: unknown concept {name!r} (defined: "
                + ", ".join(sorted(known)) + ")"
            )  # fmt: skip
        out.append(name)
    if not out:
        raise SafetyContentError(path, line_of(node), f"{what}: empty list")
    return tuple(out)


def _rule(path: Path, node: Node, known: Mapping[str, int], window: int) -> Rule:
    if not isinstance(node, MappingNode):
        raise SafetyContentError(path, line_of(node), "a rule is a mapping (name, need, ...)")
    fields = {}
    for key, key_node, value in mapping(path, node, "a rule"):
        if key not in _RULE_FIELDS:
            raise SafetyContentError(
                path, line_of(key_node), f"unknown rule field {key!r} (allowed: "
                + ", ".join(_RULE_FIELDS) + ")"
            )  # fmt: skip
        fields[key] = value
    for required in ("name", "category", "need"):
        if required not in fields:
            raise SafetyContentError(path, line_of(node), f"rule without {required!r}")
    name = scalar(fields["name"]) or ""
    category = scalar(fields["category"]) or ""
    if not _NAME_RE.fullmatch(name):
        raise SafetyContentError(path, line_of(fields["name"]), f"rule name {name!r}: use a-z, -")
    if not CATEGORY_RE.fullmatch(category):
        raise SafetyContentError(path, line_of(fields["category"]), f"category {category!r}")
    need_node = fields["need"]
    if not isinstance(need_node, SequenceNode) or not need_node.value:
        raise SafetyContentError(path, line_of(need_node), "need: a list of concepts")
    need = tuple(_names(path, slot, known, f"rule {name!r}") for slot in need_node.value)
    if "window" in fields:
        window = _int(path, fields["window"], f"rule {name!r}: window", 1, _MAX_WINDOW)
    unless: tuple[str, ...] = ()
    if "unless" in fields:
        unless = _names(path, fields["unless"], known, f"rule {name!r} unless")
    reach = window
    if "unless_window" in fields:
        reach = _int(path, fields["unless_window"], f"rule {name!r}: unless_window", 0, _MAX_WINDOW)
    return Rule(name, category, need, window, unless, line_of(node), reach)


def load_concept_file(path: Path) -> ConceptSet:
    root = mapping(path, compose(path), "a mapping with 'language', 'concepts' and 'rules'")
    fields: dict[str, tuple[Node, Node]] = {}
    for key, key_node, value in root:
        if key not in _TOP_FIELDS:
            raise SafetyContentError(
                path, line_of(key_node), f"unknown field {key!r} (allowed: "
                + ", ".join(_TOP_FIELDS) + ")"
            )  # fmt: skip
        fields[key] = (key_node, value)
    for required in ("language", "concepts", "rules"):
        if required not in fields:
            raise SafetyContentError(path, 1, f"missing required field {required!r}")
    language = scalar(fields["language"][1])
    if language is None or not LANGUAGE_RE.fullmatch(language):
        raise SafetyContentError(path, line_of(fields["language"][1]), "language like 'en'")
    window = 8
    if "window" in fields:
        window = _int(path, fields["window"][1], "window", 1, _MAX_WINDOW)
    gap = _DEFAULT_SENTENCE_GAP
    if "sentence_gap" in fields:
        gap = _int(path, fields["sentence_gap"][1], "sentence_gap", 0, _MAX_WINDOW)
    terms: list[_Term] = []
    known: dict[str, int] = {}
    for concept, key_node, items in mapping(path, fields["concepts"][1], "concept -> terms"):
        if not _NAME_RE.fullmatch(concept):
            raise SafetyContentError(path, line_of(key_node), f"concept name {concept!r}")
        if not isinstance(items, SequenceNode) or not items.value:
            raise SafetyContentError(path, line_of(key_node), f"concept {concept!r}: no terms")
        known[concept] = line_of(key_node)
        for item in items.value:
            raw = scalar(item) if isinstance(item, ScalarNode) else None
            if raw is None or not raw.strip():
                raise SafetyContentError(path, line_of(item), "a term must be text")
            try:
                phrase = compile_phrase(
                    raw, "concept", language, path, line_of(item), short_ok=True
                )
            except PhraseError as exc:
                raise SafetyContentError(
                    path, line_of(item), f"term {raw.strip()!r}: {exc}"
                ) from exc
            starts, stems, single = first_words(raw, short_ok=True)
            terms.append(
                _Term(
                    concept,
                    raw.strip(),
                    phrase.pattern,
                    tuple(sorted({_squash(w) for w in starts})),
                    tuple(sorted({_squash(w) for w in stems})),
                    single,
                )
            )
    ignore: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
    if "ignore" in fields:
        node = fields["ignore"][1]
        if not isinstance(node, SequenceNode):
            raise SafetyContentError(path, line_of(node), "ignore: a list of phrases")
        for item in node.value:
            raw = scalar(item) if isinstance(item, ScalarNode) else None
            if raw is None or not raw.strip():
                raise SafetyContentError(path, line_of(item), "an ignore entry must be text")
            try:
                pattern = compile_phrase(raw, "ignore", language, path, line_of(item)).pattern
                starts, stems, _ = first_words(raw)
            except PhraseError as exc:
                raise SafetyContentError(
                    path, line_of(item), f"ignore {raw.strip()!r}: {exc}"
                ) from exc
            ignore.append(
                (
                    pattern,
                    tuple(sorted({_squash(w) for w in starts})),
                    tuple(sorted({_squash(w) for w in stems})),
                )
            )
    rules_node = fields["rules"][1]
    if not isinstance(rules_node, SequenceNode) or not rules_node.value:
        raise SafetyContentError(path, line_of(rules_node), "rules: a list of rules")
    rules = tuple(_rule(path, node, known, window) for node in rules_node.value)
    seen: dict[str, int] = {}
    for rule in rules:
        if rule.name in seen:
            raise SafetyContentError(
                path, rule.line, f"duplicate rule {rule.name!r} (first on line {seen[rule.name]})"
            )
        seen[rule.name] = rule.line
    return ConceptSet(language, path, rules, tuple(terms), gap, tuple(ignore))
