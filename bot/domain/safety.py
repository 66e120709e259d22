"""Crisis-language screening and the crisis texts.

Every free-text message a patient sends is screened here before it is stored or acknowledged.
The phrase lists live in content files (`<content dir>/safety/<language>.yaml`) that a clinical
lead reviews; the wording of every crisis message lives in `<content dir>/safety/resources.yaml`.
See docs/safety.md for what the screening does and does not do.

Design rules:
- Recall over precision: a phrase list match is never suppressed (there is no negation or
  exception logic), so "I'm not suicidal" alerts too.
- `Screener.screen` never raises on any `str` and runs in time linear in the text: phrases are
  compiled into one regex whose only repetitions are bounded and anchored at word boundaries.
- Pure Python (stdlib + PyYAML): no Telegram, no database, so "Need help now" and screening work
  while the database is down.

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

import html
import itertools
import re
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "CRISIS_TEXT_FIELDS",
    "RESOURCES_FILE",
    "CrisisTexts",
    "Match",
    "Phrase",
    "SafetyContentError",
    "Screener",
    "load_crisis_texts",
    "load_screener",
    "normalize",
]

SAFETY_SUBDIR = "safety"
RESOURCES_FILE = "resources.yaml"


class SafetyContentError(Exception):
    """A safety content file is invalid. Names the file and the line, for the reviewer."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path = Path(path)
        self.line = max(int(line), 1)
        self.message = message
        super().__init__(f"{self.path}:{self.line}: {message}")


# --- normalisation ------------------------------------------------------------------------

# Apostrophes (and look-alikes) are deleted, so "can't", "can’t" and "cant" read the same.
_APOSTROPHES = "'\u2019\u2018\u02bc\u02b9\u02bb`\u00b4\u2032\uff07\u201b"
# Letters that NFKD does not decompose into a base letter.
_LETTER_MAP = {
    "ł": "l",
    "Ł": "l",
    "ø": "o",
    "Ø": "o",
    "đ": "d",
    "Đ": "d",
    "ħ": "h",
    "Ħ": "h",
    "ı": "i",
    "æ": "ae",
    "Æ": "ae",
    "œ": "oe",
    "Œ": "oe",
}
_PRE_TABLE = str.maketrans({**dict.fromkeys(_APOSTROPHES, "'"), **_LETTER_MAP})
# "OD'd" would otherwise become "odd" once the apostrophe is dropped.
_OD_D_RE = re.compile(r"(?<![^\W_])od'd(?![^\W_])")
_DROP_CATEGORIES = frozenset({"Mn", "Mc", "Me", "Cf"})
_LETTER = r"[^\W\d_]"
# Leetspeak, only where it cannot be a number: a digit or symbol with a letter on both sides
# ("k1ll", "su1c1de", "k!ll"), and "$" before a letter ("$uicide").
_LEET_TABLE = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "!": "i", "@": "a", "$": "s"}
)
_LEET_RE = re.compile(rf"(?<={_LETTER})[013457!@$](?={_LETTER})|\$(?={_LETTER})")
# A "*" that hides one letter ("k*ll", "s*icide") is kept in the screening form only.
_LONE_STAR_RE = re.compile(rf"(?<!{_LETTER})\*|\*(?!{_LETTER})")
_NON_WORD_RE = re.compile(r"[\W_]+")
_NON_WORD_KEEP_STAR_RE = re.compile(r"(?:[^\w*]|_)+")
_RUN_RES = {n: re.compile(rf"({_LETTER})\1{{{n},}}") for n in (2, 3)}
# Spelled-out letters: "k i l l" (three or more single letters in a row).
_SPACED_LETTERS_RE = re.compile(rf"(?<![^ ])(?:{_LETTER} ){{2,}}{_LETTER}(?![^ ])")

# A few spellings that mean the same words, so phrase lists need one form only. Applied to
# phrases and messages alike, so it can never stop a phrase from matching its own words.
_CANONICAL: Mapping[str, str] = MappingProxyType(
    {
        "cannot": "cant",
        "can not": "cant",
        "do not": "dont",
        "does not": "doesnt",
        "did not": "didnt",
        "is not": "isnt",
        "are not": "arent",
        "was not": "wasnt",
        "were not": "werent",
        "have not": "havent",
        "has not": "hasnt",
        "had not": "hadnt",
        "could not": "couldnt",
        "would not": "wouldnt",
        "should not": "shouldnt",
        "will not": "wont",
        "i am": "im",
        "wanna": "want to",
        "wana": "want to",
        "gonna": "going to",
        "any more": "anymore",
        "no one": "noone",
        "my self": "myself",
    }
)
_CANONICAL_RE = re.compile(
    r"(?<![^ ])(?:"
    + "|".join(re.escape(k) for k in sorted(_CANONICAL, key=len, reverse=True))
    + r")(?![^ ])"
)


