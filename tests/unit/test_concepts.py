"""The concept layer and the local model: what they catch, what they leave alone, how their
files fail, and the corpus figure the test suite holds them to (recall on the train split).

The held-out split is never read here: its figures are a benchmark (bench/safety_eval.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.content import builtin_dir
from bot.domain.safety import SafetyContentError, Screener, load_screener
from bot.domain.safety.concepts import load_concept_file, sentences
from bot.domain.safety.evaluation import evaluate, read_labelled
from bot.domain.safety.model import load_model
from bot.domain.safety.phrases import PhraseMatcher

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "safety" / "corpus"


@pytest.fixture(scope="module")
def screener() -> Screener:
    return load_screener([builtin_dir()])


@pytest.fixture(scope="module")
def phrases_only(screener: Screener) -> Screener:
    # Built once: compiling every language's phrases takes seconds, not per example.
    return Screener(PhraseMatcher(screener.phrases))


@pytest.fixture(scope="module")
def rules_only(screener: Screener) -> Screener:
    return Screener(PhraseMatcher(screener.phrases), screener.concepts, ())


# --- the corpus --------------------------------------------------------------------------


def test_recall_on_the_train_split_is_total(screener: Screener) -> None:
    report = evaluate(screener, read_labelled(CORPUS / "train.jsonl"))
    missed = "\n".join(f"  - {i.category}: {i.text}" for i in report.missed)
    assert report.recall == 1.0, f"{report.summary()}\nmissed:\n{missed}"


def test_the_corpus_is_big_enough_and_its_splits_do_not_overlap() -> None:
    splits = {n: read_labelled(CORPUS / f"{n}.jsonl") for n in ("train", "dev", "heldout")}
    every = [i for items in splits.values() for i in items]
    assert len(every) >= 1500
    assert sum(i.label == "risk" for i in every) >= 600
    assert sum(i.label == "safe" for i in every) >= 900
    texts = [" ".join(i.text.lower().split()) for i in every]
    assert len(set(texts)) == len(texts)
    ids = [json.loads(line)["id"] for n in splits for line in (CORPUS / f"{n}.jsonl").open()]
    assert len(set(ids)) == len(ids)
    for items in splits.values():  # every category is in every split
        assert len({i.category for i in items}) == 19


# --- what the concepts catch -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "been saving up my sleeping tablets, saturday is when",
        "the rope in the garage is for me",
        "every morning on the bridge i picture climbing the railing",
        "scratched my arms till they bled again, nobody noticed",
        "burnt myself with the straightener on purpose. not an accident",
        "they'd all be better off if i wasnt here",
        "wrote the letters for my kids. they're in the drawer for after",
        "thank you for everything. this is my last message",
        "if the next session doesnt work im out. like out out",
        "could really go for a permanent nap and i mean permanent",
        # rules added with round 4 of the corpus (these sentences are not from it)
        "the 3rd is coming. same day my brother went. feels right",
        "did it again with a blade last night, sleeves down at work",
        "put another tally on my thigh. number nine",
        "hose and tape are in the garage now",
        "i'm jealous of people who just die in their sleep",
        "i want to be with my mum again and i dont mean visiting the grave",
        "letters sealed. day chosen.",
        "wrote my note. feels lighter knowing its done before friday",
        "scalding water over my wrist, not by accident",
        "the hook took my weight when i tried it with the rope",
        "my story's finished. signing off",
        "ready to uninstall myself from this world",
        "every night i pray god takes me in my sleep",
        "I'm not suicidal",  # the bare word alerts; nothing cancels it
        "s*icidal again",  # a masked letter
        "i keep hoping the biopsy comes back bad so it'd be over",
    ],
)
def test_risk_said_sideways_alerts(rules_only: Screener, text: str) -> None:
    assert rules_only.screen(text) is not None, text


@pytest.mark.parametrize(
    "text",
    [
        "walked for world suicide prevention day with my sister",
        "I cut my finger chopping onions for the curry",
        "the kitten scratched my arm while i trimmed her claws",
        "counted out my tablets into the pill organiser for the week",
        "I could sleep forever after that night shift",
        "hopeless at cooking, burnt the rice again",
        "gonna log off for the night, brain is fried",
        "I'm dying to see the new film on friday",
        "said goodbye to my old self in the session, not a sad goodbye",
        "thanks for everything this week, see you thursday!",
        "my gran passed peacefully, the hospice nurses were angels",
        "feeling hopeless about the custody hearing, lawyer never rings back",
        "my new kitten scratched my arm up while i was trimming her claws",
        "forgot my thyroid tablets this morning, took them at lunch, fine tomorrow",
        "charcoal and tape in the boot for the bbq at the campsite saturday",
        "burnt my hand on the tawa making rotis for dinner",
    ],
)
def test_look_alikes_stay_quiet(rules_only: Screener, text: str) -> None:
    assert rules_only.screen(text) is None, (text, rules_only.screen(text))


def test_an_ignored_look_alike_does_not_hide_another_mention(rules_only: Screener) -> None:
    assert rules_only.screen("suicide prevention day at work") is None
    assert rules_only.screen("suicide prevention day at work and I keep thinking about suicide")


def test_typos_reach_concept_words_but_never_change_a_letter(rules_only: Screener) -> None:
    concepts = next(c for c in rules_only.concepts if c.language == "en")
    assert concepts._correct("tabelts") == "tablets"  # two letters swapped
    assert concepts._correct("tablts") == "tablets"  # one missing
    assert concepts._correct("paracetamoll") == "paracetamol"  # one too many
    assert concepts._correct("brain") == "brain"  # never "train"
    assert concepts._correct("shaving") == "shaving"  # never "saving"


def test_a_rule_needs_one_word_per_slot(tmp_path: Path) -> None:
    path = _concept_file(
        tmp_path,
        """
        concepts:
          bye: [goodbye]
          bye-too: [goodbye]
        rules:
          - {name: twice, category: farewell, need: [bye, bye-too]}
        """,
    )
    concepts = load_concept_file(path)
    assert concepts.screen(sentences("goodbye")) == []
    assert [h.rule for h in concepts.screen(sentences("goodbye and goodbye"))] == ["twice"]


def test_a_match_explains_itself_without_the_patients_words(rules_only: Screener) -> None:
    match = rules_only.screen("the pills are lined up on the counter, tonight")
    assert match is not None and match.layer == "concept"
    explained = match.explain()
    assert match.phrase in explained and "counter" not in explained


# --- files -------------------------------------------------------------------------------


def _concept_file(tmp_path: Path, body: str, name: str = "en.concepts.yaml") -> Path:
    folder = tmp_path / "safety"
    folder.mkdir(exist_ok=True)
    path = folder / name
    lines = [line[8:] if line.startswith("        ") else line for line in body.splitlines()]
    path.write_text("language: en\n" + "\n".join(lines).strip() + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("concepts:\n  a: [x]\nrules:\n  - {name: r, category: c, need: [b]}", 5,
         "unknown concept"),
        ("concepts:\n  a: [x]\nrules:\n  - {name: r, category: c, need: [a], window: 99}", 5,
         "window must be a number"),
        ("concepts:\n  a: [x]\nrules:\n  - {name: r, category: c, need: [a]}\n"
         "  - {name: r, category: c, need: [a]}", 6, "duplicate rule"),
        ("concepts:\n  a: [x]\nrules:\n  - {name: r, category: c, need: [a], colour: red}", 5,
         "unknown rule field"),
        ("concepts:\n  a: []\nrules:\n  - {name: r, category: c, need: [a]}", 3, "no terms"),
        ("concepts:\n  a: ['(unclosed']\nrules:\n  - {name: r, category: c, need: [a]}", 3,
         "term '(unclosed'"),
        ("ignore: ['... x']\nconcepts:\n  a: [x]\nrules:\n  - {name: r, category: c, need: [a]}",
         2, "ignore '... x'"),
        ("concepts:\n  a: [x]\nrulez: []", 4, "unknown field 'rulez'"),
    ],
)  # fmt: skip
def test_bad_concept_files_name_file_and_line(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    path = _concept_file(tmp_path, body)
    with pytest.raises(SafetyContentError) as err:
        load_screener([builtin_dir(), tmp_path])
    assert err.value.path == path and err.value.line == line, str(err.value)
    assert message in str(err.value)


def test_a_clinic_adds_concepts_and_keeps_the_built_in_ones(tmp_path: Path) -> None:
    _concept_file(
        tmp_path,
        """
        concepts:
          ours: [the old quarry road]
        rules:
          - {name: quarry-road, category: means, need: [ours]}
        """,
        name="clinic.concepts.yaml",
    )
    both = load_screener([builtin_dir(), tmp_path])
    match = both.screen("driving out the old quarry road again")
    assert match is not None and match.phrase == "quarry-road"
    assert both.screen("they'd all be better off if i wasnt here") is not None


def test_a_broken_model_file_names_itself(tmp_path: Path) -> None:
    folder = tmp_path / "safety"
    folder.mkdir()
    bad = folder / "xx.model.json"
    bad.write_text('{"name": "x"}', encoding="utf-8")
    with pytest.raises(SafetyContentError) as err:
        load_model(bad)
    assert err.value.path == bad and "not a screening model" in str(err.value)
    bad.write_text(
        json.dumps({"name": "x", "language": "en", "bias": 0, "threshold": 2, "weights": {}}),
        encoding="utf-8",
    )
    with pytest.raises(SafetyContentError, match="threshold"):
        load_model(bad)


# --- layers only add ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_later_layers_never_remove_a_phrase_match(
    screener: Screener, phrases_only: Screener, text: str
) -> None:
    if phrases_only.screen(text) is not None:
        assert screener.screen(text) is not None
    screener.screen_all(text)  # never raises


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            ["i", "the", "pills", "bridge", "tonight", "goodbye", "for", "good", "my", "cut",
             "arm", "on", "purpose", "burden", "without", "me", ".", "!", "\n", "s*icide",
             "t a b l e t s", "😭", "thank you for everything", "prevention"]
        ),
        max_size=60,
    )
)  # fmt: skip
def test_concept_screening_never_raises_on_word_salad(screener: Screener, words: list[str]) -> None:
    text = " ".join(words)
    first = screener.screen(text)
    assert first == screener.screen(text)  # deterministic
