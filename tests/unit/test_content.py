from __future__ import annotations

import html
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.content import (
    BUILTIN_DIR,
    ContentError,
    Problem,
    builtin_dir,
    check_content,
    dirs_from_env,
    format_problems,
    load_content,
    parse_content_dirs,
)
from bot.domain.content_schema import check_telegram_html

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "content"
GOOD = FIXTURES / "good"


def problems_in(case: str) -> list[Problem]:
    library, problems = check_content([FIXTURES / case])
    assert library is None or not problems
    return problems


# (case folder, file name, line, message fragment, expected problem count)
BROKEN = [
    ("yaml-syntax", "refl-colon.yaml", 4, "mapping values are not allowed", 1),
    ("yaml-unterminated", "refl-quote.yaml", 7, "quoted scalar on line 4", 1),
    ("not-mapping", "refl-list.yaml", 1, "top level must be a mapping", 1),
    ("unknown-field", "edu-colour.yaml", 5, "unknown field 'colour'", 1),
    ("missing-text", "refl-no-text.yaml", 1, "missing required field 'text'", 1),
    ("bad-kind", "edu-lesson.yaml", 2, "bad kind 'lesson'", 1),
    ("key-mismatch", "edu-sleep.yaml", 1, "does not match the file name", 1),
    ("duplicate-key", "refl-beta.yaml", 3, "also defined in refl-alpha.yaml:1", 2),
    ("scale-no-labels", "chk-energy.yaml", 5, "missing required field 'min_label'", 2),
    ("scale-and-choices", "chk-both.yaml", 10, "either 'scale' or 'choices'", 1),
    ("checkin-no-answers", "chk-none.yaml", 2, "needs 'scale'", 1),
    ("ack-on-reflection", "refl-ack.yaml", 5, "'ack' is not allowed for kind 'reflection'", 1),
    ("bad-choices", "chk-connect.yaml", 6, "bad choice value 'Close'", 2),
    ("bad-choices", "chk-connect.yaml", 9, "at most 24", 2),
    ("wrong-type", "edu-type.yaml", 5, "must be true or false", 1),
    ("education-too-long", "edu-long.yaml", 4, "959 visible characters", 1),
    ("empty-text", "refl-blank.yaml", 4, "'text' is empty", 1),
    ("html-unbalanced", "edu-nesting.yaml", 6, "properly nested", 1),
    ("html-tag", "edu-div.yaml", 7, "tag <div> is not supported", 2),
    ("html-amp", "edu-amp.yaml", 5, "bare '&'", 1),
    ("html-unclosed", "refl-open.yaml", 4, "<i> is never closed", 1),
    ("template-bad-offset", "short.yaml", 6, "bad offset '2 hours'", 1),
    ("template-missing-prompt", "short.yaml", 6, "'chk-mod'", 1),
    ("template-empty-steps", "short.yaml", 3, "'steps' is empty", 1),
    ("template-unknown-field", "short.yaml", 5, "unknown field 'delay'", 1),
    ("template-duplicate", "tiny.yaml", 1, "duplicate template name 'short'", 2),
]


@pytest.mark.parametrize(("case", "name", "line", "fragment", "count"), BROKEN)
def test_broken_fixture_names_file_and_line(
    case: str, name: str, line: int, fragment: str, count: int
) -> None:
    problems = problems_in(case)
    listing = format_problems(problems)
    assert any(
        p.path.name == name and p.line == line and fragment in p.message for p in problems
    ), listing
    # Guards against cascades: one mistake should not bury the reader in follow-up noise.
    assert len(problems) == count, listing


def test_problem_str_is_path_line_message() -> None:
    problem = Problem(Path("a/b.yaml"), 3, "oops")
    assert str(problem) == "a/b.yaml:3: oops"


def test_all_problems_are_collected_across_folders() -> None:
    cases = ["unknown-field", "bad-kind", "html-amp", "template-empty-steps"]
    library, problems = check_content([FIXTURES / c for c in cases])
    assert library is None
    assert {p.path.name for p in problems} == {
        "edu-colour.yaml",
        "edu-lesson.yaml",
        "edu-amp.yaml",
        "short.yaml",
    }


def test_same_folder_twice_reports_once() -> None:
    _, problems = check_content([FIXTURES / "bad-kind", FIXTURES / "bad-kind"])
    assert len(problems) == 1


