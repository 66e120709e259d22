"""Chat texts and keyboards of the therapist's console (HTML; everything typed by a person or
taken from the database goes through `esc`). Times are shown in the patient's time zone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from bot.domain.content import ContentLibrary, TemplateStep
from bot.domain.schedule import QuietHours, format_duration
from bot.domain.states import DeliveryState, PatientStatus
from bot.i18n import N_, _, ngettext
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
from bot.views.render import cadence, clip, esc, local, local_date, shorten

# Texts marked N_ are catalogue entries translated where they are shown: _(STATUS[x]).
STATUS = {
    PatientStatus.INVITED: N_("invited"),
    PatientStatus.ONBOARDING: N_("joining"),
    PatientStatus.ACTIVE: N_("active"),
    PatientStatus.PAUSED: N_("paused"),
    PatientStatus.STOPPED: N_("stopped"),
    PatientStatus.UNREACHABLE: N_("unreachable (blocked the bot)"),
    PatientStatus.DECLINED: N_("declined"),
    PatientStatus.ERASED: N_("erased"),
}
CLINIC_DEFAULT = DEFAULT_TEMPLATE
NO_TEMPLATE = "-"  # callback argument for "back to the clinic default"


def _when(moment: datetime | None, zone: str | None) -> str:
    return local(moment, zone) if moment is not None else "—"


def quiet_text(quiet: QuietHours) -> str:
    if quiet.start == quiet.end:
        return _("none")
    return f"{quiet.start:%H:%M}–{quiet.end:%H:%M}"


def _button(label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=data)


# --- /patients ------------------------------------------------------------------------------


def next_prompt(row: PatientSummary) -> str:
    """The next prompt, or why none is coming: what the therapist needs to act on."""
    if row.next_prompt is not None:
        return local(row.next_prompt, row.timezone)
    if not row.held:
        return _("nothing planned")
    n = row.held
    if row.status is PatientStatus.PAUSED:
        text = ngettext(
            "none while paused ({n} prompt waiting)", "none while paused ({n} prompts waiting)", n
        )
    elif row.status is PatientStatus.UNREACHABLE:
        text = ngettext(
            "none: can't be reached ({n} prompt waiting)",
            "none: can't be reached ({n} prompts waiting)",
            n,
        )
    else:
        text = ngettext(
            "none: on hold ({n} prompt waiting)", "none: on hold ({n} prompts waiting)", n
        )
    return text.format(n=n)


def patients_text(page: PatientPage) -> str:
    if page.total == 0:
        return _("You have no patients yet. Invite one with /invite &lt;pseudonym&gt;.")
    out = [
        _("<b>Your patients</b> ({total}) · page {page}/{pages}").format(
            total=page.total, page=page.page + 1, pages=page.pages
        )
        if page.pages > 1
        else _("<b>Your patients</b> ({total})").format(total=page.total)
    ]
    for row in page.rows:
        zone = esc(row.timezone) if row.timezone else _("no time zone yet")
        # i18n: {status} is a status word ("active"), {zone} a time zone, {last} a date and
        # time or "—", {next} a date and time or why nothing is coming ("nothing planned")
        line = ngettext(
            "<b>{pseudonym}</b> · {status} · {zone}\n"
            "last session {last} · next {next} · {n} unanswered",
            "<b>{pseudonym}</b> · {status} · {zone}\n"
            "last session {last} · next {next} · {n} unanswered",
            row.unanswered,
        )
        out.append(
            "\n"
            + line.format(
                pseudonym=esc(row.pseudonym),
                status=_(STATUS[row.status]),
                zone=zone,
                last=_when(row.last_session, row.timezone),
                next=next_prompt(row),
                n=row.unanswered,
            )
        )
    out.append("\n" + _("<i>Times are the patient's local time. Tap a patient to open them.</i>"))
    return clip("\n".join(out))


def patients_keyboard(codec: CallbackCodec, page: PatientPage) -> InlineKeyboardMarkup | None:
    if page.total == 0:
        return None
    buttons = [_button(row.pseudonym, codec.encode("tp", row.id, page.page)) for row in page.rows]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    nav = []
    if page.page > 0:
        nav.append(_button(_("◀ Previous"), codec.encode("tl", page.page - 1)))
    if page.page + 1 < page.pages:
        nav.append(_button(_("Next ▶"), codec.encode("tl", page.page + 1)))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows)


# --- the patient card -----------------------------------------------------------------------


def _clinic_default() -> str:
    # i18n: {template} is the name of the clinic's default schedule template
    return _("{template} (clinic default)").format(template=CLINIC_DEFAULT)


def card_text(card: PatientSummary, note: str = "") -> str:
    template = esc(card.default_template) if card.default_template else _clinic_default()
    # i18n: {status} is a status word ("active"), {quiet} quiet hours ("21:00–08:00" or
    # "none"), {last} a date and time or "—", {next} a date and time or why nothing is coming
    text = _(
        "<b>{pseudonym}</b>\n"
        "Status: {status}\n"
        "Time zone: {zone}\n"
        "Quiet hours: {quiet}\n"
        "Default template: {template}\n"
        "Last session: {last}\n"
        "Next prompt: {next}\n"
        "Unanswered reflections: {unanswered}"
    ).format(
        pseudonym=esc(card.pseudonym),
        status=_(STATUS[card.status]),
        zone=esc(card.timezone) if card.timezone else _("not chosen yet"),
        quiet=quiet_text(card.quiet),
        template=template,
        last=_when(card.last_session, card.timezone),
        next=next_prompt(card),
        unanswered=card.unanswered,
    )
    if card.latest_score is not None:
        # i18n: {score} is a questionnaire score line: date · title: total · change
        text += "\n" + _("Latest score: {score}").format(
            score=score_line(card.latest_score, card.timezone)
        )
    return clip(text + (f"\n\n{note}" if note else ""))


def card_keyboard(codec: CallbackCodec, card: PatientSummary, page: int) -> InlineKeyboardMarkup:
    pid = card.id
    if card.status is PatientStatus.PAUSED:
        hold = _button(_("▶ Resume"), codec.encode("tg", pid))
    else:
        hold = _button(_("⏸ Pause"), codec.encode("th", pid))
    return InlineKeyboardMarkup(
        [
            [
                _button(_("Schedule"), codec.encode("ts", pid)),
                _button(_("Sessions"), codec.encode("ty", pid)),
                _button(_("Replies"), codec.encode("tr", pid)),
            ],
            [_button(_("Export CSV"), codec.encode("tx", pid)), hold],
            [
                _button(_("Default template"), codec.encode("td", pid)),
                _button(_("Quiet hours"), codec.encode("tq", pid)),
            ],
            [_button(_("◀ All patients"), codec.encode("tl", page))],
        ]
    )


def template_menu_text(card: PatientSummary) -> str:
    return card_text(card, _("<b>Default template</b> for /session without a template:"))


def template_menu(
    codec: CallbackCodec, card: PatientSummary, content: ContentLibrary
) -> InlineKeyboardMarkup:
    current = card.default_template
    rows: list[list[InlineKeyboardButton]] = []
    for name in sorted(content.templates):
        mark = "✓ " if name == current else ""
        rows.append([_button(f"{mark}{name}", codec.encode("tt", card.id, name))])
    mark = "✓ " if current is None else ""
    rows.append([_button(f"{mark}{_('Clinic default')}", codec.encode("tt", card.id, NO_TEMPLATE))])
    rows.append([_button(_("◀ Back"), codec.encode("tp", card.id))])
    return InlineKeyboardMarkup(rows)


def quiet_menu_text(card: PatientSummary) -> str:
    return card_text(
        card,
        _(
            "<b>Quiet hours</b> (patient's local time; nothing is sent then). "
            "Pending prompts move with them."
        ),
    )


def quiet_menu(codec: CallbackCodec, card: PatientSummary) -> InlineKeyboardMarkup:
    buttons = []
    for index, preset in enumerate(QUIET_PRESETS):
        label = quiet_text(preset)
        mark = "✓ " if preset == card.quiet else ""
        buttons.append(_button(f"{mark}{label}", codec.encode("tw", card.id, index)))
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button(_("◀ Back"), codec.encode("tp", card.id))])
    return InlineKeyboardMarkup(rows)


def default_template_set(card: PatientSummary) -> str:
    name = card.default_template or _clinic_default()
    return _("Default template: {template}").format(template=name)


def quiet_set(card: PatientSummary, moved: int) -> str:
    hours = quiet_text(card.quiet)
    if not moved:
        return _("Quiet hours: {hours}").format(hours=hours)
    return ngettext(
        "Quiet hours: {hours}; {n} pending prompt moved",
        "Quiet hours: {hours}; {n} pending prompts moved",
        moved,
    ).format(hours=hours, n=moved)


# --- /schedule ------------------------------------------------------------------------------

STATE = {
    DeliveryState.SCHEDULED: N_("scheduled"),
    DeliveryState.HELD: N_("held (paused)"),
    DeliveryState.SENDING: N_("sending now"),
    DeliveryState.SENT: N_("sent"),
    DeliveryState.ANSWERED: N_("answered"),
    DeliveryState.SKIPPED: N_("skipped"),
    DeliveryState.MISSED: N_("missed (too late to send)"),
    DeliveryState.CANCELLED: N_("cancelled"),
    DeliveryState.FAILED: N_("failed"),
    DeliveryState.UNKNOWN: N_("⚠ UNKNOWN"),
    DeliveryState.PARTIAL: N_("partly answered (closed)"),
}


def delivery_what(line: DeliveryLine) -> str:
    if line.custom_text is not None:
        return f"{line.kind.value} “{esc(shorten(line.custom_text, 50))}”"
    return f"{line.kind.value} {esc(line.prompt_key or '?')}"


def _repeats(line: DeliveryLine, zone: str | None) -> str:
    if line.every is None or not line.repeats or line.last_due is None:
        return ""
    # i18n: {cadence} is "daily" or "every 2 days", {n} how many more times, {date} a day
    text = ngettext(
        "(then {cadence} × {n} more, to {date})",
        "(then {cadence} × {n} more, to {date})",
        line.repeats,
    )
    return " " + text.format(
        cadence=cadence(line.every), n=line.repeats, date=local_date(line.last_due, zone)
    )


def _line_text(line: DeliveryLine, zone: str | None, pseudonym: str) -> str:
    before = " · " + _("before the session") if line.preparation else ""
    what = f"{delivery_what(line)}{_repeats(line, zone)}{before}"
    head = f"{line.number}. {local(line.due_at, zone)} · {what} · "
    state = _(STATE[line.state])
    if line.state is DeliveryState.SENT and line.sent_at is not None:
        sent = local(line.sent_at, zone)
        state = (
            _(STATE[line.state])
            if sent == local(line.due_at, zone)
            # i18n: {when} is the date and time it was sent
            else _("sent {when}").format(when=sent)
        )
    elif line.state is DeliveryState.ANSWERED and line.answered_at is not None:
        # i18n: {when} is the date and time it was answered
        state = _("answered {when}").format(when=local(line.answered_at, zone))
    elif line.state is DeliveryState.UNKNOWN:
        # i18n: {state} is "⚠ UNKNOWN"
        state = _(
            "<b>{state}</b>: it may or may not have reached {pseudonym}; "
            "it is never re-sent automatically — “Send again” below if you decide to"
        ).format(state=state, pseudonym=esc(pseudonym))
    return head + state


def schedule_text(view: ScheduleView, note: str = "", footer: str = "") -> str:
    zone = view.timezone
    out = []
    if note:
        out.append(note + "\n")
    where = esc(zone) if zone else _("UTC: no time zone chosen yet")
    # i18n: {where} is a time zone, or "UTC: no time zone chosen yet"
    title = _("<b>Schedule for {pseudonym}</b> (times in {where})")
    out.append(title.format(pseudonym=esc(view.pseudonym), where=where))
    if view.status is not PatientStatus.ACTIVE:
        out.append(_("Status: {status}").format(status=_(STATUS[view.status])))
    out.append("\n" + _("<b>Upcoming</b>"))
    if view.upcoming:
        out.extend(_line_text(line, zone, view.pseudonym) for line in view.upcoming)
        if view.more_upcoming:
            n = view.more_upcoming
            out.append(ngettext("…and {n} more", "…and {n} more", n).format(n=n))
    else:
        out.append(_("Nothing scheduled."))
    out.append("\n" + _("<b>Last 7 days</b>"))
    if view.recent:
        out.extend(_line_text(line, zone, view.pseudonym) for line in view.recent)
    else:
        out.append(_("Nothing sent."))
    if view.cancelled:
        n = view.cancelled
        out.append(
            ngettext(
                "<i>({n} cancelled: replaced by a newer session)</i>",
                "<i>({n} cancelled: replaced by a newer session)</i>",
                n,
            ).format(n=n)
        )
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
                # i18n: {n} is the prompt's number in the list above
                _button(_("{n} · Skip").format(n=n), codec.encode("tk", line.id, line.version)),
                _button(_("{n} · Send now").format(n=n), codec.encode("tn", line.id, line.version)),
                _button(_("{n} · Postpone").format(n=n), codec.encode("to", line.id, line.version)),
            ]
        )
    for line in view.recent:
        if line.state is DeliveryState.UNKNOWN:
            again = _("{n} · Send again").format(n=line.number)
            rows.append([_button(again, codec.encode("ta", line.id, line.version))])
    rows.append(
        [
            _button(_("↻ Refresh"), codec.encode("ts", view.patient_id)),
            _button(_("◀ Patient"), codec.encode("tp", view.patient_id)),
        ]
    )
    return InlineKeyboardMarkup(rows)


def postpone_footer(line: DeliveryLine, zone: str | None) -> str:
    # i18n: {number} is the prompt's number in /schedule, {what} its kind and key, {when} a
    # date and time; keep the /postpone command and the offsets as they are
    return _(
        "<b>Postpone #{number}</b> ({what}, due {when}):\n"
        "tap below, or type <code>/postpone {number} +3h</code> "
        "(counted from when it is due: +30m, +3h, +1d@10:00)."
    ).format(number=line.number, what=delivery_what(line), when=local(line.due_at, zone))


def postpone_keyboard(
    codec: CallbackCodec, line: DeliveryLine, patient_id: int
) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                _button(_("+1 hour"), codec.encode("t1", line.id, line.version)),
                _button(_("Next morning 09:00"), codec.encode("tm", line.id, line.version)),
            ],
            [_button(_("◀ Back"), codec.encode("ts", patient_id))],
        ]
    )


def changed_note(verb: str, changed: Changed, number: int | None = None) -> str:
    """Plain text confirming a change (a toast, or a line above the schedule), e.g.
    "Moved ref-one-word to Wed 11 Mar 09:00." """
    what = changed.prompt_key or _("your own prompt")
    which = f"#{number} ({what})" if number is not None else what
    if verb == "skip":
        # i18n: {which} is a prompt key or "your own prompt", maybe with its number: "#2 (…)"
        return _("Skipped {which}.").format(which=which)
    when = local(changed.due_at, changed.timezone)
    if verb in ("send", "again"):
        if changed.deferred:
            # i18n: {which} is a prompt key or "your own prompt"; {when} a date and time
            return _("It's quiet hours for {pseudonym}: {which} goes out at {when}.").format(
                pseudonym=changed.pseudonym, which=which, when=when
            )
        if verb == "again":
            # i18n: {which} is a prompt key or "your own prompt", maybe with its number
            return _("Sending {which} again now.").format(which=which)
        # i18n: {which} is a prompt key or "your own prompt", maybe with its number
        return _("Sending {which} now.").format(which=which)
    # i18n: {which} is a prompt key or "your own prompt"; {when} a date and time
    return _("Moved {which} to {when}.").format(which=which, when=when)


# --- /add, /templates, /export, /pause, /resume --------------------------------------------


def added(result: Added) -> str:
    what = (
        f"{esc(result.kind.value)} {esc(result.prompt_key)}"
        if result.prompt_key
        else _("your own words, as a reflection")
    )
    # i18n: {what} is a prompt kind and key or "your own words, as a reflection"; {when} a
    # date and time, {zone} a time zone
    text = _("Added for <b>{pseudonym}</b>: {what}, at {when} ({zone}).").format(
        pseudonym=esc(result.pseudonym),
        what=what,
        when=local(result.due_at, result.timezone),
        zone=esc(result.timezone),
    )
    if result.held:
        text += "\n" + _("It waits while {pseudonym}'s prompts are on hold.").format(
            pseudonym=esc(result.pseudonym)
        )
    return text


def _extras(step: TemplateStep) -> str:
    """A step's repeat, reminders and window, when it has its own."""
    parts = []
    if step.every is not None:
        parts.append(f"{cadence(str(step.every))} × {step.count}")
    if step.remind is not None:
        parts.append(
            _("no reminder")
            if not step.remind
            # i18n: {after} lists reminder delays, e.g. "1h, 3h"
            else _("remind {after}").format(
                after=", ".join(format_duration(d) for d in step.remind)
            )
        )
    if step.expires is not None:
        # i18n: {duration} is how long a prompt takes answers, e.g. "2h" or "3d"
        parts.append(_("answers for {duration}").format(duration=format_duration(step.expires)))
    return f" · {' · '.join(parts)}" if parts else ""


