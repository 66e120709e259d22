"""The phrase lists: a small, reviewable syntax compiled into anchored, bounded regexes.

Phrase mini-syntax (also documented at the top of prompts/safety/en.yaml):
- words are matched whole, after `normalize()`, case-, accent- and punctuation-insensitively;
  the space between two words also matches no space ("kill myself" matches "killmyself",
  "kill-myself", "kill_myself");
- `word*` (star at the end of a word): any ending, e.g. `suicid*` (at least 3 letters first);
- `(a|b|c)`: one of the alternatives; `(a|b)?` or `(own)?`: optional;
- `...`: up to two other words here, e.g. `want to ... die` matches "want to just die".
Letters repeated for emphasis ("dieeee", "kiiill") match too, and so does a letter doubled by a
typo ("diee") in words of three or more letters.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from yaml.nodes import MappingNode, SequenceNode

from bot.domain.safety.files import SafetyContentError, compose, line_of, mapping, scalar
from bot.domain.safety.firsts import first_characters
from bot.domain.safety.normalise import normalize, screen_forms

__all__ = [
    "CATEGORY_RE",
    "LANGUAGE_RE",
    "Phrase",
    "PhraseError",
    "PhraseMatcher",
    "compile_phrase",
    "first_words",
    "load_phrase_file",
    "phrase_key",
]

CATEGORY_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")
LANGUAGE_RE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")
_PHRASE_TOKEN_RE = re.compile(
    r"\s*(?:\((?P<group>[^()]*)\)(?P<opt>\?)?|(?P<gap>\.\.\.)(?=\s|$)|(?P<word>[^\s()]+))"
)
_GAP_RE = r"(?: [^ ]{1,40}){0,2}"
_WILDCARD_RE = r"[^ ]*"
_MIN_WILDCARD_STEM = 3
_MAX_EXPANSIONS = 256


@dataclass(frozen=True)
class _Atom:
    word: str  # normalised, one word
    wildcard: bool


@dataclass(frozen=True)
class _Group:
    alternatives: tuple[tuple[_Atom, ...], ...]
    optional: bool


@dataclass(frozen=True)
class _Gap:
    pass


_Unit = _Atom | _Group | _Gap


@dataclass(frozen=True)
class Phrase:
    """One entry of a phrase file, compiled."""

    phrase: str
    category: str
    language: str
    path: Path
    line: int
    pattern: str = field(repr=False)  # regex body, without the word-boundary anchors
    masked_pattern: str = field(repr=False)  # same, tolerating "*" for any one letter


class PhraseError(ValueError):
    pass


def _atoms(raw_words: Sequence[str]) -> list[_Atom]:
    """Normalise consecutive words together (so "do not" becomes "dont"); keep wildcards."""
    atoms: list[_Atom] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            atoms.extend(_Atom(w, False) for w in normalize(" ".join(pending)).split())
            pending.clear()

    for raw in raw_words:
        if "*" in raw[:-1]:
            raise PhraseError(f"'*' may only end a word: {raw!r}")
        if raw.endswith("*"):
            flush()
            stem = normalize(raw[:-1]).split()
            if not stem or len(stem[-1]) < _MIN_WILDCARD_STEM:
                raise PhraseError(
                    f"{raw!r}: '*' needs at least {_MIN_WILDCARD_STEM} letters before it"
                )
            atoms.extend(_Atom(w, False) for w in stem[:-1])
            atoms.append(_Atom(stem[-1], True))
        else:
            pending.append(raw)
    flush()
    return atoms


def _parse_phrase(raw: str, *, short_ok: bool = False) -> list[_Unit]:
    units: list[_Unit] = []
    words: list[str] = []
    pos = 0
    text = raw.strip()

    def flush_words() -> None:
        if words:
            units.extend(_atoms(words))
            words.clear()

    while pos < len(text):
        m = _PHRASE_TOKEN_RE.match(text, pos)
        if m is None or m.end() == pos:
            rest = text[pos:].strip()
            if rest.startswith(("(", ")")):
                raise PhraseError(f"unbalanced or nested brackets near {rest[:20]!r}")
            raise PhraseError(f"cannot read the phrase near {rest[:20]!r}")
        pos = m.end()
        if m.group("word") is not None:
            word = m.group("word")
            if "..." in word:
                raise PhraseError("'...' must stand alone, with spaces around it")
            words.append(word)
            continue
        flush_words()
        if m.group("gap") is not None:
            units.append(_Gap())
            continue
        alternatives: list[tuple[_Atom, ...]] = []
        for alt in m.group("group").split("|"):
            alt_words = alt.split()
            if not alt_words:
                raise PhraseError(f"empty alternative in ({m.group('group')})")
            if "..." in alt_words:
                raise PhraseError("'...' cannot be used inside brackets")
            atoms = _atoms(alt_words)
            if not atoms:
                raise PhraseError(f"alternative {alt.strip()!r} has no letters or digits")
            alternatives.append(tuple(atoms))
        units.append(_Group(tuple(alternatives), optional=m.group("opt") is not None))
    flush_words()
    _check_units(units, short_ok=short_ok)
    return units


def _check_units(units: Sequence[_Unit], *, short_ok: bool = False) -> None:
    if not units:
        raise PhraseError("phrase is empty (no letters or digits)")
    for end in (units[0], units[-1]):
        if isinstance(end, _Gap):
            raise PhraseError("'...' must be between two words")
        if isinstance(end, _Group) and end.optional:
            raise PhraseError(
                "an optional part at the start or end changes nothing (a phrase already "
                "matches inside longer text); remove it"
            )
    for a, b in itertools.pairwise(units):
        if isinstance(a, _Gap) and isinstance(b, _Gap):
            raise PhraseError("two '...' in a row; one already allows two words")
        if (isinstance(a, _Gap) and isinstance(b, _Group) and b.optional) or (
            isinstance(b, _Gap) and isinstance(a, _Group) and a.optional
        ):
            raise PhraseError("'...' next to an optional part; write two phrases instead")
    if not short_ok and len(units) == 1 and isinstance(units[0], _Atom) and len(units[0].word) < 2:
        raise PhraseError("a one-word phrase needs at least 2 letters")


def _letter_re(c: str, masked: bool) -> str:
    return f"[{re.escape(c)}*]" if masked else re.escape(c)


def _atom_re(atom: _Atom, masked: bool) -> str:
    out: list[str] = []
    short = len(atom.word) <= 2
    for m in re.finditer(r"(.)\1*", atom.word):
        c, k = m.group(1), len(m.group(0))
        one = _letter_re(c, masked)
        if not c.isalpha():
            out.append(one * k)
        elif k >= 2:
            out.append(f"{one}{one}{one}?")  # "ll" also as "lll" (elongated, capped at 3)
        elif short:
            out.append(f"{one}(?:{one}{one})?")  # "od" as "od" or "oddd", never "odd"
        else:
            out.append(f"{one}{one}{{0,2}}")  # "die" as "diee" or "dieee" too
    if atom.wildcard:
        out.append(_WILDCARD_RE)
    return "".join(out)


def _seq_re(atoms: Sequence[_Atom], masked: bool) -> str:
    return " ?".join(_atom_re(a, masked) for a in atoms)


def _phrase_re(units: Sequence[_Unit], masked: bool) -> str:
    parts: list[str] = []
    sep = ""
    for unit in units:
        if isinstance(unit, _Gap):
            parts.append(_GAP_RE)
            sep = " "
            continue
        if isinstance(unit, _Atom):
            body = _atom_re(unit, masked)
        else:
            body = "(?:" + "|".join(_seq_re(alt, masked) for alt in unit.alternatives) + ")"
        if isinstance(unit, _Group) and unit.optional:
            parts.append(f"(?:{sep}{body})?")
        else:
            parts.append(sep + body)
        sep = " ?"
    return "".join(parts)


def _expansions(units: Sequence[_Unit]) -> list[str]:
    """Plain-text readings of a phrase (gaps empty, wildcards bare), for self-checking."""
    choices: list[list[str]] = []
    for unit in units:
        if isinstance(unit, _Gap):
            choices.append([""])
        elif isinstance(unit, _Atom):
            choices.append([unit.word])
        else:
            alts = [" ".join(a.word for a in alt) for alt in unit.alternatives]
            choices.append(["", *alts] if unit.optional else alts)
    out: list[str] = []
    for combo in itertools.islice(itertools.product(*choices), _MAX_EXPANSIONS):
        out.append(" ".join(part for part in combo if part))
    return out


# Words too common to trigger a look for a longer term: a term is looked for when a sentence
# holds one of its rarer words instead (see `first_words`).
_COMMON_WORDS = """
    a an the my i im ive id ill me myself you your it its is was be been am are to of in
    on for and or but so just not no dont do did will would could should can cant this
    that these those with at by from up out off all any some more than then there here
    what when how why if get got going go take took have has had make made let
