"""Which language an unprompted text to a staff chat is worded in: alerts, notices, briefs.

A therapist's chat gets their language (their Telegram language when they last wrote, see
`handlers.common.who`); the on-call chat, a therapist who never wrote, or a database that
cannot answer get the clinic's default — a notice in the default language beats none."""

from __future__ import annotations

import logging

from bot.db import queries
from bot.domain import languages
from bot.runtime import Runtime

log = logging.getLogger(__name__)


async def language_of(rt: Runtime, chat_id: int | None) -> str:
    settings = rt.settings
    stored: str | None = None
    if chat_id is not None:
        try:
            async with rt.sessions() as session:
                stored = await queries.therapist_language(session, chat_id)
        except Exception as exc:  # the default language, not silence
            log.warning("could not read a therapist's language: %s", type(exc).__name__)
    return languages.effective(stored, settings.offered_languages, settings.default_language)
