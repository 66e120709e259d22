"""The `afterglow` CLI as an operator uses it: one-line errors, non-zero exits, real effects."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.emulator import BotApiState, EmulatorServer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "content"
TOKEN = "777000:RUN-test_token"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AFTERGLOW_"):
            monkeypatch.delenv(name)
    values = {"AFTERGLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_every_verb_has_help(env: dict[str, str]) -> None:
    verbs = [
        [], ["run"], ["demo"], ["db"], ["db", "upgrade"], ["db", "downgrade"], ["db", "current"],
        ["therapist"], ["therapist", "add"], ["therapist", "invite"], ["therapist", "list"],
        ["therapist", "deactivate"], ["content"], ["content", "check"],
        ["keys"], ["keys", "rotate"], ["export"], ["purge"], ["backup"],
        ["safety"], ["safety", "check"], ["safety", "eval"],
    ]  # fmt: skip
    for verb in verbs:
        code, out, _ = invoke(*verb, "--help")
        assert code == 0 and "Usage" in out, verb


def test_db_upgrade_current_downgrade(env: dict[str, str]) -> None:
    code, out, _ = invoke("db", "upgrade")
    assert code == 0 and "(head)" in out
    code, out, _ = invoke("db", "current")
    assert code == 0 and "(head)" in out
    code, out, _ = invoke("db", "downgrade", "base")
    assert code == 0 and "base" in out


def test_therapist_verbs(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("db", "upgrade")[0] == 0
    # Patients' Telegram ids are stored only as keyed HMACs: finding whether this id is a
    # patient's needs the keys.
    code, _, err = invoke("therapist", "add", "--telegram-id", "4242", "--name", "Dr Kim")
    assert code == 1 and "AFTERGLOW_ENCRYPTION_KEYS" in err and err.count("\n") == 1
    monkeypatch.setenv("AFTERGLOW_ENCRYPTION_KEYS", KEY_A)
    code, out, _ = invoke("therapist", "add", "--telegram-id", "4242", "--name", "Dr Kim")
    assert code == 0 and "added" in out
    code, _, err = invoke("therapist", "add", "--telegram-id", "4242", "--name", "Dr Kim")
    assert code == 1 and err.count("\n") == 1 and "already" in err
    code, out, _ = invoke("therapist", "invite", "--name", "Dr Lee", "--bot-username", "clinic_bot")
    assert code == 0 and out.startswith("https://t.me/clinic_bot?start=")
    token = out.strip().rsplit("=", 1)[1]
    assert 43 <= len(token) <= 64
    code, out, _ = invoke("therapist", "list")
    assert code == 0 and "Dr Kim" in out and "telegram=4242" in out
    code, out, _ = invoke("therapist", "deactivate", "Dr Kim")
    assert code == 0 and "deactivated" in out
    code, out, _ = invoke("therapist", "list")
    assert "inactive" in out
    code, _, err = invoke("therapist", "deactivate", "Nobody")
    assert code == 1 and "no therapist" in err


def test_deactivating_a_therapist_with_patients_needs_reassign_or_hold(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFTERGLOW_ENCRYPTION_KEYS", KEY_A)
    assert invoke("db", "upgrade")[0] == 0
    assert invoke("therapist", "add", "--telegram-id", "51", "--name", "Dr Ames")[0] == 0
    assert invoke("therapist", "add", "--telegram-id", "52", "--name", "Dr Bo")[0] == 0
    asyncio.run(_invite_patient("river-7"))

    code, _, err = invoke("therapist", "deactivate", "Dr Ames")
    assert code == 1 and err.count("\n") == 1
    assert "1 patient(s) in care" in err and "--reassign-to" in err and "--hold" in err
    assert "\tactive" in invoke("therapist", "list")[1]  # nothing changed

    code, out, err = invoke("therapist", "deactivate", "Dr Ames", "--hold")
    assert code == 0 and "deactivated" in out and "on hold" in out
    assert "AFTERGLOW_ONCALL_CHAT_ID is not set" in err
    code, out, _ = invoke("therapist", "deactivate", "#1", "--reassign-to", "Dr Bo")
    assert code == 0 and "1 patient(s) and 0 open alert(s) moved to Dr Bo" in out


async def _invite_patient(pseudonym: str) -> None:
    from bot.cli import settings
    from bot.db.engine import make_engine, make_session_factory
    from bot.services import enrollment

    engine = make_engine(settings().database_url)
    try:
        async with make_session_factory(engine)() as session, session.begin():
            await enrollment.invite_patient(
                session, therapist_id=1, pseudonym=pseudonym, now=datetime.now(UTC)
            )
    finally:
        await engine.dispose()


def test_safety_check_and_eval(env: dict[str, str], tmp_path: Path) -> None:
    code, out, _ = invoke("safety", "check", "I'm not suicidal")
    assert code == 0 and out.startswith("ALERT") and "suicid" in out
    code, out, _ = invoke("safety", "check", "a lovely walk by the river")
    assert code == 0 and out.startswith("no alert")
    labelled = tmp_path / "mine.csv"
    labelled.write_text(
        "label,text\nrisk,I want to kill myself\nrisk,the weather is nice\n"
        "safe,suicide prevention day walk\nsafe,I want to kill myself\n",
        encoding="utf-8",
    )
    code, out, _ = invoke("safety", "eval", str(labelled))
    assert code == 0
    assert "recall 50.0% (1/2" in out and "false alerts 50.0% (1/2" in out
    assert "MISSED (risk): the weather is nice" in out
    assert "FALSE ALERT (safe;" in out and "suicide prevention" not in out
    bad = tmp_path / "bad.csv"
    bad.write_text("text\nhello\n", encoding="utf-8")
    code, _, err = invoke("safety", "eval", str(bad))
    assert code == 1 and "label and text" in err and err.count("\n") == 1


def test_usage_errors_are_one_line(env: dict[str, str]) -> None:
    cases = [
        (["therapist", "add", "--telegram-id", "abc", "--name", "X"], "--telegram-id"),
        (["therapist", "add", "--name", "X"], "--telegram-id"),
        (["purge"], "--older-than"),
        (["purge", "--older-than", "soon"], "--older-than"),
        (["export", "--patient", "river", "--format", "pdf"], "--format"),
        (["keys", "rotate", "--batch-size", "0"], "--batch-size"),
    ]
    for args, option in cases:
        code, out, err = invoke(*args)
        assert code == 2 and out == "", args
        assert err.count("\n") == 1 and err.startswith("afterglow ") and option in err, err


def test_database_errors_are_one_line(env: dict[str, str]) -> None:
    code, _, err = invoke("therapist", "list")  # no schema yet
    assert code == 1 and err.count("\n") == 1 and "afterglow db upgrade" in err


def test_therapist_invite_without_token_or_username_fails_in_one_line(env: dict[str, str]) -> None:
    assert invoke("db", "upgrade")[0] == 0
    code, _, err = invoke("therapist", "invite", "--name", "Dr Lee")
    assert code == 1 and err.count("\n") == 1 and "--bot-username" in err


def test_bad_configuration_names_the_variable(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFTERGLOW_CLINIC_TIMEZONE", "Mars/Olympus")
    code, _, err = invoke("therapist", "list")
    assert code == 1 and err.count("\n") == 1 and "AFTERGLOW_CLINIC_TIMEZONE" in err


def test_content_check(env: dict[str, str]) -> None:
    code, out, _ = invoke("content", "check")
    assert code == 0 and "content ok" in out
    code, _, err = invoke("content", "check", str(FIXTURES / "unknown-field"))
    assert code == 1 and "unknown-field" in err and ".yaml:" in err


def test_run_without_token_names_the_variable(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "AFTERGLOW_BOT_TOKEN" in result.stderr


async def test_run_answers_start_and_stops_on_sigterm(env: dict[str, str], tmp_path: Path) -> None:
    state = BotApiState(token=TOKEN, bot_username="clinic_bot")
    async with EmulatorServer(state) as server:
        child_env = {
            **os.environ,
            "AFTERGLOW_BOT_TOKEN": TOKEN,
            "AFTERGLOW_TELEGRAM_API_URL": server.api_url,
            "AFTERGLOW_KEY_FILE": str(tmp_path / "test.key"),
            "AFTERGLOW_HTTP_PORT": "0",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            person = state.user(31337, "Visitor")
            await state.send_text(person, "/start")
            deadline = time.monotonic() + 30
            while not state.sent_messages(person.id):
                assert proc.returncode is None, await proc.stderr.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "bot never answered /start"
                await asyncio.sleep(0.05)
            assert "private service" in state.sent_messages(person.id)[0]["text"]
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), timeout=5)
            assert code == 0
            assert time.monotonic() - started < 5
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        stderr = (await proc.stderr.read()).decode()  # type: ignore[union-attr]
        assert "Afterglow ready" in stderr
        assert TOKEN not in stderr  # the token never reaches the log
        assert (tmp_path / "test.key").stat().st_mode & 0o777 == 0o600


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_run_in_webhook_mode_serves_the_webhook_and_health(
    env: dict[str, str], tmp_path: Path
) -> None:
    import httpx

    state = BotApiState(token=TOKEN, bot_username="clinic_bot")
    port = _free_port()
    async with EmulatorServer(state) as server:
        child_env = {
            **os.environ,
            "AFTERGLOW_BOT_TOKEN": TOKEN,
            "AFTERGLOW_TELEGRAM_API_URL": server.api_url,
            "AFTERGLOW_KEY_FILE": str(tmp_path / "test.key"),
            "AFTERGLOW_HTTP_PORT": str(port),
            "AFTERGLOW_MODE": "webhook",
            "AFTERGLOW_WEBHOOK_URL": "https://bot.example.org",
            "AFTERGLOW_WEBHOOK_SECRET": "hook-secret_1",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=2) as http:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert proc.returncode is None, await proc.stderr.read()  # type: ignore[union-attr]
                    assert time.monotonic() < deadline, "never became healthy"
                    await asyncio.sleep(0.1)
                assert state.webhook["url"] == "https://bot.example.org/telegram/webhook"
                person = state.user(4242, "Visitor")
                update = await state.send_text(person, "/start")
                state.drain_updates()
                denied = await http.post("/telegram/webhook", json=update)
                assert denied.status_code == 403
                headers = {"X-Telegram-Bot-Api-Secret-Token": "hook-secret_1"}
                assert (
                    await http.post("/telegram/webhook", json=update, headers=headers)
                ).status_code == 200
                while not state.sent_messages(person.id):
                    assert time.monotonic() < deadline, "the bot never answered"
                    await asyncio.sleep(0.05)
                ready = await http.get("/readyz")
                while ready.status_code != 200:  # ready once the dispatcher has ticked
                    assert time.monotonic() < deadline, ready.json()
                    await asyncio.sleep(0.1)
                    ready = await http.get("/readyz")
                assert ready.json()["leader"] is True
                assert "afterglow_dispatch_ticks_total" in (await http.get("/metrics")).text
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), timeout=5) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def test_run_with_telegram_unreachable_fails_in_one_line(env: dict[str, str]) -> None:
    child_env = {
        **os.environ,
        "AFTERGLOW_BOT_TOKEN": TOKEN,
        "AFTERGLOW_TELEGRAM_API_URL": f"http://127.0.0.1:{_free_port()}",
        "AFTERGLOW_HTTP_PORT": "0",
        "AFTERGLOW_ENCRYPTION_KEYS": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        capture_output=True, text=True, timeout=60, env=child_env,
    )  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("afterglow: AFTERGLOW_TELEGRAM_API_URL: cannot reach")
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stderr


KEY_A = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
KEY_B = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="


def _run_once(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    child_env = {
        **os.environ,
        "AFTERGLOW_BOT_TOKEN": TOKEN,
        "AFTERGLOW_TELEGRAM_API_URL": f"http://127.0.0.1:{_free_port()}",
        "AFTERGLOW_HTTP_PORT": "0",
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        capture_output=True, text=True, timeout=60, env=child_env,
    )  # fmt: skip


def test_run_refuses_keys_that_cannot_open_the_database(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen: a wrong AFTERGLOW_ENCRYPTION_KEYS was accepted; then every patient text and
    /mydata answered "something went wrong… may not have been saved"."""
    assert invoke("db", "upgrade")[0] == 0
    monkeypatch.setenv("AFTERGLOW_ENCRYPTION_KEYS", KEY_A)
    code, out, _ = invoke("keys", "check")
    assert code == 0 and "check value stored now" in out
    code, out, _ = invoke("keys", "check")
    assert code == 0 and "they open the check value" in out

    monkeypatch.setenv("AFTERGLOW_ENCRYPTION_KEYS", KEY_B)
    code, _, err = invoke("keys", "check")
    assert code == 1 and err.count("\n") == 1 and "none of the configured keys" in err
    result = _run_once({"AFTERGLOW_ENCRYPTION_KEYS": KEY_B})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("afterglow: AFTERGLOW_ENCRYPTION_KEYS: none of the configured keys")

    # The new key listed first, the old one after it (a rotation in progress) still opens it.
    monkeypatch.setenv("AFTERGLOW_ENCRYPTION_KEYS", f"{KEY_B},{KEY_A}")
    assert invoke("keys", "check")[0] == 0


