"""Split the labelled screening corpus into train / dev / held-out, once.

The corpus was written by writers who never saw the phrase lists, concepts or screener (see
docs/safety.md, "How the screener is measured"). A message keeps the split it was first put
in: messages already in the split files stay where they are, so adding a writing round never
moves a held-out message into training. The first round was split by rank of a hash of the id
within each category (60 / 20 / 20); later messages go by the same hash read as a number in
[0, 1) (below 0.6 train, below 0.8 dev, else held-out). No random state. It prints counts
only, never messages: the held-out split is not to be read while tuning.

    python bench/safety_split.py DRAFT.jsonl [DRAFT.jsonl ...]
    python bench/safety_split.py --out tests/fixtures/safety/es tests/fixtures/safety/es/E*.jsonl
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "safety" / "corpus"
SALT = "afterglow-screening-split-2026-12"
SPLITS = (("train", 0.6), ("dev", 0.2), ("heldout", 0.2))


def _hash(row_id: str) -> str:
    return hashlib.sha256(f"{SALT}:{row_id}".encode()).hexdigest()


def _existing() -> dict[str, list[dict[str, str]]]:
    """split name -> its messages, as the split files hold them now."""
    rows: dict[str, list[dict[str, str]]] = {name: [] for name, _ in SPLITS}
    for name, _ in SPLITS:
        path = OUT / f"{name}.jsonl"
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    rows[name].append(json.loads(line))
    return rows


def main(paths: list[str]) -> None:
    # Start from what is already split, so a new round only adds: passing only the new files
    # must never drop (or move) a message placed earlier.
    out = _existing()
    placed = {row["id"] for rows in out.values() for row in rows}
    seen_text = {" ".join(row["text"].lower().split()) for rows in out.values() for row in rows}
    first_round = not placed
    by_category: dict[str, list[dict[str, str]]] = defaultdict(list)
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key = " ".join(item["text"].lower().split())
            if item["id"] in placed or key in seen_text:
                continue
            seen_text.add(key)
            by_category[item["category"]].append(
                {k: item[k] for k in ("id", "label", "category", "text")}
            )
    for fresh in by_category.values():
        if first_round:  # the first round: by rank within the category
            fresh.sort(key=lambda r: _hash(r["id"]))
            cut1 = round(len(fresh) * SPLITS[0][1])
            cut2 = cut1 + round(len(fresh) * SPLITS[1][1])
            out["train"] += fresh[:cut1]
            out["dev"] += fresh[cut1:cut2]
            out["heldout"] += fresh[cut2:]
            continue
        for row in fresh:
            x = int(_hash(row["id"])[:12], 16) / 16**12
            name = "train" if x < 0.6 else "dev" if x < 0.8 else "heldout"
            out[name].append(row)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, rows in out.items():
        rows.sort(key=lambda r: r["id"])
        with (OUT / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        labels = Counter(r["label"] for r in rows)
        print(f"{name}: {len(rows)} messages ({labels['risk']} risk, {labels['safe']} safe)")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--out"]:  # another language's corpus: tests/fixtures/safety/es
        OUT = Path(args[1])
        args = args[2:]
    main(args)