def _fold(text: str) -> str:
    text = text.translate(_PRE_TABLE)
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text).casefold()
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if unicodedata.category(c) not in _DROP_CATEGORIES)


def _normalize(text: str, *, max_run: int, keep_masks: bool, leet: bool = True) -> str:
    text = _fold(text)
    if "'" in text:
        text = _OD_D_RE.sub("oded", text).replace("'", "")
    if leet:
        text = _LEET_RE.sub(lambda m: m.group(0).translate(_LEET_TABLE), text)
    if keep_masks and "*" in text:
        text = _LONE_STAR_RE.sub(" ", text)
        text = _NON_WORD_KEEP_STAR_RE.sub(" ", text)
    else:
        text = _NON_WORD_RE.sub(" ", text)
    text = text.strip()
    text = _RUN_RES[max_run].sub(lambda m: m.group(1) * max_run, text)
    return _CANONICAL_RE.sub(lambda m: _CANONICAL[m.group(0)], text)


def normalize(text: str) -> str:
    """The comparable form of `text`: what phrases and messages are matched on.

    Case-folded; accents stripped (NFKD, combining marks dropped; fullwidth and other
    compatibility forms become plain letters); apostrophes dropped ("can't" -> "cant");
    leetspeak undone only between letters ("k1ll", "k!ll" -> "kill", "$uicide" -> "suicide");
    every other punctuation, symbol, emoji and whitespace run becomes one space; letters
    repeated 3+ times become 2 ("dieeee" -> "diee"); a few equivalent spellings are unified
    ("cannot"/"can not" -> "cant", "do not" -> "dont", "i am" -> "im", "wanna" -> "want to",
    "any more" -> "anymore", "no one" -> "noone", "my self" -> "myself", "OD'd" -> "oded").
    """
    return _normalize(text, max_run=2, keep_masks=False)


def _screen_forms(text: str) -> list[tuple[str, bool]]:
    """The padded forms a message is screened in: (form, has masked letters)."""
    form = _normalize(text, max_run=3, keep_masks=True)
    forms = [(f" {form} ", "*" in form)]
    joined = _SPACED_LETTERS_RE.sub(lambda m: m.group(0).replace(" ", ""), form)
    if joined != form:
        forms.append((f" {joined} ", "*" in joined))
    if "*" in text or _LEET_RE.search(text):
        # "omg!kill myself": read "!", "*", digits as plain punctuation too, so a disguise
        # rule can never hide a word that starts right after one.
        plain = _normalize(text, max_run=3, keep_masks=False, leet=False)
        if plain != form:
            forms.append((f" {plain} ", False))
    return forms


def _fallback_form(text: str) -> list[tuple[str, bool]]:
    # Only reached if normalisation itself failed on some unforeseen input: screen a plain
    # lower-cased form rather than not screening at all.
    return [(" " + _NON_WORD_RE.sub(" ", text.lower()).strip() + " ", False)]


# --- phrases -----------------------------------------------------------------------------

_CATEGORY_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")
_LANGUAGE_RE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")
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
class Match:
    phrase: str  # the phrase list entry that matched, as written (never the patient's text)
    category: str
    language: str


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


class _PhraseError(ValueError):
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
            raise _PhraseError(f"'*' may only end a word: {raw!r}")
        if raw.endswith("*"):
            flush()
            stem = normalize(raw[:-1]).split()
            if not stem or len(stem[-1]) < _MIN_WILDCARD_STEM:
                raise _PhraseError(
                    f"{raw!r}: '*' needs at least {_MIN_WILDCARD_STEM} letters before it"
                )
            atoms.extend(_Atom(w, False) for w in stem[:-1])
            atoms.append(_Atom(stem[-1], True))
        else:
            pending.append(raw)
    flush()
    return atoms


