"""Where the shipped folders are: inside the package in a wheel, beside it in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """`prompts` or `migrations`: the copy inside an installed wheel, else the repo's folder."""
    inside = _PACKAGE / name
    return inside if inside.is_dir() else _PACKAGE.parent / name
