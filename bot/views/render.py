"""Every chat text and keyboard the bot shows. HTML parse mode: anything a user or a therapist
typed goes through `esc` before it is placed here."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup

from bot.dates import local as local  # re-exported: views say render.local
from bot.dates import local_date as local_date
from bot.domain import languages
from bot.domain.content import Prompt, plain_text
from bot.domain.timezones import COMMON_ZONES
from bot.i18n import N_, _, ngettext
from bot.services.replies import ReplyView
from bot.services.sessions import PlannedItem, SessionPlan
from bot.views.callbacks import HELP, CallbackCodec

LIMIT = 4096


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def clip(text: str, limit: int = LIMIT) -> str:
    """Keep an HTML message within Telegram's limit, which counts visible characters.

    Cutting HTML can leave a tag open or an entity half-written, which Telegram refuses; an
    over-long message therefore loses its formatting instead and is cut as plain text."""
    visible = plain_text(text)
    if len(visible) <= limit:
        return text
    return esc(shorten(visible, limit))


def waited(span: timedelta) -> str:
    """A wait as people say it: "20 s", "15 min", "1 h 5 min", "2 d 3 h"."""
    seconds = max(int(span.total_seconds()), 0)
    if seconds < 60:
        # i18n: waits in unit abbreviations: s = seconds, min = minutes, h = hours, d = days
        return _("{seconds} s").format(seconds=seconds)
    minutes = seconds // 60
    if minutes < 60:
        return _("{minutes} min").format(minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        if minutes:
            return _("{hours} h {minutes} min").format(hours=hours, minutes=minutes)
        return _("{hours} h").format(hours=hours)
    days, hours = divmod(hours, 24)
    if hours:
        return _("{days} d {hours} h").format(days=days, hours=hours)
    return _("{days} d").format(days=days)


def with_language(pseudonym: str, language: str) -> str:
    """A pseudonym as staff see it: with the patient's language when it is not English, so
    an alert or a reply in Spanish is read knowing it ("lago, Español")."""
    if language == languages.BUILT_IN[0]:
        return pseudonym
    return f"{pseudonym}, {languages.NAMES.get(language, language)}"


def help_button() -> InlineKeyboardButton:
    """The "Need help now" button on every prompt, in the reader's language."""
    return InlineKeyboardButton(_("Need help now"), callback_data=HELP)


# --- patients -----------------------------------------------------------------------------

# Texts marked N_ are catalogue entries translated where they are sent: _(render.X).
NOT_ENROLLED = N_(
    "Hello. This is a private service of a therapy clinic. If your therapist gave you a link, "
    "please open that link to start."
)


def language_question() -> str:
    """The first onboarding message, before anything else: it is in every offered language,
    since we do not know the reader's yet."""
    return "Choose your language · Elige tu idioma · Wähle deine Sprache"  # not shown: via _()


def language_chosen(code: str) -> str:
    return f"{language_question()}\n\n<b>✓ {languages.NAMES[code]}</b>"


def language_keyboard(
    codec: CallbackCodec, invite_id: int, codes: Sequence[str]
) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(languages.NAMES[c], callback_data=codec.encode("lg", invite_id, c))
        for c in codes
    ]
    return InlineKeyboardMarkup([[b] for b in buttons])


def consent_text(clinic: str) -> str:
    """The consent a patient agrees to; a change of its meaning needs a new
    `enrollment.CONSENT_VERSION`, which is stored with each agreement."""
    return _(
        "<b>Welcome to Afterglow</b>, the integration companion of {clinic}.\n\n"
        "<b>What you'll get:</b> after each treatment session, short notes about what may be "
        "happening in your brain and body, gentle questions to reflect on, and quick check-ins. "
        "You answer by simply typing or tapping.\n\n"
        "<b>What is stored:</b> your answers, when prompts were sent and answered, your time zone, "
        "your language and your Telegram account id. Your answers are stored encrypted.\n\n"
        "<b>Who sees it:</b> only your own therapist, to prepare your next session. Nobody else "
        "using this bot can see anything about you.\n\n"
        "<b>This is not an emergency service.</b> Messages are not read in real time. If you are "
        "in danger, call your local emergency number (911 in the US) or the 988 Suicide &amp; "
        "Crisis Lifeline (call or text 988 in the US). You can also tap “Need help now” at any "
        "time.\n\n"
        "<b>You stay in control:</b> /pause to take a break, /stop to stop all messages, /mydata "
        "for a copy of your data, /forgetme to delete your answers.\n\n"
        "Do you agree to take part?"
    ).format(clinic=esc(clinic))


