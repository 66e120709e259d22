"""Chat texts and keyboards for the patient's own controls: /pause, /resume, /stop, /start
after a stop, /settings, /mydata and /forgetme. HTML; anything typed goes through `esc`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.domain import languages
from bot.domain.schedule import QuietHours
from bot.domain.timezones import COMMON_ZONES
from bot.i18n import N_, _, ngettext
from bot.services.errors import STALE_BUTTON
from bot.views.callbacks import CallbackCodec
from bot.views.render import esc, local

STALE = STALE_BUTTON
YES, NO = "y", "n"

# --- pause and resume -----------------------------------------------------------------------

# Texts marked N_ are catalogue entries translated where they are sent: _(controls.X).
PAUSE_USAGE = N_(
    "To take a break until you send /resume, send /pause on its own. For a break of a few "
    "days, add a number from 1 to 90, like <code>/pause 7</code>."
)


def paused(until: datetime | None, zone: str | None, *, again: bool) -> str:
    head = _("Your break has been changed.") if again else _("You're taking a break.")
    if until is None:
        when = _("No messages will arrive until you send /resume.")
    else:
        # i18n: {when} is a date and time in the patient's time zone
        when = _(
            "No messages will arrive until {when} (your time); send /resume to continue sooner."
        ).format(when=local(until, zone))
    return f"{head} {when}\n\n{_('If you need help, /crisis is always there.')}"


def resumed(sent_soon: int, missed: int) -> str:
    lines = [_("Welcome back. Messages are on again.")]
    if sent_soon:
        lines.append(
            ngettext(
                "{n} message from your break will arrive shortly.",
                "{n} messages from your break will arrive shortly.",
                sent_soon,
            ).format(n=sent_soon)
        )
    if missed:
        lines.append(
            ngettext(
                "{n} older message that came due a while ago was skipped, so you won't get a "
                "flood.",
                "{n} older messages that came due a while ago were skipped, so you won't get a "
                "flood.",
                missed,
            ).format(n=missed)
        )
    return "\n".join(lines)


# --- stop and rejoin ------------------------------------------------------------------------

STOP_CONFIRM = N_(
    "<b>Stop all messages?</b>\n\n"
    "You won't get any more notes, questions or check-ins, and your therapist will be told. "
    "What you have already shared stays with your therapist (to delete it, use /forgetme). "
    "You can start again any time with /start."
)
STOPPED = N_(
    "<b>You've stopped all messages.</b> Nothing more will be sent, and your therapist has "
    "been told.\n\nSend /start any time if you'd like to receive them again. If you need help, "
    "/crisis is always there."
)
STOP_KEPT = N_("<b>No change:</b> messages will keep coming.")
ALREADY_STOPPED = N_("You've already stopped all messages. Send /start to receive them again.")


def stop_keyboard(codec: CallbackCodec, patient_id: int) -> InlineKeyboardMarkup:
    return _yes_no(codec, "ps", patient_id, _("Stop"), _("Keep them coming"))


def therapist_stopped(pseudonym: str) -> str:
    return _(
        "<b>{pseudonym}</b> has stopped all messages. Their pending prompts were "
        "cancelled; nothing more will be sent unless they start again."
    ).format(pseudonym=esc(pseudonym))


REJOIN_QUESTION = N_(
    "Welcome back. You stopped all messages earlier. Would you like to start receiving them again?"
)
REJOINED = N_(
    "<b>You're back.</b> Your therapist has been told and will plan new messages after your "
    "next session."
)
REJOIN_DECLINED = N_("OK, messages stay off. Send /start whenever you change your mind.")


def rejoin_keyboard(codec: CallbackCodec, patient_id: int) -> InlineKeyboardMarkup:
    return _yes_no(codec, "pr", patient_id, _("Yes, start again"), _("No"))


def therapist_rejoined(pseudonym: str) -> str:
    return _(
        "<b>{pseudonym}</b> wants to receive messages again. Log their next session with "
        "/session {pseudonym} to plan prompts."
    ).format(pseudonym=esc(pseudonym))


# --- erasure and export ---------------------------------------------------------------------

FORGET_CONFIRM = N_(
    "<b>Delete everything?</b>\n\n"
    "This permanently deletes:\n"
    "• all your answers, check-ins and notes\n"
    "• your Telegram account link, time zone and consent record\n\n"
    "Upcoming messages are cancelled and your therapist is told. Afterwards you can't use this "
    "bot unless your therapist invites you again. If you'd like a copy first, tap Cancel and "
    "send /mydata."
)
FORGET_KEPT = N_("<b>Cancelled.</b> Nothing was deleted.")


def forget_keyboard(codec: CallbackCodec, patient_id: int) -> InlineKeyboardMarkup:
    return _yes_no(codec, "pf", patient_id, _("Delete everything"), _("Cancel"))


def forgotten(deleted_replies: int) -> str:
    return ngettext(
        "<b>Done: your data has been erased.</b>\n\n"
        "Deleted: {n} answer and notes, your Telegram account link, "
        "your time zone and your consent record. Upcoming messages were cancelled and your "
        "therapist has been told.\n\n"
        "You can no longer use this bot unless your therapist invites you again. "
        "/crisis still works if you need help.",
        "<b>Done: your data has been erased.</b>\n\n"
        "Deleted: {n} answers and notes, your Telegram account link, "
        "your time zone and your consent record. Upcoming messages were cancelled and your "
        "therapist has been told.\n\n"
        "You can no longer use this bot unless your therapist invites you again. "
        "/crisis still works if you need help.",
        deleted_replies,
    ).format(n=deleted_replies)


def therapist_forgot(pseudonym: str) -> str:
    return _("<b>{pseudonym}</b> asked to delete their data; it has been erased.").format(
        pseudonym=esc(pseudonym)
    )


MYDATA_CAPTION = N_(
    "Everything stored about you, as a JSON file. It contains your answers: keep it somewhere "
    "private."
)

# --- settings -------------------------------------------------------------------------------

SETTINGS_USAGE = N_(
    "Send /settings to see your settings, or change them directly:\n"
    "<code>/settings zone Denver</code> (a city or a zone name like America/Denver)\n"
    "<code>/settings quiet 22:00-07:30</code> (no messages between these times)\n"
    "<code>/settings language es</code> (en, es or de)"
)
QUIET_PRESETS = ("21:00-08:00", "22:00-07:00", "23:00-08:00", "20:00-07:00", "00:00-00:00")


def quiet_label(quiet: QuietHours) -> str:
    return _("none") if quiet.start == quiet.end else f"{quiet.start:%H:%M}–{quiet.end:%H:%M}"


def settings_card(zone: str | None, quiet: QuietHours, now: datetime, language: str) -> str:
    shown = zone or "UTC"
    clock = now.astimezone(ZoneInfo(shown)).strftime("%H:%M")
    quiet_line = (
        _("Quiet hours: <b>none</b> (messages may arrive at any time)")
        if quiet.start == quiet.end
        else _("Quiet hours: <b>{hours}</b> (nothing arrives then)").format(
            hours=quiet_label(quiet)
        )
    )
    return _(
        "<b>Your settings</b>\n"
        "Language: <b>{language}</b>\n"
        "Time zone: <b>{zone}</b> (it's {clock} there now)\n"
        "{quiet_line}\n\n"
        "Tap below to change them, or type:\n"
        "<code>/settings zone Denver</code> (a city or a zone name)\n"
        "<code>/settings quiet 22:00-07:30</code>"
    ).format(
        language=esc(languages.NAMES.get(language, language)),
        zone=esc(shown),
        clock=clock,
        quiet_line=quiet_line,
    )


def quiet_code(text: str) -> str:
    """`22:00-07:00` → `2200-0700`: callback data parts may not contain ':'."""
    return text.replace(":", "")


def settings_keyboard(
    codec: CallbackCodec,
    patient_id: int,
    clinic_zone: str,
    zone: str | None,
    quiet: QuietHours,
    language: str,
    offered: Sequence[str],
) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    if len(offered) > 1:
        rows.append(
            [
                InlineKeyboardButton(
                    ("✓ " if code == language else "") + languages.NAMES[code],
                    callback_data=codec.encode("pl", patient_id, code),
                )
                for code in offered
            ]
        )
    zones = [clinic_zone, *(z for z in COMMON_ZONES if z != clinic_zone)]
    zone_buttons: list[InlineKeyboardButton] = []
    for name in zones:
        try:
            data = codec.encode("pz", patient_id, name)
        except ValueError:  # an unusually long clinic zone name: typing it still works
            continue
        mark = "✓ " if name == zone else ""
        zone_buttons.append(
            InlineKeyboardButton(mark + name.split("/")[-1].replace("_", " "), callback_data=data)
        )
    rows.extend(zone_buttons[i : i + 2] for i in range(0, len(zone_buttons), 2))
    current = str(quiet)
    quiet_buttons = []
    for preset in QUIET_PRESETS:
        parsed = QuietHours.parse(preset)
        label = (
            _("No quiet hours")
            if parsed.start == parsed.end
            else _("Quiet {hours}").format(hours=quiet_label(parsed))
        )
        mark = "✓ " if preset == current else ""
        quiet_buttons.append(
            InlineKeyboardButton(
                mark + label, callback_data=codec.encode("pq", patient_id, quiet_code(preset))
            )
        )
    rows.extend(quiet_buttons[i : i + 2] for i in range(0, len(quiet_buttons), 2))
    return InlineKeyboardMarkup(rows)


def _moved(moved: int) -> str:
    return ngettext(
        "{n} upcoming message moved to keep its local time.",
        "{n} upcoming messages moved to keep their local times.",
        moved,
    ).format(n=moved)


def zone_changed(zone: str, moved: int) -> str:
    text = _("Time zone set to <b>{zone}</b>.").format(zone=esc(zone))
    return f"{text} {_moved(moved)}" if moved else text


def quiet_changed(quiet: QuietHours, moved: int) -> str:
    text = (
        _("Quiet hours turned off.")
        if quiet.start == quiet.end
        else _("Quiet hours set to <b>{hours}</b>.").format(hours=quiet_label(quiet))
    )
    if moved:
        text += " " + ngettext(
            "{n} upcoming message moved out of them.",
            "{n} upcoming messages moved out of them.",
            moved,
        ).format(n=moved)
    return text


def language_changed(language: str) -> str:
    """Said in the new language: the first words the patient reads in it."""
    return _("From now on I'll write to you in {language}.").format(
        language=esc(languages.NAMES[language])
    )


def language_fallback_notice(removed: str, language: str) -> str:
    """To a patient whose language the clinic no longer offers, once, in the new one."""
    return _(
        "A note from your clinic: messages in {removed} are no longer available here, so from "
        "now on they will come in {language}. You can choose another language with /settings."
    ).format(removed=languages.NAMES.get(removed, removed), language=languages.NAMES[language])


# --- shared ---------------------------------------------------------------------------------


def _yes_no(
    codec: CallbackCodec, action: str, patient_id: int, yes: str, no: str
) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(yes, callback_data=codec.encode(action, patient_id, YES)),
                InlineKeyboardButton(no, callback_data=codec.encode(action, patient_id, NO)),
            ]
        ]
    )
