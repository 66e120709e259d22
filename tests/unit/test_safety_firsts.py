"""The first-character reading that groups the phrase expression: it may only ever widen
(say "any") — a character it leaves out would be a phrase never found."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.safety.firsts import first_characters
from bot.domain.safety.normalise import screen_forms
from bot.domain.safety.phrases import PhraseMatcher, compile_phrase


def test_literals_alternatives_and_stretches() -> None:
    assert first_characters("kill") == {"k"}
    assert first_characters("(?:bb{0,2}ii{0,2}n|ww{0,2}e)") == {"b", "w"}
    assert first_characters("(?:a(?:aa)?n|uu{0,2}b)") == {"a", "u"}
    assert first_characters("[xy]z") == {"x", "y"}
    assert first_characters("o?d") == {"o", "d"}  # an optional start looks past it


def test_what_it_cannot_bound_is_any() -> None:
    assert first_characters("[^ ]*end") is None
    assert first_characters(r"\w+") is None
    assert first_characters("a?") is None  # may match nothing at all
    assert first_characters("(") is None  # not even a pattern


PHRASES = [
    "kill myself",
    "end it all",
    "not be here",
    "no reason to live",
    "overdose",
    "i want to die",
    "unalive",
    "ich will sterben",
    "quiero morir",
]
MATCHER = PhraseMatcher(
    tuple(compile_phrase(p, "test", "en", Path("t.yaml"), n) for n, p in enumerate(PHRASES))
)
EACH = [re.compile(f" (?:{p.pattern})(?= )") for p in MATCHER.phrases]
TEXT = st.lists(
    st.sampled_from([*" ".join(PHRASES).split(), "kiill", "myselff", "la", "the", "dog", "a"]),
    max_size=12,
).map(" ".join)


@given(TEXT)
def test_the_grouped_expression_finds_the_leftmost_phrase_each_pattern_finds(text: str) -> None:
    forms = screen_forms(text)
    expected = None
    for form, _ in forms:
        hits = [(m.start(), i) for i, r in enumerate(EACH) if (m := r.search(form))]
        if hits:
            expected = MATCHER.phrases[min(hits)[1]]
            break
    assert MATCHER.first(forms) == expected