def _parse_phrase(raw: str) -> list[_Unit]:
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
                raise _PhraseError(f"unbalanced or nested brackets near {rest[:20]!r}")
            raise _PhraseError(f"cannot read the phrase near {rest[:20]!r}")
        pos = m.end()
        if m.group("word") is not None:
            word = m.group("word")
            if "..." in word:
                raise _PhraseError("'...' must stand alone, with spaces around it")
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
                raise _PhraseError(f"empty alternative in ({m.group('group')})")
            if "..." in alt_words:
                raise _PhraseError("'...' cannot be used inside brackets")
            atoms = _atoms(alt_words)
            if not atoms:
                raise _PhraseError(f"alternative {alt.strip()!r} has no letters or digits")
            alternatives.append(tuple(atoms))
        units.append(_Group(tuple(alternatives), optional=m.group("opt") is not None))
    flush_words()
    _check_units(units)
    return units


def _check_units(units: Sequence[_Unit]) -> None:
    if not units:
        raise _PhraseError("phrase is empty (no letters or digits)")
    for end in (units[0], units[-1]):
        if isinstance(end, _Gap):
            raise _PhraseError("'...' must be between two words")
        if isinstance(end, _Group) and end.optional:
            raise _PhraseError(
                "an optional part at the start or end changes nothing (a phrase already "
                "matches inside longer text); remove it"
            )
    for a, b in itertools.pairwise(units):
        if isinstance(a, _Gap) and isinstance(b, _Gap):
            raise _PhraseError("two '...' in a row; one already allows two words")
        if (isinstance(a, _Gap) and isinstance(b, _Group) and b.optional) or (
            isinstance(b, _Gap) and isinstance(a, _Group) and a.optional
        ):
            raise _PhraseError("'...' next to an optional part; write two phrases instead")
    if len(units) == 1 and isinstance(units[0], _Atom) and len(units[0].word) < 2:
        raise _PhraseError("a one-word phrase needs at least 2 letters")


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


def _compile_phrase(raw: str, category: str, language: str, path: Path, line: int) -> Phrase:
    units = _parse_phrase(raw)
    pattern = _phrase_re(units, masked=False)
    masked = _phrase_re(units, masked=True)
    try:
        own = re.compile(f" {pattern}(?= )")
    except re.error as exc:  # pragma: no cover - every piece is escaped; kept as a guard
        raise _PhraseError(f"cannot compile phrase: {exc}") from exc
    for reading in _expansions(units):
        form, _ = _screen_forms(reading)[0]
        if not own.search(form):
            raise _PhraseError(
                f"phrase can never match its own words {reading!r}: messages are compared "
                f"as {form.strip()!r} (see the normalisation notes at the top of the file)"
            )
    return Phrase(raw.strip(), category, language, path, line, pattern, masked)


# (all phrases in one pattern, each phrase on its own)
_Compiled = tuple[re.Pattern[str] | None, tuple[re.Pattern[str], ...]]


@dataclass(frozen=True)
class Screener:
    """Screens text against every loaded phrase. Build with `load_screener`."""

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
        if not self.phrases:
            return None
        bodies = (p.masked_pattern if masked else p.pattern for p in self.phrases)
        return re.compile(" (?:" + "|".join(f"(?:{b})" for b in bodies) + ")(?= )")

    def _patterns(self, masked: bool) -> _Compiled:
        if not masked:
            return self._any_plain, self._plain
        if "masked" not in self._lazy:
            self._lazy["masked"] = (self._compile_any(masked=True), self._compile_each(True))
        return self._lazy["masked"]

    def _forms(self, text: str) -> list[tuple[str, bool]]:
        try:
            return _screen_forms(text)
        except Exception:  # never let an odd input skip screening
            return _fallback_form(text)

    def _match(self, index: int) -> Match:
        p = self.phrases[index]
        return Match(p.phrase, p.category, p.language)

    def screen(self, text: str) -> Match | None:
        """The first (leftmost) phrase found in `text`, or None. Never raises on a str."""
        for form, masked in self._forms(text):
            combined, patterns = self._patterns(masked)
            if combined is None:
                return None
            found = combined.search(form)
            if found is None:
                continue
            for index, pattern in enumerate(patterns):
                if pattern.match(form, found.start()):
                    return self._match(index)
            for index, pattern in enumerate(patterns):  # pragma: no cover - defensive
                if pattern.search(form):
                    return self._match(index)
        return None

    def screen_all(self, text: str) -> list[Match]:
        """Every distinct phrase found in `text`, in order of where it first occurs."""
        found: dict[int, tuple[int, int]] = {}
        for form_index, (form, masked) in enumerate(self._forms(text)):
            _, patterns = self._patterns(masked)
            for index, pattern in enumerate(patterns):
                if index in found:
                    continue
                m = pattern.search(form)
                if m is not None:
                    found[index] = (form_index, m.start())
        ordered = sorted(found, key=lambda i: (*found[i], i))
        return [self._match(i) for i in ordered]


