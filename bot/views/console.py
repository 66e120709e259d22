"""Chat texts and keyboards of the therapist's console (HTML; everything typed by a person or
taken from the database goes through `esc`). Times are shown in the patient's time zone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from bot.domain.content import ContentLibrary, TemplateStep
from bot.domain.schedule import QuietHours, format_duration
from bot.domain.states import DeliveryState, PatientStatus
from bot.services.console import (
    QUIET_PRESETS,
    DeliveryLine,
    PatientPage,
    PatientSummary,
    PauseOutcome,
    ResumeOutcome,
    ScheduleView,
)
from bot.services.exports import PatientExport
from bot.services.schedule_edits import Added, Changed
from bot.services.sessions import DEFAULT_TEMPLATE
from bot.views.callbacks import CallbackCodec
from bot.views.questionnaires import score_line
from bot.views.render import cadence, clip, esc, local, shorten

STATUS = {
    PatientStatus.INVITED: "invited",
    PatientStatus.ONBOARDING: "joining",
    PatientStatus.ACTIVE: "active",
    PatientStatus.PAUSED: "paused",
    PatientStatus.STOPPED: "stopped",
    PatientStatus.UNREACHABLE: "unreachable (blocked the bot)",
    PatientStatus.DECLINED: "declined",
    PatientStatus.ERASED: "erased",
}
CLINIC_DEFAULT = DEFAULT_TEMPLATE
NO_TEMPLATE = "-"  # callback argument for "back to the clinic default"


def _when(moment: datetime | None, zone: str | None) -> str:
    return local(moment, zone) if moment is not None else "—"


def quiet_text(quiet: QuietHours) -> str:
    if quiet.start == quiet.end:
        return "none"
    return f"{quiet.start:%H:%M}–{quiet.end:%H:%M}"


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=data)


# --- /patients ------------------------------------------------------------------------------


def next_prompt(row: PatientSummary) -> str:
    """The next prompt, or why none is coming: what the therapist needs to act on."""
    if row.next_prompt is not None:
        return local(row.next_prompt, row.timezone)
    if not row.held:
        return "nothing planned"
    waiting = f"{row.held} prompt{'s' if row.held != 1 else ''} waiting"
    if row.status is PatientStatus.PAUSED:
        return f"none while paused ({waiting})"
    if row.status is PatientStatus.UNREACHABLE:
        return f"none: can't be reached ({waiting})"
    return f"none: on hold ({waiting})"


def patients_text(page: PatientPage) -> str:
    if page.total == 0:
        return "You have no patients yet. Invite one with /invite &lt;pseudonym&gt;."
    pages = f" · page {page.page + 1}/{page.pages}" if page.pages > 1 else ""
    out = [f"<b>Your patients</b> ({page.total}){pages}"]
    for row in page.rows:
        zone = esc(row.timezone) if row.timezone else "no time zone yet"
        out.append(
            f"\n<b>{esc(row.pseudonym)}</b> · {STATUS[row.status]} · {zone}\n"
            f"last session {_when(row.last_session, row.timezone)} · next {next_prompt(row)} · "
            f"{row.unanswered} unanswered"
        )
    out.append("\n<i>Times are the patient's local time. Tap a patient to open them.</i>")
    return clip("\n".join(out))


def patients_keyboard(codec: CallbackCodec, page: PatientPage) -> InlineKeyboardMarkup | None:
    if page.total == 0:
        return None
    buttons = [_button(row.pseudonym, codec.encode("tp", row.id, page.page)) for row in page.rows]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    nav = []
    if page.page > 0:
        nav.append(_button("◀ Previous", codec.encode("tl", page.page - 1)))
    if page.page + 1 < page.pages:
        nav.append(_button("Next ▶", codec.encode("tl", page.page + 1)))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows)


# --- the patient card -----------------------------------------------------------------------


def card_text(card: PatientSummary, note: str = "") -> str:
    template = (
        esc(card.default_template)
        if card.default_template
        else f"{CLINIC_DEFAULT} (clinic default)"
    )
    text = (
        f"<b>{esc(card.pseudonym)}</b>\n"
        f"Status: {STATUS[card.status]}\n"
        f"Time zone: {esc(card.timezone) if card.timezone else 'not chosen yet'}\n"
        f"Quiet hours: {quiet_text(card.quiet)}\n"
        f"Default template: {template}\n"
        f"Last session: {_when(card.last_session, card.timezone)}\n"
        f"Next prompt: {next_prompt(card)}\n"
        f"Unanswered reflections: {card.unanswered}"
    )
    if card.latest_score is not None:
        text += "\nLatest score: " + score_line(card.latest_score, card.timezone)
    return clip(text + (f"\n\n{note}" if note else ""))


def card_keyboard(codec: CallbackCodec, card: PatientSummary, page: int) -> InlineKeyboardMarkup:
    pid = card.id
    if card.status is PatientStatus.PAUSED:
        hold = _button("▶ Resume", codec.encode("tg", pid))
    else:
        hold = _button("⏸ Pause", codec.encode("th", pid))
    return InlineKeyboardMarkup(
        [
            [
                _button("Schedule", codec.encode("ts", pid)),
                _button("Sessions", codec.encode("ty", pid)),
                _button("Replies", codec.encode("tr", pid)),
            ],
            [_button("Export CSV", codec.encode("tx", pid)), hold],
            [
                _button("Default template", codec.encode("td", pid)),
                _button("Quiet hours", codec.encode("tq", pid)),
            ],
            [_button("◀ All patients", codec.encode("tl", page))],
        ]
    )


def template_menu_text(card: PatientSummary) -> str:
    return card_text(card, "<b>Default template</b> for /session without a template:")


def template_menu(
    codec: CallbackCodec, card: PatientSummary, content: ContentLibrary
) -> InlineKeyboardMarkup:
    current = card.default_template
    rows: list[list[InlineKeyboardButton]] = []
    for name in sorted(content.templates):
        mark = "✓ " if name == current else ""
        rows.append([_button(f"{mark}{name}", codec.encode("tt", card.id, name))])
    mark = "✓ " if current is None else ""
    rows.append([_button(f"{mark}Clinic default", codec.encode("tt", card.id, NO_TEMPLATE))])
    rows.append([_button("◀ Back", codec.encode("tp", card.id))])
    return InlineKeyboardMarkup(rows)


def quiet_menu_text(card: PatientSummary) -> str:
    return card_text(
        card,
        "<b>Quiet hours</b> (patient's local time; nothing is sent then). "
        "Pending prompts move with them.",
    )


def quiet_menu(codec: CallbackCodec, card: PatientSummary) -> InlineKeyboardMarkup:
    buttons = []
    for index, preset in enumerate(QUIET_PRESETS):
        label = quiet_text(preset)
        mark = "✓ " if preset == card.quiet else ""
        buttons.append(_button(f"{mark}{label}", codec.encode("tw", card.id, index)))
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button("◀ Back", codec.encode("tp", card.id))])
    return InlineKeyboardMarkup(rows)


def default_template_set(card: PatientSummary) -> str:
    name = card.default_template or f"{CLINIC_DEFAULT} (clinic default)"
    return f"Default template: {name}"


def quiet_set(card: PatientSummary, moved: int) -> str:
    moved_text = f"; {moved} pending prompt(s) moved" if moved else ""
    return f"Quiet hours: {quiet_text(card.quiet)}{moved_text}"


# --- /schedule ------------------------------------------------------------------------------

STATE = {
    DeliveryState.SCHEDULED: "scheduled",
    DeliveryState.HELD: "held (paused)",
    DeliveryState.SENDING: "sending now",
    DeliveryState.SENT: "sent",
    DeliveryState.ANSWERED: "answered",
    DeliveryState.SKIPPED: "skipped",
    DeliveryState.MISSED: "missed (too late to send)",
    DeliveryState.CANCELLED: "cancelled",
    DeliveryState.FAILED: "failed",
    DeliveryState.UNKNOWN: "⚠ UNKNOWN",
    DeliveryState.PARTIAL: "partly answered (closed)",
}


def delivery_what(line: DeliveryLine) -> str:
    if line.custom_text is not None:
        return f"{line.kind.value} “{esc(shorten(line.custom_text, 50))}”"
    return f"{line.kind.value} {esc(line.prompt_key or '?')}"


def _repeats(line: DeliveryLine, zone: str | None) -> str:
    if line.every is None or not line.repeats or line.last_due is None:
        return ""
    return (
        f" (then {cadence(line.every)} × {line.repeats} more, to {local(line.last_due, zone)[:10]})"
    )


def _line_text(line: DeliveryLine, zone: str | None, pseudonym: str) -> str:
    before = " · before the session" if line.preparation else ""
    what = f"{delivery_what(line)}{_repeats(line, zone)}{before}"
    head = f"{line.number}. {local(line.due_at, zone)} · {what} · "
    state = STATE[line.state]
    if line.state is DeliveryState.SENT and line.sent_at is not None:
        sent = local(line.sent_at, zone)
        state = "sent" if sent == local(line.due_at, zone) else f"sent {sent}"
    elif line.state is DeliveryState.ANSWERED and line.answered_at is not None:
        state = f"answered {local(line.answered_at, zone)}"
    elif line.state is DeliveryState.UNKNOWN:
        state = (
            f"<b>{state}</b>: it may or may not have reached {esc(pseudonym)}; "
            "it is never re-sent automatically — “Send again” below if you decide to"
        )
    return head + state


def schedule_text(view: ScheduleView, note: str = "", footer: str = "") -> str:
    zone = view.timezone
    out = []
    if note:
        out.append(note + "\n")
    where = esc(zone) if zone else "UTC: no time zone chosen yet"
    out.append(f"<b>Schedule for {esc(view.pseudonym)}</b> (times in {where})")
    if view.status is not PatientStatus.ACTIVE:
        out.append(f"Status: {STATUS[view.status]}")
    out.append("\n<b>Upcoming</b>")
    if view.upcoming:
        out.extend(_line_text(line, zone, view.pseudonym) for line in view.upcoming)
        if view.more_upcoming:
            out.append(f"…and {view.more_upcoming} more")
    else:
        out.append("Nothing scheduled.")
    out.append("\n<b>Last 7 days</b>")
    if view.recent:
        out.extend(_line_text(line, zone, view.pseudonym) for line in view.recent)
    else:
        out.append("Nothing sent.")
    if view.cancelled:
        out.append(f"<i>({view.cancelled} cancelled: replaced by a newer session)</i>")
    if footer:
        out.append("\n" + footer)
    return clip("\n".join(out))


def schedule_keyboard(codec: CallbackCodec, view: ScheduleView) -> InlineKeyboardMarkup:
    rows = []
    for line in view.upcoming:
        if not line.changeable:
            continue
        n = line.number
        rows.append(
            [
                _button(f"{n} · Skip", codec.encode("tk", line.id, line.version)),
                _button(f"{n} · Send now", codec.encode("tn", line.id, line.version)),
                _button(f"{n} · Postpone", codec.encode("to", line.id, line.version)),
            ]
        )
    for line in view.recent:
        if line.state is DeliveryState.UNKNOWN:
            rows.append(
                [_button(f"{line.number} · Send again", codec.encode("ta", line.id, line.version))]
            )
    rows.append(
        [
            _button("↻ Refresh", codec.encode("ts", view.patient_id)),
            _button("◀ Patient", codec.encode("tp", view.patient_id)),
        ]
    )
    return InlineKeyboardMarkup(rows)


def postpone_footer(line: DeliveryLine, zone: str | None) -> str:
    return (
        f"<b>Postpone #{line.number}</b> ({delivery_what(line)}, due {local(line.due_at, zone)}):\n"
        f"tap below, or type <code>/postpone {line.number} +3h</code> "
        "(counted from when it is due: +30m, +3h, +1d@10:00)."
    )


def postpone_keyboard(
    codec: CallbackCodec, line: DeliveryLine, patient_id: int
) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                _button("+1 hour", codec.encode("t1", line.id, line.version)),
                _button("Next morning 09:00", codec.encode("tm", line.id, line.version)),
            ],
            [_button("◀ Back", codec.encode("ts", patient_id))],
        ]
    )


def changed_note(verb: str, changed: Changed, number: int | None = None) -> str:
    """Plain text confirming a change (a toast, or a line above the schedule), e.g.
    "Moved ref-one-word to Wed 11 Mar 09:00." """
    what = changed.prompt_key or "your own prompt"
    which = f"#{number} ({what})" if number is not None else what
    if verb == "skip":
        return f"Skipped {which}."
    when = local(changed.due_at, changed.timezone)
    if verb in ("send", "again"):
        if changed.deferred:
            return f"It's quiet hours for {changed.pseudonym}: {which} goes out at {when}."
        return f"Sending {which} again now." if verb == "again" else f"Sending {which} now."
    return f"Moved {which} to {when}."


# --- /add, /templates, /export, /pause, /resume --------------------------------------------


def added(result: Added) -> str:
    what = (
        f"{esc(result.kind.value)} {esc(result.prompt_key)}"
        if result.prompt_key
        else "your own words, as a reflection"
    )
    text = (
        f"Added for <b>{esc(result.pseudonym)}</b>: {what}, at "
        f"{local(result.due_at, result.timezone)} ({esc(result.timezone)})."
    )
    if result.held:
        text += f"\nIt waits while {esc(result.pseudonym)}'s prompts are on hold."
    return text


def _extras(step: TemplateStep) -> str:
    """A step's repeat, reminders and window, when it has its own."""
    parts = []
    if step.every is not None:
        parts.append(f"{cadence(str(step.every))} × {step.count}")
    if step.remind is not None:
        parts.append(
            "no reminder"
            if not step.remind
            else "remind " + ", ".join(format_duration(d) for d in step.remind)
        )
    if step.expires is not None:
        parts.append(f"answers for {format_duration(step.expires)}")
    return f" · {' · '.join(parts)}" if parts else ""


