"""PacedRateLimiter on virtual time: every test runs on an event loop whose clock jumps to the
next timer whenever all tasks are asleep, so a 40-second burst takes milliseconds and the
limiter's own asyncio.sleep/locks behave exactly as in production."""

from __future__ import annotations

import asyncio
import itertools
import selectors
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from telegram.error import BadRequest, Forbidden, RetryAfter, TimedOut

from bot.telegram import ratelimit
from bot.telegram.ratelimit import PacedRateLimiter, chat_key, is_message, retry_after_seconds

T = TypeVar("T")
EPS = 1e-9


class _JumpingSelector(selectors.DefaultSelector):
    """The loop asks the selector to block until its next timer; instead, move time there."""

    def __init__(self, loop: VirtualLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("deadlock: every task is waiting and no timer is pending")
        self._loop.now += max(timeout, 0.0)
        result: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        return result


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def now() -> float:
    return asyncio.get_running_loop().time()


def limiter(**kwargs: Any) -> PacedRateLimiter:
    return PacedRateLimiter(clock=now, sleep=asyncio.sleep, **kwargs)


class Api:
    """Stands in for PTB's Bot._do_post: records when each call started."""

    def __init__(
        self, latency: float = 0.0, fail: Callable[[int, dict[str, Any]], None] | None = None
    ) -> None:
        self.latency = latency
        self.fail = fail
        self.starts: list[tuple[float, dict[str, Any]]] = []
        self.in_flight: dict[int, int] = {}
        self.max_in_flight_per_request = 0

    async def post(self, endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
        key = id(data)
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        self.max_in_flight_per_request = max(self.max_in_flight_per_request, self.in_flight[key])
        try:
            self.starts.append((now(), data))
            number = len(self.starts)
            if self.latency:
                await asyncio.sleep(self.latency)
            if self.fail is not None:
                self.fail(number, data)
            return {"ok": True, "endpoint": endpoint}
        finally:
            self.in_flight[key] -= 1

    def times(self, chat_id: int | None = None) -> list[float]:
        return [t for t, data in self.starts if chat_id is None or data.get("chat_id") == chat_id]


def send(
    rl: PacedRateLimiter,
    api: Api,
    chat_id: int | str | None,
    *,
    endpoint: str = "sendMessage",
    priority: bool = False,
    interactive: bool = False,
    text: str = "hi",
    before_send: Callable[[], Awaitable[bool]] | None = None,
) -> Awaitable[Any]:
    data: dict[str, Any] = {"text": text}
    if chat_id is not None:
        data["chat_id"] = chat_id
    lane: dict[str, Any] | None = (
        {"priority": True} if priority else {"interactive": True} if interactive else None
    )
    if before_send is not None:
        lane = {**(lane or {}), "before_send": before_send}
    return rl.process_request(
        callback=api.post,
        args=(endpoint, data),
        kwargs={},
        endpoint=endpoint,
        data=data,
        rate_limit_args=lane,
    )


def assert_rate(times: list[float], rate: float) -> None:
    """No half-open one-second window holds more than `rate` starts."""
    per_window = int(rate)
    ordered = sorted(times)
    for first, last in zip(ordered, ordered[per_window:], strict=False):
        assert last - first >= 1.0 - EPS, (first, last)


# ------------------------------------------------------------------ overall rate


def test_overall_rate_holds_over_1000_distinct_chats() -> None:
    async def main() -> list[float]:
        rl, api = limiter(overall_rate=25.0), Api(latency=0.2)
        await asyncio.gather(*(send(rl, api, chat) for chat in range(1000)))
        return api.times()

    times = run_virtual(main)
    assert len(times) == 1000
    assert_rate(times, 25.0)
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert achieved == pytest.approx(25.0, rel=0.01)
    assert times[0] == pytest.approx(0.0)


def test_burst_keeps_arrival_order() -> None:
    async def main() -> list[int]:
        rl, api = limiter(), Api()
        await asyncio.gather(*(send(rl, api, chat) for chat in range(100)))
        return [data["chat_id"] for _, data in api.starts]

    assert run_virtual(main) == list(range(100))


# ------------------------------------------------------------------ per chat


def test_five_messages_to_one_chat_are_a_second_apart_and_in_order() -> None:
    async def main() -> tuple[list[float], list[str]]:
        rl, api = limiter(), Api(latency=0.05)
        calls = []
        for i in range(5):
            data = {"chat_id": 7, "text": str(i)}
            calls.append(
                rl.process_request(api.post, ("sendMessage", data), {}, "sendMessage", data, None)
            )
        await asyncio.gather(*calls)
        return api.times(7), [data["text"] for _, data in api.starts]

    times, texts = run_virtual(main)
    assert texts == ["0", "1", "2", "3", "4"]
    assert times[-1] - times[0] >= 4.0 - EPS
    assert all(b - a >= 1.0 - EPS for a, b in itertools.pairwise(times))


def test_string_and_int_chat_ids_share_one_chat() -> None:
    async def main() -> list[float]:
        rl, api = limiter(), Api()
        await asyncio.gather(send(rl, api, 5), send(rl, api, "5"))
        return [t for t, _ in api.starts]

    first, second = run_virtual(main)
    assert second - first >= 1.0 - EPS


def test_a_busy_chat_does_not_block_other_chats() -> None:
    async def main() -> tuple[list[float], list[float]]:
        rl, api = limiter(overall_rate=25.0), Api()
        busy = [send(rl, api, 1) for _ in range(5)]  # queued first
        others = [send(rl, api, chat) for chat in range(100, 150)]
        await asyncio.gather(*busy, *others)
        return api.times(1), [t for t, d in api.starts if d["chat_id"] >= 100]

    busy, others = run_virtual(main)
    assert busy[-1] >= 4.0 - EPS
    # 51 overall slots at 25/s: the others are done by ~2 s, not after the busy chat's 4 s.
    assert max(others) <= 51 / 25.0 + EPS
    assert_rate(busy + others, 25.0)


def test_edits_and_callback_answers_are_not_paced() -> None:
    async def main() -> list[float]:
        rl, api = limiter(), Api()
        await send(rl, api, 3)
        await asyncio.gather(
            *(send(rl, api, 3, endpoint="editMessageText") for _ in range(5)),
            send(rl, api, None, endpoint="answerCallbackQuery"),
            send(rl, api, 3, endpoint="sendChatAction"),
        )
        return api.times()

    assert run_virtual(main) == [0.0] * 8


def test_message_endpoints() -> None:
    for endpoint in (
        "sendMessage",
        "sendDocument",
        "sendMediaGroup",
        "copyMessage",
        "forwardMessage",
    ):
        assert is_message(endpoint)
    for endpoint in ("editMessageText", "deleteMessage", "sendChatAction", "answerCallbackQuery"):
        assert not is_message(endpoint)
    assert chat_key({"chat_id": "42"}) == 42
    assert chat_key({"chat_id": "@clinic"}) == "@clinic"
    assert chat_key({}) is None


def test_idle_chats_are_pruned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "CHATS_BEFORE_PRUNE", 10)

    async def main() -> int:
        rl, api = limiter(overall_rate=1000.0), Api()
        await asyncio.gather(*(send(rl, api, chat) for chat in range(10)))
        await asyncio.sleep(ratelimit.PER_CHAT_INTERVAL)
        await send(rl, api, 99)
        return len(rl._chats)

    assert run_virtual(main) == 1


# ------------------------------------------------------------------ priority


def test_priority_skips_a_queue_of_1000() -> None:
    async def main() -> tuple[float, list[float], list[float], PacedRateLimiter]:
        rl, api = limiter(overall_rate=25.0), Api(latency=0.1)
        queued = [asyncio.ensure_future(send(rl, api, chat)) for chat in range(1000)]
        await asyncio.sleep(0.5)  # the queue is ~39 s long now
        asked, index = now(), len(api.starts)
        # Chat 2 was just sent to: priority ignores the per-chat spacing too.
        await send(rl, api, 2, priority=True)
        took = now() - asked
        await asyncio.gather(*queued)
        normal = api.times()
        del normal[index]
        return took, normal, api.times(), rl

    took, normal, everything, rl = run_virtual(main)
    assert took <= 0.1 + EPS  # just the API latency
    assert rl.priority_count == 1
    assert_rate(normal, 25.0)
    assert_rate(everything, 26.0)  # the borrowed slot goes over by one, once
    # ... and the queue moved back one slot, so the long-run rate is unchanged.
    assert (len(everything) - 1) / (everything[-1] - everything[0]) <= 25.0 * (1 + 1e-9)


def test_priority_send_delays_the_next_normal_message_to_its_chat() -> None:
    async def main() -> list[float]:
        rl, api = limiter(), Api()
        await send(rl, api, 9, priority=True)
        await send(rl, api, 9)
        return api.times(9)

    first, second = run_virtual(main)
    assert second - first >= 1.0 - EPS


# ------------------------------------------------------------------ interactive


def test_interactive_takes_the_next_slot_ahead_of_queued_prompts() -> None:
    async def main() -> tuple[float, list[float], list[int], PacedRateLimiter]:
        rl, api = limiter(overall_rate=25.0), Api()
        queued = [asyncio.ensure_future(send(rl, api, chat)) for chat in range(100)]
        await asyncio.sleep(0.5)  # 13 prompts out, 87 waiting: ~3.5 s of queue
        asked = now()
        await send(rl, api, 500, interactive=True)
        took = now() - asked
        await asyncio.gather(*queued)
        order = [data["chat_id"] for _, data in api.starts]
        return took, api.times(), order, rl

    took, times, order, rl = run_virtual(main)
    assert took <= 1 / 25.0 + EPS  # the next free slot, not behind the 87
    assert order.index(500) == 13
    assert rl.interactive_count == 1
    # Unlike priority it borrows nothing: no one-second window holds more than 25.
    assert_rate(times, 25.0)


def test_interactive_keeps_the_chats_spacing_and_order() -> None:
    async def main() -> list[tuple[float, str]]:
        rl, api = limiter(), Api()
        await send(rl, api, 7, text="prompt")  # a prompt just went to chat 7
        await asyncio.gather(
            *(send(rl, api, 7, interactive=True, text=f"ack {i}") for i in range(3))
        )
        return [(t, data["text"]) for t, data in api.starts]

    starts = run_virtual(main)
    assert [text for _, text in starts] == ["prompt", "ack 0", "ack 1", "ack 2"]
    times = [t for t, _ in starts]
    assert all(b - a >= 1.0 - EPS for a, b in itertools.pairwise(times))


def test_interactive_waits_behind_a_prompt_already_queued_for_its_own_chat() -> None:
    """Within a chat the FIFO holds: the person reads messages in the order they were sent."""

    async def main() -> list[str]:
        rl, api = limiter(overall_rate=25.0), Api()
        queued = [asyncio.ensure_future(send(rl, api, chat)) for chat in range(50)]
        mine = asyncio.ensure_future(send(rl, api, 49, text="prompt"))  # 2nd for chat 49
        await asyncio.sleep(0.1)
        await send(rl, api, 49, interactive=True, text="ack")
        await asyncio.gather(*queued, mine)
        return [data["text"] for _, data in api.starts if data["chat_id"] == 49]

    assert run_virtual(main) == ["hi", "prompt", "ack"]


def test_overall_rate_holds_over_a_mixed_burst() -> None:
    async def main() -> tuple[list[float], list[float]]:
        rl, api = limiter(overall_rate=25.0), Api(latency=0.05)
        prompts = [asyncio.ensure_future(send(rl, api, chat)) for chat in range(300)]
        waits: list[float] = []

        async def answer(chat: int) -> None:
            asked = now()
            await send(rl, api, chat, interactive=True)
            waits.append(now() - asked - 0.05)

        answers = []
        for i in range(100):  # 10 answers a second for 10 s, into the prompt queue
            answers.append(asyncio.ensure_future(answer(1000 + i)))
            await asyncio.sleep(0.1)
        await asyncio.gather(*prompts, *answers)
        return api.times(), waits

    times, waits = run_virtual(main)
    assert len(times) == 400
    assert_rate(times, 25.0)
    assert (len(times) - 1) / (times[-1] - times[0]) <= 25.0 * (1 + 1e-9)
    assert max(waits) <= 1 / 25.0 + EPS  # every answer took the next slot


def test_interactive_requests_keep_their_arrival_order() -> None:
    async def main() -> list[int]:
        rl, api = limiter(overall_rate=10.0), Api()
        prompts = [asyncio.ensure_future(send(rl, api, chat)) for chat in range(20)]
        await asyncio.sleep(0.05)
        answers = [
            asyncio.ensure_future(send(rl, api, c, interactive=True)) for c in range(100, 110)
        ]
        await asyncio.gather(*prompts, *answers)
        return [data["chat_id"] for _, data in api.starts]

    order = run_virtual(main)
    assert order[1:11] == list(range(100, 110))  # after the first prompt, before the other 19
    assert order[11:] == list(range(1, 20))


def test_429_pauses_interactive_requests_too() -> None:
    def fail_first(n: int, _data: dict[str, Any]) -> None:
        if n == 1:
            raise RetryAfter(timedelta(seconds=2))

    async def main() -> tuple[float, list[float]]:
        rl, api = limiter(overall_rate=25.0), Api(fail=fail_first)
        prompts = [asyncio.ensure_future(send(rl, api, chat)) for chat in range(20)]
        await asyncio.sleep(0.5)  # inside the 2.1 s pause
        await send(rl, api, 500, interactive=True)
        answered = api.times(500)[0]
        await asyncio.gather(*prompts)
        return answered, [t for t, d in api.starts if d["chat_id"] != 500]

    answered, prompts = run_virtual(main)
    assert answered == pytest.approx(2.1)  # the end of the pause, and first after it
    assert prompts[0] == 0.0
    assert all(t >= 2.1 + 1 / 25.0 - EPS for t in prompts[1:])


def test_a_429_on_an_interactive_send_retries_ahead_of_the_prompts() -> None:
    def fail_first(n: int, _data: dict[str, Any]) -> None:
        if n == 1:
            raise RetryAfter(1)

    async def main() -> list[tuple[float, int]]:
        rl, api = limiter(overall_rate=25.0), Api(fail=fail_first)
        answer = asyncio.ensure_future(send(rl, api, 1, interactive=True))
        await asyncio.sleep(0)  # its first try is out and refused
        prompts = [asyncio.ensure_future(send(rl, api, chat)) for chat in range(10, 40)]
        await asyncio.gather(answer, *prompts)
        return [(t, data["chat_id"]) for t, data in api.starts]

    first, *rest = run_virtual(main)
    assert first == (0.0, 1)
    retried_at, retried_chat = rest[0]
    assert retried_chat == 1 and retried_at == pytest.approx(1.1)  # first after the pause
    assert all(t >= 1.1 + 1 / 25.0 - EPS for t, _ in rest[1:])
    assert_rate([t for t, _ in rest], 25.0)


def test_interactive_flag_on_an_edit_is_direct() -> None:
    async def main() -> list[float]:
        rl, api = limiter(), Api()
        await send(rl, api, 3)
        await send(rl, api, 3, endpoint="editMessageText", interactive=True)
        return api.times()

    assert run_virtual(main) == [0.0, 0.0]


def test_a_cancelled_request_does_not_stall_the_queue() -> None:
    async def main() -> tuple[list[int], int]:
        rl, api = limiter(overall_rate=10.0), Api()
        requests = [asyncio.ensure_future(send(rl, api, chat)) for chat in range(10)]
        answers = [asyncio.ensure_future(send(rl, api, c, interactive=True)) for c in (100, 101)]
        await asyncio.sleep(0.01)
        answers[0].cancel()  # the head, asleep until its slot
        requests[1].cancel()  # the paced head
        requests[5].cancel()  # one in the middle of the queue
        await asyncio.gather(*requests, *answers, return_exceptions=True)
        return [data["chat_id"] for _, data in api.starts], rl._pacer.queued

    order, left = run_virtual(main)
    assert order == [0, 101, 2, 3, 4, 6, 7, 8, 9]
    assert left == 0


# ------------------------------------------------------------------ RetryAfter


def test_retry_after_waits_then_retries_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)

    def fail_first(n: int, _data: dict[str, Any]) -> None:
        if n == 1:
            raise RetryAfter(2)

    async def main() -> tuple[Any, Api, PacedRateLimiter]:
        rl, api = limiter(), Api(latency=0.3, fail=fail_first)
        result = await send(rl, api, 1)
        return result, api, rl

    result, api, rl = run_virtual(main)
    assert result == {"ok": True, "endpoint": "sendMessage"}
    first, second = api.times()
    assert second - first >= 0.3 + 2.0  # the 429 came back after the latency
    assert rl.retry_after_count == 1
    assert api.max_in_flight_per_request == 1
    assert rl.waited_total >= 2.0


