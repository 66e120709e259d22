"""Crisis-language screening: the labelled set, normalisation, syntax, loading, crisis texts.

For a clinical lead reviewing a change to prompts/safety/: run
    pytest tests/unit/test_safety.py -s
and read the one-line summary (recall on risk messages, false alerts on safe ones).
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.content import builtin_dir
from bot.domain.content_schema import check_telegram_html
from bot.domain.safety import (
    CrisisTexts,
    Match,
    SafetyContentError,
    Screener,
    load_crisis_texts,
    load_screener,
    normalize,
)

ROOT = Path(__file__).resolve().parents[2]
LABELLED = ROOT / "tests" / "fixtures" / "safety" / "labelled.yaml"
RECALL_GOAL = 1.0
FALSE_ALERT_LIMIT = 0.05


@pytest.fixture(scope="module")
def screener() -> Screener:
    return load_screener([builtin_dir()])


@pytest.fixture(scope="module")
def texts() -> CrisisTexts:
    return load_crisis_texts([builtin_dir()])


# --- the labelled set --------------------------------------------------------------------


@dataclass(frozen=True)
class Labelled:
    text: str
    label: str
    note: str | None


def labelled() -> list[Labelled]:
    items = yaml.safe_load(LABELLED.read_text(encoding="utf-8"))
    out = []
    for item in items:
        assert set(item) <= {"text", "label", "note"}, item
        assert item["label"] in ("risk", "safe"), item
        out.append(Labelled(str(item["text"]), item["label"], item.get("note")))
    return out


@dataclass(frozen=True)
class Report:
    risk: int
    safe: int
    missed: list[str]
    false_alerts: list[tuple[str, Match]]

    @property
    def recall(self) -> float:
        return 1 - len(self.missed) / self.risk

    @property
    def false_alert_rate(self) -> float:
        return len(self.false_alerts) / self.safe

    def summary(self) -> str:
        return (
            f"safety screening: recall {self.recall:.1%} on {self.risk} risk messages "
            f"({len(self.missed)} missed); false alerts {self.false_alert_rate:.1%} on "
            f"{self.safe} safe messages ({len(self.false_alerts)})"
        )


def evaluate(screener: Screener) -> Report:
    items = labelled()
    risk = [i for i in items if i.label == "risk"]
    safe = [i for i in items if i.label == "safe"]
    missed = [i.text for i in risk if screener.screen(i.text) is None]
    false_alerts = [(i.text, m) for i in safe if (m := screener.screen(i.text)) is not None]
    return Report(len(risk), len(safe), missed, false_alerts)


def test_labelled_set_is_big_enough_and_unique() -> None:
    items = labelled()
    assert sum(i.label == "risk" for i in items) >= 110
    assert sum(i.label == "safe" for i in items) >= 90
    texts = [i.text for i in items]
    duplicates = sorted({t for t in texts if texts.count(t) > 1})
    assert not duplicates, f"duplicate labelled messages: {duplicates}"


def test_recall_on_risk_messages_is_total(screener: Screener) -> None:
    report = evaluate(screener)
    print("\n" + report.summary())
    assert report.recall >= RECALL_GOAL, (
        f"{report.summary()}\nmissed risk messages (add a phrase to prompts/safety/en.yaml):\n"
        + "\n".join(f"  - {t!r} (normalised: {normalize(t)!r})" for t in report.missed)
    )


def test_false_alerts_on_safe_messages_stay_rare(screener: Screener) -> None:
    report = evaluate(screener)
    print("\n" + report.summary())
    assert report.false_alert_rate <= FALSE_ALERT_LIMIT, (
        f"{report.summary()}\nsafe messages that alert:\n"
        + "\n".join(f"  - {t!r} <- {m.phrase!r} ({m.category})" for t, m in report.false_alerts)
    )


def test_known_false_alerts_are_marked_in_the_labelled_set(screener: Screener) -> None:
    # Keeps the set honest: every safe message that alerts says so in its note.
    unmarked = [
        i.text
        for i in labelled()
        if i.label == "safe"
        and screener.screen(i.text) is not None
        and "known false alert" not in (i.note or "")
    ]
    assert not unmarked, f"safe messages that alert without a 'known false alert' note: {unmarked}"


# --- normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("I Want To DIE", "i want to die"),
        ("Suïcidal", "suicidal"),
        ("kíll myself", "kill myself"),
        ("ｋｉｌｌ　ｍｙｓｅｌｆ", "kill myself"),  # fullwidth letters and space
        ("can’t go on", "cant go on"),
        ("can't", "cant"),
        ("cannot", "cant"),
        ("can not", "cant"),
        ("I do not want", "i dont want"),
        ("I am so tired", "im so tired"),
        ("I'm", "im"),
        ("wanna die", "want to die"),
        ("any more", "anymore"),
        ("no-one", "noone"),
        ("my self", "myself"),
        ("self-harm", "self harm"),
        ("self—harm", "self harm"),  # em dash
        ("kill_myself!!!", "kill myself"),
        ("“hopeless”", "hopeless"),
        ("want.to.die", "want to die"),
        ("dieeeee", "diee"),
        ("sooooo tired", "soo tired"),
        ("k1ll", "kill"),
        ("su1c1de", "suicide"),
        ("k!ll", "kill"),
        ("$uicide", "suicide"),
        ("kill!", "kill"),  # a "!" at the end is punctuation, not a letter
        ("10 out of 10", "10 out of 10"),  # digits alone stay digits
        ("b4 the session", "b4 the session"),
        ("I OD'd", "i oded"),
        ("that was odd", "that was odd"),
        ("ki\u200bll", "kill"),  # zero-width space
        ("straße", "strasse"),
        ("  lots   of\n\tspace ", "lots of space"),
        ("😭😭 i want to die 😭", "i want to die"),
        ("", ""),
        ("!!!", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_is_idempotent_on_examples() -> None:
    for item in labelled():
        once = normalize(item.text)
        assert normalize(once) == once


# --- matching ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "kill myself",
        "KILL MYSELF",
        "killmyself",
        "kill-myself",
        "kill_myself",
        "k i l l myself",
        "k*ll myself",
        "kil myself",
        "killing myself",
        "kiiiill myself",
        "I want to dieeee",
        "i want to diee",
        "i wanna die",
        "I really want to die",
        "i want to just die",
        "I just want to end it all",
        "I don’t want to be here anymore",
        "I don't want to be here any more",
        "I can't go on",
        "I cant go on",
        "I cannot go on",
        "self harm",
        "selfharm",
        "suicidal",
        "suicidial",
        "sucidal",
        "overdose",
        "I might OD",
        "kms",
        "unalive",
        "omg!kill myself",  # no space after "!": not read as "k!ll"
        "ok*kill myself",
        "I OD’d",
        "i want 2 die",
    ],
)
def test_risk_variants_match(screener: Screener, text: str) -> None:
    assert screener.screen(text) is not None, normalize(text)


@pytest.mark.parametrize(
    "text",
    [
        "skill myself",  # word boundary: "skill" is not "kill"
        "skills myself",
        "I killed it",
        "proud of myself",  # "of" never matches "off"
        "offer myself kindness",
        "that felt odd",  # "od" never matches "odd"
        "a diet plan",
        "ego death",
        "deadline",
        "killing time",
        "studied",  # contains "die"
        "I feel suited to this",  # contains letters of "suicide"
        "the end of the session",
    ],
)
def test_near_misses_do_not_match(screener: Screener, text: str) -> None:
    assert screener.screen(text) is None


def test_match_names_the_phrase_never_the_patient_text(screener: Screener) -> None:
    text = "Secret diary: I want to kill myself after the party with Alex"
    match = screener.screen(text)
    assert match is not None
    assert match.category == "suicide"
    assert match.language == "en"
    assert "Alex" not in match.phrase and "diary" not in match.phrase
    assert match.phrase in {p.phrase for p in screener.phrases}


def test_screen_returns_the_leftmost_match(screener: Screener) -> None:
    match = screener.screen("I am tired of living and I want to kill myself")
    assert match is not None and match.category == "hopelessness"


def test_screen_all_lists_every_distinct_phrase_in_order(screener: Screener) -> None:
    matches = screener.screen_all("tired of living. kms. I might overdose, tired of living again")
    phrases = [m for m in matches if m.layer == "phrase"]
    english = [m for m in phrases if m.language == "en"]  # de.yaml knows "overdose" too
    assert [m.category for m in english] == ["hopelessness", "slang", "overdose"]
    assert len({(m.language, m.phrase) for m in phrases}) == len(phrases)  # each phrase once
    assert matches[: len(phrases)] == phrases  # phrases first, then concept rules
    assert {m.layer for m in matches[len(phrases) :]} <= {"concept", "model"}
    assert screener.screen_all("a lovely walk by the river") == []


def test_negation_never_suppresses_a_match(screener: Screener) -> None:
    assert screener.screen("I'm not suicidal") is not None
    assert screener.screen("I would never kill myself") is not None


def test_every_category_of_the_brief_is_present(screener: Screener) -> None:
    categories = {p.category for p in screener.phrases}
    assert {"suicide", "self-harm", "overdose", "hopelessness", "slang"} <= categories


# --- robustness and speed ------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_screen_never_raises_on_any_text(screener: Screener, text: str) -> None:
    match = screener.screen(text)
    assert match is None or isinstance(match, Match)
    assert bool(screener.screen_all(text)) == (match is not None)
    assert isinstance(normalize(text), str)


_PHRASE_WORDS = ["kill", "my", "self", "want", "to", "die", "end", "it", "all", "no", "one"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from([*_PHRASE_WORDS, " ", "*", "-", "'", "é", "ﬁ", "\u200b", "1", "!"]),
        max_size=200,
    )
)
def test_screen_never_raises_on_phrase_like_noise(screener: Screener, parts: list[str]) -> None:
    text = "".join(parts)
    match = screener.screen(text)
    assert bool(screener.screen_all(text)) == (match is not None)


ADVERSARIAL = {
    "one letter": "a" * 10_000,
    "one long word": "suicidx" * 1_430,
    "repeated prefix": "want to " * 1_250,
    "gap bait": "want to " + "x" * 9_990,
    "two gaps": "better off if i was " * 500,
    "spaced letters": "k i l l " * 1_250,
    "masks": "k*" * 5_000,
    "masked words": "s*i " * 2_500,
    "negations": "dont really want to " * 500,
    "accents": "é" * 10_000,
    "emoji": "😭" * 10_000,
    "punctuation": "!?-_'" * 2_000,
    "elongated": "killll myselffff " * 600,
    "near misses": "skill myself, proud of myself, ego death. " * 240,
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_long_text_screens_fast(screener: Screener, name: str) -> None:
    text = ADVERSARIAL[name]
    assert len(text) >= 9_000
    screener.screen(text)  # warm up (compiles the mask-tolerant patterns once)
    started = time.perf_counter()
    screener.screen(text)
    screener.screen_all(text)
    elapsed = time.perf_counter() - started
    print(f"\n{name}: {len(text)} chars screened twice in {elapsed * 1000:.1f} ms")
    # Typically a few ms; generous for slow CI machines. Catastrophic backtracking would be
    # seconds or more.
    assert elapsed < 0.5


def test_typical_message_screens_in_about_a_millisecond(screener: Screener) -> None:
    message = (
        "Day three after the session. I went for a walk and cried a bit about my dad, then "
        "made soup. I keep thinking everyone would be better off without me. The sky was pink."
    )
    started = time.perf_counter()
    for _ in range(100):
        assert screener.screen(message) is not None
    per_message = (time.perf_counter() - started) / 100
    assert per_message < 0.02, f"{per_message * 1000:.2f} ms per message"


# --- phrase files --------------------------------------------------------------------------


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / "safety" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


GOOD_FILE = "language: en\nphrases:\n  test:\n    - blue lighthouse\n"


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("language: en\nphrases:\n  test:\n    - ok phrase\ncolour: red\n", 5, "unknown field"),
        ("language: en\nphrases:\n  test:\n    - ok phrase\n    - ''\n", 5, "empty phrase"),
        ("language: en\nphrases:\n  test:\n    - ok\n    -\n", 5, "empty phrase"),
        ("language: en\nphrases:\n  test:\n    - kill (me\n", 4, "brackets"),
        ("language: en\nphrases:\n  test:\n    - a ((b|c)|d) e\n", 4, "brackets"),
        ("language: en\nphrases:\n  test:\n    - ki*ll me\n", 4, "'*' may only end"),
        ("language: en\nphrases:\n  test:\n    - su* me\n", 4, "at least 3 letters"),
        ("language: en\nphrases:\n  test:\n    - ... die\n", 4, "between two words"),
        ("language: en\nphrases:\n  test:\n    - (really)? die now\n", 4, "optional part"),
        ("language: en\nphrases:\n  test:\n    - want ... ... die\n", 4, "two '...'"),
        ("language: en\nphrases:\n  test:\n    - x\n", 4, "at least 2 letters"),
        ("language: en\nphrases:\n  test:\n    - (a||b) c\n", 4, "empty alternative"),
        ("language: en\nphrases:\n  test:\n    - (do) not want\n", 4, "never match"),
        ("language: en\nphrases:\n  test:\n    - kill me\n    - Kill  me\n", 5, "duplicate"),
        ("language: en\nphrases:\n  test:\n    - a: b\n", 4, "must be text"),
        ("language: en\nphrases:\n  Test Cat:\n    - ok phrase\n", 3, "category"),
        ("language: en\nphrases:\n  test: kill me\n", 3, "list of phrases"),
        ("language: en\nphrases:\n  test: []\n", 3, "is empty"),
        ("language: english\nphrases:\n  test:\n    - ok\n", 1, "language must be"),
        ("phrases:\n  test:\n    - ok\n", 1, "missing required field 'language'"),
        ("language: en\n", 1, "missing required field 'phrases'"),
        ("language: en\nphrases:\n  test:\n    - 'unterminated\n", 5, "YAML syntax error"),
        ("- just a list\n", 1, "expected a mapping"),
        ("", 1, "file is empty"),
    ],
)
def test_bad_phrase_file_names_file_and_line(
    tmp_path: Path, body: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, "en.yaml", body)
    with pytest.raises(SafetyContentError) as info:
        load_screener([tmp_path])
    err = info.value
    assert err.path == path
    assert err.line == line, str(err)
    assert fragment in err.message, str(err)
    assert str(err).startswith(f"{path}:{line}: ")


def test_yml_files_and_subfolders_are_rejected(tmp_path: Path) -> None:
    write(tmp_path, "en.yml", GOOD_FILE)
    with pytest.raises(SafetyContentError, match=r"rename to \.yaml"):
        load_screener([tmp_path])


def test_missing_folder_and_no_phrases_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SafetyContentError, match="does not exist"):
        load_screener([tmp_path / "nope"])
    with pytest.raises(SafetyContentError, match="no safety phrases"):
        load_screener([tmp_path])
    with pytest.raises(SafetyContentError, match="no safety phrases"):
        load_screener([])


def test_clinic_folder_adds_phrases_and_keeps_the_built_in_ones(tmp_path: Path) -> None:
    clinic = tmp_path / "clinic"
    write(clinic, "en.yaml", GOOD_FILE + "  slang:\n    - kms\n")
    (clinic / "prompts").mkdir()  # a clinic folder may hold prompts too; they are ignored here
    base = load_screener([builtin_dir()])
    merged = load_screener([builtin_dir(), clinic])
    assert base.screen("I keep walking to the blue lighthouse") is None
    match = merged.screen("I keep walking to the blue lighthouse")
    assert match == Match("blue lighthouse", "test", "en")
    assert merged.screen("I want to kill myself") is not None
    assert len(merged.phrases) == len(base.phrases) + 1  # the repeated phrase is not doubled
    # The same folder listed twice changes nothing.
    assert len(load_screener([builtin_dir(), builtin_dir()]).phrases) == len(base.phrases)


def test_a_new_language_file_is_loaded(tmp_path: Path) -> None:
    write(tmp_path, "pt.yaml", "language: pt\nphrases:\n  suicide:\n    - vou me matar\n")
    screener = load_screener([builtin_dir(), tmp_path])
    assert screener.screen("acho que VOU ME MATAR") == Match("vou me matar", "suicide", "pt")


def test_resources_file_is_not_read_as_phrases(tmp_path: Path) -> None:
    write(tmp_path, "en.yaml", GOOD_FILE)
    write(tmp_path, "resources.yaml", "acknowledged: 'Seen by {who}'\n")
    assert len(load_screener([tmp_path]).phrases) == 1


def test_phrase_syntax(tmp_path: Path) -> None:
    write(
        tmp_path,
        "en.yaml",
        "language: en\nphrases:\n  t:\n"
        "    - suicid*\n"
        "    - take my (own)? life\n"
        "    - (hurt|harm) myself\n"
        "    - want to ... die\n"
        "    - yes\n",  # YAML would read this as a boolean; the phrase is the word
    )
    screener = load_screener([tmp_path])
    hits = {
        "suicidality": "suicid*",
        "suicide": "suicid*",
        "take my life": "take my (own)? life",
        "take my own life": "take my (own)? life",
        "harm myself": "(hurt|harm) myself",
        "want to die": "want to ... die",
        "want to just die": "want to ... die",
        "want to really just die": "want to ... die",
        "Yes!": "yes",
    }
    for text, phrase in hits.items():
        match = screener.screen(text)
        assert match is not None and match.phrase == phrase, text
    for text in ["suicid", "take my whole life", "want to really truly just die", "yesterday"]:
        if text == "suicid":
            assert screener.screen(text) is not None  # "*" also allows no ending
        else:
            assert screener.screen(text) is None, text


def test_every_plain_built_in_phrase_matches_itself(screener: Screener) -> None:
    # load_screener checks every phrase against its own words; this also runs them through
    # the full screen() path (combined pattern, then the per-phrase lookup).
    plain = [p for p in screener.phrases if not re.search(r"[()|]|\.\.\.", p.phrase)]
    assert len(plain) > 30
    for phrase in plain:
        match = screener.screen(phrase.phrase.replace("*", ""))
        assert match is not None, phrase.phrase


# --- crisis texts --------------------------------------------------------------------------

METHOD_WORDS = re.compile(
    r"\b(pills?|tablets?|overdose|rope|hang|jump|bridge|knife|blade|cut|gun|poison|dose|"
    r"ketamine|mg)\b",
    re.IGNORECASE,
)


def visible(text: str) -> str:
    check = check_telegram_html(text)
    assert not check.issues, check.issues
    return check.visible


def test_patient_resources_follow_the_brief(texts: CrisisTexts) -> None:
    for phone in (None, "+1 555 010 2000"):
        shown = visible(texts.resources(phone))
        assert "988" in shown
        assert "988lifeline.org" in shown
        assert "call or text" in shown.lower()
        assert "911" in shown and "emergency" in shown.lower()
        assert "not monitored in real time" in shown
        assert "therapist will see" in shown.lower()
        assert not METHOD_WORDS.search(shown), METHOD_WORDS.search(shown)
        assert "{" not in shown and "}" not in shown
        assert len(shown) < 1200


def test_resources_with_and_without_a_clinic_phone(texts: CrisisTexts) -> None:
    with_phone = texts.resources("+1 (555) 010-2000")
    assert "+1 (555) 010-2000" in with_phone
    assert "Your clinic" in with_phone
    without = texts.resources(None)
    assert "Your clinic" not in without
    assert "{clinic_phone_line}" not in without
    assert texts.resources("") == without == texts.resources("   ")
    assert "\n\n\n" not in without
    # The number is escaped for Telegram HTML by resources() itself.
    assert "&lt;b&gt;" in texts.resources("<b>")
    visible(texts.resources("<b> & <i>"))


def test_alert_templates_format_with_their_placeholders(texts: CrisisTexts) -> None:
    patient = html.escape("I want to <die> & stuff")
    alert = texts.therapist_alert.format(pseudonym="Robin", local_time="21:04", text=patient)
    assert "Robin" in alert and "21:04" in alert and patient in alert
    visible(alert)
    escalation = texts.oncall_escalation.format(
        pseudonym="Robin",
        local_time="21:04",
        text=patient,
        therapist="Dr Ames",
        minutes=15,
        waited="15 min",
    )
    assert "Dr Ames" in escalation and "15" in escalation
    visible(escalation)
    ack = texts.acknowledged.format(who="Dr Ames", time="21:10")
    assert "Dr Ames" in ack and "21:10" in ack
    checkin = texts.checkin_risk_alert.format(
        pseudonym="Robin", local_time="09:00", question="Mood today?", answer="0"
    )
    assert "Mood today?" in checkin and "0" in checkin
    visible(checkin)
    for template in (texts.therapist_alert, texts.oncall_escalation, texts.checkin_risk_alert):
        assert not METHOD_WORDS.search(visible(template)), template


def test_clinic_overrides_individual_crisis_texts(tmp_path: Path, texts: CrisisTexts) -> None:
    write(
        tmp_path,
        "resources.yaml",
        "acknowledged: 'Seen by <b>{who}</b>'\n"
        "clinic_phone_line: 'Call Sunrise Clinic on {clinic_phone} (9 to 5)'\n",
    )
    merged = load_crisis_texts([builtin_dir(), tmp_path])
    assert merged.acknowledged == "Seen by <b>{who}</b>"
    assert merged.patient_resources == texts.patient_resources
    assert merged.therapist_alert == texts.therapist_alert
    assert "Call Sunrise Clinic on 555 (9 to 5)" in merged.resources("555")


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("acknowledged: 'Seen by {who}'\ncolour: red\n", 2, "unknown field"),
        ("acknowledged: ''\n", 1, "non-empty"),
        ("acknowledged: 'Seen by {whom}'\n", 1, "unknown placeholder {whom}"),
        ("acknowledged: 'Seen'\n", 1, "missing placeholder {who}"),
        ("acknowledged: 'Seen by {who'\n", 1, "bad braces"),
        ("acknowledged: 'Seen by {who!r}'\n", 1, "format or conversion"),
        ("acknowledged: 'Seen by <u>{who}</u>'\n", 1, "only <b> and <i>"),
        ("acknowledged: 'Seen by <b>{who}'\n", 1, "never closed"),
        ("acknowledged: 'Seen by {who} & co'\n", 1, "bare '&'"),
        ("therapist_alert: 'Alert {pseudonym}'\n", 1, "missing placeholder {text}"),
        ("\n\nacknowledged: [a, b]\n", 3, "non-empty text"),
    ],
)
def test_bad_resources_file_names_file_and_line(
    tmp_path: Path, body: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, "resources.yaml", body)
    with pytest.raises(SafetyContentError) as info:
        load_crisis_texts([builtin_dir(), tmp_path])
    assert info.value.path == path
    assert info.value.line == line, str(info.value)
    assert fragment in info.value.message, str(info.value)


def test_missing_crisis_texts_are_an_error(tmp_path: Path) -> None:
    write(tmp_path, "resources.yaml", "acknowledged: 'Seen by {who}'\n")
    with pytest.raises(SafetyContentError, match="missing crisis text"):
        load_crisis_texts([tmp_path])
    with pytest.raises(SafetyContentError, match="missing crisis text"):
        load_crisis_texts([tmp_path / "safety"])  # a folder without safety/ has no texts


def test_crisis_texts_need_nothing_but_memory(texts: CrisisTexts) -> None:
    # "Need help now" must work with the database down: the texts are plain frozen strings
    # loaded once at start-up, and resources() is pure string work.
    fields = set(CrisisTexts.__dataclass_fields__) - {"localized"}
    assert all(isinstance(getattr(texts, f), str) for f in fields)
    assert all(
        isinstance(text, str) for by_name in texts.localized.values() for text in by_name.values()
    )
    assert texts.resources(None) == texts.resources(None)
