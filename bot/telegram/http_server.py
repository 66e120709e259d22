"""uvicorn inside a process that owns its own signals (the service, the demo, tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """SIGINT/SIGTERM belong to the caller, who stops the server by setting should_exit."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