CONSENT_STEP_HINT = N_(
    "You're one step from starting: please read the note below and tap “I agree” or "
    "“No, thanks”. Nothing is stored until you agree."
)
CONSENT_DECLINE_HINT = N_(
    "Nothing has been stored about you. If you'd rather not join, tap “No, thanks” below — "
    "that's completely fine."
)


def therapist_deactivated(clinic: str) -> str:
    return _(
        "Your therapist account at {clinic} has been deactivated, so it can't be used here "
        "any more. If that's a mistake, please contact the clinic."
    ).format(clinic=esc(clinic))


def consent_keyboard(
    codec: CallbackCodec, invite_id: int, language: str = languages.BUILT_IN[0]
) -> InlineKeyboardMarkup:
    """The consent buttons carry the language of the text shown: that is the text agreed to."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    _("I agree"), callback_data=codec.encode("ca", invite_id, language)
                ),
                InlineKeyboardButton(
                    _("No, thanks"), callback_data=codec.encode("cd", invite_id, language)
                ),
            ]
        ]
    )


DECLINED = N_(
    "That's completely fine. Nothing about you has been stored. If you change your mind, "
    "ask your therapist for a new link."
)


def timezone_question(clinic_zone: str) -> str:
    return _(
        "Thank you. One more thing: which time zone are you in? This makes sure messages arrive "
        "at sensible times. Tap one below, or type a city (like Denver) or a zone name "
        "(like {zone})."
    ).format(zone=esc(clinic_zone))


def timezone_keyboard(codec: CallbackCodec, clinic_zone: str) -> InlineKeyboardMarkup:
    zones = [clinic_zone, *(z for z in COMMON_ZONES if z != clinic_zone)]
    buttons = [
        InlineKeyboardButton(
            zone.split("/")[-1].replace("_", " "), callback_data=codec.encode("tz", zone)
        )
        for zone in zones
    ]
    return InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])


def welcome(zone: str) -> str:
    return _(
        "You're all set. Your time zone is {zone}; quiet hours are 21:00–08:00, so nothing "
        "arrives at night.\n\nAfter your next session your therapist will start a short series "
        "of notes and questions. Answer whenever it suits you; there are no wrong answers. "
        "Send /help any time to see your options."
    ).format(zone=esc(zone))


PATIENT_HELP = N_(
    "<b>How this works</b>\n"
    "After each session you'll get short notes, questions and check-ins. Just type your answer, "
    "or tap a button. Your therapist reads your answers before your next session.\n\n"
    "/pause [days] – take a break (/resume to continue)\n"
    "/settings – your language, time zone and quiet hours\n"
    "/stop – stop all messages\n"
    "/mydata – get a copy of what is stored about you\n"
    "/forgetme – delete your answers\n"
    "/crisis – where to get help right now\n\n"
    "This chat is not monitored in real time and is not an emergency service."
)

NOT_AVAILABLE = N_("Sorry, that command isn't available here. Send /help to see what you can do.")
TEXT_PLEASE = N_(
    "Thank you for sharing. I can only keep written answers, so this wasn't saved. "
    "If you'd like, put it into a few words and send them as text."
)
ACK_NOTE = N_("Thank you, I've kept this as a note.")
ACK_JOINED_NOTE = N_("Added to your note.")
QUOTE_WORDS = 60  # characters of a question quoted back: enough to know which one


def prompt_html(prompt: Prompt | None, custom_text: str | None) -> str:
    """A scheduled prompt as sent: the therapist's own words escaped, or the content's text
    (already Telegram HTML, checked by `afterglow content check`) with a check-in's scale."""
    if custom_text is not None:
        return esc(custom_text)
    assert prompt is not None
    text = prompt.text.strip()
    if prompt.kind == "checkin":
        text += checkin_scale_legend(prompt)
    return text


