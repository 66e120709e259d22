"""The pre-session brief as the therapist reads it: one message, the patient's local time."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import _, ngettext
from bot.services.brief import Brief
from bot.views.callbacks import CallbackCodec
from bot.views.questionnaires import score_line
from bot.views.render import clip, esc, local, shorten

WORDS_SHOWN = 300


def brief_text(brief: Brief) -> str:
    zone = brief.timezone
    # i18n: {when} is a date and time, {zone} a time zone
    title = _("<b>Before the session with {pseudonym}</b> at {when} ({zone})")
    # i18n: {when} is a date and time
    since = _("Since {when}:")
    answered = ngettext(
        "• prompts answered: {answered} of {sent} sent",
        "• prompts answered: {answered} of {sent} sent",
        brief.sent,
    )
    out = [
        title.format(
            pseudonym=esc(brief.pseudonym),
            when=local(brief.starts_at, zone),
            zone=esc(zone or "UTC"),
        ),
        since.format(when=local(brief.since, zone)),
        answered.format(answered=brief.answered, sent=brief.sent),
    ]
    for trend in brief.checkins:
        # i18n: a check-in's first and latest value: "• chk-mood: 4 → 7 (5 answers)"
        line = ngettext(
            "• {key}: {first} → {latest} ({n} answer)",
            "• {key}: {first} → {latest} ({n} answers)",
            trend.count,
        )
        out.append(
            line.format(key=esc(trend.key), first=trend.first, latest=trend.latest, n=trend.count)
        )
    for score in brief.scores:
        out.append("• " + score_line(score, zone))
    if brief.alerts:
        open_ = brief.alerts - brief.acknowledged
        state = (
            _("all acknowledged")
            if not open_
            else ngettext(
                "<b>{n} not acknowledged</b>", "<b>{n} not acknowledged</b>", open_
            ).format(n=open_)
        )
        # i18n: {state} is "all acknowledged" or "2 not acknowledged"
        alerts = ngettext(
            "• safety alerts: {n} ({state})", "• safety alerts: {n} ({state})", brief.alerts
        )
        out.append(alerts.format(n=brief.alerts, state=state))
    else:
        out.append(_("• no safety alerts"))
    if brief.words:
        out.append("\n" + _("<b>In their words</b>"))
        for words in brief.words:
            out.append(
                f"<i>{esc(shorten(words.question, 80))}</i>\n"
                f"{esc(shorten(words.answer, WORDS_SHOWN))}"
            )
    return clip("\n".join(out))


def brief_keyboard(codec: CallbackCodec, brief: Brief) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    _("Open {pseudonym}").format(pseudonym=brief.pseudonym),
                    callback_data=codec.encode("ti", brief.patient_id),
                )
            ]
        ]
    )
