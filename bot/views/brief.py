"""The pre-session brief as the therapist reads it: one message, the patient's local time."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.services.brief import Brief
from bot.views.callbacks import CallbackCodec
from bot.views.questionnaires import score_line
from bot.views.render import clip, esc, local, shorten

WORDS_SHOWN = 300


def brief_text(brief: Brief) -> str:
    zone = brief.timezone
    out = [
        f"<b>Before the session with {esc(brief.pseudonym)}</b> at "
        f"{local(brief.starts_at, zone)} ({esc(zone or 'UTC')})",
        f"Since {local(brief.since, zone)}:",
        f"• prompts answered: {brief.answered} of {brief.sent} sent",
    ]
    for trend in brief.checkins:
        out.append(f"• {esc(trend.key)}: {trend.first} → {trend.latest} ({trend.count} answers)")
    for score in brief.scores:
        out.append("• " + score_line(score, zone))
    if brief.alerts:
        open_ = brief.alerts - brief.acknowledged
        state = "all acknowledged" if not open_ else f"<b>{open_} not acknowledged</b>"
        out.append(f"• safety alerts: {brief.alerts} ({state})")
    else:
        out.append("• no safety alerts")
    if brief.words:
        out.append("\n<b>In their words</b>")
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
                    f"Open {brief.pseudonym}", callback_data=codec.encode("ti", brief.patient_id)
                )
            ]
        ]
    )
