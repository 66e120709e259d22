"""Disguised words that docs/safety.md promises are read as the plain word: spelled-out letters
("d i e", "k i l l") and leetspeak inside words ("be77er"), without reading ordinary text
(lists of letters, check-in scores, times) as something else."""

from __future__ import annotations

import pytest

from bot.domain.content import builtin_dir
from bot.domain.safety import Screener, load_screener
from bot.domain.safety.normalise import concept_form, normalize, screen_forms


@pytest.fixture(scope="module")
def screener() -> Screener:
    return load_screener([builtin_dir()])


def forms(text: str) -> list[str]:
    return [form.strip() for form, _ in screen_forms(text)]


# --- spelled-out letters -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "joined"),
    [
        ("i want to d i e", "i want to die"),  # three letters: the shortest spelled-out word
        ("i want to d-i-e", "i want to die"),
        ("i want to c u t myself", "i want to cut myself"),
        ("k i l l myself", "kill myself"),
        ("s u i c i d e", "suicide"),
    ],
)
def test_spelled_out_words_are_joined(raw: str, joined: str) -> None:
    assert joined in forms(raw)
    assert concept_form(raw) == joined


@pytest.mark.parametrize(
    "text",
    [
        "i want to d i e",
        "i just want to d i e tonight",
        "i wish i was d e a d",
        "i want to c u t myself",
        "k i l l myself",
        "i k i l l myself",  # the pronoun stays a word: not "ikill"
        "i dont care what happens after i d i e",
    ],
)
def test_spelled_out_risk_words_alert(screener: Screener, text: str) -> None:
    assert screener.screen(text) is not None, forms(text)


@pytest.mark.parametrize(
    ("raw", "form"),
    [
        ("I am a bit tired", "im a bit tired"),  # single letters next to words stay words
        ("plan a or b", "plan a or b"),
        ("part a b and c", "part a b and c"),  # two letters in a row are not a spelled word
        ("vitamin d a day", "vitamin d a day"),
    ],
)
def test_ordinary_single_letters_are_not_joined(raw: str, form: str) -> None:
    assert normalize(raw) == form
    assert concept_form(raw) == form
    assert forms(raw) == [form]


@pytest.mark.parametrize(
    "text",
    [
        "options a b c",
        "I a m",
        "tick a, b, c or d",
        "I went with a, d, i and e from the list",
        "answers: a d i e",  # whichever way the letters are joined, a list is not a risk
    ],
)
def test_lists_of_letters_do_not_alert(screener: Screener, text: str) -> None:
    assert screener.screen(text) is None, forms(text)


# --- leetspeak -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("overd0se", "overdose"),
        ("k1ll", "kill"),
        ("mys3lf", "myself"),
        ("h4rm", "harm"),
        ("hopele5s", "hopeless"),
        ("wi7hout me", "without me"),
        ("be77er off dead", "better off dead"),  # a run of digits between letters
        ("h@rm", "harm"),
    ],
)
def test_leetspeak_between_letters_is_undone(raw: str, plain: str) -> None:
    assert normalize(raw) == plain


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("I want to 3nd i7", "i want to end it"),
        ("i want to d13", "i want to die"),
    ],
)
def test_leetspeak_at_a_word_edge_is_read_when_screening(raw: str, plain: str) -> None:
    assert plain in forms(raw)


@pytest.mark.parametrize(
    "text",
    [
        "I want to 3nd i7",
        "i want to end i7 all",
        "they would all be be77er off dead",
        "i want to d13",
    ],
)
def test_leetspeak_risk_words_alert(screener: Screener, text: str) -> None:
    assert screener.screen(text) is not None, forms(text)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("my mood is 7/10", "7 10"),  # a check-in score
        ("7", "7"),
        ("next session at 17:00", "17 00"),
        ("see you at 7pm", "7pm"),
        ("I took 50mg", "50mg"),
        ("the 1st time in weeks", "1st"),
        ("3 out of 5 today", "3 out of 5"),
    ],
)
def test_numbers_stay_numbers_in_every_form(text: str, kept: str) -> None:
    assert all(kept in form for form in forms(text)), forms(text)