def test_retry_after_pauses_other_normal_requests_but_not_priority() -> None:
    def fail_first(n: int, _data: dict[str, Any]) -> None:
        if n == 1:
            raise RetryAfter(timedelta(seconds=3))

    async def main() -> tuple[list[float], float]:
        rl, api = limiter(overall_rate=25.0), Api(fail=fail_first)
        normal = [asyncio.ensure_future(send(rl, api, chat)) for chat in range(50)]
        await asyncio.sleep(1.0)
        await send(rl, api, 999, priority=True)
        priority_at = api.times(999)[0]
        await asyncio.gather(*normal)
        return [t for t, d in api.starts if d["chat_id"] != 999], priority_at

    normal, priority_at = run_virtual(main)
    assert priority_at == pytest.approx(1.0)
    assert normal[0] == 0.0
    assert all(t >= 3.1 - EPS for t in normal[1:])  # nothing between the 429 and its end
    assert len(normal) == 51  # 50 + the retry
    assert_rate(normal[1:], 25.0)


def test_overlapping_429s_do_not_stack_their_pauses() -> None:
    def fail_first_two(n: int, _data: dict[str, Any]) -> None:
        if n <= 2:
            raise RetryAfter(2)

    async def main() -> list[float]:
        rl, api = limiter(overall_rate=25.0), Api(latency=0.5, fail=fail_first_two)
        await asyncio.gather(*(send(rl, api, chat) for chat in range(4)))
        return api.times()

    times = run_virtual(main)
    # Two 429s in flight together, 2.1 s each, ending 0.04 s apart: one pause, not 4.2 s.
    assert max(times) < 0.54 + 2.1 + 4 * 0.04 + EPS