# --- loading -----------------------------------------------------------------------------


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _compose(path: Path) -> Node | None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SafetyContentError(path, 1, f"file is not valid UTF-8 ({exc.reason})") from exc
    except OSError as exc:
        raise SafetyContentError(path, 1, f"cannot read file: {exc.strerror or exc}") from exc
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = exc.problem or exc.context or "invalid YAML"
        line = mark.line + 1 if mark else 1
        raise SafetyContentError(path, line, f"YAML syntax error: {detail}") from exc
    except yaml.YAMLError as exc:
        raise SafetyContentError(path, 1, f"YAML syntax error: {exc}") from exc


def _mapping(path: Path, node: Node | None, what: str) -> list[tuple[str, Node, Node]]:
    if node is None:
        raise SafetyContentError(path, 1, f"file is empty; expected {what}")
    if not isinstance(node, MappingNode):
        raise SafetyContentError(path, _line(node), f"expected {what}")
    items: list[tuple[str, Node, Node]] = []
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            raise SafetyContentError(path, _line(key_node), "keys must be plain names")
        key = str(key_node.value)
        if key in seen:
            raise SafetyContentError(
                path, _line(key_node), f"duplicate key {key!r} (first on line {seen[key]})"
            )
        seen[key] = _line(key_node)
        items.append((key, key_node, value_node))
    return items


def _scalar(node: Node) -> str | None:
    if not isinstance(node, ScalarNode) or node.tag == "tag:yaml.org,2002:null":
        return None
    return str(node.value)  # source text: `- no` stays the word "no", not a boolean


