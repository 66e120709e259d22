"""Measuring the screener on labelled messages: recall, false alerts, every miss.

Used by `afterglow safety eval FILE` (a clinic's own messages), by `bench/safety_eval.py` (the
held-out split) and by the tests (the train split). Nothing here stores or logs the messages.

A labelled file is YAML (a list of `{label, text}` mappings, optional `category`) or CSV with
a header naming `label` and `text` (optional `category`). Labels: `risk` or `safe`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.domain.safety.screener import Match, Screener

__all__ = ["Labelled", "LabelledFileError", "Report", "evaluate", "read_labelled"]

LABELS = ("risk", "safe")


class LabelledFileError(ValueError):
    """A labelled file cannot be read; names the file and where."""


@dataclass(frozen=True)
class Labelled:
    label: str
    text: str
    category: str = ""


def _check(path: Path, where: str, label: object, text: object, category: object) -> Labelled:
    if not isinstance(label, str) or label.strip().lower() not in LABELS:
        raise LabelledFileError(f"{path}:{where}: label must be 'risk' or 'safe', got {label!r}")
    if not isinstance(text, str) or not text.strip():
        raise LabelledFileError(f"{path}:{where}: text is empty")
    return Labelled(label.strip().lower(), text, str(category or "").strip())


def read_labelled(path: Path) -> list[Labelled]:
    """Read a YAML, JSON Lines or CSV labelled file."""
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelledFileError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise LabelledFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, raw)
    if suffix == ".jsonl":
        return _read_jsonl(path, raw)
    if suffix in (".yaml", ".yml"):
        return _read_yaml(path, raw)
    raise LabelledFileError(f"{path}: use a .yaml, .csv or .jsonl file")


def _read_csv(path: Path, raw: str) -> list[Labelled]:
    reader = csv.DictReader(io.StringIO(raw))
    names = [n.strip().lower() for n in reader.fieldnames or []]
    if "label" not in names or "text" not in names:
        raise LabelledFileError(f"{path}:1: the header must name the columns label and text")
    reader.fieldnames = names
    out = []
    for row in reader:
        out.append(
            _check(path, str(reader.line_num), row["label"], row["text"], row.get("category"))
        )
    return out


def _read_jsonl(path: Path, raw: str) -> list[Labelled]:
    out = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LabelledFileError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(item, dict):
            raise LabelledFileError(f"{path}:{number}: expected an object")
        out.append(
            _check(path, str(number), item.get("label"), item.get("text"), item.get("category"))
        )
    return out


def _read_yaml(path: Path, raw: str) -> list[Labelled]:
    try:
        items = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise LabelledFileError(f"{path}:{line}: YAML syntax error") from exc
    if not isinstance(items, list):
        raise LabelledFileError(f"{path}:1: expected a list of {{label, text}} entries")
    out = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise LabelledFileError(f"{path}: entry {number}: expected label and text")
        out.append(
            _check(
                path, f"entry {number}", item.get("label"), item.get("text"), item.get("category")
            )
        )
    return out


@dataclass
class Tally:
    total: int = 0
    flagged: int = 0
    risk: int = 0  # how many of them are labelled risk


@dataclass
class Report:
    risk: int = 0
    safe: int = 0
    missed: list[Labelled] = field(default_factory=list)
    false_alerts: list[tuple[Labelled, Match]] = field(default_factory=list)
    by_category: dict[str, Tally] = field(default_factory=dict)
    by_layer: dict[str, int] = field(default_factory=dict)  # risk caught, by first layer

    @property
    def recall(self) -> float:
        return 1.0 - len(self.missed) / self.risk if self.risk else 1.0

    @property
    def false_alert_rate(self) -> float:
        return len(self.false_alerts) / self.safe if self.safe else 0.0

    def summary(self) -> str:
        return (
            f"recall {self.recall:.1%} ({self.risk - len(self.missed)}/{self.risk} risk "
            f"messages), false alerts {self.false_alert_rate:.1%} "
            f"({len(self.false_alerts)}/{self.safe} safe messages)"
        )

    def category_lines(self) -> list[str]:
        lines = []
        for name in sorted(self.by_category):
            tally = self.by_category[name]
            what = "caught" if tally.risk * 2 > tally.total else "flagged"
            lines.append(f"{name}: {what} {tally.flagged}/{tally.total}")
        return lines


def evaluate(screener: Screener, items: Iterable[Labelled]) -> Report:
    report = Report()
    for item in items:
        match = screener.screen(item.text)
        tally = report.by_category.setdefault(item.category or item.label, Tally())
        tally.total += 1
        if match is not None:
            tally.flagged += 1
        if item.label == "risk":
            tally.risk += 1
            report.risk += 1
            if match is None:
                report.missed.append(item)
            else:
                report.by_layer[match.layer] = report.by_layer.get(match.layer, 0) + 1
        else:
            report.safe += 1
            if match is not None:
                report.false_alerts.append((item, match))
    return report