def test_gives_up_after_max_retries_and_reraises() -> None:
    def always(_n: int, _data: dict[str, Any]) -> None:
        raise RetryAfter(1)

    async def main() -> tuple[Api, PacedRateLimiter]:
        rl, api = limiter(max_retries=3), Api(fail=always)
        with pytest.raises(RetryAfter):
            await send(rl, api, 1)
        return api, rl

    api, rl = run_virtual(main)
    assert len(api.starts) == 4  # the first try and three retries
    assert rl.retry_after_count == 4
    assert api.max_in_flight_per_request == 1


def test_priority_retry_waits_only_its_own_retry_after() -> None:
    def fail_first(n: int, _data: dict[str, Any]) -> None:
        if n == 1:
            raise RetryAfter(1)

    async def main() -> list[float]:
        rl, api = limiter(max_retries=1), Api(fail=fail_first)
        await send(rl, api, 1, priority=True)
        return api.times()

    assert run_virtual(main) == pytest.approx([0.0, 1.1])


@pytest.mark.parametrize("error", [Forbidden("blocked"), BadRequest("chat not found"), TimedOut()])
def test_other_errors_pass_through_untouched(error: Exception) -> None:
    def boom(_n: int, _data: dict[str, Any]) -> None:
        raise error

    async def main() -> tuple[BaseException, Api, PacedRateLimiter]:
        rl, api = limiter(), Api(fail=boom)
        with pytest.raises(type(error)) as caught:
            await send(rl, api, 1)
        return caught.value, api, rl

    raised, api, rl = run_virtual(main)
    assert raised is error
    assert len(api.starts) == 1
    assert rl.retry_after_count == 0