"""
_COMMON = frozenset(_COMMON_WORDS.split())


def first_words(raw: str, *, short_ok: bool = False) -> tuple[list[str], list[str], bool]:
    """Words one of which every reading of the phrase contains (its rarest required part),
    the stems of wildcards in that part, and whether every reading is a single word (so it
    can be looked up word by word)."""
    units = _parse_phrase(raw, short_ok=short_ok)
    best: tuple[tuple[int, int], list[_Atom]] | None = None
    for unit in units:
        if isinstance(unit, _Gap) or (isinstance(unit, _Group) and unit.optional):
            continue
        if isinstance(unit, _Atom):
            atoms = [unit]
        else:
            # each alternative is found by one of its own words: its rarest
            atoms = [
                min(alt, key=lambda a: (a.word in _COMMON, -len(a.word)))
                for alt in unit.alternatives
            ]
        cost = (sum(a.word in _COMMON and not a.wildcard for a in atoms), len(atoms))
        if best is None or cost < best[0]:
            best = (cost, atoms)
    assert best is not None  # a phrase always has a required unit (checked when parsing)
    atoms = best[1]
    first = units[0]
    alternatives = [(first,)] if isinstance(first, _Atom) else list(first.alternatives)  # type: ignore[union-attr]
    single = len(units) == 1 and all(len(alt) == 1 for alt in alternatives)
    words = [a.word for a in atoms if not a.wildcard]
    stems = [a.word for a in atoms if a.wildcard]
    return words, stems, single


def compile_phrase(
    raw: str, category: str, language: str, path: Path, line: int, *, short_ok: bool = False
) -> Phrase:
    """`short_ok`: a one-letter word may stand alone (a concept term such as "i")."""
    units = _parse_phrase(raw, short_ok=short_ok)
    pattern = _phrase_re(units, masked=False)
    masked = _phrase_re(units, masked=True)
    try:
        own = re.compile(f" {pattern}(?= )")
    except re.error as exc:  # pragma: no cover - every piece is escaped; kept as a guard
        raise PhraseError(f"cannot compile phrase: {exc}") from exc
    for reading in _expansions(units):
        form, _ = screen_forms(reading)[0]
        if not own.search(form):
            raise PhraseError(
                f"phrase can never match its own words {reading!r}: messages are compared "
                f"as {form.strip()!r} (see the normalisation notes at the top of the file)"
            )
    return Phrase(raw.strip(), category, language, path, line, pattern, masked)


def load_phrase_file(path: Path) -> list[Phrase]:
    root = mapping(path, compose(path), "a mapping with 'language' and 'phrases'")
    fields = {key: (k, v) for key, k, v in root}
    for key, key_node, _ in root:
        if key not in ("language", "phrases"):
            raise SafetyContentError(
                path, line_of(key_node), f"unknown field {key!r} (allowed: language, phrases)"
            )
    for required in ("language", "phrases"):
        if required not in fields:
            raise SafetyContentError(path, 1, f"missing required field {required!r}")
    lang_node = fields["language"][1]
    language = scalar(lang_node)
    if language is None or not LANGUAGE_RE.fullmatch(language):
        raise SafetyContentError(
            path, line_of(lang_node), "language must be a code like 'en' or 'pt-BR'"
        )
    categories = mapping(path, fields["phrases"][1], "'phrases' as a mapping: category -> list")
    if not categories:
        raise SafetyContentError(path, line_of(fields["phrases"][0]), "'phrases' is empty")
    phrases: list[Phrase] = []
    seen: dict[str, tuple[str, int]] = {}
    for category, cat_node, items in categories:
        if not CATEGORY_RE.fullmatch(category):
            raise SafetyContentError(
                path,
                line_of(cat_node),
                f"category {category!r}: use lowercase letters, digits and hyphens",
            )
        if not isinstance(items, SequenceNode):
            raise SafetyContentError(
                path, line_of(items), f"category {category!r} must be a list of phrases"
            )
        if not items.value:
            raise SafetyContentError(path, line_of(cat_node), f"category {category!r} is empty")
        for item in items.value:
            line = line_of(item)
            if isinstance(item, MappingNode | SequenceNode):
                raise SafetyContentError(
                    path, line, "a phrase must be text (a ':' inside? put it in quotes)"
                )
            raw = scalar(item)
            if raw is None or not raw.strip():
                raise SafetyContentError(path, line, "empty phrase")
            key = phrase_key(raw)
            if key in seen:
                other_cat, other_line = seen[key]
                raise SafetyContentError(
                    path,
                    line,
                    f"duplicate phrase {raw.strip()!r} (also on line {other_line}, "
                    f"category {other_cat!r})",
                )
            seen[key] = (category, line)
            try:
                phrases.append(compile_phrase(raw, category, language, path, line))
            except PhraseError as exc:
                raise SafetyContentError(path, line, f"phrase {raw.strip()!r}: {exc}") from exc
    return phrases


def phrase_key(phrase: str) -> str:
    return " ".join(phrase.split()).casefold()


# (all phrases in one pattern, each phrase on its own)
_Compiled = tuple[re.Pattern[str] | None, tuple[re.Pattern[str], ...]]


@dataclass(frozen=True)
class PhraseMatcher:
    """Finds phrase list entries in the screening forms of a message."""

    phrases: tuple[Phrase, ...]
    _plain: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _any_plain: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    # The mask-tolerant patterns ("k*ll") are compiled on first use: few messages need them.
    _lazy: dict[str, _Compiled] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_plain", self._compile_each(masked=False))
        object.__setattr__(self, "_any_plain", self._compile_any(masked=False))
        object.__setattr__(self, "_lazy", {})

    def _compile_each(self, masked: bool) -> tuple[re.Pattern[str], ...]:
        return tuple(
            re.compile(f" (?:{p.masked_pattern if masked else p.pattern})(?= )")
            for p in self.phrases
        )

    def _compile_any(self, masked: bool) -> re.Pattern[str] | None:
        """Every phrase in one expression, grouped by first character (see firsts.py); it
        only finds where a phrase starts, `_compile_each` says which."""
        if not self.phrases:
            return None
        by_first: dict[str, list[str]] = {}
        anywhere: list[str] = []
        for phrase in self.phrases:
            body = phrase.masked_pattern if masked else phrase.pattern
            firsts = first_characters(body)
            for char in sorted(firsts) if firsts is not None else ():
                by_first.setdefault(char, []).append(body)
            if firsts is None:
                anywhere.append(body)
        groups = [
            f"(?={re.escape(char)})(?:{'|'.join(f'(?:{b})' for b in bodies)})"
            for char, bodies in sorted(by_first.items())
        ]
        groups.extend(f"(?:{b})" for b in anywhere)
        return re.compile(" (?:" + "|".join(groups) + ")(?= )")

    def _patterns(self, masked: bool) -> _Compiled:
        if not masked:
            return self._any_plain, self._plain
        if "masked" not in self._lazy:
            self._lazy["masked"] = (self._compile_any(masked=True), self._compile_each(True))
        return self._lazy["masked"]

    def first(self, forms: Sequence[tuple[str, bool]]) -> Phrase | None:
        """The leftmost phrase found in the forms, or None."""
        for form, masked in forms:
            combined, patterns = self._patterns(masked)
            if combined is None:
                return None
            found = combined.search(form)
            if found is None:
                continue
            for index, pattern in enumerate(patterns):
                if pattern.match(form, found.start()):
                    return self.phrases[index]
            for index, pattern in enumerate(patterns):  # pragma: no cover - defensive
                if pattern.search(form):
                    return self.phrases[index]
        return None

    def all(self, forms: Sequence[tuple[str, bool]]) -> list[Phrase]:
        """Every distinct phrase found, in order of where it first occurs."""
        found: dict[int, tuple[int, int]] = {}
        for form_index, (form, masked) in enumerate(forms):
            _, patterns = self._patterns(masked)
            for index, pattern in enumerate(patterns):
                if index in found:
                    continue
                m = pattern.search(form)
                if m is not None:
                    found[index] = (form_index, m.start())
        ordered = sorted(found, key=lambda i: (*found[i], i))
        return [self.phrases[i] for i in ordered]
