"""The workspace's pages and actions under /app. Like a chat handler, each route finds out
who is asking (`guard.identify`), calls the service function the chat command calls, and
renders a page (`bot/views/web`). A refused or bad request changes nothing and says why."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot import i18n
from bot.db.models import Alert, Patient, Therapist
from bot.domain.states import PatientStatus
from bot.domain.timezones import resolve_zone
from bot.i18n import N_, _
from bot.runtime import Runtime
from bot.services import (
    alerts,
    console,
    course,
    own_templates,
    replies,
    roster,
    schedule_edits,
    sessions,
    signin,
    trends,
)
from bot.services.errors import NotFound, UserError
from bot.views import console as chat_console
from bot.views import course as chat_course
from bot.views import render as chat
from bot.views import web
from bot.views.charts import trend_svg
from bot.workspace import guard
from bot.workspace.guard import Caller, Refused

log = logging.getLogger(__name__)

Kick = Callable[[str], None]
Handler = Callable[[Request], Awaitable[Response]]
SORTS = {
    "alerts": N_("Open alerts"),
    "pseudonym": N_("Pseudonym"),
    "next": N_("Next prompt"),
    "unanswered": N_("Unanswered"),
    "score": N_("Latest score"),
}
# The patient table's caption for a screen reader: how it is sorted.
SORTED = {
    "alerts": N_("Your patients, open alerts first"),
    "pseudonym": N_("Your patients, sorted by pseudonym"),
    "next": N_("Your patients, sorted by next prompt"),
    "unanswered": N_("Your patients, sorted by unanswered"),
    "score": N_("Your patients, sorted by latest score"),
}
SHOWN_STATUSES = [
    s for s in PatientStatus if s not in (PatientStatus.ERASED, PatientStatus.DECLINED)
]
REPLIES_SHOWN = 50
DELIVERY_VERBS = {"skip", "send", "again", "hour", "morning"}


# HTTP header values, not texts.
FOREVER = "public, max-age=31536000, immutable"  # not shown: a header


def _attachment(filename: str) -> str:
    return f'attachment; filename="{filename}"'  # not shown: a header


def _html(body: str, status: int = 200) -> HTMLResponse:
    # The Mini App swaps pages into one document; its script sets <html lang> from this.
    return HTMLResponse(body, status_code=status, headers={"Content-Language": i18n.current()})


def build_routes(rt: Runtime, kick: Kick) -> list[BaseRoute]:
    settings = rt.settings

    async def open_alert_count(caller: Caller) -> int:
        async with rt.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(Alert)
                    .join(Patient, Patient.id == Alert.patient_id)
                    .where(
                        Patient.therapist_id == caller.therapist_id,
                        Patient.status != PatientStatus.ERASED,
                        Alert.acknowledged_at.is_(None),
                    )
                )
                or 0
            )

    async def show(
        caller: Caller | None, name: str, *, status: int = 200,
        **context: Any,
    ) -> HTMLResponse:  # fmt: skip
        for key in ("notice", "notice_kind", "problems", "problems_title", "section"):
            context.setdefault(key, None)
        count = await open_alert_count(caller) if caller is not None else 0
        body = web.page(
            name,
            therapist=caller,
            csrf=caller.csrf if caller is not None else None,
            clinic=settings.clinic_name,
            open_alerts=count,
            **context,
        )
        return _html(body, status)

    def message(
        heading: str, text: str, status: int, caller: Caller | None = None
    ) -> Awaitable[HTMLResponse]:
        return show(caller, "message.html", status=status, heading=heading, text=text)

    def guarded(handler: Callable[[Request, Caller], Awaitable[Response]]) -> Handler:
        """Identify the caller (and check a POST's origin and CSRF token) before the handler;
        a refusal is a page, a failure is a page that says nothing was changed."""

        async def route(request: Request) -> Response:
            caller: Caller | None = None
            try:
                caller = await guard.identify(request, rt)
                if request.method == "POST":
                    form = await request.form()
                    token = form.get("csrf")
                    await guard.check_post(
                        request, caller, token if isinstance(token, str) else None
                    )
                return await handler(request, caller)
            except Refused as exc:
                heading = _("Please sign in") if exc.status == 401 else _("Not allowed")
                return await message(heading, exc.message, exc.status, caller)
            except NotFound as exc:
                return await message(_("Not found"), exc.message, 404, caller)
            except UserError as exc:
                return await message(_("That didn't work"), exc.message, 400, caller)
            except Exception as exc:  # never a traceback on a page; nothing was committed
                log.error("workspace %s %s failed: %s", request.method,
                          request.scope.get("route_name", "?"), type(exc).__name__,
                          exc_info=exc)  # fmt: skip
                return await message(
                    _("Something went wrong"),
                    _("Nothing was changed. Please try again in a moment."),
                    500,
                    caller,
                )

        return route

    # --- getting in -----------------------------------------------------------------------

    async def shell(request: Request) -> Response:
        guard.anonymous(rt)
        if request.cookies.get(guard.COOKIE):
            try:
                await guard.identify(request, rt)
                return RedirectResponse("/app/patients", status_code=303)
            except Refused:
                pass
        return await show(None, "shell.html")

    async def signin_page(request: Request) -> Response:
        # A GET only shows a button: link previews and prefetchers must not use the link up.
        guard.anonymous(rt)
        token = request.query_params.get("token", "")
        return await show(None, "signin.html", token=token)

    async def signin_post(request: Request) -> Response:
        guard.anonymous(rt)
        form = await request.form()
        token = form.get("token")
        if not guard.same_origin(request) or not isinstance(token, str) or not token:
            return await message(_("Sign-in failed"), _(signin.LINK_GONE), 400)
        try:
            async with rt.sessions() as session, session.begin():
                started = await signin.redeem_link(session, token=token, now=rt.clock.now())
        except signin.SignedOut as exc:
            return await message(_("Sign-in failed"), exc.message, 400)
        response = RedirectResponse("/app/patients", status_code=303)
        response.set_cookie(
            guard.COOKIE,
            started.token,
            max_age=int(signin.LONGEST.total_seconds()),
            path="/app",
            httponly=True,
            samesite="strict",
            secure=not guard.loopback(request),
        )
        return response

    async def signout(request: Request, caller: Caller) -> Response:
        if caller.session_token is not None:
            async with rt.sessions() as session, session.begin():
                await signin.sign_out(session, token=caller.session_token, now=rt.clock.now())
        response = await message(_("Signed out"), _("You are signed out of the workspace."), 200)
        response.delete_cookie(guard.COOKIE, path="/app")
        return response

    # --- patients ---------------------------------------------------------------------------

    async def patients(request: Request, caller: Caller) -> Response:
        sort = request.query_params.get("sort", "alerts")
        sort = sort if sort in SORTS else "alerts"
        status = request.query_params.get("status", "")
        async with rt.sessions() as session, session.begin():
            rows = await roster.roster(
                session,
                therapist_id=caller.therapist_id,
                content=rt.content,
                cipher=rt.cipher,
                now=rt.clock.now(),
            )
        if status:
            rows = [r for r in rows if r.summary.status.value == status]
        far = datetime.max.replace(tzinfo=rt.clock.now().tzinfo)
        keys: dict[str, Callable[[roster.RosterRow], Any]] = {
            "alerts": lambda r: (-r.open_alerts, r.summary.pseudonym.lower()),
            "pseudonym": lambda r: r.summary.pseudonym.lower(),
            "next": lambda r: (r.summary.next_prompt or far, r.summary.pseudonym.lower()),
            "unanswered": lambda r: (-r.summary.unanswered, r.summary.pseudonym.lower()),
            "score": lambda r: (-(r.score.total if r.score else -1), r.summary.pseudonym.lower()),
        }
        rows.sort(key=keys[sort])
        return await show(
            caller,
            "patients.html",
            section="patients",
            rows=rows,
            sort=sort,
            status_filter=status,
            columns=[
                (k, _(SORTS[k])) for k in ("pseudonym", "alerts", "next", "unanswered", "score")
            ],
            caption=_(SORTED[sort]),
            statuses=[(s.value, _(chat_console.STATUS[s])) for s in SHOWN_STATUSES],
        )

    async def patient_page(
        caller: Caller,
        patient_id: int,
        *,
        notice: str | None = None,
        kind: str = "ok",
        status: int = 200,
        plan_form: dict[str, Any] | None = None,
        add_form: dict[str, str] | None = None,
    ) -> Response:
        now = rt.clock.now()
        async with rt.sessions() as session, session.begin():
            card = await console.patient_card(
                session, therapist_id=caller.therapist_id, patient_id=patient_id, now=now,
                content=rt.content, cipher=rt.cipher,
            )  # fmt: skip
            listing = await course.list_sessions(
                session, therapist_id=caller.therapist_id, patient_id=patient_id, now=now
            )
            shown = await console.schedule_by_id(
                session, therapist_id=caller.therapist_id, patient_id=patient_id,
                cipher=rt.cipher, now=now,
            )  # fmt: skip
            _total, answers = await replies.read_replies(
                session, therapist_id=caller.therapist_id, pseudonym=card.pseudonym,
                limit=REPLIES_SHOWN, content=rt.content, cipher=rt.cipher, now=now,
            )  # fmt: skip
            trend = await trends.trend_data(
                session, therapist_id=caller.therapist_id, pseudonym=card.pseudonym,
                content=rt.content, cipher=rt.cipher, now=now,
            )  # fmt: skip
            open_alerts = await alerts.open_for(
                session, therapist_id=caller.therapist_id, content=rt.content,
                cipher=rt.cipher, now=now, patient_id=patient_id,
            )  # fmt: skip
            mine = await own_templates.names(session, therapist_id=caller.therapist_id)
        zone = ZoneInfo(card.timezone or "UTC")
        soon = (now + timedelta(days=7)).astimezone(zone)
        return await show(
            caller,
            "patient.html",
            status=status,
            section="patients",
            card=card,
            sessions=listing,
            schedule=shown,
            replies=answers,
            trend=trend,
            alerts=open_alerts,
            notice=notice,
            notice_kind=kind,
            template_names=[*sorted(rt.content.templates), *mine],
            prompt_keys=sorted(rt.content.prompts),
            plan_form=plan_form
            or {
                "date": f"{soon:%Y-%m-%d}",
                "time": "10:00",
                "template": card.default_template or sessions.DEFAULT_TEMPLATE,
                "confirm": False,
            },
            add_form=add_form or {"offset": "", "what": ""},
        )

    def _patient_id(request: Request) -> int:
        return int(request.path_params["patient_id"])

    async def patient(request: Request, caller: Caller) -> Response:
        return await patient_page(caller, _patient_id(request))

    async def chart(request: Request, caller: Caller) -> Response:
        async with rt.sessions() as session, session.begin():
            card = await console.patient_card(
                session, therapist_id=caller.therapist_id, patient_id=_patient_id(request),
                now=rt.clock.now(),
            )  # fmt: skip
            data = await trends.trend_data(
                session, therapist_id=caller.therapist_id, pseudonym=card.pseudonym,
                content=rt.content, cipher=rt.cipher, now=rt.clock.now(),
            )  # fmt: skip
        svg = trend_svg(data)
        return Response(
            svg, media_type="image/svg+xml", headers={"Content-Security-Policy": guard.SVG_CSP}
        )

    async def _form(request: Request) -> FormData:
        return await request.form()

    def _text(form: FormData, name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def _int(form: FormData, name: str) -> int | None:
        value = _text(form, name)
        return int(value) if value.lstrip("-").isdigit() else None

    async def act(
        caller: Caller, patient_id: int, change: Callable[[Any], Awaitable[str]],
        *, why: str | None = None, **forms: Any,
    ) -> Response:  # fmt: skip
        """Run one change in its own transaction; show the patient page with what happened,
        or with why nothing did."""
        try:
            async with rt.sessions() as session, session.begin():
                note = await change(session)
        except NotFound:
            raise
        except UserError as exc:
            if isinstance(exc, sessions.NeedsConfirmation) and "plan_form" in forms:
                # Most of a back-dated session's prompts are too late: offer "Log it anyway".
                forms["plan_form"] = {**forms["plan_form"], "confirm": True}
            return await patient_page(caller, patient_id, notice=exc.message, kind="error",
                                      status=400, **forms)  # fmt: skip
        if why is not None:
            kick(why)
        return await patient_page(caller, patient_id, notice=note)

    async def delivery_action(request: Request, caller: Caller) -> Response:
        patient_id = _patient_id(request)
        delivery_id = int(request.path_params["delivery_id"])
        verb = request.path_params["verb"]
        if verb not in DELIVERY_VERBS:
            raise NotFound(_("There is no such action."))
        form = await _form(request)
        version = _int(form, "version")
        now = rt.clock.now()
        simple = {
            "skip": schedule_edits.skip,
            "send": schedule_edits.send_now,
            "again": schedule_edits.send_again,
        }

        deferred = False

        async def change(session: Any) -> str:
            if verb in simple:
                changed = await simple[verb](
                    session, therapist_id=caller.therapist_id, delivery_id=delivery_id,
                    version=version, now=now,
                )  # fmt: skip
            else:
                changed = await schedule_edits.postpone(
                    session, therapist_id=caller.therapist_id, delivery_id=delivery_id,
                    version=version, how=schedule_edits.Postpone(verb), now=now,
                )  # fmt: skip
            if changed.patient_id != patient_id:  # another of theirs: undone with the rest
                raise NotFound(_("There is no such prompt."))
            nonlocal deferred
            deferred = changed.deferred
            return chat_console.changed_note(verb, changed)

        sends = verb in ("send", "again")
        response = await act(caller, patient_id, change, why=None)
        if sends and not deferred and response.status_code == 200:
            kick("workspace")
        return response

    async def plan_session(request: Request, caller: Caller) -> Response:
        patient_id = _patient_id(request)
        form = await _form(request)
        plan_form = {
            "date": _text(form, "date"),
            "time": _text(form, "time"),
            "template": _text(form, "template"),
            "confirm": False,
        }
        confirmed = _text(form, "confirmed") == "1"

        async def change(session: Any) -> str:
            local_start = sessions.parse_local_time(f"{plan_form['date']} {plan_form['time']}")
            plan = await sessions.log_session(
                session, therapist_id=caller.therapist_id, patient_id=patient_id,
                local_start=local_start, template_name=str(plan_form["template"]) or None,
                content=rt.content, grace=settings.misfire_grace, now=rt.clock.now(),
                confirmed=confirmed,
            )  # fmt: skip
            return web.plain(chat.session_planned(plan))

        return await act(caller, patient_id, change, why="session", plan_form=plan_form)

    async def move_session(request: Request, caller: Caller) -> Response:
        patient_id = _patient_id(request)
        form = await _form(request)
        shift = _text(form, "shift")
        if shift not in course.SHIFTS:
            raise UserError(_("Choose one of the offered moves."))

        async def change(session: Any) -> str:
            moved = await course.move_session(
                session, therapist_id=caller.therapist_id,
                session_id=int(request.path_params["session_id"]), shift=shift,
                now=rt.clock.now(), grace=settings.misfire_grace, seen=_int(form, "seen"),
            )  # fmt: skip
            if moved.patient_id != patient_id:
                raise NotFound(_("There is no such session."))
            return web.plain(chat_course.moved_note(moved))

        return await act(caller, patient_id, change, why="session")

    async def cancel_session(request: Request, caller: Caller) -> Response:
        patient_id = _patient_id(request)
        form = await _form(request)

        async def change(session: Any) -> str:
            cancelled = await course.cancel_session(
                session, therapist_id=caller.therapist_id,
                session_id=int(request.path_params["session_id"]), now=rt.clock.now(),
                seen=_int(form, "seen"),
            )  # fmt: skip
            if cancelled.patient_id != patient_id:
                raise NotFound(_("There is no such session."))
            return web.plain(chat_course.cancelled_note(cancelled))

        return await act(caller, patient_id, change)

    async def add_prompt(request: Request, caller: Caller) -> Response:
        patient_id = _patient_id(request)
        form = await _form(request)
        add_form = {"offset": _text(form, "offset"), "what": _text(form, "what")}

        async def change(session: Any) -> str:
            card = await console.patient_card(
                session, therapist_id=caller.therapist_id, patient_id=patient_id,
                now=rt.clock.now(),
            )  # fmt: skip
            result = await schedule_edits.add_prompt(
                session, therapist_id=caller.therapist_id, pseudonym=card.pseudonym,
                offset_text=add_form["offset"], what=add_form["what"], content=rt.content,
                cipher=rt.cipher, now=rt.clock.now(),
            )  # fmt: skip
            return web.plain(chat_console.added(result))

        return await act(caller, patient_id, change, why="workspace", add_form=add_form)

    async def pause_or_resume(request: Request, caller: Caller) -> Response:
        patient_id = _patient_id(request)
        resume = request.url.path.endswith("/resume")

        async def change(session: Any) -> str:
            found = await session.get(Patient, patient_id)
            if found is None or found.therapist_id != caller.therapist_id:
                raise NotFound(_("There is no such patient."))
            if resume:
                outcome = await console.resume(
                    session, therapist_id=caller.therapist_id, patient=found,
                    grace=settings.misfire_grace, now=rt.clock.now(),
                )  # fmt: skip
                return web.plain(chat_console.resumed(outcome))
            paused = await console.pause(
                session, therapist_id=caller.therapist_id, patient=found, now=rt.clock.now()
            )
            return web.plain(chat_console.paused(paused))

        return await act(caller, patient_id, change, why="workspace" if resume else None)

    # --- alerts ------------------------------------------------------------------------------

    async def alert_list(request: Request, caller: Caller, notice: str | None = None) -> Response:
        async with rt.sessions() as session, session.begin():
            shown = await alerts.open_for(
                session, therapist_id=caller.therapist_id, content=rt.content,
                cipher=rt.cipher, now=rt.clock.now(),
            )  # fmt: skip
        return await show(caller, "alerts.html", section="alerts", alerts=shown, notice=notice)

    async def acknowledge(request: Request, caller: Caller) -> Response:
        form = await _form(request)
        alert_id = int(request.path_params["alert_id"])
        async with rt.sessions() as session, session.begin():
            therapist = await session.get(Therapist, caller.therapist_id)
            alert = await session.get(Alert, alert_id)
            patient = await session.get(Patient, alert.patient_id) if alert else None
            if therapist is None or patient is None or patient.therapist_id != therapist.id:
                raise NotFound(_("This alert no longer exists."))
            done = await alerts.acknowledge(
                session, alert_id=alert_id, user_id=therapist.telegram_user_id or 0,
                chat_id=therapist.chat_id or 0, oncall_chat_id=None, now=rt.clock.now(),
            )  # fmt: skip
        when = chat.local(done.at, settings.clinic_timezone)
        note = web.plain(rt.crisis.acknowledged.format(who=chat.esc(done.by_name), time=when))
        back = _text(form, "back")
        if back == f"/app/patients/{patient.id}":
            return await patient_page(caller, patient.id, notice=note)
        return await alert_list(request, caller, notice=note)

    # --- templates -------------------------------------------------------------------------

    async def template_list(request: Request, caller: Caller) -> Response:
        async with rt.sessions() as session:
            own = await own_templates.list_own(session, therapist_id=caller.therapist_id)
        rows = [
            {"id": t.id, "name": t.name, "steps": len(own_templates.from_yaml(t.body).steps)}
            for t in own
        ]
        library = [rt.content.templates[n] for n in sorted(rt.content.templates)]
        return await show(caller, "templates.html", section="templates", own=rows, library=library)

    async def template_copy(request: Request, caller: Caller) -> Response:
        form = await _form(request)
        source = _text(form, "source")
        kind, _sep, ref = source.partition(":")
        async with rt.sessions() as session, session.begin():
            if kind == "lib":
                row = await own_templates.copy_library(
                    session, therapist_id=caller.therapist_id, source=ref,
                    library=rt.content, now=rt.clock.now(),
                )  # fmt: skip
            elif kind == "own" and ref.isdigit():
                row = await own_templates.copy_own(
                    session, therapist_id=caller.therapist_id, template_id=int(ref),
                    library=rt.content, now=rt.clock.now(),
                )  # fmt: skip
            else:
                raise UserError(_("Choose a template to copy."))
            template_id = row.id
        # To the editor's own address, so a reload shows it rather than copying again.
        return RedirectResponse(f"/app/templates/{template_id}", status_code=303)

    def _preview_form(form: FormData | None) -> dict[str, str]:
        zone = (_text(form, "preview_zone") if form else "") or settings.clinic_timezone
        start = rt.clock.now().astimezone(ZoneInfo(settings.clinic_timezone)) + timedelta(days=7)
        return {
            "date": (_text(form, "preview_date") if form else "") or f"{start:%Y-%m-%d}",
            "time": (_text(form, "preview_time") if form else "") or "10:00",
            "zone": zone,
        }

    def _preview(checked: own_templates.Checked, form: dict[str, str]) -> dict[str, Any]:
        if checked.template is None:
            return {"preview_problems": [str(p) for p in checked.problems], "preview_lines": []}
        zone_name = resolve_zone(form["zone"])
        if zone_name is None:
            unknown = _("“{zone}” is not a time zone I know.").format(zone=form["zone"])
            return {"preview_problems": [unknown], "preview_lines": []}
        try:
            local_start = sessions.parse_local_time(f"{form['date']} {form['time']}")
        except UserError as exc:
            return {"preview_problems": [exc.message], "preview_lines": []}
        form["zone"] = zone_name
        quiet = console.QUIET_PRESETS[0]
        lines = own_templates.preview(
            checked.template, rt.content, local_start=local_start, zone=ZoneInfo(zone_name),
            quiet=quiet,
        )  # fmt: skip
        return {
            "preview_problems": [],
            "preview_lines": lines,
            "preview_quiet": chat_console.quiet_text(quiet),
        }

    async def editor(
        caller: Caller, template_id: int, draft: own_templates.Draft, *,
        notice: str | None = None, problems: list[str] | None = None,
        problem_steps: set[int] | None = None, status: int = 200,
        preview_form: dict[str, str] | None = None,
    ) -> Response:  # fmt: skip
        form = preview_form or _preview_form(None)
        checked = own_templates.check(draft, rt.content)
        return await show(
            caller, "template_edit.html", status=status, section="templates",
            template_id=template_id, draft=draft, rows=draft.steps, notice=notice,
            problems=problems, problem_steps=problem_steps or set(),
            keys=sorted([*rt.content.prompts, *rt.content.questionnaires]),
            preview_form=form, **_preview(checked, form),
        )  # fmt: skip

    def _draft(form: FormData) -> own_templates.Draft:
        columns = ["kind", "key", "offset", "every", "count", "remind", "expires"]
        values = {c: [v if isinstance(v, str) else "" for v in form.getlist(c)] for c in columns}
        rows = []
        for i, kind in enumerate(values["kind"]):
            if kind == "remove":
                continue
            cell = {c: (values[c][i] if i < len(values[c]) else "").strip() for c in columns}
            if not any(cell[c] for c in columns if c != "kind"):
                continue  # an empty row added and left empty
            rows.append(
                own_templates.StepRow(
                    key=cell["key"],
                    offset=cell["offset"],
                    questionnaire=kind == "questionnaire",
                    every=cell["every"],
                    count=cell["count"],
                    remind=cell["remind"],
                    expires=cell["expires"],
                )
            )
        if _text(form, "add_step"):
            rows.append(own_templates.StepRow(key="", offset=""))
        return own_templates.Draft(_text(form, "name"), _text(form, "description"), tuple(rows))

    async def template_edit(request: Request, caller: Caller) -> Response:
        template_id = int(request.path_params["template_id"])
        async with rt.sessions() as session:
            row = await own_templates.own(
                session, therapist_id=caller.therapist_id, template_id=template_id
            )
        return await editor(caller, template_id, own_templates.from_yaml(row.body))

    async def template_save(request: Request, caller: Caller) -> Response:
        template_id = int(request.path_params["template_id"])
        form = await _form(request)
        draft = _draft(form)
        if _text(form, "add_step"):
            return await editor(caller, template_id, draft, preview_form=_preview_form(form))
        try:
            async with rt.sessions() as session, session.begin():
                await own_templates.save(
                    session, therapist_id=caller.therapist_id, draft=draft, library=rt.content,
                    now=rt.clock.now(), template_id=template_id,
                )  # fmt: skip
        except own_templates.TemplateProblems as exc:
            checked = exc.checked
            steps = {s for p in checked.problems if (s := checked.step_of(p)) is not None}
            return await editor(
                caller, template_id, draft, problems=[str(p) for p in checked.problems],
                problem_steps=steps, status=400, preview_form=_preview_form(form),
            )  # fmt: skip
        except NotFound:
            raise
        except UserError as exc:
            return await editor(caller, template_id, draft, problems=[exc.message], status=400)
        return await editor(
            caller, template_id, draft, notice=_("Saved “{name}”.").format(name=draft.name),
            preview_form=_preview_form(form),
        )  # fmt: skip

    async def template_preview(request: Request, caller: Caller) -> Response:
        form = await _form(request)
        preview_form = _preview_form(form)
        checked = own_templates.check(_draft(form), rt.content)
        body = web.page("_preview.html", preview_form=preview_form,
                        **_preview(checked, preview_form))  # fmt: skip
        return _html(body)

    async def template_export(request: Request, caller: Caller) -> Response:
        async with rt.sessions() as session:
            row = await own_templates.own(
                session,
                therapist_id=caller.therapist_id,
                template_id=int(request.path_params["template_id"]),
            )
        return PlainTextResponse(
            row.body,
            media_type="application/yaml",
            headers={"Content-Disposition": _attachment(f"{row.name}.yaml")},
        )

    # --- static files ------------------------------------------------------------------------

    async def static(request: Request) -> Response:
        asset = web.ASSETS.get(request.path_params["name"])
        if asset is None:
            return PlainTextResponse("not found", status_code=404)  # not shown: a missing asset
        fresh = request.query_params.get("v") == asset.version
        return Response(
            asset.body,
            media_type=asset.media_type,
            headers={
                "Cache-Control": FOREVER if fresh else "no-cache",
                "ETag": f'"{asset.version}"',
            },
        )

    g = guarded
    return [
        Route("/app", shell),
        Route("/app/", shell),
        Route("/app/signin", signin_page, methods=["GET"]),
        Route("/app/signin", signin_post, methods=["POST"]),
        Route("/app/signout", g(signout), methods=["POST"]),
        Route("/app/static/{name}", static),
        Route("/app/patients", g(patients)),
        Route("/app/patients/{patient_id:int}", g(patient)),
        Route("/app/patients/{patient_id:int}/chart.svg", g(chart)),
        Route(
            "/app/patients/{patient_id:int}/deliveries/{delivery_id:int}/{verb}",
            g(delivery_action),
            methods=["POST"],
        ),
        Route("/app/patients/{patient_id:int}/sessions", g(plan_session), methods=["POST"]),
        Route(
            "/app/patients/{patient_id:int}/sessions/{session_id:int}/move",
            g(move_session),
            methods=["POST"],
        ),
        Route(
            "/app/patients/{patient_id:int}/sessions/{session_id:int}/cancel",
            g(cancel_session),
            methods=["POST"],
        ),
        Route("/app/patients/{patient_id:int}/add", g(add_prompt), methods=["POST"]),
        Route("/app/patients/{patient_id:int}/pause", g(pause_or_resume), methods=["POST"]),
        Route("/app/patients/{patient_id:int}/resume", g(pause_or_resume), methods=["POST"]),
        Route("/app/alerts", g(alert_list)),
        Route("/app/alerts/{alert_id:int}/ack", g(acknowledge), methods=["POST"]),
        Route("/app/templates", g(template_list)),
        Route("/app/templates/copy", g(template_copy), methods=["POST"]),
        Route("/app/templates/preview", g(template_preview), methods=["POST"]),
        Route("/app/templates/{template_id:int}", g(template_edit), methods=["GET"]),
        Route("/app/templates/{template_id:int}", g(template_save), methods=["POST"]),
        Route("/app/templates/{template_id:int}/export", g(template_export)),
    ]
