"""The CSV export's spreadsheet guard: a free-text cell that a spreadsheet could read as a
formula starts with an apostrophe, however the formula character is dressed up."""

from __future__ import annotations

import csv
import io
import sys
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.services.exports import COLUMNS, ExportRow, to_csv

FORMULA_CHARS = "=+-@"
# Every character whose compatibility form starts with a formula character: "＝", "﹢", "⁼"…
DISGUISED = sorted(
    ch
    for ch in map(chr, range(sys.maxunicode + 1))
    if unicodedata.normalize("NFKC", ch)[:1] in FORMULA_CHARS
)
# What may come before it and still leave it first for a spreadsheet that trims the cell.
INVISIBLE = [" ", "\t", "\r", "\n", "\v", "\f", "\u00a0", "\u2003", "\u3000", "\u200b", "\ufeff"]


def normalised(text: str) -> str:
    """The form the guard is defined on: NFKC, leading whitespace, controls and format
    characters (zero-width space, BOM) dropped."""
    text = unicodedata.normalize("NFKC", text)
    skip = 0
    while skip < len(text) and (
        text[skip].isspace() or unicodedata.category(text[skip]) in ("Cc", "Cf")
    ):
        skip += 1
    return text[skip:]


def starts_formula(text: str) -> bool:
    return normalised(text)[:1] in tuple(FORMULA_CHARS)


def cells(*answers: str) -> list[str]:
    """Each answer as a spreadsheet would read its cell back from the CSV file."""
    blank: dict[str, object] = {c: None for c in COLUMNS}
    rows = [ExportRow(**{**blank, "type": "note", "flagged": False, "answer": a}) for a in answers]  # type: ignore[arg-type]
    parsed = csv.DictReader(io.StringIO(to_csv(rows).decode("utf-8"), newline=""))
    return [row["answer"] for row in parsed]


@pytest.mark.parametrize(
    "text",
    [
        " =1+1",
        '  =HYPERLINK("http://x")',
        "\uff1d1+1",  # full-width equals
        "\t=1+1",
        "\n=1+1",
        "\r\n@SUM(A1)",
        "\u3000+1",  # ideographic space
        "\u00a0-1",
        "\u200b=1+1",  # zero-width space
        "\ufeff=1+1",  # byte-order mark
        "\ufe62cmd",  # small plus sign
        "\uff20user",  # full-width commercial at
        "=\u0338 1",  # composes to "≠" under NFKC, yet starts with "=" as typed
        "\tjust a tab",  # OWASP: a leading tab or carriage return is itself a risk
        "\rcarriage",
    ],
)
def test_disguised_formulas_are_neutralised(text: str) -> None:
    assert cells(text) == ["'" + text]


@pytest.mark.parametrize("text", ["hello", "1+1", "a = b", "", "'quoted", "\u2212 1", "≠ 1"])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert cells(text) == [text]


def test_every_field_is_quoted() -> None:
    blank: dict[str, object] = {c: None for c in COLUMNS}
    row = ExportRow(**{**blank, "type": "delivery", "delivery_id": 7, "flagged": True})  # type: ignore[arg-type]
    header, line = to_csv([row]).decode("utf-8").splitlines()
    assert header == ",".join(f'"{c}"' for c in COLUMNS)
    values = next(csv.reader([line]))
    assert line == ",".join(f'"{v}"' for v in values)
    assert values[COLUMNS.index("delivery_id")] == "7" and values[-1] == "true"


@settings(max_examples=300, deadline=None)
@given(
    before=st.text(alphabet=st.sampled_from(INVISIBLE), max_size=4),
    lead=st.sampled_from(DISGUISED),
    rest=st.text(max_size=12),
)
@example(before="", lead="=", rest="\u0338")
def test_any_disguised_formula_start_is_neutralised(before: str, lead: str, rest: str) -> None:
    text = before + lead + rest
    assert cells(text) == ["'" + text]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20))
@example(" =1+1")
@example("\uff1d1+1")
def test_no_cell_reads_as_a_formula(text: str) -> None:
    [cell] = cells(text)
    assert cell in (text, "'" + text)  # the words are kept; at most an apostrophe is added
    assert not starts_formula(cell) and not cell.startswith(("\t", "\r"))
    if starts_formula(text):
        assert cell == "'" + text