def quoted(question: str) -> str:
    """A question's first words (plain text), in quotes, to say which question something
    belongs to."""
    return f"“{esc(shorten(question, QUOTE_WORDS))}”"


def ack_answer(question: str) -> str:
    return _("Thank you, saved as your answer to {question}").format(question=quoted(question))


def ack_joined(question: str | None) -> str:
    if question is None:
        return _(ACK_JOINED_NOTE)
    return _("Added to your answer to {question}").format(question=quoted(question))


def ack_choice(question: str, label: str) -> str:
    return _("Thank you, saved <b>{label}</b> as your answer to {question}").format(
        label=esc(label), question=quoted(question)
    )


ACK_GOT_IT = N_("Got it ✓")
READ_FAILED = N_(
    "Sorry, something went wrong on our side and I couldn't show that. Nothing was changed. "
    "Please try again in a little while."
)
READ_FAILED_KEYS = N_(
    "Sorry, I couldn't open the stored text because of a problem with the clinic's "
    "encryption keys. Nothing was changed; the clinic can see this in its logs."
)
SOMETHING_WRONG = N_(
    "Sorry, something went wrong on our side and this may not have been saved. "
    "Please try again in a little while."
)


def prompt_message(
    prompt: Prompt | None, text: str, kind: str, delivery_id: int, codec: CallbackCodec
) -> tuple[str, InlineKeyboardMarkup | ForceReply]:
    """The message for one scheduled prompt. `text` is ready HTML (content, or escaped)."""
    if kind == "reflection":
        # Telegram allows one reply markup: ForceReply wins so the answer links by reply-to,
        # and help is one tap away through the /crisis command link.
        hint = _("Just type your answer. Need help now? Tap /crisis")
        placeholder = _("Your answer…")
        return clip(f"{text}\n\n<i>{hint}</i>"), ForceReply(input_field_placeholder=placeholder)
    rows: list[list[InlineKeyboardButton]] = []
    if kind == "checkin" and prompt is not None:
        rows.extend(checkin_rows(prompt, delivery_id, codec))
    elif kind == "education" and (prompt is None or prompt.ack):
        rows.append(
            [InlineKeyboardButton(_("Got it"), callback_data=codec.encode("ok", delivery_id))]
        )
    rows.append([help_button()])
    return clip(text), InlineKeyboardMarkup(rows)


def checkin_rows(
    prompt: Prompt, delivery_id: int, codec: CallbackCodec
) -> list[list[InlineKeyboardButton]]:
    if prompt.scale is not None:
        buttons = [
            InlineKeyboardButton(str(v), callback_data=codec.encode("ck", delivery_id, v))
            for v in prompt.scale.values()
        ]
        width = 6 if len(buttons) > 6 else len(buttons)
        return [buttons[i : i + width] for i in range(0, len(buttons), width)]
    return [
        [InlineKeyboardButton(c.label, callback_data=codec.encode("ck", delivery_id, c.value))]
        for c in prompt.choices
    ]


def checkin_scale_legend(prompt: Prompt) -> str:
    if prompt.scale is None:
        return ""
    s = prompt.scale
    return f"\n<i>{s.min} = {esc(s.min_label)} · {s.max} = {esc(s.max_label)}</i>"


def checkin_recorded(text: str, label: str) -> str:
    answered = _("✓ You answered: <b>{label}</b>").format(label=esc(label))
    return clip(f"{text}\n\n{answered}")


NUDGE_START = "A gentle reminder about"  # not shown: how the English reminder starts


def nudge(question: str | None) -> str:
    """A reminder names its question (it is also sent as a reply to it): by the time it
    arrives, other prompts may sit between the two."""
    which = quoted(question) if question is not None else _("the question above")
    return _(
        "A gentle reminder about {which}: it's still open, if you'd like to answer it. "
        "A few words are plenty, and it's fine to let it go."
    ).format(which=which)


def nudge_markup() -> ForceReply:
    return ForceReply(input_field_placeholder=_("Your answer…"))


