"""Every text a person reads goes through the catalogue: a sentence-like string literal in the
chat views, handlers, services or workspace that is not inside `_()`, `N_()` or `ngettext()`
fails here, so a new English text cannot slip past the translators.

What is not a text for a person is told apart by where it is (a log call, a docstring, SQL)
or, for the rest, by a trailing `# not shown: <why>` comment on its line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

BOT = Path(__file__).resolve().parents[2] / "bot"
CHECKED = [
    *sorted((BOT / "views").glob("*.py")),
    *sorted((BOT / "handlers").glob("*.py")),
    *sorted((BOT / "services").glob("*.py")),
    *sorted((BOT / "workspace").glob("*.py")),
    BOT / "dispatch" / "alerting.py",
    BOT / "dispatch" / "dispatcher.py",
    BOT / "dispatch" / "reminders.py",
]
# Operator-facing: printed by `afterglow …` commands, or files exported for the clinic's
# records; English like the rest of the CLI.
OPERATOR_ONLY = {"maintenance.py", "keycheck.py", "fhir.py"}
MARKED = {"_", "N_", "ngettext"}
NOT_TEXT_CALLS = {"debug", "info", "warning", "error", "exception", "critical", "execute", "text"}
SENTENCE = re.compile(r"[A-Za-z]{2,}[,.:;!?']? +[A-Za-z]{2,}")
NOT_SHOWN = "# not shown:"


def _unmarked(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = (
                node.func.id
                if isinstance(node.func, ast.Name)
                else node.func.attr
                if isinstance(node.func, ast.Attribute)
                else ""
            )
            if name in MARKED or name in NOT_TEXT_CALLS:
                skip.update(id(n) for n in ast.walk(node))
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            skip.add(id(body[0].value))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.JoinedStr):  # an f-string: its words around the fields
            skip.update(id(n) for n in ast.walk(node))
            value = "x".join(v.value if isinstance(v, ast.Constant) else "" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
        else:
            continue
        if not SENTENCE.search(value):
            continue
        end = node.end_lineno or node.lineno
        if any(NOT_SHOWN in lines[n - 1] for n in range(node.lineno, end + 1)):
            continue
        found.append(f"{path.relative_to(BOT.parent)}:{node.lineno}: {value[:60]!r}")
    return found


def test_every_sentence_a_person_reads_is_marked_for_the_catalogue() -> None:
    found = [
        problem
        for path in CHECKED
        if path.name not in OPERATOR_ONLY and path.name != "__init__.py"
        for problem in _unmarked(path)
    ]
    assert not found, "texts not through _(): \n" + "\n".join(found)


def test_the_check_sees_an_unmarked_text(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from bot.i18n import _\n"
        'A = _("Marked text here")\n'
        'B = "Plain English sentence"\n'
        'C = "internal marker text"  # not shown: compared with a Telegram error\n'
        "def f() -> str:\n"
        '    """A docstring sentence."""\n'
        '    return f"Hello {A} there"\n',
        encoding="utf-8",
    )
    global BOT
    saved, BOT = BOT, tmp_path.parent
    try:
        found = _unmarked(sample)
    finally:
        BOT = saved
    assert [line.split(": ", 1)[0].rsplit(":", 1)[1] for line in found] == ["3", "7"]