def _iter_safety_files(dirs: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    visited: set[Path] = set()
    for raw_dir in dirs:
        folder = Path(raw_dir)
        if not folder.is_dir():
            raise SafetyContentError(folder, 1, "content folder does not exist")
        if folder.resolve() in visited:
            continue
        visited.add(folder.resolve())
        safety = folder / SAFETY_SUBDIR
        if not safety.is_dir():
            continue
        for path in sorted(safety.iterdir()):
            if path.name.startswith("."):
                continue
            if path.is_dir():
                if any(path.rglob("*.yaml")):
                    raise SafetyContentError(
                        path, 1, f"subfolders are not loaded; move these files into {safety}"
                    )
            elif path.suffix == ".yml":
                raise SafetyContentError(path, 1, "only .yaml files are loaded; rename to .yaml")
            elif path.suffix == ".yaml":
                files.append(path)
    return files


def _load_phrase_file(path: Path) -> list[Phrase]:
    root = _mapping(path, _compose(path), "a mapping with 'language' and 'phrases'")
    fields = {key: (k, v) for key, k, v in root}
    for key, key_node, _ in root:
        if key not in ("language", "phrases"):
            raise SafetyContentError(
                path, _line(key_node), f"unknown field {key!r} (allowed: language, phrases)"
            )
    for required in ("language", "phrases"):
        if required not in fields:
            raise SafetyContentError(path, 1, f"missing required field {required!r}")
    lang_node = fields["language"][1]
    language = _scalar(lang_node)
    if language is None or not _LANGUAGE_RE.fullmatch(language):
        raise SafetyContentError(
            path, _line(lang_node), "language must be a code like 'en' or 'pt-BR'"
        )
    categories = _mapping(path, fields["phrases"][1], "'phrases' as a mapping: category -> list")
    if not categories:
        raise SafetyContentError(path, _line(fields["phrases"][0]), "'phrases' is empty")
    phrases: list[Phrase] = []
    seen: dict[str, tuple[str, int]] = {}
    for category, cat_node, items in categories:
        if not _CATEGORY_RE.fullmatch(category):
            raise SafetyContentError(
                path,
                _line(cat_node),
                f"category {category!r}: use lowercase letters, digits and hyphens",
            )
        if not isinstance(items, SequenceNode):
            raise SafetyContentError(
                path, _line(items), f"category {category!r} must be a list of phrases"
            )
        if not items.value:
            raise SafetyContentError(path, _line(cat_node), f"category {category!r} is empty")
        for item in items.value:
            line = _line(item)
            if isinstance(item, MappingNode | SequenceNode):
                raise SafetyContentError(
                    path, line, "a phrase must be text (a ':' inside? put it in quotes)"
                )
            raw = _scalar(item)
            if raw is None or not raw.strip():
                raise SafetyContentError(path, line, "empty phrase")
            key = _phrase_key(raw)
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
                phrases.append(_compile_phrase(raw, category, language, path, line))
            except _PhraseError as exc:
                raise SafetyContentError(path, line, f"phrase {raw.strip()!r}: {exc}") from exc
    return phrases


def load_screener(dirs: Sequence[Path]) -> Screener:
    """Load every `<dir>/safety/*.yaml` phrase file (except resources.yaml), in order.

    Pass the same folders as the content loader: `[builtin_dir(), *dirs_from_env()]`. Later
    folders only add phrases; nothing can remove a built-in phrase. Raises SafetyContentError
    on the first problem, and when no phrase at all was found.
    """
    phrases: list[Phrase] = []
    seen: set[tuple[str, str]] = set()
    for path in _iter_safety_files(dirs):
        if path.name == RESOURCES_FILE:
            continue
        for phrase in _load_phrase_file(path):
            key = (phrase.language, _phrase_key(phrase.phrase))
            if key not in seen:
                seen.add(key)
                phrases.append(phrase)
    if not phrases:
        where = Path(dirs[0]) / SAFETY_SUBDIR if dirs else Path(SAFETY_SUBDIR)
        raise SafetyContentError(
            where, 1, "no safety phrases found: expected <content dir>/safety/<language>.yaml"
        )
    return Screener(tuple(phrases))


def _phrase_key(phrase: str) -> str:
    return " ".join(phrase.split()).casefold()


# --- crisis texts ------------------------------------------------------------------------

DEFAULT_CLINIC_PHONE_LINE = "You can also call your clinic: <b>{clinic_phone}</b>"

# field -> (allowed placeholders, required placeholders)
_TEXT_RULES: Mapping[str, tuple[frozenset[str], frozenset[str]]] = MappingProxyType(
    {
        "patient_resources": (frozenset({"clinic_phone_line"}), frozenset()),
        "clinic_phone_line": (frozenset({"clinic_phone"}), frozenset({"clinic_phone"})),
        "therapist_alert": (
            frozenset({"pseudonym", "local_time", "text"}),
            frozenset({"pseudonym", "text"}),
        ),
        "oncall_escalation": (
            frozenset({"pseudonym", "local_time", "text", "therapist", "minutes"}),
            frozenset({"pseudonym", "text"}),
        ),
        "acknowledged": (frozenset({"who", "time"}), frozenset({"who"})),
        "checkin_risk_alert": (
            frozenset({"pseudonym", "local_time", "question", "answer"}),
            frozenset({"pseudonym", "answer"}),
        ),
    }
)
CRISIS_TEXT_FIELDS: tuple[str, ...] = tuple(_TEXT_RULES)
_REQUIRED_TEXTS = (
    "patient_resources",
    "therapist_alert",
    "oncall_escalation",
    "acknowledged",
    "checkin_risk_alert",
)
_TELEGRAM_LIMIT = 4096
_HTML_TOKEN_RE = re.compile(r"<[^<>]*>|&[^&;\s<>]*;?|[<>]")
_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
_PHONE_LINE_RE = re.compile(r"^[ \t]*\{clinic_phone_line\}[ \t]*(?:\n|\Z)", re.MULTILINE)


@dataclass(frozen=True)
class CrisisTexts:
    """Every crisis message the bot sends, as Telegram HTML (<b> and <i> only).

    Placeholders are filled by the caller with str.format and already-escaped values, e.g.
    `texts.therapist_alert.format(pseudonym=..., local_time=..., text=html.escape(reply))`.
    """

    patient_resources: str
    therapist_alert: str
    oncall_escalation: str
    acknowledged: str
    checkin_risk_alert: str
    clinic_phone_line: str = DEFAULT_CLINIC_PHONE_LINE

    def resources(self, clinic_phone: str | None) -> str:
        """The patient's crisis resources; `clinic_phone` is the raw configured number.

        With a phone, {clinic_phone_line} becomes that line (the number HTML-escaped here);
        without one, a line holding only the placeholder is removed.
        """
        phone = (clinic_phone or "").strip()
        if phone:
            line = self.clinic_phone_line.format(clinic_phone=html.escape(phone, quote=False))
            text = self.patient_resources.format(clinic_phone_line=line)
        else:
            text = _PHONE_LINE_RE.sub("", self.patient_resources)
            text = text.format(clinic_phone_line="")
        return re.sub(r"\n{3,}", "\n\n", text).strip()


def _check_html(text: str) -> str | None:
    stack: list[str] = []
    for m in _HTML_TOKEN_RE.finditer(text):
        token = m.group(0)
        if token.startswith("&"):
            if not _ENTITY_RE.fullmatch(token):
                return "bare '&': write &amp; (or &lt; &gt; &quot;)"
        elif token in ("<", ">"):
            return f"bare {token!r}: write &lt; or &gt;"
        elif token in ("<b>", "<i>"):
            stack.append(token[1])
        elif token in ("</b>", "</i>"):
            if not stack or stack[-1] != token[2]:
                return f"{token} does not close the most recent open tag"
            stack.pop()
        else:
            return f"tag {token} is not allowed: crisis texts use only <b> and <i>"
    if stack:
        return f"<{stack[-1]}> is never closed"
    return None


def _check_placeholders(name: str, text: str) -> str | None:
    allowed, required = _TEXT_RULES[name]
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        return f"bad braces ({exc}); write {{{{ and }}}} for literal braces"
    used: set[str] = set()
    for _, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name not in allowed:
            return (
                f"unknown placeholder {{{field_name}}} (allowed: "
                + ", ".join(f"{{{a}}}" for a in sorted(allowed))
                + ")"
            )
        if spec or conversion:
            return f"placeholder {{{field_name}}} cannot have a format or conversion"
        used.add(field_name)
    missing = sorted(required - used)
    if missing:
        return "missing placeholder " + ", ".join(f"{{{m}}}" for m in missing)
    return None


def _load_resources_file(path: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name, key_node, value_node in _mapping(path, _compose(path), "a mapping of crisis texts"):
        if name not in _TEXT_RULES:
            raise SafetyContentError(
                path,
                _line(key_node),
                f"unknown field {name!r} (allowed: {', '.join(CRISIS_TEXT_FIELDS)})",
            )
        raw = _scalar(value_node)
        if raw is None or not raw.strip():
            raise SafetyContentError(path, _line(key_node), f"{name} must be non-empty text")
        text = raw.strip()
        problem = _check_html(text) or _check_placeholders(name, text)
        if problem is None and len(text) > _TELEGRAM_LIMIT // 2:
            problem = f"too long ({len(text)} characters; keep crisis texts short)"
        if problem:
            raise SafetyContentError(path, _line(value_node), f"{name}: {problem}")
        texts[name] = text
    return texts


def load_crisis_texts(dirs: Sequence[Path]) -> CrisisTexts:
    """Read `<dir>/safety/resources.yaml` from each folder; later folders override keys.

    Pass the same folders as the content loader: `[builtin_dir(), *dirs_from_env()]`.
    """
    merged: dict[str, str] = {}
    last: Path | None = None
    for path in _iter_safety_files(dirs):
        if path.name == RESOURCES_FILE:
            merged.update(_load_resources_file(path))
            last = path
    folder = Path(dirs[0]) if dirs else Path()
    where = last or folder / SAFETY_SUBDIR / RESOURCES_FILE
    missing = [name for name in _REQUIRED_TEXTS if name not in merged]
    if missing:
        raise SafetyContentError(where, 1, "missing crisis text(s): " + ", ".join(missing))
    return CrisisTexts(
        patient_resources=merged["patient_resources"],
        therapist_alert=merged["therapist_alert"],
        oncall_escalation=merged["oncall_escalation"],
        acknowledged=merged["acknowledged"],
        checkin_risk_alert=merged["checkin_risk_alert"],
        clinic_phone_line=merged.get("clinic_phone_line", DEFAULT_CLINIC_PHONE_LINE),
    )