# --- therapists ---------------------------------------------------------------------------

THERAPIST_HELP = N_(
    "<b>Therapist commands</b>\n"
    "/patients – your patients, their status and next prompt\n"
    "/invite &lt;pseudonym&gt; – a single-use link for a new patient\n"
    "/session &lt;pseudonym&gt; [YYYY-MM-DD HH:MM] [template] – log a session, or plan one "
    "ahead\n"
    "/sessions &lt;pseudonym&gt; – planned and past sessions: move, cancel\n"
    "/schedule &lt;pseudonym&gt; – upcoming and recent prompts: skip, send now, postpone\n"
    "/postpone [pseudonym] &lt;n&gt; &lt;offset&gt; – move prompt n of /schedule, e.g. +3h\n"
    "/add &lt;pseudonym&gt; &lt;offset&gt; &lt;prompt-key or your words&gt; – one extra prompt\n"
    "/replies &lt;pseudonym&gt; [n] – recent answers\n"
    "/scores &lt;pseudonym&gt; – questionnaire totals, bands, change from baseline\n"
    "/trends &lt;pseudonym&gt; – a chart of their check-ins, sessions marked\n"
    "/export &lt;pseudonym&gt; – all deliveries and answers as a CSV file\n"
    "/pause &lt;pseudonym&gt;, /resume &lt;pseudonym&gt; – hold or restart prompts\n"
    "/templates – the schedule templates\n"
    "/dashboard – open your workspace (patients, replies, charts, templates) in a browser "
    "or here in Telegram\n"
    "/help – this list\n\n"
    "Use pseudonyms, never real names. Times you type are in the patient's time zone."
)


def therapist_welcome(name: str) -> str:
    welcome = _("Welcome, {name}. You're registered as a therapist.").format(name=esc(name))
    return f"{welcome}\n\n{_(THERAPIST_HELP)}"


def therapist_welcome_back(name: str, chat_confirmed: bool = False) -> str:
    welcome = _("Welcome back, {name}. You're all set as a therapist.").format(name=esc(name))
    alerts = (
        _("Safety alerts for your patients will reach you in this chat from now on.") + "\n\n"
        if chat_confirmed
        else ""
    )
    return f"{welcome}\n\n{alerts}{_(THERAPIST_HELP)}"


def invite_created(pseudonym: str, link: str) -> str:
    return _(
        "Invitation for <b>{pseudonym}</b> (single use, valid 7 days):\n{link}\n\n"
        "Share it with your patient privately. A new /invite for the same pseudonym replaces it."
    ).format(pseudonym=esc(pseudonym), link=esc(link))


def usage(text: str) -> str:
    # i18n: {usage} is a command with its arguments, e.g. "/replies <pseudonym> [n]"
    return _("Usage: {usage}").format(usage=esc(text))


def cadence(every: str) -> str:
    """How a recurring step repeats, in words: 1d -> daily, 2d -> every 2 days, 12h."""
    amount, unit = int(every[:-1]), every[-1]
    if unit == "d":
        if amount == 1:
            return _("daily")
        return ngettext("every {n} day", "every {n} days", amount).format(n=amount)
    if amount == 1:
        return _("hourly")
    # i18n: h = hours
    return _("every {n} h").format(n=amount)


def _clock(moment: datetime, zone: str | None) -> str:
    return moment.astimezone(ZoneInfo(zone or "UTC")).strftime("%H:%M")


