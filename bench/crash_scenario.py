"""The kill -9 scenario, reusable: N due prompts to N patients, the real bot as a subprocess
(`python -m bot run`) against an emulator in this process, SIGKILL while prompts are going out,
a restart, and a per-delivery account of what happened.

    result = await run_crash_scenario(tmp_path, prompts=500, kills=[100])
    assert result.lost == 0 and result.duplicated == 0

Used by tests/integration/test_crash_recovery.py (once or twice, 500 prompts) and by
bench/crashloss.py (20 runs). Each kill happens once `kills[i]` prompts have arrived at the
emulator; after the last restart the scenario waits until no delivery is `scheduled` or
`sending`, stops the bot with SIGTERM and counts, per delivery:

* sent — state `sent` and exactly its message arrived (message id matches);
* unknown — state `unknown` (`unknown_arrived` of them did reach the chat: they were in flight);
* lost — any other end state, or `sent` with no message in the chat, or a message id that is not
  the one recorded;
* duplicated — extra copies: a chat that received its prompt k times adds k − 1.

SQLite: on start-up the bot turns every `sending` row into `unknown` (one replica by
definition). PostgreSQL: `sending` rows wait for their lease (2 min) to run out before they
become `unknown`; with `expire_leases=True` the scenario moves those leases into the past right
after the kill, which stands for "two minutes later" without waiting them out.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select, update

from bench.common import patient_row
from bot.db import identity, migrate
from bot.db.crypto import Cipher
from bot.db.engine import make_engine
from bot.db.models import Delivery, DeliveryState, Patient, PromptKind, Therapist
from bot.dispatch.dispatcher import IN_FLIGHT
from bot.emulator import BotApiState, EmulatorServer

# The seeding process and the bot processes share one key: they must open each other's rows.
KEY = Fernet.generate_key()
CIPHER = Cipher([KEY])
TOKEN = "771100:CRASH-scenario"
FIRST_CHAT = 3_000_000
THERAPIST_CHAT = 77
REPO = Path(__file__).resolve().parent.parent
PROMPTS = (
    ("edu-window", PromptKind.EDUCATION),
    ("ref-one-word", PromptKind.REFLECTION),
    ("chk-mood", PromptKind.CHECKIN),
)
OPEN = (DeliveryState.SCHEDULED, DeliveryState.SENDING)


def in_flight_bound() -> int:
    """The most deliveries that can be `sending` (marked, outcome not yet committed) at once,
    and so the most a kill can turn into `unknown`."""
    return IN_FLIGHT


@dataclass
class CrashResult:
    prompts: int
    backend: str
    kills_at: list[int]  # arrivals when each SIGKILL was sent
    arrived_at_kill: list[int] = field(default_factory=list)  # arrivals after the dust settled
    in_flight_at_kill: list[int] = field(default_factory=list)  # `sending` rows after each kill
    sent: int = 0
    unknown: int = 0
    unknown_arrived: int = 0
    lost: int = 0
    duplicated: int = 0
    end_states: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def in_flight_total(self) -> int:
        return sum(self.in_flight_at_kill)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "in_flight_total": self.in_flight_total}


class BotProcess:
    """`python -m bot run` in a subprocess, logs to a file in the work directory."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str) -> None:
        self.env = env
        self.workdir = workdir
        self.log = workdir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                env=self.env,
                cwd=self.workdir,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            await self.kill()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Arrivals:
    """Counts prompts that reached patients' chats, reading the emulator's call log forward."""

    def __init__(self, state: BotApiState, chats: set[int]) -> None:
        self.state = state
        self.chats = chats
        self.count = 0
        self._seen = 0

    def update(self) -> int:
        calls = self.state.calls
        for call in calls[self._seen :]:
            if call.method == "sendMessage" and call.status == 200:
                try:
                    chat = int(str(call.params.get("chat_id")))
                except (TypeError, ValueError):
                    continue
                if chat in self.chats:
                    self.count += 1
        self._seen = len(calls)
        return self.count


