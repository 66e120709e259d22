"""Questionnaires as content: the schema, the instrument profiles a clinic's wording is checked
against (with file:line problems), and scoring (bands, reverse items, risk rules). Item texts
here are placeholders: validated wording is never shipped or copied into tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.content import check_content, load_content
from bot.domain.questionnaires import (
    PROFILES,
    Band,
    Item,
    Option,
    Questionnaire,
    remission,
    response,
)

GOOD = Path(__file__).resolve().parent.parent / "fixtures" / "content" / "good"
OPTIONS_0_3 = "options:\n" + "".join(f"  - {{label: 'Choice {v}', value: {v}}}\n" for v in range(4))


def placeholder(key: str, items: int, options: str = OPTIONS_0_3, extra: str = "") -> str:
    lines = "".join(f"  - text: Placeholder item {n}\n" for n in range(1, items + 1))
    return (
        f"key: {key}\ntitle: Placeholder {key}\nlanguage: en\nrecall: over the last two weeks\n"
        f"{options}items:\n{lines}{extra}"
    )


def write(tmp_path: Path, key: str, text: str) -> Path:
    (tmp_path / "questionnaires").mkdir(exist_ok=True)
    path = tmp_path / "questionnaires" / f"{key}.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path) -> list[str]:
    library, found = check_content([GOOD, tmp_path])
    assert library is None or not found
    return [str(p) for p in found]


def test_a_clinic_phq9_takes_its_scoring_and_risk_item_from_the_profile(tmp_path: Path) -> None:
    write(tmp_path, "phq9", placeholder("phq9", 9))
    phq9 = load_content([GOOD, tmp_path], include_builtin=False).questionnaire("phq9")
    assert phq9.bands == PROFILES["phq9"].bands and phq9.total_range == (0, 27)
    assert [(r.item, r.at_or_above) for r in phq9.item_risks] == [(9, 1)]
    assert phq9.total([0] * 8 + [1]) == 1 and phq9.risky_items([0] * 8 + [1]) == [9]
    band = phq9.band(12)
    assert band is not None and band.label == "moderate"


def test_a_phq9_with_eight_items_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "phq9", placeholder("phq9", 8))
    [problem] = problems(tmp_path)
    assert problem == f"{path}:10: PHQ-9 has 9 items; this file has 8"


def test_a_phq9_with_option_values_one_to_four_is_refused(tmp_path: Path) -> None:
    options = "options:\n" + "".join(f"  - {{label: 'C{v}', value: {v}}}\n" for v in range(1, 5))
    path = write(tmp_path, "phq9", placeholder("phq9", 9, options))
    [problem] = problems(tmp_path)
    assert problem == f"{path}:6: PHQ-9 option values are 0, 1, 2, 3; found 1, 2, 3, 4"


def test_a_profiled_file_may_not_restate_its_scoring(tmp_path: Path) -> None:
    extra = "scoring:\n  method: sum\n  bands:\n    - {min: 0, max: 21, label: all}\n"
    write(tmp_path, "gad7", placeholder("gad7", 7, extra=extra))
    [problem] = problems(tmp_path)
    assert "GAD-7's scoring comes with Afterglow" in problem


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("", "missing required field 'scoring'"),
        ("scoring:\n  method: mean\n  bands:\n    - {min: 0, max: 6, label: a}\n", "only sum"),
        (
            "scoring:\n  method: sum\n  bands:\n    - {min: 0, max: 2, label: a}\n"
            "    - {min: 4, max: 6, label: b}\n",
            "expected a band starting at 3",
        ),
        ("scoring:\n  method: sum\n  bands:\n    - {min: 0, max: 5, label: a}\n", "end at 5"),
        (
            "scoring:\n  method: sum\n  bands:\n    - {min: 0, max: 6, label: a}\n"
            "risk:\n  - {item: 3, at_or_above: 2}\n",
            "names item 3; there are 2 items",
        ),
        (
            "scoring:\n  method: sum\n  bands:\n    - {min: 0, max: 6, label: a}\n"
            "risk:\n  - {item: 1, at_or_above: 7}\n",
            "not one of item 1's option values",
        ),
    ],
)
def test_a_clinic_questionnaire_is_checked(tmp_path: Path, extra: str, words: str) -> None:
    write(tmp_path, "mine", placeholder("mine", 2, extra=extra))
    found = problems(tmp_path)
    assert len(found) == 1 and words in found[0], found


def test_options_per_item_and_reverse_items(tmp_path: Path) -> None:
    text = (
        "key: mine\ntitle: Mine\nlanguage: en\n" + OPTIONS_0_3 + "items:\n"
        "  - text: First\n  - text: Second\n    reverse: true\n"
        "  - text: Third\n    options:\n      - {label: 'No', value: 0}\n"
        "      - {label: 'Yes', value: 1}\n"
        "scoring:\n  method: sum\n  bands:\n    - {min: 0, max: 3, label: low}\n"
        "    - {min: 4, max: 7, label: high}\n"
        "risk:\n  - {total_at_or_above: 6}\n"
    )
    write(tmp_path, "mine", text)
    mine = load_content([GOOD, tmp_path], include_builtin=False).questionnaire("mine")
    assert mine.total_range == (0, 7)
    assert mine.total([3, 0, 1]) == 7  # the reverse item's 0 counts as 3
    assert mine.total([3, 0, None]) is None  # partial: no total
    assert mine.total_alarm(6) and not mine.total_alarm(5)


def test_the_builtin_questionnaire_is_original_and_says_it_is_not_clinical() -> None:
    library = load_content()
    week = library.questionnaire("integration-week")
    assert 3 <= len(week.items) <= 6
    assert "not a clinical test" in week.title
    assert not set(PROFILES) & set(library.questionnaires)  # no validated wording ships


def test_response_and_remission() -> None:
    assert response(20, 10) and not response(20, 11) and not response(0, 0)
    assert remission(PROFILES["phq9"], 4) and not remission(PROFILES["phq9"], 5)


@given(st.lists(st.integers(0, 3), min_size=1, max_size=12), st.data())
def test_totals_stay_in_range_and_reverse_items_mirror(
    values: list[int], data: st.DataObject
) -> None:
    options = tuple(Option(str(v), v) for v in range(4))
    reverse = data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    items = tuple(Item(f"i{n}", options, r) for n, r in enumerate(reverse))
    bands = (Band(0, 3 * len(items), "all"),)
    mixed = Questionnaire("q", "Q", "en", items, bands)
    total = mixed.total(values)
    assert total is not None and 0 <= total <= 3 * len(items)
    # Each reverse item counts 3 - value: the total is the plain sum with those flipped.
    plain = sum(3 - v if r else v for v, r in zip(values, reverse, strict=True))
    assert total == plain
    every = Questionnaire("r", "R", "en", tuple(Item(i.text, options, True) for i in items), bands)
    assert every.total(values) == 3 * len(items) - sum(values)
    assert mixed.total([*values[:-1], 4]) is None  # not an option value


def test_a_template_needing_phq9_without_the_clinics_wording_names_the_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "templates").mkdir()
    path = tmp_path / "templates" / "mbc.yaml"
    path.write_text("name: mbc\nsteps:\n  - offset: '+1d@10:00'\n    questionnaire: phq9\n")
    [problem] = problems(tmp_path)
    assert problem.startswith(f"{path}:4: PHQ-9 ('phq9') needs the clinic's copy")
    assert "prompts/questionnaires/phq9.yaml" in problem

    write(tmp_path, "phq9", placeholder("phq9", 9))
    step = load_content([GOOD, tmp_path], include_builtin=False).template("mbc").steps[0]
    assert step.questionnaire and step.prompt_key == "phq9"


def test_a_step_names_a_prompt_or_a_questionnaire_not_both(tmp_path: Path) -> None:
    write(
        tmp_path,
        "mine",
        placeholder(
            "mine", 2, extra="scoring:\n  method: sum\n  bands:\n    - {min: 0, max: 6, label: a}\n"
        ),
    )
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "both.yaml").write_text(
        "name: both\nsteps:\n  - offset: '+1h'\n    questionnaire: mine\n"
        "    prompt: refl-noticing\n"
    )
    (tmp_path / "templates" / "typo.yaml").write_text(
        "name: typo\nsteps:\n  - offset: '+1h'\n    questionnaire: mien\n"
    )
    found = problems(tmp_path)
    assert any("not both" in p for p in found), found
    assert any("questionnaire 'mien'" in p and "did you mean 'mine'" in p for p in found), found