def test_good_library_loads() -> None:
    library = load_content([GOOD], include_builtin=False)
    assert sorted(library.prompts) == ["chk-mood", "chk-sleep", "edu-window", "refl-noticing"]
    edu = library.prompt("edu-window")
    assert edu.kind == "education" and edu.ack is True and edu.language == "en"
    assert edu.text.endswith("Small steps count.")  # outer whitespace stripped
    refl = library.prompt("refl-noticing")
    assert refl.ack is False and refl.scale is None and refl.choices == ()

    mood = library.prompt("chk-mood")
    assert mood.scale is not None and list(mood.scale.values()) == list(range(11))
    assert mood.choice_label("0") == "0 (Very low)"
    assert mood.choice_label("5") == "5"
    assert mood.choice_label("10") == "10 (Very good)"
    for bad in ("11", "-1", "05", "x", ""):
        assert mood.choice_label(bad) is None
    assert mood.is_risk_answer("1") and not mood.is_risk_answer("2")

    sleep = library.prompt("chk-sleep")
    # YAML 1.1 would read `No` as a boolean; labels keep the words the clinician wrote.
    assert [(c.value, c.label) for c in sleep.choices] == [
        ("well", "Well"),
        ("no", "No"),
        ("badly", "Badly"),
    ]
    assert sleep.choice_label("no") == "No" and sleep.choice_label("maybe") is None
    assert sleep.is_risk_answer("badly") and not sleep.is_risk_answer("well")

    standard = library.template("standard")
    assert [(str(s.offset), s.prompt_key) for s in standard.steps] == [
        ("+0m", "edu-window"),
        ("+0d@20:00", "refl-noticing"),
        ("+1d@09:00", "chk-mood"),
    ]


def test_unknown_names_raise_clear_key_errors() -> None:
    library = load_content([GOOD], include_builtin=False)
    with pytest.raises(KeyError, match="did you mean 'chk-mood'"):
        library.prompt("chk-mod")
    with pytest.raises(KeyError, match="unknown template 'nope'"):
        library.template("nope")


def test_later_folder_overrides_prompt_and_template() -> None:
    library = load_content([GOOD, FIXTURES / "override"], include_builtin=False)
    edu = library.prompt("edu-window")
    assert edu.text == "Clinic wording for the window after a session."
    assert edu.ack is False and edu.path.parent.parent.name == "override"
    assert library.prompt("chk-mood").path.parent.parent.name == "good"
    assert [s.prompt_key for s in library.template("standard").steps] == ["refl-clinic"]

    reverse = load_content([FIXTURES / "override", GOOD], include_builtin=False)
    assert reverse.prompt("edu-window").ack is True
    assert len(reverse.template("standard").steps) == 3


def test_template_may_name_prompt_from_another_folder(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "mine.yaml").write_text(
        "name: mine\nsteps:\n  - offset: '+1h'\n    prompt: refl-noticing\n"
    )
    library = load_content([GOOD, tmp_path], include_builtin=False)
    assert library.template("mine").steps[0].prompt_key == "refl-noticing"


def test_load_content_raises_with_every_problem() -> None:
    with pytest.raises(ContentError) as caught:
        load_content([FIXTURES / "bad-choices"], include_builtin=False)
    assert len(caught.value.problems) == 2
    assert str(caught.value).count("\n") == 1
    assert str(caught.value) == format_problems(caught.value.problems)


