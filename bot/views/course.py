"""Chat texts and keyboards of `/sessions`: a patient's planned and past sessions, in the
patient's local time, with move and cancel buttons for the planned ones."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.domain.states import SessionState
from bot.services.course import SHIFTS, SessionChange, SessionLine, SessionList, version
from bot.views.callbacks import CallbackCodec
from bot.views.render import clip, esc, local

SHIFT_LABELS = {"-1h": "−1 hour", "+1h": "+1 hour", "-1d": "−1 day", "+1d": "+1 day"}
SHIFT_LABELS["+7d"] = "+1 week"
SESSION_STATE = {
    SessionState.PLANNED: "planned",
    SessionState.STARTED: "done",
    SessionState.CANCELLED: "cancelled",
}
_SHIFT_KEYS = tuple(SHIFTS)  # buttons carry the index: "+1d" would be fine, a shorter id is safer


def shift_key(index: int) -> str | None:
    return _SHIFT_KEYS[index] if 0 <= index < len(_SHIFT_KEYS) else None


def _counts(line: SessionLine) -> str:
    parts = []
    if line.preparation:
        parts.append(f"{line.preparation} preparation")
    if line.pending - line.preparation:
        parts.append(f"{line.pending - line.preparation} after")
    if line.sent:
        parts.append(f"{line.sent} sent")
    return f" · {', '.join(parts)}" if parts else ""


def _line(number: int, line: SessionLine, zone: str | None) -> str:
    state = SESSION_STATE[line.state]
    return (
        f"{number}. {local(line.started_at, zone)} · {esc(line.template)} · {state}{_counts(line)}"
    )


def sessions_text(listing: SessionList, note: str = "") -> str:
    zone = listing.timezone
    where = esc(zone) if zone else "UTC: no time zone chosen yet"
    out = [note + "\n"] if note else []
    out.append(f"<b>Sessions of {esc(listing.pseudonym)}</b> (times in {where})")
    out.append("\n<b>Planned</b>")
    if listing.planned:
        out.extend(_line(i, line, zone) for i, line in enumerate(listing.planned, start=1))
    else:
        out.append(f"None. Plan one with /session {esc(listing.pseudonym)} YYYY-MM-DD HH:MM.")
    out.append("\n<b>Past</b>")
    first = len(listing.planned) + 1
    if listing.past:
        out.extend(_line(i, line, zone) for i, line in enumerate(listing.past, start=first))
        if listing.more_past:
            out.append(f"…and {listing.more_past} earlier")
    else:
        out.append("None logged yet.")
    return clip("\n".join(out))


def sessions_keyboard(codec: CallbackCodec, listing: SessionList) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                f"{n} · Move", callback_data=codec.encode("tb", line.id, version(line.started_at))
            ),
            InlineKeyboardButton(
                f"{n} · Cancel",
                callback_data=codec.encode("tc", line.id, version(line.started_at)),
            ),
        ]
        for n, line in enumerate(listing.planned, start=1)
    ]
    rows.append(
        [
            InlineKeyboardButton("↻ Refresh", callback_data=codec.encode("ty", listing.patient_id)),
            InlineKeyboardButton("◀ Patient", callback_data=codec.encode("tp", listing.patient_id)),
        ]
    )
    return InlineKeyboardMarkup(rows)


def move_text(change: SessionChange) -> str:
    return (
        f"Move the session of <b>{esc(change.pseudonym)}</b> on "
        f"{local(change.started_at, change.timezone)} (their local time) to:"
    )


def move_menu(codec: CallbackCodec, change: SessionChange) -> InlineKeyboardMarkup:
    session_id, v = change.session_id, version(change.started_at)
    buttons = [
        InlineKeyboardButton(SHIFT_LABELS[key], callback_data=codec.encode("tj", session_id, i, v))
        for i, key in enumerate(_SHIFT_KEYS)
    ]
    back = InlineKeyboardButton("◀ Sessions", callback_data=codec.encode("ty", change.patient_id))
    return InlineKeyboardMarkup([buttons[:2], buttons[2:], [back]])


def cancel_text(change: SessionChange) -> str:
    return (
        f"Cancel the planned session of <b>{esc(change.pseudonym)}</b> on "
        f"{local(change.started_at, change.timezone)}? Its prompts are cancelled; the current "
        f"session's prompts keep going. {esc(change.pseudonym)} gets no message about it."
    )


def cancel_menu(codec: CallbackCodec, change: SessionChange) -> InlineKeyboardMarkup:
    session_id, at, patient_id = change.session_id, change.started_at, change.patient_id
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    "Yes, cancel the session",
                    callback_data=codec.encode("tf", session_id, version(at)),
                ),
                InlineKeyboardButton("Keep it", callback_data=codec.encode("ty", patient_id)),
            ]
        ]
    )


def moved_note(change: SessionChange) -> str:
    assert change.previous_start is not None
    return (
        f"Moved: {local(change.previous_start, change.timezone)} → "
        f"{local(change.started_at, change.timezone)}; {change.changed} prompt(s) re-planned."
    )


def cancelled_note(change: SessionChange) -> str:
    return (
        f"Cancelled the session on {local(change.started_at, change.timezone)} and its "
        f"{change.changed} pending prompt(s)."
    )