def templates_text(content: ContentLibrary, own: Sequence[str] = ()) -> str:
    if not content.templates and not own:
        return "There are no templates."
    out = ["<b>Templates</b> (offsets from the session start, patient's local time)"]
    for name in sorted(content.templates):
        template = content.templates[name]
        out.append(f"\n<b>{esc(name)}</b> — {esc(template.description)}")
        for step in template.steps:
            prompt = content.prompts.get(step.prompt_key)
            kind = f" ({esc(prompt.kind)})" if prompt is not None else ""
            if step.questionnaire:
                kind = " (questionnaire)"
            out.append(f"  {esc(str(step.offset))} → {esc(step.prompt_key)}{kind}{_extras(step)}")
    if own:
        out.append(
            "\n<b>Your own</b> (see and edit them with /dashboard): "
            + ", ".join(f"<b>{esc(name)}</b>" for name in own)
        )
    out.append("\n<i>Choose one with /session &lt;pseudonym&gt; … &lt;template&gt;.</i>")
    return clip("\n".join(out))


def export_caption(export: PatientExport) -> str:
    return (
        f"All prompts and replies of <b>{esc(export.pseudonym)}</b>: {export.rows} row(s), "
        "CSV (UTF-8). It contains patient answers: store it as carefully as clinical notes."
    )


