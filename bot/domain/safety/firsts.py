"""Which characters a phrase pattern's match can start with.

The phrase matcher joins every phrase of every language into one expression tried after
each space of a message. Without help the engine tries all of them at every position;
grouped by first character behind a lookahead, it tries a handful — the difference between
about a millisecond and a tenth of one with three languages' lists.

Read from the compiled form of the pattern (`re._parser`, the standard library's own
parser). Anything it cannot bound — a class like `[^ ]`, a construct it does not know, a
parser missing from some Python — is "any character", which is always safe: such a
pattern is simply tried at every position, as before."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

try:  # the standard library's parser; private, so its absence only costs speed
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - every supported Python has them
    _p = _c = None

__all__ = ["first_characters"]

_WIDE = 64  # a range wider than this is as good as "any"


def first_characters(pattern: str) -> frozenset[str] | None:
    """The characters a non-empty match can begin with; None for "any" (or an empty match)."""
    if _p is None:
        return None
    try:
        chars, empty = _sequence(list(_p.parse(pattern)))
    except Exception:  # an unknown construct: tried everywhere, never skipped
        return None
    return None if chars is None or empty else frozenset(chars)


def _sequence(items: Iterable[tuple[Any, Any]]) -> tuple[set[str] | None, bool]:
    chars: set[str] = set()
    for op, arg in items:
        first, empty = _item(op, arg)
        if first is None:
            return None, False
        chars |= first
        if not empty:
            return chars, False
    return chars, True


def _item(op: Any, arg: Any) -> tuple[set[str] | None, bool]:
    if op is _c.LITERAL:
        return {chr(arg)}, False
    if op is _c.IN:
        return _charset(arg), False
    if op is _c.BRANCH:
        chars: set[str] = set()
        empty = False
        for alternative in arg[1]:
            first, alt_empty = _sequence(list(alternative))
            if first is None:
                return None, False
            chars |= first
            empty = empty or alt_empty
        return chars, empty
    if op is _c.SUBPATTERN:
        return _sequence(list(arg[-1]))
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
        low, _, body = arg
        first, empty = _sequence(list(body))
        return first, first is not None and (low == 0 or empty)
    if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):  # zero-width: look past it
        return set(), True
    return None, False


def _charset(items: Iterable[tuple[Any, Any]]) -> set[str] | None:
    chars: set[str] = set()
    for op, arg in items:
        if op is _c.LITERAL:
            chars.add(chr(arg))
        elif op is _c.RANGE and arg[1] - arg[0] <= _WIDE:
            chars.update(chr(code) for code in range(arg[0], arg[1] + 1))
        else:  # negated sets, categories, wide ranges
            return None
    return chars
