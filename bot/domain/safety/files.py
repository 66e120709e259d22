"""Reading the safety content folder: YAML with line numbers, for errors a reviewer can act on."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from bot.domain.content_schema import node_line

__all__ = [
    "RESOURCES_FILE",
    "SAFETY_SUBDIR",
    "SafetyContentError",
    "compose",
    "iter_safety_files",
    "line_of",
    "mapping",
    "resources_language",
    "scalar",
]

SAFETY_SUBDIR = "safety"
RESOURCES_FILE = "resources.yaml"
# resources.yaml is the default language's; resources.es.yaml and the like translate it.
_RESOURCES_RE = re.compile(r"resources(?:\.([a-z]{2}(?:-[A-Z]{2})?))?\.yaml")


def resources_language(path: Path) -> str | None:
    """ "" for resources.yaml, "es" for resources.es.yaml, None for any other file."""
    m = _RESOURCES_RE.fullmatch(path.name)
    if m is None:
        return None
    return m.group(1) or ""


class SafetyContentError(Exception):
    """A safety content file is invalid. Names the file and the line, for the reviewer."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path = Path(path)
        self.line = max(int(line), 1)
        self.message = message
        super().__init__(f"{self.path}:{self.line}: {message}")


line_of = node_line  # one YAML line-number helper for all content (content_schema)


def compose(path: Path) -> Node | None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SafetyContentError(path, 1, f"file is not valid UTF-8 ({exc.reason})") from exc
    except OSError as exc:
        raise SafetyContentError(path, 1, f"cannot read file: {exc.strerror or exc}") from exc
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = exc.problem or exc.context or "invalid YAML"
        line = mark.line + 1 if mark else 1
        raise SafetyContentError(path, line, f"YAML syntax error: {detail}") from exc
    except yaml.YAMLError as exc:
        raise SafetyContentError(path, 1, f"YAML syntax error: {exc}") from exc


def mapping(path: Path, node: Node | None, what: str) -> list[tuple[str, Node, Node]]:
    if node is None:
        raise SafetyContentError(path, 1, f"file is empty; expected {what}")
    if not isinstance(node, MappingNode):
        raise SafetyContentError(path, line_of(node), f"expected {what}")
    items: list[tuple[str, Node, Node]] = []
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            raise SafetyContentError(path, line_of(key_node), "keys must be plain names")
        key = str(key_node.value)
        if key in seen:
            raise SafetyContentError(
                path, line_of(key_node), f"duplicate key {key!r} (first on line {seen[key]})"
            )
        seen[key] = line_of(key_node)
        items.append((key, key_node, value_node))
    return items


def scalar(node: Node) -> str | None:
    if not isinstance(node, ScalarNode) or node.tag == "tag:yaml.org,2002:null":
        return None
    return str(node.value)  # source text: `- no` stays the word "no", not a boolean


def iter_safety_files(dirs: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    visited: set[Path] = set()
    for raw_dir in dirs:
        folder = Path(raw_dir)
        if not folder.is_dir():
            raise SafetyContentError(folder, 1, "content folder does not exist")
        if folder.resolve() in visited:
            continue
        visited.add(folder.resolve())
        safety = folder / SAFETY_SUBDIR
        if not safety.is_dir():
            continue
        for path in sorted(safety.iterdir()):
            if path.name.startswith("."):
                continue
            if path.is_dir():
                if any(path.rglob("*.yaml")):
                    raise SafetyContentError(
                        path, 1, f"subfolders are not loaded; move these files into {safety}"
                    )
            elif path.suffix == ".yml":
                raise SafetyContentError(path, 1, "only .yaml files are loaded; rename to .yaml")
            elif path.suffix == ".yaml":
                files.append(path)
    return files