def test_an_unreachable_or_missing_database_is_one_line(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Seen: a 160–210-line traceback from `afterglow run` and `db upgrade`."""
    missing = f"sqlite+aiosqlite:///{tmp_path}/no/such/folder/a.db"
    unreachable = f"postgresql+asyncpg://afterglow:s3cret@127.0.0.1:{_free_port()}/x"
    for url, expected in (
        (missing, "does not exist (create it first)"),
        (unreachable, "cannot reach the database at"),
    ):
        monkeypatch.setenv("AFTERGLOW_DATABASE_URL", url)
        code, _, err = invoke("db", "upgrade")
        assert code == 1 and err.count("\n") == 1, err
        assert err.startswith("afterglow: AFTERGLOW_DATABASE_URL: ") and expected in err
        assert "s3cret" not in err
        result = _run_once({"AFTERGLOW_DATABASE_URL": url, "AFTERGLOW_ENCRYPTION_KEYS": KEY_A})
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert (
            result.stderr.strip().splitlines()[-1].startswith("afterglow: AFTERGLOW_DATABASE_URL: ")
        )
        assert "s3cret" not in result.stderr


async def _seed_active_patient(pseudonym: str, therapist_id: int) -> None:
    from bot.cli import settings
    from bot.db.engine import make_engine, make_session_factory
    from bot.db.models import Patient, PatientStatus

    engine = make_engine(settings().database_url)
    try:
        async with make_session_factory(engine)() as session, session.begin():
            session.add(
                Patient(
                    therapist_id=therapist_id,
                    pseudonym=pseudonym,
                    status=PatientStatus.ACTIVE,
                    timezone="UTC",
                    created_at=datetime.now(UTC),
                )
            )
    finally:
        await engine.dispose()


async def _audit_and_status() -> tuple[list[tuple[str, str]], str]:
    from sqlalchemy import select

    from bot.cli import settings
    from bot.db.engine import make_engine, make_session_factory
    from bot.db.models import AuditEntry, Patient

    engine = make_engine(settings().database_url)
    try:
        async with make_session_factory(engine)() as session:
            entries = await session.execute(
                select(AuditEntry.action, AuditEntry.actor).order_by(AuditEntry.id)
            )
            status = await session.scalar(select(Patient.status))
            return [(a, b) for a, b in entries], str(status.value if status else None)
    finally:
        await engine.dispose()


def test_audit_entries_name_the_operators_os_account(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen: every CLI entry said only "operator", whoever on the host ran it."""
    monkeypatch.setenv("LOGNAME", "alice")  # what getpass.getuser() reads first
    monkeypatch.setenv("AFTERGLOW_ENCRYPTION_KEYS", KEY_A)
    assert invoke("db", "upgrade")[0] == 0
    assert invoke("therapist", "add", "--telegram-id", "61", "--name", "Dr Ames")[0] == 0
    assert invoke("therapist", "add", "--telegram-id", "62", "--name", "Dr Bo")[0] == 0
    asyncio.run(_seed_active_patient("cedar", therapist_id=1))
    assert invoke("therapist", "deactivate", "Dr Ames", "--hold")[0] == 0
    assert asyncio.run(_audit_and_status())[1] == "paused"
    # The patient the operator held is released on take-over, whoever the operator was.
    code, _, err = invoke("therapist", "deactivate", "#1", "--reassign-to", "Dr Bo")
    assert code == 0, err
    entries, status = asyncio.run(_audit_and_status())
    assert status == "active"
    assert entries == [
        ("therapist.add", "operator:alice"),
        ("therapist.add", "operator:alice"),
        ("patient.pause", "operator:alice"),
        ("therapist.deactivate", "operator:alice"),
        ("patient.resume", "operator:alice"),
        ("therapist.deactivate", "operator:alice"),
    ]

    def no_name() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr("getpass.getuser", no_name)
    assert invoke("therapist", "invite", "--name", "Dr Cy", "--bot-username", "b")[0] == 0
    assert asyncio.run(_audit_and_status())[0][-1] == (
        "therapist.invite",
        f"operator:uid={os.getuid()}",
    )