def item_lines(items: Sequence[PlannedItem], zone: str | None) -> list[str]:
    """One line per step: a recurring step's repeats fold into "daily checkin … 20:00 × 6"."""
    groups: dict[tuple[int, str], list[PlannedItem]] = {}
    order: list[PlannedItem | tuple[int, str]] = []
    for item in items:
        if item.every is None:
            order.append(item)
            continue
        key = (item.step, item.every)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(item)
    lines = []
    for entry in order:
        if isinstance(entry, PlannedItem):
            lines.append(
                f"• {local(entry.due_at, zone)} – {esc(entry.kind)}: {esc(entry.prompt_key)}"
            )
            continue
        repeats = groups[entry]
        first, last = repeats[0], repeats[-1]
        times = {_clock(i.due_at, zone) for i in repeats}
        at = (
            _clock(first.due_at, zone)
            if len(times) == 1
            else _("from {when}").format(when=local(first.due_at, zone))
        )
        span = f"{local_date(first.due_at, zone)} – {local_date(last.due_at, zone)}"
        # i18n: "• daily checkin 20:00 × 6: chk-mood (Wed 04 Mar – Mon 09 Mar)": {cadence} is
        # "daily" or "every 2 days", {kind} a prompt kind, {at} a time or "from <date time>",
        # {count} how many times, {key} a prompt key, {span} the first and last day
        line = _("• {cadence} {kind} {at} × {count}: {key} ({span})")
        lines.append(
            line.format(
                cadence=cadence(entry[1]),
                kind=esc(first.kind),
                at=at,
                count=len(repeats),
                key=esc(first.prompt_key),
                span=span,
            )
        )
    return lines


def _plan_lines(plan: SessionPlan) -> list[str]:
    zone = plan.timezone
    lines: list[str] = []
    if plan.skipped:
        lines.append(
            ngettext(
                "{n} step skipped: at this hour it would arrive after later prompts.",
                "{n} steps skipped: at this hour they would arrive after later prompts.",
                plan.skipped,
            ).format(n=plan.skipped)
        )
    if plan.skipped_preparation:
        lines.append(
            ngettext(
                "{n} preparation step skipped: its time has already passed, and it is never "
                "sent late.",
                "{n} preparation steps skipped: their time has already passed, and they are "
                "never sent late.",
                plan.skipped_preparation,
            ).format(n=plan.skipped_preparation)
        )
    if plan.missed:
        missed = len(plan.missed)
        lines.append(
            "\n"
            + ngettext(
                "<b>Too late to send</b> ({n}, marked missed):",
                "<b>Too late to send</b> ({n}, marked missed):",
                missed,
            ).format(n=missed)
        )
        lines.extend(item_lines(plan.missed, zone))
    before = [item for item in plan.items if item.preparation]
    after = [item for item in plan.items if not item.preparation]
    if before:
        lines.append("\n" + _("<b>Before the session</b> (patient's local time):"))
        lines.extend(item_lines(before, zone))
    lines.append(
        "\n" + _("<b>After the session</b> (patient's local time):")
        if before or plan.planned
        else "\n" + _("<b>Will be sent</b> (patient's local time):")
    )
    lines.extend(item_lines(after, zone))
    if not plan.items:
        lines.append(_("• nothing: every step is already past"))
    return lines


def session_planned(plan: SessionPlan) -> str:
    pseudonym, template = esc(plan.pseudonym), esc(plan.template)
    when = f"{local(plan.started_at, plan.timezone)} ({esc(plan.timezone)})"
    if plan.planned:
        lines = [
            # i18n: {when} is a date and time with the time zone, {template} a template name
            _(
                "Session planned for <b>{pseudonym}</b> on {when}, template <b>{template}</b>."
            ).format(pseudonym=pseudonym, when=when, template=template),
            _(
                "The current session's prompts go on until then; at its start this session's own "
                "steps take over. See /sessions to move or cancel it."
            ),
        ]
    else:
        lines = [
            # i18n: {when} is a date and time with the time zone, {template} a template name
            _(
                "Session logged for <b>{pseudonym}</b> at {when}, template <b>{template}</b>."
            ).format(pseudonym=pseudonym, when=when, template=template)
        ]
    if plan.cancelled:
        lines.append(
            ngettext(
                "{n} pending prompt from the previous session was cancelled.",
                "{n} pending prompts from the previous session were cancelled.",
                plan.cancelled,
            ).format(n=plan.cancelled)
        )
    lines.extend(_plan_lines(plan))
    return clip("\n".join(lines))


