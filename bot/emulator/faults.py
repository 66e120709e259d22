"""Errors the emulator answers with, and the failures a test or demo asks it to inject."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any


class ApiError(Exception):
    """A Bot API error answer: HTTP status plus Telegram's description and parameters."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


BLOCKED = "Forbidden: bot was blocked by the user"


def default_description(status: int, retry_after: int | None) -> str:
    if status == 400:
        return "Bad Request: injected failure"
    if status == 403:
        return BLOCKED
    if status == 429:
        return f"Too Many Requests: retry after {retry_after or 1}"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Injected failure"


@dataclass
class Fault:
    """One queued failure. ``delivered`` means the call took effect before the answer was lost,
    which is the case a sender cannot tell apart from a call that never arrived."""

    method: str
    status: int
    description: str
    retry_after: int | None
    remaining: int | None
    chat_id: int | None
    exception: type[BaseException] | BaseException | None
    delivered: bool

    def matches(self, method: str, chat_id: int | None) -> bool:
        return self.method == method and (self.chat_id is None or self.chat_id == chat_id)

    def error(self) -> ApiError:
        parameters = {"retry_after": self.retry_after} if self.retry_after is not None else None
        return ApiError(self.status, self.description, parameters)

    def raise_exception(self) -> None:
        exception = self.exception
        if isinstance(exception, type):
            exception = exception("Injected fault")
        if exception is not None:
            raise exception


@dataclass
class RandomFault:
    method: str
    ratio: float
    template: Fault
    rng: random.Random


@dataclass
class FaultBook:
    """Queued faults fire first-in first-out; random faults fire only when none is queued."""

    queued: list[Fault] = field(default_factory=list)
    random_faults: list[RandomFault] = field(default_factory=list)

    def take(self, method: str, chat_id: int | None) -> Fault | None:
        for fault in self.queued:
            if fault.matches(method, chat_id):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.queued.remove(fault)
                return fault
        for rule in self.random_faults:
            if rule.template.matches(method, chat_id) and rule.rng.random() < rule.ratio:
                return rule.template
        return None

    def clear(self) -> None:
        self.queued.clear()
        self.random_faults.clear()
