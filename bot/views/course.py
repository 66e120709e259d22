"""Chat texts and keyboards of `/sessions`: a patient's planned and past sessions, in the
patient's local time, with move and cancel buttons for the planned ones."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.domain.states import SessionState
from bot.i18n import N_, NC_, _, ngettext, pgettext
from bot.services.course import SHIFTS, SessionChange, SessionLine, SessionList, version
from bot.views.callbacks import CallbackCodec
from bot.views.render import clip, esc, local

# Texts marked N_ are catalogue entries translated where they are shown: _(SHIFT_LABELS[k]).
SHIFT_LABELS = {
    "-1h": N_("−1 hour"),
    "+1h": N_("+1 hour"),
    "-1d": N_("−1 day"),
    "+1d": N_("+1 day"),
    "+7d": N_("+1 week"),
}
SESSION = "session"  # the catalogue context of a session's state words (they agree with it)
SESSION_STATE = {
    SessionState.PLANNED: NC_("session", "planned"),
    SessionState.STARTED: NC_("session", "done"),
    SessionState.CANCELLED: NC_("session", "cancelled"),
}


def session_state(state: SessionState) -> str:
    return pgettext(SESSION, SESSION_STATE[state])


_SHIFT_KEYS = tuple(SHIFTS)  # buttons carry the index: "+1d" would be fine, a shorter id is safer


def shift_key(index: int) -> str | None:
    return _SHIFT_KEYS[index] if 0 <= index < len(_SHIFT_KEYS) else None


def _counts(line: SessionLine) -> str:
    parts = []
    if line.preparation:
        n = line.preparation
        # i18n: counts of a session's prompts: to come before it ("3 preparation"), to come
        # after it ("5 after"), sent ("2 sent")
        parts.append(ngettext("{n} preparation", "{n} preparation", n).format(n=n))
    if line.pending - line.preparation:
        n = line.pending - line.preparation
        parts.append(ngettext("{n} after", "{n} after", n).format(n=n))
    if line.sent:
        n = line.sent
        parts.append(ngettext("{n} sent", "{n} sent", n).format(n=n))
    return f" · {', '.join(parts)}" if parts else ""


def _line(number: int, line: SessionLine, zone: str | None) -> str:
    state = session_state(line.state)
    return (
        f"{number}. {local(line.started_at, zone)} · {esc(line.template)} · {state}{_counts(line)}"
    )


def sessions_text(listing: SessionList, note: str = "") -> str:
    zone = listing.timezone
    where = esc(zone) if zone else _("UTC: no time zone chosen yet")
    out = [note + "\n"] if note else []
    # i18n: {where} is a time zone, or "UTC: no time zone chosen yet"
    title = _("<b>Sessions of {pseudonym}</b> (times in {where})")
    out.append(title.format(pseudonym=esc(listing.pseudonym), where=where))
    out.append("\n" + _("<b>Planned</b>"))
    if listing.planned:
        out.extend(_line(i, line, zone) for i, line in enumerate(listing.planned, start=1))
    else:
        # i18n: keep "/session {pseudonym} YYYY-MM-DD HH:MM" as it is: it is the command
        none = _("None. Plan one with /session {pseudonym} YYYY-MM-DD HH:MM.")
        out.append(none.format(pseudonym=esc(listing.pseudonym)))
    out.append("\n" + _("<b>Past</b>"))
    first = len(listing.planned) + 1
    if listing.past:
        out.extend(_line(i, line, zone) for i, line in enumerate(listing.past, start=first))
        if listing.more_past:
            n = listing.more_past
            out.append(ngettext("…and {n} earlier", "…and {n} earlier", n).format(n=n))
    else:
        out.append(_("None logged yet."))
    return clip("\n".join(out))


def sessions_keyboard(codec: CallbackCodec, listing: SessionList) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                # i18n: {n} is the session's number in the list above
                _("{n} · Move").format(n=n),
                callback_data=codec.encode("tb", line.id, version(line.started_at)),
            ),
            InlineKeyboardButton(
                # i18n: {n} is the session's number in the list above
                _("{n} · Cancel").format(n=n),
                callback_data=codec.encode("tc", line.id, version(line.started_at)),
            ),
        ]
        for n, line in enumerate(listing.planned, start=1)
    ]
    rows.append(
        [
            InlineKeyboardButton(
                _("↻ Refresh"), callback_data=codec.encode("ty", listing.patient_id)
            ),
            InlineKeyboardButton(
                _("◀ Patient"), callback_data=codec.encode("tp", listing.patient_id)
            ),
        ]
    )
    return InlineKeyboardMarkup(rows)


def move_text(change: SessionChange) -> str:
    # i18n: {when} is a date and time; the buttons below say "+1 day" etc.
    return _("Move the session of <b>{pseudonym}</b> on {when} (their local time) to:").format(
        pseudonym=esc(change.pseudonym), when=local(change.started_at, change.timezone)
    )


def move_menu(codec: CallbackCodec, change: SessionChange) -> InlineKeyboardMarkup:
    session_id, v = change.session_id, version(change.started_at)
    buttons = [
        InlineKeyboardButton(
            _(SHIFT_LABELS[key]), callback_data=codec.encode("tj", session_id, i, v)
        )
        for i, key in enumerate(_SHIFT_KEYS)
    ]
    back = InlineKeyboardButton(
        _("◀ Sessions"), callback_data=codec.encode("ty", change.patient_id)
    )
    return InlineKeyboardMarkup([buttons[:2], buttons[2:], [back]])


def cancel_text(change: SessionChange) -> str:
    # i18n: {when} is a date and time
    return _(
        "Cancel the planned session of <b>{pseudonym}</b> on {when}? Its prompts are "
        "cancelled; the current session's prompts keep going. {pseudonym} gets no message "
        "about it."
    ).format(pseudonym=esc(change.pseudonym), when=local(change.started_at, change.timezone))


def cancel_menu(codec: CallbackCodec, change: SessionChange) -> InlineKeyboardMarkup:
    session_id, at, patient_id = change.session_id, change.started_at, change.patient_id
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    _("Yes, cancel the session"),
                    callback_data=codec.encode("tf", session_id, version(at)),
                ),
                InlineKeyboardButton(_("Keep it"), callback_data=codec.encode("ty", patient_id)),
            ]
        ]
    )


def moved_note(change: SessionChange) -> str:
    assert change.previous_start is not None
    # i18n: {before} and {after} are dates and times
    return ngettext(
        "Moved: {before} → {after}; {n} prompt re-planned.",
        "Moved: {before} → {after}; {n} prompts re-planned.",
        change.changed,
    ).format(
        before=local(change.previous_start, change.timezone),
        after=local(change.started_at, change.timezone),
        n=change.changed,
    )


def cancelled_note(change: SessionChange) -> str:
    # i18n: {when} is a date and time
    return ngettext(
        "Cancelled the session on {when} and its {n} pending prompt.",
        "Cancelled the session on {when} and its {n} pending prompts.",
        change.changed,
    ).format(when=local(change.started_at, change.timezone), n=change.changed)
