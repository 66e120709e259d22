"""Therapist commands. Each one checks the role first; a patient or a stranger learns nothing."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from functools import wraps
from typing import Any

from telegram import Update

from bot.db.models import Therapist
from bot.handlers import strangers
from bot.handlers.common import Context, answer, effects, kick_dispatcher, remember_shown, who
from bot.i18n import N_, _, ngettext
from bot.services import enrollment, replies, sessions
from bot.services.errors import UserError
from bot.views import render

TherapistHandler = Callable[[Update, Context, Therapist], Awaitable[None]]
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME = re.compile(r"^\d{1,2}:\d{2}$")
MAX_REPLIES = 50
SESSION_USAGE = N_("Usage: /session <pseudonym> [YYYY-MM-DD HH:MM] [template]")


def therapist_only(
    handler: TherapistHandler,
) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """Resolve the caller; anyone but an active therapist gets the same neutral answer."""

    @wraps(handler)
    async def checked(update: Update, context: Context) -> None:
        async with context.runtime.sessions() as session:
            role = await who(session, update, context)
        if role.therapist is None:
            if role.patient is not None:
                await answer(update, _(render.NOT_AVAILABLE))
            else:
                await strangers.not_enrolled(update, context)
            return
        try:
            await handler(update, context, role.therapist)
        except UserError as exc:
            await answer(update, render.esc(exc.message))

    return checked


@therapist_only
async def invite(update: Update, context: Context, therapist: Therapist) -> None:
    if not context.args:
        await answer(update, render.usage("/invite <pseudonym>"))
        return
    if len(context.args) > 1:
        joined = "-".join(context.args)
        raise UserError(
            _(
                "A pseudonym is one word, without spaces: for example /invite {joined}. "
                "Use a code or nickname, never the patient's real name."
            ).format(joined=joined)
        )
    rt = context.runtime
    pseudonym = context.args[0]
    async with effects(context) as session:
        token = await enrollment.invite_patient(
            session, therapist_id=therapist.id, pseudonym=pseudonym, now=rt.clock.now()
        )
    link = enrollment.deep_link(context.bot.username, token)
    await answer(update, render.invite_created(pseudonym, link))


def parse_session_args(args: list[str]) -> tuple[str, datetime | None, str | None]:
    """`<pseudonym> [YYYY-MM-DD HH:MM] [template]`."""
    if not args or len(args) > 4:
        raise UserError(_(SESSION_USAGE))
    pseudonym, rest = args[0], args[1:]
    when = None
    if rest and TIME.match(rest[0]):
        raise UserError(
            # i18n: {time} is the time the therapist typed, like 16:30
            _(
                "The date is missing: give the date and time, like /session {pseudonym} "
                "YYYY-MM-DD {time}."
            ).format(pseudonym=pseudonym, time=rest[0])
        )
    if rest and DATE.match(rest[0]):
        if len(rest) < 2:
            raise UserError(_("Give the time too, like 2026-03-14 16:30."))
        when = sessions.parse_local_time(f"{rest[0]} {rest[1]}")
        rest = rest[2:]
    if len(rest) > 1:
        raise UserError(_(SESSION_USAGE))
    return pseudonym, when, rest[0] if rest else None


@therapist_only
async def session_command(update: Update, context: Context, therapist: Therapist) -> None:
    rt = context.runtime
    pseudonym, when, template = parse_session_args(list(context.args or []))
    try:
        async with effects(context) as session:
            plan = await sessions.log_session(
                session,
                therapist_id=therapist.id,
                pseudonym=pseudonym,
                local_start=when,
                template_name=template,
                content=rt.content,
                grace=rt.settings.misfire_grace,
                now=rt.clock.now(),
            )
    except sessions.NeedsConfirmation as ask:
        await answer(
            update,
            render.session_confirm(ask.preview),
            render.session_confirm_keyboard(context.codec, ask.preview),
        )
        return
    await answer(update, render.session_planned(plan))
    # The first step is often "+0m": look now rather than at the next tick.
    kick_dispatcher(context, "session")


@therapist_only
async def replies_command(update: Update, context: Context, therapist: Therapist) -> None:
    args = list(context.args or [])
    if not 1 <= len(args) <= 2 or (len(args) == 2 and not args[1].isdigit()):
        await answer(update, render.usage("/replies <pseudonym> [n]"))
        return
    limit = int(args[1]) if len(args) == 2 else 10
    if not 1 <= limit <= MAX_REPLIES:
        raise UserError(
            ngettext(
                "Show between 1 and {most} reply, e.g. /replies {pseudonym} 10. "
                "For everything, use /export.",
                "Show between 1 and {most} replies, e.g. /replies {pseudonym} 10. "
                "For everything, use /export.",
                MAX_REPLIES,
            ).format(most=MAX_REPLIES, pseudonym=args[0])
        )
    rt = context.runtime
    async with effects(context) as session:
        patient, views = await replies.read_replies(
            session,
            therapist_id=therapist.id,
            pseudonym=args[0],
            limit=limit,
            content=rt.content,
            cipher=rt.cipher,
            now=rt.clock.now(),
        )
    shown = await answer(
        update,
        render.replies_listing(
            render.with_language(patient.pseudonym, patient.language), patient.timezone, views
        ),
        protect=True,
    )
    await remember_shown(context, update, patient.id, shown, "replies")


@therapist_only
async def help_therapist(update: Update, context: Context, therapist: Therapist) -> None:
    await answer(update, _(render.THERAPIST_HELP))
