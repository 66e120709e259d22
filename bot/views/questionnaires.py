"""A questionnaire in chat: one message that moves from item to item ("3 of 9"), one button
per option, Back, and the thank-you. Item texts and labels are plain text (escaped here)."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.domain.questionnaires import Band, Questionnaire
from bot.services.scores import Score, ScoreSheet
from bot.views.callbacks import CallbackCodec
from bot.views.render import clip, esc, help_button, local

ANSWER = "qa"  # delivery id, item number (from 1), value
BACK = "qb"  # delivery id, the item number shown
MAX_SCORES = 30  # the newest; /export has every one


def screen_text(q: Questionnaire, index: int, *, intro: bool = False) -> str:
    """Item `index` (0-based); the first screen also carries the title and the intro."""
    parts = []
    if intro:
        parts.append(f"<b>{esc(q.title)}</b>")
        if q.intro:
            parts.append(esc(q.intro))
        if q.recall:  # "over the last 2 weeks", as the form words it
            parts.append(f"<i>{esc(q.recall[:1].upper() + q.recall[1:])}</i>")
        parts.append("")
    else:
        parts.append(f"<i>{esc(q.title)}</i>")
    parts.append(f"<b>{index + 1} of {len(q.items)}</b>")
    parts.append(esc(q.items[index].text))
    return clip("\n".join(parts))


def screen_keyboard(
    codec: CallbackCodec, delivery_id: int, q: Questionnaire, index: int, chosen: int | None
) -> InlineKeyboardMarkup:
    item = q.items[index]
    rows = [
        [
            InlineKeyboardButton(
                ("✓ " if option.value == chosen else "") + option.label,
                callback_data=codec.encode(ANSWER, delivery_id, index + 1, option.value),
            )
        ]
        for option in item.options
    ]
    if index > 0:
        rows.append(
            [
                InlineKeyboardButton(
                    "◀ Back", callback_data=codec.encode(BACK, delivery_id, index + 1)
                )
            ]
        )
    rows.append([help_button()])
    return InlineKeyboardMarkup(rows)


def finished_text(
    q: Questionnaire, total: int | None, band: Band | None, *, show_score: bool
) -> str:
    lines = [f"<b>{esc(q.title)}</b>", f"Thank you: all {len(q.items)} answers are saved."]
    if show_score and total is not None:
        low, high = q.total_range
        where = f", {esc(band.label)}" if band is not None else ""
        lines.append(f"Your score: {total} (of {low}–{high}{where}).")
    lines.append("Your therapist will see them.")
    return clip("\n".join(lines))


def total_notice(pseudonym: str, title: str, total: int, band: Band | None) -> str:
    where = f" ({esc(band.label)})" if band is not None else ""
    return (
        f"<b>{esc(pseudonym)}</b> finished <i>{esc(title)}</i> with a total of {total}{where}, "
        f"at or above the level your clinic asks to be told about. See /replies {esc(pseudonym)}."
    )


def score_line(score: Score, zone: str | None) -> str:
    """ "integration-week 9 (finding a way) · −3 · response" for a card or a listing."""
    band = f" ({esc(score.band.label)})" if score.band is not None else ""
    parts = [f"{esc(score.title)}: <b>{score.total}</b>{band}"]
    if score.change is None:
        parts.append("baseline")
    else:
        parts.append(f"{score.change:+d} from baseline".replace("-", "−"))
    if score.response:
        parts.append("response")
    if score.remission:
        parts.append("remission")
    return f"{local(score.at, zone)[:10]} · " + " · ".join(parts)


def scores_text(sheet: ScoreSheet) -> str:
    if not sheet.scores:
        return f"<b>{esc(sheet.pseudonym)}</b> has not completed a questionnaire yet."
    out = [
        f"<b>Scores of {esc(sheet.pseudonym)}</b> (dates in "
        f"{esc(sheet.timezone or 'UTC')}; change from each questionnaire's first total)"
    ]
    for score in sheet.scores[-MAX_SCORES:]:
        out.append("• " + score_line(score, sheet.timezone))
    if len(sheet.scores) > MAX_SCORES:
        out.append(f"…and {len(sheet.scores) - MAX_SCORES} earlier: /export for all")
    return clip("\n".join(out))
