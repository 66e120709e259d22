"""Therapist commands. Each one checks the role first; a patient or a stranger learns nothing."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from functools import wraps
from typing import Any

from telegram import Update

from bot.db.models import Therapist
from bot.handlers import render
from bot.handlers.common import Context, answer, effects, kick_dispatcher, runtime, who
from bot.services import enrollment, replies, sessions
from bot.services.errors import UserError

TherapistHandler = Callable[[Update, Context, Therapist], Awaitable[None]]
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def therapist_only(
    handler: TherapistHandler,
) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """Resolve the caller; anyone but an active therapist gets the same neutral answer."""

    @wraps(handler)
    async def checked(update: Update, context: Context) -> None:
        async with runtime(context).sessions() as session:
            role = await who(session, update)
        if role.therapist is None:
            await answer(
                update, render.NOT_AVAILABLE if role.patient is not None else render.NOT_ENROLLED
            )
            return
        try:
            await handler(update, context, role.therapist)
        except UserError as exc:
            await answer(update, render.esc(exc.message))

    return checked


@therapist_only
async def invite(update: Update, context: Context, therapist: Therapist) -> None:
    if not context.args or len(context.args) != 1:
        await answer(update, render.usage("/invite <pseudonym>"))
        return
    rt = runtime(context)
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
        raise UserError("Usage: /session <pseudonym> [YYYY-MM-DD HH:MM] [template]")
    pseudonym, rest = args[0], args[1:]
    when = None
    if rest and DATE.match(rest[0]):
        if len(rest) < 2:
            raise UserError("Give the time too, like 2026-03-14 16:30.")
        when = sessions.parse_local_time(f"{rest[0]} {rest[1]}")
        rest = rest[2:]
    if len(rest) > 1:
        raise UserError("Usage: /session <pseudonym> [YYYY-MM-DD HH:MM] [template]")
    return pseudonym, when, rest[0] if rest else None


@therapist_only
async def session_command(update: Update, context: Context, therapist: Therapist) -> None:
    rt = runtime(context)
    pseudonym, when, template = parse_session_args(list(context.args or []))
    async with effects(context) as session:
        plan = await sessions.log_session(
            session,
            therapist_id=therapist.id,
            pseudonym=pseudonym,
            local_start=when,
            template_name=template,
            content=rt.content,
            now=rt.clock.now(),
        )
    await answer(
        update,
        render.session_planned(
            plan.pseudonym,
            plan.timezone,
            plan.started_at,
            plan.template,
            [(item.due_at, item.kind, item.prompt_key) for item in plan.items],
            plan.cancelled,
            plan.skipped,
        ),
    )
    # The first step is often "+0m": look now rather than at the next tick.
    kick_dispatcher(context, "session")


@therapist_only
async def replies_command(update: Update, context: Context, therapist: Therapist) -> None:
    args = list(context.args or [])
    if not 1 <= len(args) <= 2 or (len(args) == 2 and not args[1].isdigit()):
        await answer(update, render.usage("/replies <pseudonym> [n]"))
        return
    limit = min(max(int(args[1]), 1), 50) if len(args) == 2 else 10
    rt = runtime(context)
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
    await answer(
        update,
        render.replies_listing(patient.pseudonym, patient.timezone, views),
    )


@therapist_only
async def help_therapist(update: Update, context: Context, therapist: Therapist) -> None:
    await answer(update, render.THERAPIST_HELP)
