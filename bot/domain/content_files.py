"""Reading content files with line numbers: the problem report (`path:line: message`), YAML
files of a folder, and typed field access on composed YAML nodes. Shared by prompts, templates
and questionnaires, so every kind of content reports its mistakes the same way."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node

from bot.domain.content_schema import (
    compose,
    is_null,
    node_line,
    scalar_bool,
    scalar_int,
    scalar_str,
)


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def format_problems(problems: Iterable[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


# --- reporting ---------------------------------------------------------------------------


@dataclass
class File:
    path: Path
    problems: list[Problem] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, max(line, 1), message))


class Report:
    """Problems grouped per file in discovery order, so output reads file by file."""

    def __init__(self) -> None:
        self._files: dict[Path, File] = {}

    def file(self, path: Path) -> File:
        return self._files.setdefault(path, File(path))

    def problems(self) -> list[Problem]:
        return [p for f in self._files.values() for p in sorted(f.problems, key=lambda p: p.line)]


def suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# A subfolder named like a language code holds translations (bot/domain/translations.py).
LANGUAGE_FOLDER_RE = re.compile(r"[a-z]{2}(-[A-Z]{2})?")


def yaml_files(folder: Path, report: Report, *, translations: bool = False) -> list[Path]:
    """The folder's .yaml files; with `translations`, language subfolders are read elsewhere."""
    if not folder.is_dir():
        return []
    files: list[Path] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue  # editor swap files and the like
        if path.is_dir() and translations and LANGUAGE_FOLDER_RE.fullmatch(path.name):
            continue
        if path.is_dir():
            # Silently skipping a whole subfolder would hide content a clinician expects.
            if any(path.rglob("*.yaml")):
                report.file(path).add(
                    1, f"subfolders are not loaded; move these files into {folder}"
                )
        elif path.suffix == ".yml":
            report.file(path).add(1, "only .yaml files are loaded; rename to .yaml")
        elif path.suffix == ".yaml":
            files.append(path)
    return files


def read_root(f: File, text: str | None = None) -> MappingNode | None:
    """The file's top-level mapping; `text` stands in for the file's contents (a template
    stored in the database is checked exactly like one in a folder)."""
    if text is None:
        try:
            text = f.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            f.add(1, f"file is not valid UTF-8 ({exc.reason} at byte {exc.start})")
            return None
        except OSError as exc:
            f.add(1, f"cannot read file: {exc.strerror or exc}")
            return None
    try:
        root = compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            where = f" on line {exc.context_mark.line + 1}" if exc.context_mark else ""
            detail = f"{exc.problem} ({exc.context}{where})"
        if "mapping values are not allowed" in detail:
            detail += " (a ':' inside unquoted text? quote the text or use 'text: |')"
        f.add(mark.line + 1 if mark else 1, f"YAML syntax error: {detail}")
        return None
    except yaml.YAMLError as exc:
        f.add(1, f"YAML syntax error: {exc}")
        return None
    if root is None:
        f.add(1, "file is empty; expected a mapping of fields")
        return None
    if not isinstance(root, MappingNode):
        f.add(node_line(root), "top level must be a mapping of fields (field: value)")
        return None
    return root


def is_duplicate(
    f: File, what: str, name: str, line: int, seen: dict[str, tuple[Path, int]]
) -> bool:
    if name in seen:
        other, other_line = seen[name]
        f.add(line, f"duplicate {what} {name!r}: also defined in {other.name}:{other_line}")
        return True
    seen[name] = (f.path, line)
    return False


# --- field access ------------------------------------------------------------------------

Fields = dict[str, tuple[Node, Node]]


def fields_in(f: File, node: MappingNode, allowed: Sequence[str], what: str) -> Fields:
    out: Fields = {}
    for key_node, value_node in node.value:
        name = scalar_str(key_node)
        if name is None:
            f.add(node_line(key_node), f"{what}: field names must be plain words")
        elif name in out:
            first = node_line(out[name][0])
            f.add(node_line(key_node), f"field {name!r} appears twice (first on line {first})")
        elif name not in allowed:
            f.add(
                node_line(key_node),
                f"unknown field {name!r} in {what}{suggest(name, allowed)}; "
                f"allowed: {', '.join(allowed)}",
            )
        else:
            out[name] = (key_node, value_node)
    return out


def missing(f: File, fields: Fields, name: str, line: int, required: bool) -> Node | None:
    if name in fields:
        return fields[name][1]
    if required:
        f.add(line, f"missing required field {name!r}")
    return None


def get_str(f: File, fields: Fields, name: str, line: int, *, required: bool = False) -> str | None:
    node = missing(f, fields, name, line, required)
    if node is None:
        return None
    value = scalar_str(node)
    if value is None:
        empty = "has no value" if is_null(node) else "must be text"
        f.add(node_line(node), f"field {name!r} {empty}")
    return value


def get_int(f: File, fields: Fields, name: str, line: int, *, required: bool = False) -> int | None:
    node = missing(f, fields, name, line, required)
    if node is None:
        return None
    value = scalar_int(node)
    if value is None:
        f.add(node_line(node), f"field {name!r} must be a whole number")
    return value


def get_bool(f: File, fields: Fields, name: str, default: bool) -> bool:
    node = missing(f, fields, name, 1, False)
    if node is None:
        return default
    value = scalar_bool(node)
    if value is None:
        f.add(node_line(node), f"field {name!r} must be true or false")
        return default
    return value
