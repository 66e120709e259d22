"""The HTTP side: Telegram's webhook, /healthz, /readyz, /metrics and the therapist workspace
under /app (Starlette; the workspace is bot/workspace/)."""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from telegram import Update

from bot import metrics
from bot.db.models import Delivery
from bot.dispatch.dispatcher import Dispatcher
from bot.dispatch.leader import Leadership
from bot.runtime import Runtime
from bot.workspace.guard import SecurityHeaders
from bot.workspace.routes import build_routes as workspace_routes

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


def build_web(app: Any, rt: Runtime, leadership: Leadership) -> Starlette:
    """`app` is the PTB Application; updates from the webhook are handled before the answer."""
    dispatcher: Dispatcher = app.bot_data["dispatcher"]

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    def authorised(request: Request) -> bool:
        """With AFTERGLOW_METRICS_TOKEN set, the counters (crisis alerts among them) and the
        readiness details need `Authorization: Bearer <token>`."""
        token = rt.settings.metrics_token
        if token is None:
            return True
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())

    async def readyz(request: Request) -> Response:
        problems: list[str] = []
        try:
            async with rt.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"; the type is enough
            problems.append(f"database: {type(exc).__name__}")
        stale_after = 3 * rt.settings.dispatch_interval + 5
        if leadership.is_leader and (
            dispatcher.last_tick is None or time.monotonic() - dispatcher.last_tick > stale_after
        ):
            problems.append("dispatcher: no tick recently")
        status = 503 if problems else 200
        if not authorised(request):
            # A load balancer still learns ready or not; which replica leads and why it is
            # not ready stay behind the token.
            return JSONResponse({"ready": not problems}, status_code=status)
        body = {"ready": not problems, "leader": leadership.is_leader, "problems": problems}
        return JSONResponse(body, status_code=status)

    async def metrics_endpoint(request: Request) -> Response:
        if not authorised(request):
            return PlainTextResponse(
                "unauthorised", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        try:
            async with rt.sessions() as session:
                rows = await session.execute(
                    select(Delivery.state, func.count()).group_by(Delivery.state)
                )
                for state, count in rows.all():
                    metrics.DELIVERIES_BY_STATE.labels(state=state.value).set(count)
        except Exception as exc:  # metrics must still answer with what the process knows
            log.warning("metrics: delivery counts unavailable: %s", type(exc).__name__)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def webhook(request: Request) -> Response:
        expected = rt.settings.webhook_secret or ""
        given = request.headers.get(SECRET_HEADER, "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return PlainTextResponse("forbidden", status_code=403)
        try:
            data = json.loads(await request.body())
            update = Update.de_json(data, app.bot)
        except (ValueError, TypeError, KeyError):
            return PlainTextResponse("bad update", status_code=400)
        # Answer once the update is handled, not once it is queued: if this process dies in
        # between, Telegram delivers the update again and the update-id guard keeps the repeat
        # from doubling anything. The update processor keeps each chat's updates in order.
        try:
            await app.update_processor.process_update(update, app.process_update(update))
        except Exception as exc:  # handler errors go to the error handler; this is the rest
            log.error("webhook update %s failed: %s", update.update_id, type(exc).__name__)
            return PlainTextResponse("error", status_code=500)
        return PlainTextResponse("ok")

    def kick(why: str) -> None:
        """A workspace change made something due now: the leader's dispatcher looks at once
        (a follower's is stopped and leaves it to the next tick of the leader)."""
        if dispatcher.stopping or not app.running:
            return
        app.create_task(dispatcher.tick(), name=f"dispatch-after-{why}")

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route(WEBHOOK_PATH, webhook, methods=["POST"]),
            *workspace_routes(rt, kick),
        ],
        middleware=[Middleware(SecurityHeaders)],
    )