def templates_text(content: ContentLibrary, own: Sequence[str] = ()) -> str:
    if not content.templates and not own:
        return _("There are no templates.")
    out = [_("<b>Templates</b> (offsets from the session start, patient's local time)")]
    for name in sorted(content.templates):
        template = content.templates[name]
        out.append(f"\n<b>{esc(name)}</b> — {esc(template.description)}")
        for step in template.steps:
            prompt = content.prompts.get(step.prompt_key)
            kind = f" ({esc(prompt.kind)})" if prompt is not None else ""
            if step.questionnaire:
                kind = " " + _("(questionnaire)")
            out.append(f"  {esc(str(step.offset))} → {esc(step.prompt_key)}{kind}{_extras(step)}")
    if own:
        names = ", ".join(f"<b>{esc(name)}</b>" for name in own)
        # i18n: {names} lists the therapist's own template names
        yours = _("<b>Your own</b> (see and edit them with /dashboard): {names}")
        out.append("\n" + yours.format(names=names))
    out.append("\n" + _("<i>Choose one with /session &lt;pseudonym&gt; … &lt;template&gt;.</i>"))
    return clip("\n".join(out))


def export_caption(export: PatientExport) -> str:
    return ngettext(
        "All prompts and replies of <b>{pseudonym}</b>: {n} row, CSV (UTF-8). It contains "
        "patient answers: store it as carefully as clinical notes.",
        "All prompts and replies of <b>{pseudonym}</b>: {n} rows, CSV (UTF-8). It contains "
        "patient answers: store it as carefully as clinical notes.",
        export.rows,
    ).format(pseudonym=esc(export.pseudonym), n=export.rows)


