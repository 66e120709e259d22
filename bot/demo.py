"""`afterglow demo`: the real bot, polling a built-in Telegram emulator over local HTTP, with a
temporary SQLite database and a simulated clock. A scripted therapist and patient go through
a week of integration; the chat is printed as a transcript."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet

from bot import i18n
from bot.app import PTBApp, build_application, build_runtime
from bot.clock import FakeClock
from bot.config import Settings
from bot.db import migrate, queries
from bot.dispatch.dispatcher import Dispatcher
from bot.domain import languages
from bot.domain.content import plain_text
from bot.emulator import BotApiState, EmulatorServer, TranscriptEntry, render_transcript
from bot.emulator.updates import EmuUser
from bot.i18n import _
from bot.runtime import Runtime
from bot.services import enrollment
from bot.telegram.polling import Poller
from bot.views import render

TOKEN = "424242:DEMO-afterglow-local-emulator"  # noqa: S105 - the emulator's, not a secret
ZONE = "America/New_York"
# Tuesday 10 March 2026, 13:00 in New York: the session has just ended.
SESSION_END = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)

# The scripted patient's answers, by the reflection they answer, in each demo language.
ANSWERS = {
    "en": {
        "ref-one-word": "Soft. Like something loosened in my chest.",
        "ref-what-stood-out": "How much I've been bracing all the time, even with people I love.",
        "ref-looping-thought": "I said 'I'm so stupid' when I dropped a glass. Caught it.",
        "ref-kind-words": "That it's okay to be tired after something this big. Go slowly.",
        "ref-small-step": "Calling my sister back. I've put it off for a month.",
        "ref-notes-for-therapist": "The bracing. And the call with my sister, if I've made it.",
    },
    "es": {
        "ref-one-word": "Suave. Como si algo se hubiera aflojado en el pecho.",
        "ref-what-stood-out": "Lo mucho que vivo en tensión, hasta con la gente que quiero.",
        "ref-looping-thought": "Me dije 'qué torpe soy' al romper un vaso. Esta vez me di cuenta.",
        "ref-kind-words": "Que está bien estar cansada después de algo tan grande. Despacio.",
        "ref-small-step": "Llamar a mi hermana. Llevo un mes posponiéndolo.",
        "ref-notes-for-therapist": "La tensión. Y la llamada a mi hermana, si ya la hice.",
    },
    "de": {
        "ref-one-word": "Weich. Als hätte sich in der Brust etwas gelöst.",
        "ref-what-stood-out": "Wie angespannt ich immer bin, sogar bei Menschen, die ich liebe.",
        "ref-looping-thought": "'Wie blöd bin ich', als mir ein Glas runterfiel. Diesmal gemerkt.",
        "ref-kind-words": "Dass es okay ist, nach so etwas Großem müde zu sein. Langsam.",
        "ref-small-step": "Meine Schwester zurückrufen. Das schiebe ich seit Wochen auf.",
        "ref-notes-for-therapist": "Die Anspannung. Und das Telefonat mit meiner Schwester.",
    },
}
ANSWERED_AFTER_REMINDER = "ref-small-step"  # left for a day, to show the reminder
PATIENT_NAMES = {"en": "Sam", "es": "Sofía", "de": "Lena"}


class Script:
    """Drives the people in the emulator and waits for the bot to answer."""

    def __init__(
        self, state: BotApiState, rt: Runtime, dispatcher: Dispatcher, language: str = "en"
    ) -> None:
        self.state = state
        self.rt = rt
        self.dispatcher = dispatcher
        self.language = language

    async def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        for _attempt in range(500):  # up to 5 s of real time; the bot answers in milliseconds
            if predicate():
                return
            await asyncio.sleep(0.01)
        raise RuntimeError(f"demo: the bot did not answer ({what})")

    async def say(self, person: EmuUser, text: str, *, reply_to: int | None = None) -> None:
        before = len(self.state.sent_messages(person.id))
        await self.state.send_text(person, text, reply_to=reply_to)
        await self.wait_for(lambda: len(self.state.sent_messages(person.id)) > before, text)

    async def tap(self, person: EmuUser, message_id: int, label: str, *, expect: int = 0) -> None:
        before = len(self.state.calls_to("answerCallbackQuery"))
        await self.state.press_button(person, message_id, label)
        await self.wait_for(lambda: len(self.state.calls_to("answerCallbackQuery")) > before, label)
        if expect:
            count = len(self.state.sent_messages(person.id))
            await self.wait_for(lambda: len(self.state.sent_messages(person.id)) >= count, label)

    async def voice(self, person: EmuUser) -> None:
        before = len(self.state.sent_messages(person.id))
        await self.state.send_voice(person)
        await self.wait_for(lambda: len(self.state.sent_messages(person.id)) > before, "voice")

    def last(self, person: EmuUser) -> dict[str, Any]:
        return self.state.last_sent(person.id)


def _buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def _answer_for(script: Script, text: str) -> tuple[str, str] | None:
    """Which scripted reflection this message asks (or reminds of), and the answer."""
    content = script.rt.content.in_language(script.language)
    for key, said in ANSWERS[script.language].items():
        words = plain_text(content.prompt(key).text)[:40]
        if words and words in plain_text(text):
            return key, said
    return None


async def _patient_answers(
    script: Script, patient: EmuUser, message: dict[str, Any], n: int
) -> int:
    """The scripted patient answers most prompts, in the way people do: briefly, sometimes
    late; one reflection only after its reminder, by replying to the reminder."""
    text = message.get("text", "")
    labels = _buttons(message)
    markup = message.get("reply_markup") or {}
    with i18n.using(script.language):
        got_it, help_label = _("Got it"), render.help_button().text
        reminder_start = nudge_prefix()
    if markup.get("force_reply"):
        found = _answer_for(script, text)
        reminder = text.startswith(reminder_start)
        if found is not None and (reminder or found[0] != ANSWERED_AFTER_REMINDER):
            await script.say(patient, found[1], reply_to=message["message_id"])
            return n + 1
        return n
    if " of " in text and labels and labels[0] not in (got_it, "◀ Back"):
        await _questionnaire(script, patient, message, help_label)
        return n + 1
    if got_it in labels and n % 2 == 0:
        await script.tap(patient, message["message_id"], got_it)
    elif "7" in labels:
        await script.tap(patient, message["message_id"], "7")
    elif labels and labels[0] != help_label and got_it not in labels:
        await script.tap(patient, message["message_id"], labels[0])
    return n


async def _questionnaire(
    script: Script, patient: EmuUser, message: dict[str, Any], help_label: str
) -> None:
    """A questionnaire's message moves item by item: the patient taps an answer on each."""
    mid = message["message_id"]
    for _item in range(QUESTIONNAIRE_ITEMS_AT_MOST):
        shown = next(
            (m for m in script.state.sent_messages(patient.id) if m["message_id"] == mid), None
        )
        options = [b for b in _buttons(shown or {}) if b not in ("◀ Back", help_label)]
        if shown is None or not options:
            return  # the thank-you has no buttons
        await script.tap(patient, mid, options[min(2, len(options) - 1)])


