"""Template steps that repeat, remind, expire or prepare: the grammar `afterglow content check`
enforces, with the file and line of each problem."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.domain.content import check_content, load_content
from bot.domain.schedule import Every

GOOD = Path(__file__).resolve().parent.parent / "fixtures" / "content" / "good"
KEY = "refl-noticing"  # a reflection in the good fixture library


def template(tmp_path: Path, step: str) -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    path = tmp_path / "templates" / "mine.yaml"
    path.write_text(f"name: mine\nsteps:\n  - offset: '+1d@20:00'\n    prompt: {KEY}\n{step}")
    return path


def problems(tmp_path: Path, step: str) -> list[str]:
    template(tmp_path, step)
    library, found = check_content([GOOD, tmp_path])
    assert library is None or not found
    return [str(p) for p in found]


def test_a_recurring_step_with_reminders_and_a_window_loads(tmp_path: Path) -> None:
    template(tmp_path, "    every: 1d\n    count: 14\n    remind: [2h, 24h]\n    expires: 36h\n")
    step = load_content([GOOD, tmp_path], include_builtin=False).template("mine").steps[0]
    assert (step.every, step.count) == (Every(1, "d"), 14)
    assert step.remind == (timedelta(hours=2), timedelta(hours=24))
    assert step.expires == timedelta(hours=36)


def test_an_explicit_empty_remind_is_kept_apart_from_the_default(tmp_path: Path) -> None:
    template(tmp_path, "    remind: []\n")
    step = load_content([GOOD, tmp_path], include_builtin=False).template("mine").steps[0]
    assert step.remind == () and step.every is None and step.count == 1


def test_a_preparation_step_loads(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "mine.yaml").write_text(
        f"name: mine\nsteps:\n  - offset: '-1d@19:00'\n    prompt: {KEY}\n"
    )
    step = load_content([GOOD, tmp_path], include_builtin=False).template("mine").steps[0]
    assert step.offset.before and str(step.offset) == "-1d@19:00"


@pytest.mark.parametrize(
    ("step", "line", "words"),
    [
        ("    every: 1d\n    count: 61\n", 6, "count 61 is out of range: use 1 to 60"),
        ("    every: 0d\n    count: 3\n", 5, "at least 1d"),
        ("    every: 1w\n    count: 3\n", 5, "bad repeat"),
        ("    every: 1d\n", 5, "needs a 'count'"),
        ("    count: 3\n", 5, "needs 'every'"),
        ("    every: 1d\n    count: 1\n", 6, "repeats nothing"),
        ("    count: many\n", 5, "whole number"),
        ("    remind: [1h, 2h, 3h]\n", 5, "at most 2"),
        ("    remind: 24h\n", 5, "must be a list"),
        ("    remind: [0h]\n", 5, "more than zero"),
        ("    expires: soon\n", 5, "expires: bad duration"),
        ("    expire: 2h\n", 5, "unknown field 'expire'"),
    ],
)
def test_bad_repeats_reminders_and_windows_name_file_and_line(
    tmp_path: Path, step: str, line: int, words: str
) -> None:
    [problem] = problems(tmp_path, step)
    assert problem.startswith(f"{tmp_path / 'templates' / 'mine.yaml'}:{line}:"), problem
    assert words in problem, problem


def test_a_preparation_step_cannot_repeat(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "mine.yaml").write_text(
        f"name: mine\nsteps:\n  - offset: '-1d@19:00'\n    prompt: {KEY}\n"
        "    every: 1d\n    count: 2\n"
    )
    _, found = check_content([GOOD, tmp_path])
    assert [(p.line, "cannot repeat" in p.message) for p in found] == [(5, True)]


def test_the_builtin_course_template_shows_every_part_of_the_grammar() -> None:
    course = load_content().template("course")
    assert any(step.offset.before for step in course.steps)
    assert any(step.count > 1 and step.every is not None for step in course.steps)
    assert any(step.remind is not None for step in course.steps)
