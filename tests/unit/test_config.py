"""Settings: SPEC defaults, duration parsing, and one-line errors naming the variable."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings, parse_duration

GOOD_TOKEN = "123456789:AAH-abc_DEF"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AFTERGLOW_* from the outer environment, and no real `.env` in the working dir."""
    for name in list(os.environ):
        if name.startswith("AFTERGLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def load_with(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(f"AFTERGLOW_{name}", value)
    return load_settings()


# --- defaults (SPEC "Configuration" table and the durations named elsewhere in the SPEC) ---

DEFAULTS = [
    ("bot_token", None),
    ("database_url", "sqlite+aiosqlite:///afterglow.db"),
    ("telegram_api_url", "https://api.telegram.org"),
    ("encryption_keys", None),
    ("key_file", Path("afterglow.key")),
    ("clinic_timezone", "UTC"),
    ("mode", "polling"),
    ("webhook_url", None),
    ("http_port", 8080),
    ("content_dirs", ""),
    ("misfire_grace", timedelta(hours=6)),
    ("nudge_after", timedelta(hours=24)),
    ("answer_window", timedelta(hours=72)),
    ("alert_escalate_after", timedelta(minutes=15)),
    ("oncall_chat_id", None),
    ("send_rate", 25.0),
    ("log_format", "text"),
    ("http_host", "0.0.0.0"),
    ("metrics_token", None),
]


@pytest.mark.parametrize(("field", "expected"), DEFAULTS)
def test_default_matches_spec(field: str, expected: object) -> None:
    assert getattr(load_settings(), field) == expected


def test_default_bot_base_url_and_zone() -> None:
    settings = load_settings()
    assert settings.bot_base_url == "https://api.telegram.org/bot"
    assert settings.zone.key == "UTC"
    assert settings.content_paths == []


def test_dotenv_in_working_dir_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("AFTERGLOW_CLINIC_TIMEZONE=Europe/Berlin\n")
    assert load_settings().clinic_timezone == "Europe/Berlin"


def test_environment_beats_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("AFTERGLOW_CLINIC_TIMEZONE=Europe/Berlin\n")
    assert load_with(monkeypatch, CLINIC_TIMEZONE="Asia/Tokyo").clinic_timezone == "Asia/Tokyo"


# --- durations ---

DURATIONS = [
    ("15m", timedelta(minutes=15)),
    ("6h", timedelta(hours=6)),
    ("3d", timedelta(days=3)),
    ("90", timedelta(seconds=90)),
    ("90s", timedelta(seconds=90)),
    (" 15 m ", timedelta(minutes=15)),
    ("0", timedelta(0)),
]


@pytest.mark.parametrize(("text", "expected"), DURATIONS)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(hours=2), timedelta(hours=2)),
    ],
)
def test_parse_duration_non_strings(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    "text", ["", "soon", "-5m", "1w", "15 minutes", "1.5h", "h", "15M", "6h30m"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "variable", ["MISFIRE_GRACE", "NUDGE_AFTER", "ANSWER_WINDOW", "ALERT_ESCALATE_AFTER"]
)
@pytest.mark.parametrize(("text", "expected"), DURATIONS[:4])
def test_duration_variables_read_from_env(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, expected: timedelta
) -> None:
    settings = load_with(monkeypatch, **{variable: text})
    assert getattr(settings, variable.lower()) == expected


# --- bad values: one line naming the variable ---

BAD = [
    ("CLINIC_TIMEZONE", "Mars/Olympus"),
    ("CLINIC_TIMEZONE", "../../etc/passwd"),
    ("DATABASE_URL", "mysql://user@host/db"),
    ("DATABASE_URL", "sqlite:///afterglow.db"),
    ("DATABASE_URL", "postgresql://user:hunter2@db/afterglow"),
    ("TELEGRAM_API_URL", "ftp://api.example"),
    ("TELEGRAM_API_URL", "http://api.telegram.org"),
    ("TELEGRAM_API_URL", "http://10.0.0.5:8081"),
    ("TELEGRAM_API_URL", "http://127.0.0.1.example.org"),
    ("METRICS_TOKEN", "short"),
    ("METRICS_TOKEN", "has a space in the middle of it"),
    ("MISFIRE_GRACE", "soon"),
    ("NUDGE_AFTER", "-5m"),
    ("ANSWER_WINDOW", "1w"),
    ("ALERT_ESCALATE_AFTER", "15 minutes"),
    ("SEND_RATE", "fast"),
    ("SEND_RATE", "0"),
    ("SEND_RATE", "-1"),
    ("SEND_RATE", "31"),
    ("SEND_RATE", "nan"),
    ("HTTP_PORT", "70000"),
    ("HTTP_PORT", "eighty"),
    ("MODE", "push"),
    ("LOG_FORMAT", "xml"),
    ("ONCALL_CHAT_ID", "the-oncall-group"),
    ("BOT_TOKEN", "not-a-token"),
    ("BOT_TOKEN", "123456:abc def"),
    ("BOT_TOKEN", ":AAHabc"),
]


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with(monkeypatch, **{variable: value})
    message = str(caught.value)
    assert message.startswith(f"AFTERGLOW_{variable}")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("variable", "secret"),
    [("BOT_TOKEN", "123456:abc def"), ("DATABASE_URL", "postgresql://user:hunter2@db/x")],
)
def test_bad_value_message_does_not_echo_secrets(
    monkeypatch: pytest.MonkeyPatch, variable: str, secret: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with(monkeypatch, **{variable: secret})
    assert "hunter2" not in str(caught.value)
    assert "abc def" not in str(caught.value)


def test_webhook_mode_without_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with(monkeypatch, MODE="webhook")
    message = str(caught.value)
    assert "AFTERGLOW_WEBHOOK_URL" in message
    assert "\n" not in message


def test_webhook_mode_with_url(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_with(
        monkeypatch, MODE="webhook", WEBHOOK_URL="https://bot.example/hook", WEBHOOK_SECRET="s3"
    )
    assert settings.mode == "webhook"
    assert settings.webhook_url == "https://bot.example/hook"
    assert "s3" not in repr(settings)


def test_huge_duration_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="AFTERGLOW_MISFIRE_GRACE"):
        load_with(monkeypatch, MISFIRE_GRACE="99999999999999d")


def test_empty_token_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_with(monkeypatch, BOT_TOKEN="").bot_token is None


# --- token ---


def test_require_token_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="AFTERGLOW_BOT_TOKEN"):
        load_settings().require_token()