QUESTIONNAIRE_ITEMS_AT_MOST = 30


async def run_demo(days: int = 7, out: Callable[[str], None] = print, language: str = "en") -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="afterglow-demo-") as tmp:
        clock = FakeClock(SESSION_END - timedelta(minutes=30))
        state = BotApiState(token=TOKEN, bot_username="afterglow_demo_bot", clock=clock.now)
        async with EmulatorServer(state) as server:
            db_url = f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}"
            settings = Settings(
                _env_file=None,
                bot_token=TOKEN,
                database_url=db_url,
                telegram_api_url=server.api_url,
                encryption_keys=Fernet.generate_key().decode(),
                clinic_timezone=ZONE,
                clinic_name="Lakeside KAP Clinic",
                content_dirs="",
            )
            await asyncio.to_thread(migrate.upgrade, db_url)
            rt = build_runtime(settings, clock=clock)
            # Simulated time: real-time pacing (1 msg/s per chat) would only make the demo slow.
            app = build_application(rt, dispatch_job=False, rate_limit=False)
            await app.initialize()
            await app.start()
            poller = Poller(app, timeout=1)
            await poller.start()
            try:
                await _story(app, rt, state, clock, days, language)
            finally:
                await poller.stop()
                await app.stop()
                await app.shutdown()
        zones = [(chat, ZoneInfo(ZONE)) for chat in (1001, 2002)]
        out(_header(days, language))
        entries = [_compact(entry) for entry in state.transcript()]
        out(render_transcript(entries, tz=ZoneInfo(ZONE), zones=zones))
        out(_footer(state, language))
    return 0


