"""What every handler, service call and the dispatcher share: built once in the composition root."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import Clock
from bot.config import Settings
from bot.db.crypto import Cipher
from bot.db.engine import SessionFactory
from bot.domain.content import ContentLibrary
from bot.domain.safety import CrisisTexts, Screener


def instance_name() -> str:
    """Identifies this replica in delivery leases."""
    return f"{socket.gethostname()[:40]}-{uuid.uuid4().hex[:8]}"


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    clock: Clock
    cipher: Cipher
    content: ContentLibrary
    screener: Screener
    crisis: CrisisTexts
    instance: str = field(default_factory=instance_name)
    bot_username: str = ""
