"""Measurement for the therapist: `/scores <pseudonym>` (questionnaire totals, bands, change
from baseline, response and remission) and `/trends <pseudonym>` (check-ins as a chart).

The chart is drawn in a worker thread (matplotlib takes tens of milliseconds; the event loop
keeps answering other chats meanwhile) and sent protected, noted for /forgetme like /replies.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from telegram import InputFile, Update
from telegram.constants import ParseMode

from bot.db.models import Patient, Therapist
from bot.handlers.common import Context, answer, effects, remember_shown
from bot.handlers.console import pseudonym_arg
from bot.handlers.controls import patient_only
from bot.handlers.therapist import therapist_only
from bot.i18n import _
from bot.services import scores, trends
from bot.telegram.ratelimit import interactive
from bot.views import charts, render
from bot.views import questionnaires as questionnaire_view


@therapist_only
async def trends_command(update: Update, context: Context, therapist: Therapist) -> None:
    pseudonym = await pseudonym_arg(update, context, "/trends <pseudonym>")
    if pseudonym is None:
        return
    rt = context.runtime
    async with effects(context) as session:
        data = await trends.trend_data(
            session,
            therapist_id=therapist.id,
            pseudonym=pseudonym,
            content=rt.content,
            cipher=rt.cipher,
            now=rt.clock.now(),
        )
    if data.empty:
        await answer(update, render.trends_empty(data.pseudonym))
        return
    sent = await _send_chart(update, data, render.trends_caption(data.pseudonym, data.timezone))
    await remember_shown(context, update, data.patient_id, sent, "trends")


@therapist_only
async def scores_command(update: Update, context: Context, therapist: Therapist) -> None:
    pseudonym = await pseudonym_arg(update, context, "/scores <pseudonym>")
    if pseudonym is None:
        return
    rt = context.runtime
    async with effects(context) as session:
        sheet = await scores.score_sheet(
            session,
            therapist_id=therapist.id,
            pseudonym=pseudonym,
            content=rt.content,
            cipher=rt.cipher,
            now=rt.clock.now(),
        )
    shown = await answer(update, questionnaire_view.scores_text(sheet), protect=True)
    await remember_shown(context, update, sheet.patient_id, shown, "scores")


@patient_only
async def progress_command(update: Update, context: Context, patient: Patient) -> None:
    """A patient's own check-ins as a chart, when the clinic shows patients their scores."""
    rt = context.runtime
    if not rt.settings.show_scores_to_patient:
        await answer(update, _(render.PROGRESS_OFF))
        return
    async with effects(context) as session:
        data = await trends.own_trend(
            session, patient=patient, content=rt.content, cipher=rt.cipher, now=rt.clock.now()
        )
    if not data.series:
        await answer(update, _(render.PROGRESS_EMPTY))
        return
    await _send_chart(update, data, render.progress_caption(data.timezone))


async def _send_chart(update: Update, data: trends.TrendData, caption: str) -> int | None:
    png = await asyncio.to_thread(charts.trend_png, data)
    chat = update.effective_chat
    if chat is None:
        return None
    bot: Any = update.get_bot()
    sent = await bot.send_photo(
        chat.id,
        InputFile(io.BytesIO(png), filename="trends.png"),
        caption=caption,
        parse_mode=ParseMode.HTML,
        protect_content=True,
        rate_limit_args=interactive(bot),
    )
    return int(sent.message_id)


COMMANDS = {"trends": trends_command, "scores": scores_command, "progress": progress_command}
