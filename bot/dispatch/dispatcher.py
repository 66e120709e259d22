"""The only sender of scheduled messages: claim due deliveries, send them, record the outcome.

Each send is bracketed by two commits — `sending` before the API call, `sent` with Telegram's
message id after it — so a crash in between leaves a `sending` row that `recover()` turns into
`unknown` instead of sending it again (prompts are at-most-once).
"""

from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.db.models import Delivery, DeliveryState, Patient, PatientStatus, PromptKind
from bot.domain import schedule
from bot.handlers import render
from bot.handlers.callbacks import CallbackCodec
from bot.runtime import Runtime
from bot.services.sessions import quiet_hours

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
HOLD_STATES = (PatientStatus.PAUSED, PatientStatus.UNREACHABLE)


@dataclass
class TickReport:
    sent: int = 0
    missed: int = 0
    deferred: int = 0
    held: int = 0
    cancelled: int = 0
    failed: int = 0
    unknown: int = 0
    retry: int = 0
    claimed: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    chat_id: int
    text: str
    kind: str
    prompt_key: str | None


class Dispatcher:
    def __init__(self, rt: Runtime, bot: Bot, codec: CallbackCodec, batch: int = 200) -> None:
        self.rt = rt
        self.bot = bot
        self.codec = codec
        self.batch = batch
        self._lock = asyncio.Lock()  # ticks never overlap within one process

    async def recover(self) -> int:
        """After a crash: `sending` rows whose lease ran out have an unknowable outcome."""
        now = self.rt.clock.now()
        async with self.rt.sessions() as session, session.begin():
            result = await session.execute(
                update(Delivery)
                .where(
                    Delivery.state == DeliveryState.SENDING,
                    (Delivery.lease_until.is_(None)) | (Delivery.lease_until <= now),
                )
                .values(
                    state=DeliveryState.UNKNOWN,
                    last_error="outcome unknown: interrupted while sending",
                    updated_at=now,
                )
            )
        count = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if count:
            log.warning("marked %d interrupted deliveries as unknown", count)
        return count

    async def tick(self) -> TickReport:
        async with self._lock:
            report = TickReport()
            jobs = await self._claim(report)
            for job in jobs:
                await self._send(job, report)
            await self._close_reflections()
            return report

    async def _claim(self, report: TickReport) -> list[_Job]:
        rt = self.rt
        now = rt.clock.now()
        grace = rt.settings.misfire_grace
        jobs: list[_Job] = []
        async with rt.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(Delivery, Patient)
                    .join(Patient, Patient.id == Delivery.patient_id)
                    .where(Delivery.state == DeliveryState.SCHEDULED, Delivery.due_at <= now)
                    .order_by(Delivery.due_at, Delivery.id)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True, of=Delivery)
                )
            ).all()
            for delivery, patient in rows:
                if patient.status in HOLD_STATES:
                    delivery.state = DeliveryState.HELD
                    report.held += 1
                elif patient.status is not PatientStatus.ACTIVE or patient.chat_id is None:
                    delivery.state = DeliveryState.CANCELLED
                    report.cancelled += 1
                else:
                    tz = ZoneInfo(patient.timezone or "UTC")
                    decision = schedule.decide(
                        delivery.due_at, now, grace, tz, quiet_hours(patient)
                    )
                    if decision.action is schedule.Action.MISS:
                        delivery.state = DeliveryState.MISSED
                        report.missed += 1
                    elif decision.action is schedule.Action.DEFER:
                        assert decision.until is not None
                        delivery.due_at = decision.until
                        report.deferred += 1
                    elif decision.action is schedule.Action.SEND:
                        delivery.state = DeliveryState.SENDING
                        delivery.claimed_by = rt.instance
                        delivery.lease_until = now + LEASE
                        delivery.attempts += 1
                        jobs.append(
                            _Job(
                                delivery.id,
                                patient.chat_id,
                                self._text(delivery),
                                delivery.kind.value,
                                delivery.prompt_key,
                            )
                        )
                delivery.updated_at = now
        report.claimed = [job.delivery_id for job in jobs]
        return jobs

    def _text(self, delivery: Delivery) -> str:
        if delivery.custom_text_enc is not None:
            return html.escape(self.rt.cipher.decrypt(delivery.custom_text_enc), quote=False)
        prompt = self.rt.content.prompt(delivery.prompt_key or "")
        text = prompt.text.strip()
        if delivery.kind is PromptKind.CHECKIN:
            text += render.checkin_scale_legend(prompt)
        return text

    async def _send(self, job: _Job, report: TickReport) -> None:
        prompt = self.rt.content.prompts.get(job.prompt_key or "")
        text, markup = render.prompt_message(
            prompt, job.text, job.kind, job.delivery_id, self.codec
        )
        values: dict[str, object]
        try:
            message = await self.bot.send_message(
                job.chat_id,
                text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                protect_content=True,
            )
        except RetryAfter as exc:
            # Telegram refused before sending: safe to try again at the next tick.
            values = {
                "state": DeliveryState.SCHEDULED,
                "last_error": f"rate limited {exc.retry_after}",
            }
            report.retry += 1
        except Forbidden:
            values = {"state": DeliveryState.FAILED, "last_error": "forbidden: bot blocked"}
            report.failed += 1
        except BadRequest as exc:
            values = {
                "state": DeliveryState.FAILED,
                "last_error": f"bad request: {exc.message}"[:300],
            }
            report.failed += 1
        except (NetworkError, TelegramError) as exc:
            # The request may or may not have reached Telegram: never re-send silently.
            values = {"state": DeliveryState.UNKNOWN, "last_error": type(exc).__name__}
            report.unknown += 1
        else:
            values = {
                "state": DeliveryState.SENT,
                "sent_at": self.rt.clock.now(),
                "telegram_message_id": message.message_id,
                "last_error": None,
            }
            report.sent += 1
        async with self.rt.sessions() as session, session.begin():
            await session.execute(
                update(Delivery)
                .where(Delivery.id == job.delivery_id, Delivery.state == DeliveryState.SENDING)
                .values(claimed_by=None, lease_until=None, updated_at=self.rt.clock.now(), **values)
            )

    async def _close_reflections(self) -> None:
        """Reflections stop taking answers after AFTERGLOW_ANSWER_WINDOW."""
        now = self.rt.clock.now()
        async with self.rt.sessions() as session, session.begin():
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.kind == PromptKind.REFLECTION,
                    Delivery.state.in_([DeliveryState.SENT, DeliveryState.ANSWERED]),
                    Delivery.closed_at.is_(None),
                    Delivery.sent_at < now - self.rt.settings.answer_window,
                )
                .values(closed_at=now)
            )
