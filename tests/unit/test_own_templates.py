"""A therapist's own template: the form's rows as template YAML, checked by the content rules
(same words as `afterglow content check`), and its preview in a zone."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.content import load_content
from bot.domain.schedule import QuietHours
from bot.services.own_templates import Draft, StepRow, check, from_yaml, preview, to_yaml

LIBRARY = load_content()
QUIET = QuietHours(time(21, 0), time(8, 0))


def test_every_library_template_survives_the_round_trip_through_the_form() -> None:
    for name, template in LIBRARY.templates.items():
        draft = from_yaml(template.path.read_text(encoding="utf-8"))
        again = check(Draft(f"{name}-mine", draft.description, draft.steps), LIBRARY)
        assert again.problems == [], name
        assert again.template is not None
        assert again.template.steps == template.steps, name


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (StepRow("chk-mood-today", "+1d@20:00", every="0d", count="3"),
         "every: bad repeat '0d': it must be at least 1d"),
        (StepRow("chk-mood-today", "+1d@20:00", every="1d", count="61"),
         "count 61 is out of range: use 1 to 60"),
        (StepRow("ref-one-word", "tomorrow"), "offset"),
        (StepRow("ref-one-wrod", "+1d"), "did you mean 'ref-one-word'?"),
        (StepRow("no-such-questionnaire", "+1d", questionnaire=True), "questionnaire"),
    ],
)  # fmt: skip
def test_problems_are_worded_as_content_check_words_them(row: StepRow, message: str) -> None:
    checked = check(Draft("mine", "", (StepRow("edu-after-session", "+0m"), row)), LIBRARY)
    assert checked.template is None
    assert any(message in str(p) for p in checked.problems), checked.problems
    assert all(str(p).startswith("templates/mine.yaml:") for p in checked.problems)
    assert {checked.step_of(p) for p in checked.problems} == {1}


@pytest.mark.parametrize("name", ["standard", "Mine", "", "-x", "a" * 33])
def test_names_must_be_new_and_well_formed(name: str) -> None:
    checked = check(Draft(name, "", (StepRow("edu-after-session", "+0m"),)), LIBRARY)
    assert checked.template is None and checked.problems


@given(st.text(max_size=60))
def test_any_description_or_key_text_is_quoted_safely(text: str) -> None:
    draft = Draft("mine", text, (StepRow(text or "x", "+1d"),))
    body = to_yaml(draft)
    assert from_yaml(body).description == text


def test_the_preview_gives_local_times_with_preparation_first_and_repeats() -> None:
    template = LIBRARY.templates["course"]
    lines = preview(template, LIBRARY, local_start=datetime(2026, 3, 12, 10, 0),
                    zone=ZoneInfo("Europe/Berlin"), quiet=QUIET)  # fmt: skip
    assert lines == sorted(lines, key=lambda line: line.at)
    first = lines[0]
    assert first.preparation and first.at.strftime("%a %d %b %H:%M") == "Tue 10 Mar 19:30"
    repeats = [line for line in lines if line.key == "chk-mood-today"]
    assert [line.occurrence for line in repeats] == list(range(6))
    assert all(line.at.tzinfo == ZoneInfo("Europe/Berlin") for line in lines)
