"""The comparable form of a message: what phrases and concepts are matched on.

Case, accents, apostrophes, punctuation, emoji, stretched letters, leetspeak between letters and
a few equivalent spellings are all folded away, so reviewers write one form of each word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["concept_form", "fallback_form", "normalize", "screen_forms"]

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
# Leetspeak, only where it cannot be a number: digits or symbols with a letter on both sides
# ("k1ll", "su1c1de", "k!ll", "be77er"), and "$" before a letter ("$uicide").
_LEET_TABLE = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "!": "i", "@": "a", "$": "s"}
)
_LEET_RE = re.compile(rf"(?<={_LETTER})[013457!@$]+(?={_LETTER})|\$(?={_LETTER})")
# Leetspeak at a word's edge ("3nd i7", "d13") is read in an extra screening form only, and only
# in a word of letters and those digits: a number alone ("7/10", "17:00") has no letters, and
# a number with a unit or an ordinal ("7pm", "50mg", "1st") stays a number.
_LEET_DIGITS = frozenset("013457")
_ALNUM_WORD_RE = re.compile(r"[^\W_]+")
_NUMBER_WITH_UNIT_RE = re.compile(
    r"[0-9]+(?:st|rd|th|am|pm|h|hrs?|m|mins?|s|secs?|d|x|k|g|kg|mg|mcg|ml|lbs?|km|mi|ft|yo|yrs?)"
)
# A "*" that hides one letter ("k*ll", "s*icide") is kept in the screening form only.
_LONE_STAR_RE = re.compile(rf"(?<!{_LETTER})\*|\*(?!{_LETTER})")
_NON_WORD_RE = re.compile(r"[\W_]+")
_NON_WORD_KEEP_STAR_RE = re.compile(r"(?:[^\w*]|_)+")
_RUN_RES = {n: re.compile(rf"({_LETTER})\1{{{n},}}") for n in (2, 3)}
# Spelled-out letters: "k i l l", "d i e" (three or more single letters in a row).
_SPACED_LETTERS_RE = re.compile(rf"(?<![^ ])(?:{_LETTER} ){{2,}}{_LETTER}(?![^ ])")
# One-letter words that often stand right before a spelled-out word ("after i d i e").
_ONE_LETTER_WORDS = frozenset({"i", "a"})

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


# Emoji that stand for a word in how people talk about it ("the 🪦 is looking comfy"): read
# as that word by the concept layer only (the phrase list stays about words).
_EMOJI_WORDS = str.maketrans(
    {
        "\U0001faa6": " headstone ",  # 🪦
        "\u26b0": " coffin ",  # ⚰
        "\U0001f48a": " pills ",  # 💊
        "\U0001f52a": " knife ",  # 🔪
        "\U0001fa78": " blood ",  # 🩸
        "\U0001f52b": " gun ",  # 🔫
        "\U0001faa2": " rope ",  # 🪢
        "\U0001f309": " bridge ",  # 🌉
        "\u2702": " scissors ",  # ✂
        "\U0001f51c": " soon ",  # 🔜
    }
)


def _join_spaced(form: str) -> str:
    return _SPACED_LETTERS_RE.sub(lambda m: m.group(0).replace(" ", ""), form)


def _join_spaced_after_a_word(form: str) -> str:
    """Like `_join_spaced`, but a one-letter word starting a run of four or more stays a word:
    "i k i l l" -> "i kill" where `_join_spaced` reads "ikill"."""

    def join(m: re.Match[str]) -> str:
        letters = m.group(0).split(" ")
        if len(letters) > 3 and letters[0] in _ONE_LETTER_WORDS:
            return letters[0] + " " + "".join(letters[1:])
        return "".join(letters)

    return _SPACED_LETTERS_RE.sub(join, form)


def _leet_word(m: re.Match[str]) -> str:
    word = m.group(0)
    digits = {c for c in word if not c.isalpha()}
    readable = digits and digits <= _LEET_DIGITS and not word.isdigit()
    if not readable or _NUMBER_WITH_UNIT_RE.fullmatch(word):
        return word
    return word.translate(_LEET_TABLE)


def concept_form(text: str) -> str:
    """`normalize`, keeping a "*" that hides a letter ("s*icide"), joining spelled-out
    letters ("k i l l") and reading a few emoji as words: the form the concept layer reads."""
    form = _normalize(text.translate(_EMOJI_WORDS), max_run=2, keep_masks=True)
    return _join_spaced(form)


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


def screen_forms(text: str) -> list[tuple[str, bool]]:
    """The padded forms a message is screened in: (form, has masked letters).

    Besides the `normalize`-like form: spelled-out letters joined (both ways when a one-letter
    word starts the run), leetspeak at word edges read ("3nd i7"), and "!", "*" and digits as
    plain punctuation. Each extra form can only add alerts."""
    form = _normalize(text, max_run=3, keep_masks=True)
    forms = [(f" {form} ", "*" in form)]
    joined = _join_spaced(form)
    if joined != form:
        forms.append((f" {joined} ", "*" in joined))
        # Both readings of "i d i e" ("idie", "i die"): an extra form can only add alerts.
        apart = _join_spaced_after_a_word(form)
        if apart != joined:
            forms.append((f" {apart} ", "*" in apart))
    edges = _ALNUM_WORD_RE.sub(_leet_word, form)
    if edges != form:
        forms.append((f" {edges} ", "*" in edges))
    if "*" in text or _LEET_RE.search(text):
        # "omg!kill myself": read "!", "*", digits as plain punctuation too, so a disguise
        # rule can never hide a word that starts right after one.
        plain = _normalize(text, max_run=3, keep_masks=False, leet=False)
        if plain != form:
            forms.append((f" {plain} ", False))
    return forms


def fallback_form(text: str) -> list[tuple[str, bool]]:
    # Only reached if normalisation itself failed on some unforeseen input: screen a plain
    # lower-cased form rather than not screening at all.
    return [(" " + _NON_WORD_RE.sub(" ", text.lower()).strip() + " ", False)]
