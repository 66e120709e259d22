"""A questionnaire in chat: one message that moves from item to item ("3 of 9"), one button
per option, Back, and the thank-you. Item texts and labels are plain text (escaped here)."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.domain.questionnaires import Band, Questionnaire
from bot.i18n import _, ngettext
from bot.services.scores import Score, ScoreSheet
from bot.views.callbacks import CallbackCodec
from bot.views.render import clip, esc, help_button, local_date

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
    # i18n: the item shown and how many the questionnaire has: "3 of 9"
    position = ngettext("<b>{n} of {total}</b>", "<b>{n} of {total}</b>", len(q.items))
    parts.append(position.format(n=index + 1, total=len(q.items)))
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
                    _("◀ Back"), callback_data=codec.encode(BACK, delivery_id, index + 1)
                )
            ]
        )
    rows.append([help_button()])
    return InlineKeyboardMarkup(rows)


def finished_text(
    q: Questionnaire, total: int | None, band: Band | None, *, show_score: bool
) -> str:
    n = len(q.items)
    saved = ngettext(
        "Thank you: your {n} answer is saved.", "Thank you: all {n} answers are saved.", n
    )
    lines = [f"<b>{esc(q.title)}</b>", saved.format(n=n)]
    if show_score and total is not None:
        low, high = q.total_range
        if band is not None:
            # i18n: a questionnaire total, its range ({low}–{high}) and its band's name
            score = _("Your score: {total} (of {low}–{high}, {band}).")
        else:
            # i18n: a questionnaire total and its range ({low}–{high})
            score = _("Your score: {total} (of {low}–{high}).")
        band_label = esc(band.label) if band is not None else ""
        lines.append(score.format(total=total, low=low, high=high, band=band_label))
    lines.append(ngettext("Your therapist will see it.", "Your therapist will see them.", n))
    return clip("\n".join(lines))


def total_notice(pseudonym: str, title: str, total: int, band: Band | None) -> str:
    if band is not None:
        # i18n: {title} is a questionnaire's name, {band} the name of the total's band
        text = _(
            "<b>{pseudonym}</b> finished <i>{title}</i> with a total of {total} ({band}), "
            "at or above the level your clinic asks to be told about. See /replies {pseudonym}."
        )
    else:
        # i18n: {title} is a questionnaire's name
        text = _(
            "<b>{pseudonym}</b> finished <i>{title}</i> with a total of {total}, "
            "at or above the level your clinic asks to be told about. See /replies {pseudonym}."
        )
    return text.format(
        pseudonym=esc(pseudonym),
        title=esc(title),
        total=total,
        band=esc(band.label) if band is not None else "",
    )


def score_line(score: Score, zone: str | None) -> str:
    """ "integration-week 9 (finding a way) · −3 · response" for a card or a listing."""
    band = f" ({esc(score.band.label)})" if score.band is not None else ""
    parts = [f"{esc(score.title)}: <b>{score.total}</b>{band}"]
    if score.change is None:
        parts.append(_("baseline"))
    else:
        # i18n: {change} is a signed difference, e.g. "−3" or "+2"
        change = _("{change} from baseline")
        parts.append(change.format(change=f"{score.change:+d}".replace("-", "−")))
    if score.response:
        # i18n: a clinical term: the total improved enough to count as a response
        parts.append(_("response"))
    if score.remission:
        # i18n: a clinical term: the total is now in the remission range
        parts.append(_("remission"))
    return f"{local_date(score.at, zone)} · " + " · ".join(parts)


def scores_text(sheet: ScoreSheet) -> str:
    if not sheet.scores:
        return _("<b>{pseudonym}</b> has not completed a questionnaire yet.").format(
            pseudonym=esc(sheet.pseudonym)
        )
    # i18n: {zone} is a time zone
    title = _(
        "<b>Scores of {pseudonym}</b> (dates in {zone}; change from each questionnaire's "
        "first total)"
    )
    out = [title.format(pseudonym=esc(sheet.pseudonym), zone=esc(sheet.timezone or "UTC"))]
    for score in sheet.scores[-MAX_SCORES:]:
        out.append("• " + score_line(score, sheet.timezone))
    if len(sheet.scores) > MAX_SCORES:
        n = len(sheet.scores) - MAX_SCORES
        more = ngettext("…and {n} earlier: /export for all", "…and {n} earlier: /export for all", n)
        out.append(more.format(n=n))
    return clip("\n".join(out))