def test_retry_after_seconds_reads_int_and_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    assert retry_after_seconds(RetryAfter(5)) == 5.0
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    assert retry_after_seconds(RetryAfter(timedelta(seconds=1.5))) == 1.5


def test_rejects_nonsense_configuration() -> None:
    with pytest.raises(ValueError):
        PacedRateLimiter(overall_rate=0)
    with pytest.raises(ValueError):
        PacedRateLimiter(max_retries=-1)


async def test_initialize_and_shutdown_on_the_real_loop() -> None:
    rl = PacedRateLimiter(overall_rate=1000.0, per_chat_interval=0.05)
    await rl.initialize()
    api = Api()
    await asyncio.gather(send(rl, api, 1), send(rl, api, 1), send(rl, api, 2))
    await rl.shutdown()
    assert len(api.starts) == 3


def test_a_late_wake_up_never_releases_a_burst() -> None:
    """A stalled event loop wakes the head of the queue late; catching up must keep every two
    sends at least MIN_GAP slots apart, or Telegram sees more than 30 in a second."""

    async def main() -> list[float]:
        stalls = itertools.cycle([0.0, 0.0, 0.3])

        async def late_sleep(seconds: float) -> None:
            await asyncio.sleep(seconds + next(stalls))

        pacer = ratelimit.Pacer(25.0, now, late_sleep)
        released: list[float] = []

        async def one() -> None:
            await pacer.wait_turn()
            released.append(now())

        await asyncio.gather(*(one() for _ in range(60)))
        return released

    released = run_virtual(main)
    gaps = [b - a for a, b in itertools.pairwise(released)]
    assert min(gaps) >= ratelimit.MIN_GAP / 25.0 - EPS
    # Still catching up: the stalls cost less than their sum.
    assert released[-1] - released[0] < 59 / 25.0 + 0.3 * 19