def session_confirm(plan: SessionPlan) -> str:
    total = len(plan.items) + len(plan.missed)
    lines = [
        # i18n: {when} is a date and time with the time zone; {missed} of {total} prompts
        ngettext(
            "A session for <b>{pseudonym}</b> at {when} is in the past: {missed} of its "
            "{total} prompt is already too late to send, and {pseudonym}'s first message "
            "would be a mid-course one.",
            "A session for <b>{pseudonym}</b> at {when} is in the past: {missed} of its "
            "{total} prompts are already too late to send, and {pseudonym}'s first message "
            "would be a mid-course one.",
            total,
        ).format(
            pseudonym=esc(plan.pseudonym),
            when=f"{local(plan.started_at, plan.timezone)} ({esc(plan.timezone)})",
            missed=len(plan.missed),
            total=total,
        ),
        _("Nothing is logged yet. Log it anyway?"),
    ]
    lines.extend(_plan_lines(plan))
    return clip("\n".join(lines))


def session_confirm_keyboard(codec: CallbackCodec, plan: SessionPlan) -> InlineKeyboardMarkup:
    start = int(plan.started_at.timestamp()) // 60
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    _("Log it anyway"),
                    callback_data=codec.encode("tv", plan.patient_id, start, plan.template),
                ),
                InlineKeyboardButton(
                    _("Cancel"), callback_data=codec.encode("tu", plan.patient_id)
                ),
            ]
        ]
    )


SESSION_NOT_LOGGED = N_("Nothing was logged.")


def trends_caption(pseudonym: str, zone: str) -> str:
    return _(
        "Check-ins of <b>{pseudonym}</b> over time (dates in {zone}); dashed lines "
        "are sessions. /replies for their words."
    ).format(pseudonym=esc(pseudonym), zone=esc(zone))


PROGRESS_OFF = N_(
    "Your clinic has not switched on the progress chart. Your therapist can talk it through "
    "with you."
)
PROGRESS_EMPTY = N_(
    "There is nothing to chart yet: your check-ins will show here once you answer some."
)


def progress_caption(zone: str) -> str:
    return _(
        "Your check-ins over time (dates in {zone}); dashed lines are your sessions. "
        "Only you and your therapist can see this."
    ).format(zone=esc(zone))


def trends_empty(pseudonym: str) -> str:
    return _("<b>{pseudonym}</b> has not answered a check-in with a scale yet: no chart.").format(
        pseudonym=esc(pseudonym)
    )


def replies_listing(pseudonym: str, zone: str | None, views: Sequence[ReplyView]) -> str:
    if not views:
        return _("No replies from <b>{pseudonym}</b> yet.").format(pseudonym=esc(pseudonym))
    out = [
        _("<b>Replies from {pseudonym}</b> (newest first, patient's local time)").format(
            pseudonym=esc(pseudonym)
        )
    ]
    for view in views:
        received, answer = view.received_at, view.answer
        question = view.question or None
        q = (
            f"<i>{esc(shorten(question, 160))}</i>\n"
            if question
            else _("<i>(note, not linked to a question)</i>") + "\n"
        )
        out.append(f"\n<b>{local(received, zone)}</b>\n{q}{esc(_cut_answer(answer))}")
    return clip("\n".join(out))


ANSWER_LIMIT = 600  # one long answer must not push the others out of the message


def _cut_answer(answer: str) -> str:
    if len(answer) <= ANSWER_LIMIT:
        return answer
    kept = shorten(answer, ANSWER_LIMIT)
    more = len(answer) - len(kept) + 1  # the "…" stands for one of them
    # i18n: {kept} is the start of a long answer, cut
    return ngettext(
        "{kept} (… {n} more character — /export for all)",
        "{kept} (… {n} more characters — /export for all)",
        more,
    ).format(kept=kept, n=more)


plain = plain_text


def shorten(text: str, limit: int) -> str:
    """Plain text cut to at most `limit` characters, at a space when there is one."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut[limit // 2 :] else cut) + "…"


def unreachable(pseudonym: str) -> str:
    return _(
        "<b>{pseudonym}</b> can no longer be reached: they blocked the bot or removed the "
        "chat. Their prompts are on hold and will resume if they come back."
    ).format(pseudonym=esc(pseudonym))


def reachable_again(pseudonym: str) -> str:
    return _(
        "<b>{pseudonym}</b> is reachable again; held prompts resume (late ones are missed)."
    ).format(pseudonym=esc(pseudonym))
