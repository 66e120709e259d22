"""Settings: the only reader of the environment (and of a `.env` file)."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.languages import parse_languages

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_duration(value: object) -> timedelta:
    """Read `90s`, `15m`, `6h`, `3d`, or a bare number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration like 15m, 6h or 3d, got {value!r}")
    try:
        return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2) or "s"])
    except OverflowError:
        raise ValueError(f"duration {value!r} is too large") from None


class ConfigError(Exception):
    """Bad configuration, phrased as one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AFTERGLOW_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,
        frozen=True,
    )

    bot_token: str | None = None
    database_url: str = "sqlite+aiosqlite:///afterglow.db"
    telegram_api_url: str = "https://api.telegram.org"
    encryption_keys: str | None = Field(default=None, repr=False)
    key_file: Path = Path("afterglow.key")
    clinic_timezone: str = "UTC"
    clinic_name: str = "your clinic"
    clinic_phone: str | None = None
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    # The https base URL where the HTTP server is reachable: the Mini App and sign-in links
    # (http:// only on loopback, for a workspace used on the same machine).
    public_url: str | None = None
    webhook_secret: str | None = Field(default=None, repr=False)
    http_port: int = Field(default=8080, ge=0, le=65535)
    # 127.0.0.1 keeps /metrics and /readyz off the network (a scraper on the same host, or
    # a reverse proxy in front of the webhook).
    http_host: str = "0.0.0.0"  # noqa: S104 - a container's port is published deliberately
    metrics_token: str | None = Field(default=None, repr=False)
    content_dirs: str = ""
    misfire_grace: timedelta = timedelta(hours=6)
    nudge_after: timedelta = timedelta(hours=24)
    answer_window: timedelta = timedelta(hours=72)
    alert_escalate_after: timedelta = timedelta(minutes=15)
    # How long before a planned session its therapist gets the brief; 0 turns it off.
    brief_before: timedelta = timedelta(hours=2)
    oncall_chat_id: int | None = None
    send_rate: float = Field(default=25.0, gt=0, le=30)
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    dispatch_interval: float = Field(default=1.0, gt=0, le=60)
    # A questionnaire's score is the therapist's to discuss; a clinic may choose to show it.
    show_scores_to_patient: bool = False
    # The languages offered to patients (built in: en, es, de) and the one they fall back to.
    languages: str = "en,es,de"
    default_language: str = "en"

    @field_validator(
        "misfire_grace",
        "nudge_after",
        "answer_window",
        "alert_escalate_after",
        "brief_before",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: str) -> str:
        return ",".join(parse_languages(value))

    @field_validator("clinic_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Berlin)") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        # Every request carries the bot token and patient text: plain http only to this host
        # (a local Bot API server, the demo's emulator).
        if value.startswith("http://") and not is_loopback(urlsplit(value).hostname or ""):
            raise ValueError("must be https (http only for a server on this machine: loopback)")
        return value.rstrip("/")

    @field_validator("bot_token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", value.strip()):
            raise ValueError("does not look like a bot token (digits:letters, from @BotFather)")
        return value.strip() if value else None

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = value.strip().rstrip("/")
        if not re.fullmatch(
            r"https://[^\s/?#]+(/[^\s?#]*)?|http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/[^\s?#]*)?",
            url,
        ):
            raise ValueError("must be an https:// URL (http:// only for 127.0.0.1 or localhost)")
        return url

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[!-~]{16,256}", value):
            raise ValueError("must be 16-256 printable characters without spaces")
        return value

    @model_validator(mode="after")
    def _webhook(self) -> Settings:
        if self.mode == "webhook":
            if not self.webhook_base or not self.webhook_base.startswith("https://"):
                raise ValueError(
                    "AFTERGLOW_WEBHOOK_URL: an https:// URL is required when AFTERGLOW_MODE=webhook"
                )
            if not self.webhook_secret:
                raise ValueError("AFTERGLOW_WEBHOOK_SECRET is required when AFTERGLOW_MODE=webhook")
        return self

    @model_validator(mode="after")
    def _default_language(self) -> Settings:
        if self.default_language not in self.offered_languages:
            raise ValueError(
                f"AFTERGLOW_DEFAULT_LANGUAGE: {self.default_language!r} is not in "
                f"AFTERGLOW_LANGUAGES ({self.languages})"
            )
        return self

    @property
    def webhook_base(self) -> str | None:
        """AFTERGLOW_WEBHOOK_URL, which defaults to AFTERGLOW_PUBLIC_URL."""
        return self.webhook_url or self.public_url

    @property
    def workspace_url(self) -> str:
        """Where a therapist's browser reaches /app: the public URL, else this machine."""
        return self.public_url or f"http://127.0.0.1:{self.http_port}"

    @property
    def mini_app(self) -> bool:
        """Telegram opens a Mini App only from an https URL."""
        return (self.public_url or "").startswith("https://")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.clinic_timezone)

    @property
    def offered_languages(self) -> tuple[str, ...]:
        return parse_languages(self.languages)

    @property
    def content_paths(self) -> list[Path]:
        return [Path(part) for part in self.content_dirs.split(":") if part.strip()]

    @property
    def bot_base_url(self) -> str:
        """PTB appends the token and the method to this."""
        return f"{self.telegram_api_url}/bot"

    def require_token(self) -> str:
        if not self.bot_token:
            raise ConfigError(
                "AFTERGLOW_BOT_TOKEN is not set: get a token from @BotFather and set it"
            )
        return self.bot_token


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning pydantic's report into one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        name = f"AFTERGLOW_{field.upper()}" if field else "configuration"
        message = str(first["msg"]).removeprefix("Value error, ")
        if message.startswith("AFTERGLOW_"):
            raise ConfigError(message) from None
        raise ConfigError(f"{name}: {message}") from None