# ------------------------------------------------------------------ before_send


def test_before_send_runs_when_the_slot_comes_right_before_the_request() -> None:
    """The dispatcher commits `sending` here: a request still queued must not have run it."""

    async def main() -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
        rl, api = limiter(overall_rate=10.0), Api()
        hooked: list[tuple[float, int]] = []

        def hook(chat: int) -> Callable[[], Awaitable[bool]]:
            async def admitted() -> bool:
                # Nothing of this chat has gone out yet when its hook runs.
                assert all(data["chat_id"] != chat for _, data in api.starts)
                hooked.append((now(), chat))
                return True

            return admitted

        await asyncio.gather(*(send(rl, api, chat, before_send=hook(chat)) for chat in range(5)))
        return hooked, [(t, data["chat_id"]) for t, data in api.starts]

    hooked, starts = run_virtual(main)
    assert hooked == starts  # same moments, same order: 0.0, 0.1, 0.2, ...
    assert [t for t, _ in hooked] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_before_send_runs_once_across_429_retries() -> None:
    def fail_first_two(n: int, _data: dict[str, Any]) -> None:
        if n <= 2:
            raise RetryAfter(1)

    async def main() -> tuple[int, Api]:
        rl, api = limiter(max_retries=3), Api(fail=fail_first_two)
        calls = 0

        async def admitted() -> bool:
            nonlocal calls
            calls += 1
            return True

        await send(rl, api, 1, before_send=admitted)
        return calls, api

    calls, api = run_virtual(main)
    assert calls == 1  # a retry is the same send, already marked
    assert len(api.starts) == 3