async def _story(
    app: PTBApp, rt: Runtime, state: BotApiState, clock: FakeClock, days: int, language: str
) -> None:
    dispatcher: Dispatcher = app.bot_data["dispatcher"]
    script = Script(state, rt, dispatcher, language)
    therapist = state.user(1001, "Dr Rivera")
    patient = state.user(2002, PATIENT_NAMES[language], language_code=language)
    with i18n.using(language):
        agree = _("I agree")

    # The clinic operator registers the therapist (`afterglow therapist invite`).
    async with rt.sessions() as session, session.begin():
        token = await enrollment.invite_therapist(session, name="Dr Rivera", now=clock.now())
    await script.say(therapist, f"/start {token}")

    await script.say(therapist, "/invite river-7")
    link = next(w for w in script.last(therapist)["text"].split() if w.startswith("https://t.me"))
    clock.advance(timedelta(minutes=5))
    before = len(state.sent_messages(patient.id))
    await state.open_link(patient, link)
    await script.wait_for(lambda: len(state.sent_messages(patient.id)) > before, "languages")
    await script.tap(patient, script.last(patient)["message_id"], languages.NAMES[language])
    await script.wait_for(lambda: agree in _buttons(script.last(patient)), "consent")
    await script.tap(patient, script.last(patient)["message_id"], agree)
    await script.wait_for(lambda: "New York" in _buttons(script.last(patient)), "zone")
    zone_question = script.last(patient)["message_id"]
    await script.tap(patient, zone_question, "New York")
    await script.wait_for(lambda: script.last(patient)["message_id"] != zone_question, "welcome")

    clock.set(SESSION_END)
    await script.say(therapist, "/session river-7")

    answered = 0
    voice_sent = False
    seen = {m["message_id"] for m in state.sent_messages(patient.id)}
    end = SESSION_END + timedelta(days=days, hours=1)
    while clock.now() < end:
        await dispatcher.tick()
        for message in state.sent_messages(patient.id):
            if message["message_id"] in seen:
                continue
            seen.add(message["message_id"])
            clock.advance(timedelta(minutes=7))  # the patient answers a little later
            answered = await _patient_answers(script, patient, message, answered)
            if answered == 1 and not voice_sent:
                voice_sent = True
                await script.voice(patient)
            seen.update(m["message_id"] for m in state.sent_messages(patient.id))
        async with rt.sessions() as session:
            due = await queries.next_due(session)
            nudge = await queries.next_nudge(session)
        # Jump the simulated clock straight to the next prompt or reminder, as if time passed.
        upcoming = min((t for t in (due, nudge) if t is not None), default=end)
        clock.set(min(end, max(upcoming, clock.now() + timedelta(minutes=1))))

    await script.say(therapist, "/replies river-7 20")


def _compact(entry: TranscriptEntry) -> TranscriptEntry:
    """An edit repeats the whole message; the reader only needs what changed at its end."""
    if not entry.text.startswith("(edited) "):
        return entry
    paragraphs = entry.text.split("\n\n")
    tail = paragraphs[-1] if len(paragraphs) > 1 else "(buttons updated)"
    return replace(entry, text=f"(edited) … {tail}")


def _header(days: int, language: str = "en") -> str:
    return (
        "Afterglow demo: the real bot against a local Telegram emulator, a temporary database\n"
        f"and a simulated clock; {days} day(s) after one session. Times are New York time.\n"
        f"The patient chose {languages.NAMES[language]}.\n" + "=" * 78
    )


def nudge_prefix() -> str:
    """How a reminder starts in the current language (before the question it names)."""
    return render.nudge(None).split(_("the question above"))[0]


def _footer(state: BotApiState, language: str = "en") -> str:
    protected = [m for m in state.sent_messages(2002) if m.get("has_protected_content")]
    with i18n.using(language):
        prefix = nudge_prefix()
    reminders = [m for m in protected if m.get("text", "").startswith(prefix)]
    return (
        "=" * 78
        + f"\n{len(protected) - len(reminders)} prompts delivered to the patient, "
        + f"{len(reminders)} reminder(s). Demo finished."
    )