def paused(outcome: PauseOutcome) -> str:
    return ngettext(
        "Paused <b>{pseudonym}</b>: {n} prompt held. Nothing is sent until /resume {pseudonym}.",
        "Paused <b>{pseudonym}</b>: {n} prompts held. Nothing is sent until /resume {pseudonym}.",
        outcome.held,
    ).format(pseudonym=esc(outcome.pseudonym), n=outcome.held)


def resumed(outcome: ResumeOutcome) -> str:
    parts = []
    if outcome.sent_soon:
        n = outcome.sent_soon
        parts.append(ngettext("{n} will be sent now", "{n} will be sent now", n).format(n=n))
    if outcome.missed:
        n = outcome.missed
        parts.append(
            ngettext(
                "{n} was too late and marked missed", "{n} were too late and marked missed", n
            ).format(n=n)
        )
    if outcome.rescheduled:
        n = outcome.rescheduled
        parts.append(
            ngettext("{n} keep their planned time", "{n} keep their planned time", n).format(n=n)
        )
    detail = "; ".join(parts) if parts else _("no prompts were waiting")
    # i18n: {detail} says what happened to the held prompts, e.g. "2 will be sent now; 1 was
    # too late and marked missed"
    return _("Resumed <b>{pseudonym}</b>: {detail}.").format(
        pseudonym=esc(outcome.pseudonym), detail=detail
    )


