"""The only sender of scheduled messages: claim due deliveries, send them, record the outcome.

A tick claims a batch of due rows with a short lease (they stay `scheduled`), then sends them
at most `IN_FLIGHT` at a time. Each send is bracketed by two commits — `sending` once the rate
limiter has admitted the request, right before it leaves (its `before_send` hook, see
bot.telegram.ratelimit), and `sent` with Telegram's message id after it. A row waiting for its
turn in the limiter is still `scheduled`, so a crash leaves `sending` only the rows whose
request may really have left (at most `IN_FLIGHT`, at Telegram's pace rarely more than one);
`recover()` turns those into `unknown` instead of sending them again (prompts are
at-most-once), and claimed rows not yet marked are simply claimed again once their lease runs
out. The marks and outcomes of concurrent sends share transactions (`Ledger`).

A transient failure is retried after an exponential backoff, and never before Telegram's own
`retry_after` on a 429; after `MAX_ATTEMPTS` tries the delivery fails visibly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from telegram import Bot, ForceReply, InlineKeyboardMarkup
from telegram.error import RetryAfter

from bot import i18n, metrics
from bot.db import identity
from bot.db.crypto import CryptoKeyError
from bot.db.models import Delivery, DeliveryState, Patient, PatientStatus, PromptKind
from bot.dispatch import claims, reminders, staff
from bot.dispatch.alerting import Alerter
from bot.dispatch.ledger import Ledger, SendResult, record_outcomes
from bot.domain import answers, languages, schedule
from bot.domain.answers import AnswerPolicy
from bot.domain.content import DEFAULT_LANGUAGE
from bot.runtime import Runtime
from bot.services import brief, course, disclosures, participation, reachability
from bot.services.sessions import quiet_hours, zone_of
from bot.telegram.outcomes import Outcome, classify
from bot.telegram.ratelimit import Withdrawn, retry_after_seconds
from bot.telegram.sending import notify, send_html
from bot.views import brief as brief_view
from bot.views import questionnaires as questionnaire_view
from bot.views import render
from bot.views.callbacks import CallbackCodec

log = logging.getLogger(__name__)

# Why a delivery failed, as recorded on it for the operator: not texts a person is sent.
PROMPT_GONE = "prompt no longer in the content library"  # not shown: recorded
UNREADABLE = "stored text cannot be decrypted with the configured keys"  # not shown: recorded


# A claimed row that nobody marked `sending` within CLAIM_LEASE is free to claim again (a crash,
# a 429 pause, a long wait in the limiter): marking requires our own live claim, so an expired
# claim never causes a resend.
CLAIM_LEASE = timedelta(seconds=30)
# A `sending` row outlives any API call (timeouts, the limiter's 429 retries) by far before it
# counts as interrupted.
LEASE = timedelta(minutes=2)
HOLD_STATES = (PatientStatus.PAUSED, PatientStatus.UNREACHABLE)
MAX_ATTEMPTS = 6
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(minutes=30)
IN_FLIGHT = 16  # concurrent sends; the rate limiter paces them


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """Exponential with ±50 % jitter so retries from many deliveries don't arrive together."""
    base: timedelta = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return timedelta(seconds=base.total_seconds() * rng.uniform(0.5, 1.5))


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
    nudged: int = 0
    anchored: list[int] = field(default_factory=list)  # planned sessions that started
    briefed: int = 0  # pre-session briefs sent
    commits: int = 0  # transactions the sends' marks and outcomes took (group-committed)
    claimed: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    patient_id: int
    chat_id: int
    text: str
    kind: str
    prompt_key: str | None
    due_at: datetime
    attempts: int
    answers: AnswerPolicy  # when it is reminded and stops taking answers, once sent
    language: str = DEFAULT_LANGUAGE  # the patient's: which translation of the prompt


