"""bench/safety_split.py: a new writing round only adds to the splits; nothing moves or goes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import safety_split


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _row(i: str, text: str, label: str = "risk") -> dict[str, str]:
    return {"id": i, "label": label, "category": "R1-explicit", "text": text}


def _read(out: Path) -> dict[str, list[str]]:
    return {
        name: [json.loads(line)["id"] for line in (out / f"{name}.jsonl").read_text().splitlines()]
        for name in ("train", "dev", "heldout")
    }


def test_a_later_round_keeps_every_message_already_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "corpus"
    monkeypatch.setattr(safety_split, "OUT", out)
    first = tmp_path / "A.jsonl"
    _write(first, [_row(f"A-{n:03}", f"first round zebra {n}") for n in range(40)])
    safety_split.main([str(first)])
    before = _read(out)
    assert sum(len(v) for v in before.values()) == 40

    later = tmp_path / "B.jsonl"
    rows = [_row(f"B-{n:03}", f"second round zebra {n}") for n in range(30)]
    rows.append(_row("B-dup", "FIRST round   zebra 3"))  # the same text again: dropped
    _write(later, rows)
    safety_split.main([str(later)])  # only the new file: the old ones must stay
    after = _read(out)

    for name, ids in before.items():
        assert set(ids) <= set(after[name]), name  # nothing moved, nothing lost
    assert sum(len(v) for v in after.values()) == 70
    assert "B-dup" not in {i for ids in after.values() for i in ids}
    assert "zebra" not in capsys.readouterr().out  # counts only, never a message