def paused_note(outcome: PauseOutcome) -> str:
    return ngettext("Paused: {n} prompt held.", "Paused: {n} prompts held.", outcome.held).format(
        n=outcome.held
    )


def resumed_note(outcome: ResumeOutcome) -> str:
    # i18n: counts of held prompts: sent now, missed, kept at their planned time
    return _("Resumed: {sent} sent now, {missed} missed, {kept} keep their time.").format(
        sent=outcome.sent_soon, missed=outcome.missed, kept=outcome.rescheduled
    )


# --- /dashboard ---------------------------------------------------------------------------

WORKSPACE_BUTTON = N_("Open the workspace")


def dashboard_text(link: str, minutes: int, mini_app: bool) -> str:
    if mini_app:
        text = ngettext(
            "<b>Your workspace</b>: patients, their prompts and replies, charts, templates "
            "and alerts.\n\nTap the button below to open it here in Telegram, or open this "
            "link in a browser (it signs you in once and is valid for {minutes} minute; "
            "don't share it):\n{link}",
            "<b>Your workspace</b>: patients, their prompts and replies, charts, templates "
            "and alerts.\n\nTap the button below to open it here in Telegram, or open this "
            "link in a browser (it signs you in once and is valid for {minutes} minutes; "
            "don't share it):\n{link}",
            minutes,
        )
    else:
        text = ngettext(
            "<b>Your workspace</b>: patients, their prompts and replies, charts, templates "
            "and alerts.\n\nOpen this link in a browser (it signs you in once and is valid "
            "for {minutes} minute; don't share it):\n{link}",
            "<b>Your workspace</b>: patients, their prompts and replies, charts, templates "
            "and alerts.\n\nOpen this link in a browser (it signs you in once and is valid "
            "for {minutes} minutes; don't share it):\n{link}",
            minutes,
        )
    return text.format(minutes=minutes, link=esc(link))


def dashboard_keyboard(app_url: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(_(WORKSPACE_BUTTON), web_app=WebAppInfo(app_url))]]
    )