def test_a_declined_request_is_withdrawn_unsent_and_costs_its_chat_nothing() -> None:
    async def main() -> tuple[Api, list[float]]:
        rl, api = limiter(), Api()

        async def declined() -> bool:
            return False

        with pytest.raises(ratelimit.Withdrawn):
            await send(rl, api, 4, before_send=declined)
        await send(rl, api, 4)
        return api, api.times(4)

    api, times = run_virtual(main)
    # Nothing went to chat 4 the first time, so the next message owes it no per-chat spacing,
    # only the next overall slot (the withdrawn request spent its own).
    assert times == pytest.approx([1 / 25.0])
    assert len(api.starts) == 1


def test_an_error_in_before_send_propagates_and_nothing_is_sent() -> None:
    async def main() -> tuple[Api, int]:
        rl, api = limiter(), Api()

        async def broken() -> bool:
            raise ConnectionError("database went away")

        with pytest.raises(ConnectionError):
            await send(rl, api, 4, before_send=broken)
        return api, rl._pacer.queued

    api, queued = run_virtual(main)
    assert api.starts == [] and queued == 0


def test_chat_spacing_counts_from_when_the_request_left() -> None:
    """A slow hook (a commit under load) delays the request; the chat's next message keeps its
    full distance from when the first one really left, not from its slot."""

    async def main() -> list[float]:
        rl, api = limiter(), Api()

        async def slow() -> bool:
            await asyncio.sleep(0.5)
            return True

        await asyncio.gather(send(rl, api, 8, before_send=slow), send(rl, api, 8))
        return api.times(8)

    first, second = run_virtual(main)
    assert first == pytest.approx(0.5)
    assert second - first >= ratelimit.PER_CHAT_INTERVAL - EPS