def bot_env(database_url: str, api_url: str, *, send_rate: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERGLOW_")}
    env.update(
        AFTERGLOW_BOT_TOKEN=TOKEN,
        AFTERGLOW_DATABASE_URL=database_url,
        AFTERGLOW_TELEGRAM_API_URL=api_url,
        AFTERGLOW_HTTP_PORT="0",
        AFTERGLOW_ENCRYPTION_KEYS=KEY.decode(),
        AFTERGLOW_SEND_RATE=str(send_rate),
        AFTERGLOW_DISPATCH_INTERVAL="0.5",
        AFTERGLOW_CLINIC_TIMEZONE="UTC",
        AFTERGLOW_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    return env


async def seed(database_url: str, prompts: int) -> None:
    """Schema by the bot's own migrations; one therapist; `prompts` active patients, each with
    one prompt due a minute ago (well inside the misfire grace, no quiet hours)."""
    await asyncio.to_thread(migrate.upgrade, database_url)
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            inserted = await conn.execute(
                insert(Therapist).values(
                    name="Dr Crash",
                    telegram_user_id=THERAPIST_CHAT,
                    chat_id=THERAPIST_CHAT,
                    active=True,
                    created_at=now,
                )
            )
            assert inserted.inserted_primary_key is not None
            therapist_id = inserted.inserted_primary_key[0]
            await conn.execute(
                insert(Patient),
                [
                    patient_row(CIPHER, therapist_id, f"p{i}", FIRST_CHAT + i, now)
                    for i in range(prompts)
                ],
            )
            ids = (await conn.execute(select(Patient.id).order_by(Patient.id))).scalars().all()
            await conn.execute(
                insert(Delivery),
                [
                    {
                        "patient_id": pid,
                        "prompt_key": PROMPTS[n % len(PROMPTS)][0],
                        "kind": PROMPTS[n % len(PROMPTS)][1],
                        "state": DeliveryState.SCHEDULED,
                        "due_at": now - timedelta(minutes=1),
                        "planned_at": now,
                        "updated_at": now,
                    }
                    for n, pid in enumerate(ids)
                ],
            )
    finally:
        await engine.dispose()


async def _count(database_url: str, *states: DeliveryState) -> int:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int(
                await conn.scalar(
                    select(func.count()).select_from(Delivery).where(Delivery.state.in_(states))
                )
                or 0
            )
    finally:
        await engine.dispose()


async def _expire_leases(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(Delivery)
                .where(Delivery.claimed_by.is_not(None))
                .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
            )
    finally:
        await engine.dispose()


async def _wait(predicate: Any, timeout: float, what: str, bot: BotProcess) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if not bot.alive():
            raise RuntimeError(f"the bot exited while waiting for {what}:\n{bot.tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}:\n{bot.tail()}")
        await asyncio.sleep(0.05)


async def account(database_url: str, state: BotApiState, result: CrashResult) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(Delivery.state, Delivery.telegram_message_id, Patient.telegram_enc).join(
                        Patient, Patient.id == Delivery.patient_id
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    states: Counter[str] = Counter()
    for row in rows:
        states[str(row.state)] += 1
        _, chat_id = identity.unseal(CIPHER, row.telegram_enc)
        messages = [m["message_id"] for m in state.sent_messages(chat_id)]
        result.duplicated += max(0, len(messages) - 1)
        if row.state is DeliveryState.SENT:
            if row.telegram_message_id in messages:
                result.sent += 1
            else:
                result.lost += 1  # recorded as sent, but that message never reached the chat
        elif row.state is DeliveryState.UNKNOWN:
            result.unknown += 1
            result.unknown_arrived += bool(messages)
        else:
            result.lost += 1
    result.end_states = dict(states)


async def run_crash_scenario(
    workdir: Path,
    *,
    prompts: int = 500,
    kills: Sequence[int] = (100,),
    database_url: str | None = None,
    send_rate: float = 30,
    expire_leases: bool = True,
    settle: float = 0.3,
) -> CrashResult:
    """Seed, start the bot, SIGKILL it at each arrival count in `kills` (restarting after
    each), let the last one finish, stop it and account for every delivery."""
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite+aiosqlite:///{workdir}/crash.db"
    backend = "postgres" if url.startswith("postgresql") else "sqlite"
    result = CrashResult(prompts=prompts, backend=backend, kills_at=list(kills))
    await seed(url, prompts)
    state = BotApiState(token=TOKEN, bot_username="crash_bot")
    people = [state.user(FIRST_CHAT + i, f"P{i}") for i in range(prompts)]
    for person in people:
        await state.send_text(person, "hi")  # Telegram lets a bot write only to who wrote first
    state.drain_updates()  # … and the bot must not see these as replies
    arrivals = Arrivals(state, {p.id for p in people})
    budget = prompts / send_rate * 3 + 60
    async with EmulatorServer(state) as server:
        env = bot_env(url, server.api_url, send_rate=send_rate)
        for n, threshold in enumerate(kills):
            bot = BotProcess(env, workdir, f"bot-{n}")
            await bot.start()

            polls = 0

            async def reached(limit: int = threshold) -> bool:
                nonlocal polls
                polls += 1
                if arrivals.update() >= limit:
                    return True
                # Nothing left to send (an earlier kill turned the rest into `unknown`)?
                return polls % 20 == 0 and await _count(url, *OPEN) == 0

            try:
                await _wait(reached, budget, f"{threshold} arrivals", bot)
            finally:
                await bot.kill()
            await asyncio.sleep(settle)  # requests already on the wire still land
            result.arrived_at_kill.append(arrivals.update())
            result.in_flight_at_kill.append(await _count(url, DeliveryState.SENDING))
            if backend == "postgres" and expire_leases:
                await _expire_leases(url)
        bot = BotProcess(env, workdir, "bot-final")
        await bot.start()

        async def drained() -> bool:
            return await _count(url, *OPEN) == 0

        try:
            await _wait(drained, budget, "every delivery to settle", bot)
        finally:
            await bot.stop()
    await account(url, state, result)
    result.seconds = round(time.monotonic() - started, 1)
    return result