def test_require_token_returns_stripped_token(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_with(monkeypatch, BOT_TOKEN=f"  {GOOD_TOKEN} ").require_token() == GOOD_TOKEN


# --- other derived values ---


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", []),
        ("clinic", [Path("clinic")]),
        ("/srv/a:/srv/b", [Path("/srv/a"), Path("/srv/b")]),
        ("a::b: :", [Path("a"), Path("b")]),
    ],
)
def test_content_paths_split_on_colon(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[Path]
) -> None:
    assert load_with(monkeypatch, CONTENT_DIRS=raw).content_paths == expected


def test_api_url_trailing_slash_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_with(monkeypatch, TELEGRAM_API_URL="http://127.0.0.1:8081/")
    assert settings.bot_base_url == "http://127.0.0.1:8081/bot"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8081", "http://localhost:8081", "http://[::1]:8081", "https://x.org"]
)
def test_plain_http_only_on_loopback(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    assert load_with(monkeypatch, TELEGRAM_API_URL=url).telegram_api_url == url


def test_metrics_token_hidden_from_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_with(monkeypatch, METRICS_TOKEN="scrape-me-0123456789")
    assert "scrape-me" not in repr(settings)


def test_valid_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_with(
        monkeypatch,
        DATABASE_URL="postgresql+asyncpg://u:p@db/afterglow",
        CLINIC_TIMEZONE="America/New_York",
        SEND_RATE="30",
        HTTP_PORT="0",
        LOG_FORMAT="json",
        ONCALL_CHAT_ID="-100123",
    )
    assert settings.zone.key == "America/New_York"
    assert (settings.send_rate, settings.http_port, settings.oncall_chat_id) == (30.0, 0, -100123)


def test_encryption_keys_hidden_from_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "supersecretkey" not in repr(load_with(monkeypatch, ENCRYPTION_KEYS="supersecretkey"))


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MODE": "webhook", "WEBHOOK_URL": "https://bot.example"}, "AFTERGLOW_WEBHOOK_SECRET"),
        ({"MODE": "webhook", "WEBHOOK_URL": "http://bot.example", "WEBHOOK_SECRET": "s"}, "https"),
        ({"WEBHOOK_SECRET": "has spaces"}, "AFTERGLOW_WEBHOOK_SECRET"),
    ],
)
def test_webhook_settings_are_checked(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_with(monkeypatch, **env)
    assert named in str(err.value) and "\n" not in str(err.value)


def test_debug_logging_never_lets_telegram_log_payloads() -> None:
    import logging

    from bot.logs import setup_logging

    setup_logging("text", "DEBUG")
    try:
        assert logging.getLogger("telegram").getEffectiveLevel() >= logging.INFO
        assert logging.getLogger("telegram.ext").getEffectiveLevel() >= logging.INFO
        assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
    finally:
        setup_logging("text", "WARNING")