class Dispatcher:
    def __init__(
        self,
        rt: Runtime,
        bot: Bot,
        codec: CallbackCodec,
        batch: int = 200,
        alerter: Alerter | None = None,
    ) -> None:
        self.rt = rt
        self.alerter = alerter
        self.bot = bot
        self.codec = codec
        self.batch = batch
        self.last_tick: float | None = None  # monotonic; /readyz checks the dispatcher lives
        # Set on shutdown: finish the batch already claimed (those rows are `sending`), but
        # claim no more, so SIGTERM does not wait for a whole burst.
        self.stopping = False
        self._lock = asyncio.Lock()  # ticks never overlap within one process
        self._rng = random.Random()  # noqa: S311 - jitter, not security

    async def recover(self, *, startup: bool = False) -> int:
        """`sending` rows whose lease ran out (a crash, a killed replica) have an unknowable
        outcome: they become `unknown` and are shown to the therapist, never re-sent.

        At start-up on SQLite — one replica by definition — every `sending` row and every
        claim is from a previous life of this process, so nobody waits for leases to run out."""
        single = startup and self.rt.engine.dialect.name == "sqlite"
        async with self.rt.sessions() as session, session.begin():
            count = await claims.recover(session, now=self.rt.clock.now(), single=single)
        if count:
            log.warning("marked %d interrupted deliveries as unknown", count)
        return count

    async def tick(self) -> TickReport:
        async with self._lock:
            report = TickReport()
            if self.alerter is not None:
                await self.alerter.tick()  # safety first: retries and escalations
            await self.recover()
            await self._end_breaks()
            report.anchored = await self._start_sessions()
            report.briefed = await self._brief()
            ledger = Ledger(
                self.rt.engine, instance=self.rt.instance, lease=LEASE, now=self.rt.clock.now
            )
            try:
                while True:
                    jobs = await self._claim(report)
                    await self._send_all(jobs, ledger, report)
                    if len(jobs) < self.batch or self.stopping:
                        break
            finally:
                await ledger.close()
            report.commits = ledger.commits
            report.nudged += await reminders.nudge(self.rt, self.bot, batch=self.batch)
            await reminders.close_answers(self.rt)
            self.last_tick = time.monotonic()
            metrics.DISPATCH_TICKS.inc()
            return report

    async def _send_all(self, jobs: list[_Job], ledger: Ledger, report: TickReport) -> None:
        semaphore = asyncio.Semaphore(IN_FLIGHT)
        marked: set[int] = set()

        async def send(chat_jobs: list[_Job]) -> None:
            # One chat's prompts go in order, one at a time; chats run side by side so a busy
            # chat's 1 msg/s pacing never holds the others back. A slot is held from before the
            # mark until the outcome is queued (see Ledger.record), so at most IN_FLIGHT rows
            # are ever `sending`.
            recorded: list[asyncio.Future[None]] = []
            try:
                async with semaphore:
                    for job in chat_jobs:
                        if self.stopping:
                            break  # SIGTERM: finish what is on the wire, claim nothing more
                        done = await self._send(job, report, ledger, marked)
                        if done is not None:
                            recorded.append(done)
            finally:
                outcomes = await asyncio.gather(*recorded, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome

        by_chat: dict[int, list[_Job]] = {}
        for job in jobs:
            by_chat.setdefault(job.chat_id, []).append(job)
        results = await asyncio.gather(
            *(send(chat_jobs) for chat_jobs in by_chat.values()), return_exceptions=True
        )
        await self._release([job.delivery_id for job in jobs if job.delivery_id not in marked])
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _release(self, delivery_ids: list[int]) -> None:
        """Claims not sent (shutdown, a failed commit) are free again at once, not in 30 s."""
        if not delivery_ids:
            return
        try:
            await claims.release(self.rt.engine, delivery_ids, instance=self.rt.instance)
        except Exception as exc:  # the claims run out by themselves
            log.warning("could not release %d claims: %s", len(delivery_ids), type(exc).__name__)

    async def _claim(self, report: TickReport) -> list[_Job]:
        rt = self.rt
        now = rt.clock.now()
        grace = rt.settings.misfire_grace
        jobs: list[_Job] = []
        async with rt.sessions() as session, session.begin():
            wanted: list[_Job] = []
            for delivery, patient in await claims.due(session, now=now, batch=self.batch):
                values, job = self._decide(delivery, patient, now, grace, report)
                if job is not None:
                    wanted.append(job)
                elif values:
                    await claims.settle(session, delivery.id, now=now, values=values)
            if wanted:
                ids = await claims.claim(
                    session,
                    [job.delivery_id for job in wanted],
                    instance=rt.instance,
                    now=now,
                    lease=CLAIM_LEASE,
                )
                jobs = [job for job in wanted if job.delivery_id in ids]
        report.claimed.extend(job.delivery_id for job in jobs)
        return jobs

    def _decide(
        self,
        delivery: Delivery,
        patient: Patient,
        now: datetime,
        grace: timedelta,
        report: TickReport,
    ) -> tuple[dict[str, object], _Job | None]:
        """What to do with one due row: the column changes, and the send job if any."""
        if patient.status in HOLD_STATES:
            report.held += 1
            return {"state": DeliveryState.HELD}, None
        if patient.status is not PatientStatus.ACTIVE or patient.telegram_enc is None:
            report.cancelled += 1
            return {"state": DeliveryState.CANCELLED}, None
        tz = zone_of(patient)
        decision = schedule.decide(delivery.due_at, now, grace, tz, quiet_hours(patient))
        if decision.action is schedule.Action.MISS:
            report.missed += 1
            return {"state": DeliveryState.MISSED}, None
        if decision.action is schedule.Action.DEFER:
            report.deferred += 1
            return {"due_at": decision.until}, None
        if decision.action is schedule.Action.WAIT:
            return {}, None
        try:
            language = self._language(patient, delivery)
            text = self._text(delivery, language)
            chat_id = identity.chat_of(patient, self.rt.cipher)
            assert chat_id is not None  # telegram_enc is set (checked above)
        except (KeyError, CryptoKeyError) as exc:
            # A prompt removed from the content, or text no key can read: this row fails
            # visibly; it must not stop every other patient's prompts.
            report.failed += 1
            reason = PROMPT_GONE if isinstance(exc, KeyError) else UNREADABLE
            return {"state": DeliveryState.FAILED, "last_error": reason}, None
        job = _Job(
            delivery.id,
            patient.id,
            chat_id,
            text,
            delivery.kind.value,
            delivery.prompt_key,
            delivery.due_at,
            delivery.attempts + 1,
            self._answers(delivery),
            language,
        )
        return {}, job  # claimed together with the rest of the batch

    def _language(self, patient: Patient, delivery: Delivery) -> str:
        """The patient's language, counted in /metrics when this prompt is not in it (it goes
        out in the default language: a missing translation never holds a step back)."""
        settings = self.rt.settings
        language = languages.effective(
            patient.language, settings.offered_languages, settings.default_language
        )
        key = delivery.prompt_key
        if (
            language != DEFAULT_LANGUAGE
            and key is not None
            and delivery.custom_text_enc is None
            and not self.rt.content.has_translation(key, language)
        ):
            metrics.CONTENT_FALLBACKS.labels(language=language).inc()
        return language

    def _answers(self, delivery: Delivery) -> AnswerPolicy:
        settings = self.rt.settings
        return answers.policy(
            delivery.kind.value,
            delivery.remind,
            delivery.expires,
            nudge_after=settings.nudge_after,
            answer_window=settings.answer_window,
        )

    def _text(self, delivery: Delivery, language: str) -> str:
        with i18n.using(language):
            return self._text_in(delivery, language)

    def _text_in(self, delivery: Delivery, language: str) -> str:
        content = self.rt.content.in_language(language)
        if delivery.kind is PromptKind.QUESTIONNAIRE:
            questionnaire = content.questionnaire(delivery.prompt_key or "")
            return questionnaire_view.screen_text(questionnaire, 0, intro=True)
        if delivery.custom_text_enc is not None:
            return render.prompt_html(None, self.rt.cipher.decrypt(delivery.custom_text_enc))
        return render.prompt_html(content.prompt(delivery.prompt_key or ""), None)

    def _message(self, job: _Job) -> tuple[str, InlineKeyboardMarkup | ForceReply]:
        with i18n.using(job.language):
            return self._message_in(job)

    def _message_in(self, job: _Job) -> tuple[str, InlineKeyboardMarkup | ForceReply]:
        content = self.rt.content.in_language(job.language)
        if job.kind == PromptKind.QUESTIONNAIRE.value:
            questionnaire = content.questionnaire(job.prompt_key or "")
            keyboard = questionnaire_view.screen_keyboard(
                self.codec, job.delivery_id, questionnaire, 0, None
            )
            return job.text, keyboard
        prompt = content.prompts.get(job.prompt_key or "")
        return render.prompt_message(prompt, job.text, job.kind, job.delivery_id, self.codec)

    async def _send(
        self, job: _Job, report: TickReport, ledger: Ledger, marked: set[int]
    ) -> asyncio.Future[None] | None:
        """One API call, sent only once its row is committed as `sending`; its outcome goes to
        the ledger (a block also marks the patient unreachable, in its own transaction).
        Returns what completes once the outcome is committed, or None if the row was not ours
        to send any more when its turn came (nothing was sent)."""
        text, markup = self._message(job)

        async def admitted() -> bool:
            # The limiter's turn came: the request leaves as soon as this returns True, so the
            # mark must be durable first, or a crash in between would send it again.
            if self.stopping:
                return False  # SIGTERM while it queued: leave it for the next leader
            if not await ledger.mark_sending(job.delivery_id):
                return False  # skipped, postponed, paused or its claim ran out meanwhile
            marked.add(job.delivery_id)
            return True

        message_id: int | None = None
        outcome: Outcome | None = None
        reason = ""
        not_before = timedelta(0)
        try:
            message_id = await send_html(
                self.bot,
                job.chat_id,
                text,
                reply_markup=markup,
                protect_content=True,
                before_send=admitted,
            )
        except Withdrawn:
            return None
        except Exception as exc:  # every failure is recorded on the delivery, none escapes
            if job.delivery_id not in marked:
                raise  # the mark itself failed (a commit): nothing was sent, nothing to record
            outcome, reason = classify(exc)
            metrics.TELEGRAM_ERRORS.labels(kind=outcome.value).inc()
            if isinstance(exc, RetryAfter):
                not_before = timedelta(seconds=retry_after_seconds(exc))
        now = self.rt.clock.now()
        result = self._result(job, outcome, reason, message_id, now, report, not_before)
        metrics.DELIVERY_OUTCOMES.labels(outcome=str(result.state)).inc()
        if outcome is not Outcome.BLOCKED:
            return ledger.record(result)
        async with self.rt.sessions() as session, session.begin():
            await record_outcomes(await session.connection(), [result])
            notice = await reachability.mark_unreachable(
                session, patient_id=job.patient_id, now=now
            )
        if notice is not None:
            with i18n.using(await staff.language_of(self.rt, notice.therapist_chat_id)):
                text = render.unreachable(notice.pseudonym)
            await notify(self.bot, notice.therapist_chat_id, text)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def _result(
        self,
        job: _Job,
        outcome: Outcome | None,
        reason: str,
        message_id: int | None,
        now: datetime,
        report: TickReport,
        not_before: timedelta = timedelta(0),
    ) -> SendResult:
        if outcome is None:
            report.sent += 1
            metrics.DISPATCH_LAG.observe(max((now - job.due_at).total_seconds(), 0.0))
            return SendResult(
                job.delivery_id,
                DeliveryState.SENT,
                now,
                sent_at=now,
                message_id=message_id,
                remind_at=job.answers.reminder_at(now, 0),
                closes_at=job.answers.closes_at(now),
            )
        if outcome is Outcome.RETRY and job.attempts < MAX_ATTEMPTS:
            # Telegram did not take the message: safe to try again after a pause — never
            # shorter than the one a 429 asked for, or the retry only earns another 429.
            report.retry += 1
            return SendResult(
                job.delivery_id,
                DeliveryState.SCHEDULED,
                now,
                error=reason,
                retry_at=now + max(backoff(job.attempts, self._rng), not_before),
            )
        if outcome is Outcome.BLOCKED:
            report.held += 1
            return SendResult(job.delivery_id, DeliveryState.HELD, now, error=reason)
        if outcome is Outcome.UNKNOWN:
            report.unknown += 1
            return SendResult(job.delivery_id, DeliveryState.UNKNOWN, now, error=reason)
        if outcome is Outcome.RETRY:
            reason = f"gave up after {job.attempts} attempts: {reason}"  # not shown: recorded
        report.failed += 1
        return SendResult(job.delivery_id, DeliveryState.FAILED, now, error=reason[:300])

    async def _start_sessions(self) -> list[int]:
        """Before claiming: a planned session whose start has come cancels the previous
        session's rest first, so none of it is sent at or after the new start. A failure
        rolls the whole anchoring back (the next tick retries it) and sending goes on."""
        try:
            async with self.rt.sessions() as session, session.begin():
                return await course.start_due(session, now=self.rt.clock.now())
        except Exception as exc:
            log.error("could not start planned sessions: %s", type(exc).__name__)
            return []

    async def _brief(self) -> int:
        """Pre-session briefs that are due: claimed in one transaction, sent after it."""
        rt = self.rt
        try:
            async with rt.sessions() as session, session.begin():
                due = await brief.claim_due(
                    session,
                    now=rt.clock.now(),
                    before=rt.settings.brief_before,
                    content=rt.content,
                    cipher=rt.cipher,
                )
        except Exception as exc:
            log.error("could not prepare pre-session briefs: %s", type(exc).__name__)
            return 0
        sent = 0
        for item in due:
            with i18n.using(await staff.language_of(rt, item.therapist_chat_id)):
                text = brief_view.brief_text(item)
                keyboard = brief_view.brief_keyboard(self.codec, item)
            message_id = await notify(
                self.bot, item.therapist_chat_id, text, reply_markup=keyboard, protect_content=True
            )
            async with rt.sessions() as session, session.begin():
                if message_id is None:
                    await brief.give_back(session, item.session_id)
                    continue
                disclosures.shown(
                    session,
                    patient_id=item.patient_id,
                    chat_id=item.therapist_chat_id,
                    message_id=message_id,
                    kind="brief",
                    now=rt.clock.now(),
                )
            sent += 1
        return sent

    async def _end_breaks(self) -> None:
        """`/pause 3` ends by itself: held prompts come back under the grace rule."""
        async with self.rt.sessions() as session, session.begin():
            await participation.resume_expired(
                session, now=self.rt.clock.now(), grace=self.rt.settings.misfire_grace
            )