def test_folder_problems(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    (tmp_path / "empty").mkdir()
    nested = tmp_path / "lib" / "prompts" / "extra"
    nested.mkdir(parents=True)
    (nested / "x.yaml").write_text("key: x\n")
    (tmp_path / "lib" / "prompts" / "y.yml").write_text("key: y\n")
    _, problems = check_content([missing, tmp_path / "empty", tmp_path / "lib"])
    messages = {(p.path.name, p.message.split(";")[0]) for p in problems}
    assert messages == {
        ("nope", "content folder does not exist"),
        ("empty", "no prompts/, templates/, questionnaires/ or safety/ subfolder"),
        ("extra", "subfolders are not loaded"),
        ("y.yml", "only .yaml files are loaded"),
    }


def write_prompt(root: Path, key: str, body: str) -> Path:
    folder = root / "prompts"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.yaml"
    path.write_text(f"key: {key}\n{body}")
    return path


def test_repeated_yaml_field_and_bad_scale(tmp_path: Path) -> None:
    write_prompt(tmp_path, "refl-twice", "kind: reflection\ntopic: a\ntext: A?\ntext: B?\n")
    write_prompt(
        tmp_path,
        "chk-range",
        "kind: checkin\ntopic: a\ntext: Q?\nscale:\n  min: '0'\n  max: 12\n"
        "  min_label: Low\n  max_label: ''\n  risk_at_or_below: 3\n",
    )
    _, problems = check_content([tmp_path])
    found = {(p.path.name, p.line, p.message) for p in problems}
    assert ("refl-twice.yaml", 5, "field 'text' appears twice (first on line 4)") in found
    assert ("chk-range.yaml", 6, "field 'min' must be a whole number") in found
    assert ("chk-range.yaml", 9, "field 'max_label' is empty") in found
    assert len(problems) == 3


@pytest.mark.parametrize(("extra", "ok"), [(0, True), (1, False)])
def test_education_limit_counts_visible_characters(tmp_path: Path, extra: int, ok: bool) -> None:
    # 900 visible characters, padded with markup and entities that Telegram does not count.
    visible = "x" * (894 + extra)
    text = f"<b>{visible}</b> &amp; &lt;<i>&#233;</i>&quot;"
    write_prompt(tmp_path, "edu-edge", f"kind: education\ntopic: a\ntext: '{text}'\n")
    _, problems = check_content([tmp_path])
    assert (not problems) is ok, format_problems(problems)


@pytest.mark.parametrize(
    "text",
    [
        '<a href="https://example.org/?a=1&amp;b=2">link</a>',
        '<span class="tg-spoiler">hidden</span> <tg-spoiler>also</tg-spoiler>',
        '<pre><code class="language-text">x</code></pre>',
        "<blockquote expandable>quote <b>bold</b></blockquote>",
        "<B>upper</B> <strong><em><u>nest</u></em></strong> &#x1F331; &#10;",
        "<a href='x'><b>bold link</b></a>",
    ],
)
def test_html_accepted(text: str) -> None:
    assert check_telegram_html(text).issues == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1 < 2", "bare '<'"),
        ("2 > 1", "bare '>'"),
        ("a&nbsp;b", "bare '&'"),
        ("&#0;", "bare '&'"),
        ("<br/>", "<br> is not supported"),
        ("<b/>", "self-closing"),
        ("<a>x</a>", "non-empty href"),
        ("<span>x</span>", "tg-spoiler"),
        ('<b class="x">x</b>', "attribute 'class' is not allowed on <b>"),
        ("<code><b>x</b></code>", "<b> cannot be used inside <code>"),
        ('<a href="x"><a href="y">x</a></a>', "cannot be used inside a link"),
        ("<blockquote><blockquote>x</blockquote></blockquote>", "cannot be nested"),
        ("</b>", "has no matching <b>"),
        ("<!-- note -->", "bare '<'"),
    ],
)
def test_html_rejected(text: str, fragment: str) -> None:
    issues = check_telegram_html(text).issues
    assert any(fragment in issue.message for issue in issues), issues


@given(st.text())
def test_escaped_text_always_passes_and_counts_visibly(raw: str) -> None:
    escaped = html.escape(raw)
    plain = check_telegram_html(escaped)
    assert plain.issues == ()
    assert plain.visible == raw
    wrapped = check_telegram_html(f"<b>{escaped}</b><i><u>{escaped}</u></i>")
    assert wrapped.issues == ()
    assert len(wrapped.visible) == 2 * len(raw)


def test_parse_content_dirs() -> None:
    assert parse_content_dirs("a:b::c") == [Path("a"), Path("b"), Path("c")]
    assert parse_content_dirs("") == []
    assert dirs_from_env({"AFTERGLOW_CONTENT_DIRS": "/x:/y"}) == [Path("/x"), Path("/y")]
    assert dirs_from_env({}) == []


def test_builtin_dir_is_the_repo_prompts_folder() -> None:
    assert Path(__file__).resolve().parents[2] / "prompts" == BUILTIN_DIR
    assert builtin_dir() == BUILTIN_DIR


@pytest.mark.skipif(
    len(list((BUILTIN_DIR / "prompts").glob("*.yaml"))) < 45,
    reason="built-in library still being written (fewer than 45 prompt files)",
)
def test_builtin_library_passes() -> None:
    library, problems = check_content([builtin_dir()])
    assert problems == [], format_problems(problems)
    assert library is not None
    assert {"standard", "short", "maintenance"} <= set(library.templates)