def paused(outcome: PauseOutcome) -> str:
    name = esc(outcome.pseudonym)
    return (
        f"Paused <b>{name}</b>: {outcome.held} prompt(s) held. "
        f"Nothing is sent until /resume {name}."
    )


def resumed(outcome: ResumeOutcome) -> str:
    parts = []
    if outcome.sent_soon:
        parts.append(f"{outcome.sent_soon} will be sent now")
    if outcome.missed:
        parts.append(
            f"{outcome.missed} {'was' if outcome.missed == 1 else 'were'} too late "
            "and marked missed"
        )
    if outcome.rescheduled:
        parts.append(f"{outcome.rescheduled} keep their planned time")
    detail = "; ".join(parts) if parts else "no prompts were waiting"
    return f"Resumed <b>{esc(outcome.pseudonym)}</b>: {detail}."


def paused_note(outcome: PauseOutcome) -> str:
    return f"Paused: {outcome.held} prompt(s) held."


def resumed_note(outcome: ResumeOutcome) -> str:
    return (
        f"Resumed: {outcome.sent_soon} sent now, {outcome.missed} missed, "
        f"{outcome.rescheduled} keep their time."
    )


# --- /dashboard ---------------------------------------------------------------------------

WORKSPACE_BUTTON = "Open the workspace"


def dashboard_text(link: str, minutes: int, mini_app: bool) -> str:
    inside = (
        "Tap the button below to open it here in Telegram, or open this link in a browser "
        if mini_app
        else "Open this link in a browser "
    )
    return (
        "<b>Your workspace</b>: patients, their prompts and replies, charts, templates "
        f"and alerts.\n\n{inside}(it signs you in once and is valid for {minutes} minutes; "
        f"don't share it):\n{esc(link)}"
    )


def dashboard_keyboard(app_url: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(WORKSPACE_BUTTON, web_app=WebAppInfo(app_url))]]
    )
