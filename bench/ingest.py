"""Reply ingestion: patients' free-text answers through `Application.process_update`, one after
another as PTB's polling loop hands them over — the once-only update guard, crisis screening,
linking to the reflection, Fernet encryption, the database write and the acknowledgement.

    python -m bench.ingest [--quick] [--postgres URL]

Each patient answers their own reflection by replying to it (the ForceReply path). Updates are
real `Update` objects built from the emulator's update dicts before the clock starts (the
`de_json` cost is reported apart). The bot answers through the in-process fake Bot API, whose own
CPU is reported apart. Main rows run without the outgoing rate limiter (the bot's own cost);
extra rows run with the production `PacedRateLimiter` against a fake that enforces Telegram's
limits (30 messages/s overall, 1/s per chat, 429 past them): 150 replies; 10 patients answering
in three quick messages each; and 20 replies plus one crisis message arriving during a burst of
1,000 prompts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import time
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from telegram import Update

from bench.common import (
    THERAPIST_USER_ID,
    SqlCounter,
    Stopwatch,
    backends,
    base_parser,
    bench_settings,
    create_schema,
    database,
    delivery_row,
    insert_deliveries,
    minutes,
    open_chats,
    print_table,
    quiet_logs,
    seed_patients,
    utcnow,
    write_results,
)
from bench.dispatch import MeteredFakeBotApi
from bench.emuproc import EnforcingState
from bot.app import build_application, build_runtime
from bot.db.models import Delivery, DeliveryState, Reply
from bot.emulator import BotApiState

GOAL = 1000.0  # replies/s
RAPID_PATIENTS = 10  # each sends three messages in a row (one answer typed in pieces)
BURST_PROMPTS = 1000  # prompts the dispatcher is sending while replies come in
BURST_REPLIES = 20  # replies queued ahead of one crisis message
CRISIS_TEXT = "I don't want to be alive anymore"
LIMITED_N = 150  # the production-limiter row: acks paced at the send rate, so keep it short

SENTENCES = (
    "I slept better than I expected.",
    "Mostly I felt calm, a bit tired in the afternoon.",
    "Walking by the river helped me notice my breathing again.",
    "The old thought about not being good enough came back, but it felt quieter.",
    "I wrote two pages in my journal before breakfast.",
    "My partner said I seemed lighter this week.",
    "Work was stressful and I snapped at a colleague, which I regret.",
    "I noticed the urge to check my phone and let it pass.",
    "There was a moment of real tenderness with my sister.",
    "I keep thinking about the image of the open door from the session.",
    "Honestly I'm not sure what stood out; it all feels a bit blurry.",
    "I want to bring up my father at our next session.",
    "Sleep: 6 hours, woke once around 3am.",
    "I cooked a proper meal for the first time in weeks.",
    "Kind words to myself: you are doing the work, and that counts.",
    "Small step: I will call my friend on Thursday.",
)


def enforce_telegram_limits(state: EnforcingState) -> None:
    """From here on the fake answers 429 past 30 messages/s overall or 1/s per chat (the set-up
    before this, which sends every patient a reflection, is not Telegram's business)."""
    state.overall_per_second = 30
    state.per_chat_interval = 1.0
    state.forget_arrivals()


def delivered_since(state: EnforcingState, since: datetime) -> list[Any]:
    """Messages the fake accepted from `since` on (429s excluded)."""
    return [c for c in state.calls_to("sendMessage") if c.status == 200 and c.time >= since]


def reply_text(rng: random.Random) -> str:
    return " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 5)))


async def prepare(
    state: BotApiState, rt: Any, n: int, rng: random.Random
) -> tuple[list[dict[str, Any]], float]:
    """n patients who each got a reflection (sent through the emulator, so reply-to works) and
    answer it; returns the raw update dicts and the seconds de_json took for them."""
    now = utcnow()
    await seed_patients(rt.engine, n, now=now)
    people = await open_chats(state, n)
    await open_chats(state, 1, first_user_id=THERAPIST_USER_ID)  # alerts reach the therapist
    message_ids = []
    for person in people:
        status, body = await state.call(
            "sendMessage",
            {
                "chat_id": person.id,
                "text": "What stood out for you today?",
                "reply_markup": json.dumps({"force_reply": True}),
                "protect_content": True,
            },
        )
        assert status == 200, body
        message_ids.append(body["result"]["message_id"])
    sent_at = now - minutes(30)
    await insert_deliveries(
        rt.engine,
        (
            delivery_row(
                i + 1,
                "ref-what-stood-out",
                sent_at,
                now,
                state=DeliveryState.SENT,
                sent_at=sent_at,
                telegram_message_id=message_ids[i],
            )
            for i in range(n)
        ),
    )
    raws = []
    for person, message_id in zip(people, message_ids, strict=True):
        text = reply_text(rng)
        while rt.screener.screen(text) is not None:  # no crisis path in the main rows (the
            text = reply_text(rng)  # model flags a few ordinary texts: its false alerts)
        raws.append(await state.send_text(person, text, reply_to=message_id))
    state.drain_updates()
    return raws, 0.0


async def one_case(
    backend: str, n: int, pg_url: str | None, *, rate_limit: bool = False
) -> dict[str, Any]:
    rng = random.Random(n)
    async with database(backend, pg_url) as url:
        settings = bench_settings(url)
        rt = build_runtime(settings)
        await create_schema(rt.engine)
        state = EnforcingState(token=settings.require_token())
        raws, _ = await prepare(state, rt, n, rng)
        fake = MeteredFakeBotApi(state)
        app = build_application(rt, request=fake, rate_limit=rate_limit, dispatch_job=False)
        if rate_limit:
            enforce_telegram_limits(state)
        await app.initialize()
        # Warm-up: one update through every layer (first imports, statement caches).
        warm = await state.send_text(state.user(42, "Visitor"), "hello")
        state.drain_updates()
        await app.process_update(Update.de_json(warm, app.bot))
        started = time.perf_counter()
        updates = [Update.de_json(raw, app.bot) for raw in raws]
        de_json_s = time.perf_counter() - started
        gc.collect()
        fake.cpu = 0.0
        sql = SqlCounter(rt.engine)
        async with Stopwatch.running() as watch:
            for update in updates:
                await app.process_update(update)
        async with rt.sessions() as session:
            replies = await session.scalar(select(func.count()).select_from(Reply))
            answered = await session.scalar(
                select(func.count()).where(Delivery.state == DeliveryState.ANSWERED)
            )
        acks = sum(1 for call in state.calls_to("sendMessage") if call.status == 200)
        await app.shutdown()
        await rt.engine.dispose()
    assert replies == n and answered == n, (replies, answered)
    row: dict[str, Any] = {
        "backend": backend,
        "limiter": "production" if rate_limit else "off",
        "n": n,
        "seconds": round(watch.wall, 3),
        "per_second": round(n / watch.wall, 1),
        "cpu_ms_per_update": round(watch.cpu / n * 1000, 3),
        "fake_api_cpu_ms": round(fake.cpu / n * 1000, 3),
        "de_json_ms": round(de_json_s / n * 1000, 3),
        "acks_sent": acks - n,  # minus the reflections the set-up sent
        "http_429": sum(state.rejected.values()) if rate_limit else None,
        "http_429_by_limit": dict(state.rejected),
    }
    row["bot_cpu_ms_per_update"] = round(row["cpu_ms_per_update"] - row["fake_api_cpu_ms"], 3)
    row.update(sql.per(n))
    row["goal_met"] = row["per_second"] >= GOAL
    return row


async def rapid_case(backend: str, pg_url: str | None) -> dict[str, Any]:
    """Production limiter, Telegram's limits enforced: 10 patients each answer in three quick
    messages (they join into one reply); every message is acknowledged. Counts 429s."""
    rng = random.Random(3)
    async with database(backend, pg_url) as url:
        settings = bench_settings(url)
        rt = build_runtime(settings)
        await create_schema(rt.engine)
        state = EnforcingState(token=settings.require_token())
        raws, _ = await prepare(state, rt, RAPID_PATIENTS, rng)
        for raw in list(raws):
            person = state.user(raw["message"]["from"]["id"], "R")
            for _ in range(2):
                raws.append(await state.send_text(person, reply_text(rng)))
        state.drain_updates()
        raws.sort(key=lambda raw: raw["update_id"])
        fake = MeteredFakeBotApi(state)
        app = build_application(rt, request=fake, dispatch_job=False)  # production limiter
        enforce_telegram_limits(state)
        await app.initialize()
        await app.start()
        limiter = app.bot.rate_limiter
        chats = {raw["message"]["chat"]["id"] for raw in raws}
        try:
            async with Stopwatch.running() as watch:
                arrived = utcnow()
                # As the polling loop would: fetched together, queued in order, handled by
                # the production update processor (chats side by side, each chat in order).
                for raw in raws:
                    await app.update_queue.put(Update.de_json(raw, app.bot))
                deadline = time.monotonic() + 120
                while True:
                    acks = [
                        call
                        for call in delivered_since(state, arrived)
                        if int(call.params["chat_id"]) in chats
                    ]
                    if len(acks) >= len(raws):
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{len(acks)} of {len(raws)} acknowledgements")
                    await asyncio.sleep(0.02)
        finally:
            await app.stop()
            await app.shutdown()
            await rt.engine.dispose()
        updates = raws
    return {
        "backend": backend,
        "limiter": "production, 3 quick messages each",
        "n": len(updates),
        "seconds": round(watch.wall, 3),
        "per_second": round(len(updates) / watch.wall, 1),
        "http_429": sum(state.rejected.values()),
        "http_429_by_limit": dict(state.rejected),
        "limiter_429_seen": getattr(limiter, "retry_after_count", None),
        "goal_met": None,
    }


async def burst_case(backend: str, pg_url: str | None) -> dict[str, Any]:
    """Production wiring (PacedRateLimiter, JobQueue tick, PTB's own update loop) while 1,000
    prompts go out: 20 replies arrive together, then one crisis message, all put on
    `app.update_queue` as polling would. Reported: replies/s (to the last acknowledgement) and
    how long the crisis message waited for its resources."""
    rng = random.Random(7)
    async with database(backend, pg_url) as url:
        settings = bench_settings(url, dispatch_interval=1.0)
        rt = build_runtime(settings)
        await create_schema(rt.engine)
        state = EnforcingState(token=settings.require_token())
        # Patients 1..20 answer a reflection, 21 is in crisis, 22..1021 get the burst.
        raws, _ = await prepare(state, rt, BURST_REPLIES + 1 + BURST_PROMPTS, rng)
        replies, crisis_person = raws[:BURST_REPLIES], raws[BURST_REPLIES]["message"]["from"]
        now = utcnow()
        await insert_deliveries(
            rt.engine,
            (
                delivery_row(BURST_REPLIES + 2 + i, "edu-window", now, now)
                for i in range(BURST_PROMPTS)
            ),
        )
        fake = MeteredFakeBotApi(state)
        app = build_application(rt, request=fake)  # production limiter, dispatcher on the JobQueue
        enforce_telegram_limits(state)
        await app.initialize()
        await app.start()
        try:
            while True:  # until the burst is under way
                if len(state.calls_to("sendMessage")) >= len(raws) + 30:
                    break
                await asyncio.sleep(0.05)
            crisis_raw = await state.send_text(state.user(crisis_person["id"], "C"), CRISIS_TEXT)
            state.drain_updates()
            repliers = {raw["message"]["chat"]["id"] for raw in replies}
            arrived = utcnow()
            # As the polling loop would: all 21 fetched in one getUpdates, queued in order.
            for raw in [*replies, crisis_raw]:
                await app.update_queue.put(Update.de_json(raw, app.bot))
            deadline = time.monotonic() + 120
            while True:
                done = delivered_since(state, arrived)
                acks = [c.time for c in done if int(c.params["chat_id"]) in repliers]
                resources = [
                    c.time for c in done if int(c.params["chat_id"]) == crisis_person["id"]
                ]
                if len(acks) >= BURST_REPLIES and resources:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(acks)} acks, {len(resources)} crisis messages")
                await asyncio.sleep(0.02)
            replies_s = (max(acks) - arrived).total_seconds()
            sent_during = len(done)
        finally:
            app.bot_data["dispatcher"].stopping = True
            await app.stop()
            await app.shutdown()
            await rt.engine.dispose()
    assert resources, "no crisis resources were sent"
    return {
        "backend": backend,
        "limiter": "production, during a burst",
        "n": BURST_REPLIES,
        "seconds": round(replies_s, 3),
        "per_second": round(BURST_REPLIES / replies_s, 1),
        "crisis_wait_s": round((min(resources) - arrived).total_seconds(), 2),
        "messages_sent_meanwhile": sent_during,
        "http_429": sum(state.rejected.values()),
        "http_429_by_limit": dict(state.rejected),
        "goal_met": None,
    }


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    sizes = (1_000,) if args.quick else (1_000, 10_000)
    rows = []
    for backend in backends(args.postgres):
        for n in sizes:
            row = await one_case(backend, n, args.postgres)
            print(f"  {backend:8} {n:>6}: {row['per_second']:8.1f} replies/s", flush=True)
            rows.append(row)
        row = await one_case(backend, LIMITED_N, args.postgres, rate_limit=True)
        print(f"  {backend:8} {LIMITED_N:>6}: {row['per_second']:8.1f} replies/s (limiter on)")
        rows.append(row)
        row = await rapid_case(backend, args.postgres)
        print(
            f"  {backend:8} {row['n']:>6}: {row['per_second']:8.1f} replies/s, three quick "
            f"messages per patient; {row['http_429']} x 429",
            flush=True,
        )
        rows.append(row)
        row = await burst_case(backend, args.postgres)
        print(
            f"  {backend:8} {BURST_REPLIES:>6}: {row['per_second']:8.1f} replies/s during a "
            f"prompt burst; a crisis message behind them waited {row['crisis_wait_s']} s",
            flush=True,
        )
        rows.append(row)
    return rows


COLUMNS = [
    ("backend", "database", ""),
    ("limiter", "rate limiter", ""),
    ("n", "replies", ","),
    ("seconds", "wall s", ".2f"),
    ("per_second", "replies/s", ",.1f"),
    ("cpu_ms_per_update", "CPU ms/reply", ".3f"),
    ("fake_api_cpu_ms", "of it fake API", ".3f"),
    ("bot_cpu_ms_per_update", "bot CPU ms", ".3f"),
    ("de_json_ms", "de_json ms", ".3f"),
    ("sql_statements_per_item", "SQL/reply", ".2f"),
    ("pool_checkouts_per_item", "tx/reply", ".2f"),
    ("crisis_wait_s", "crisis waited s", ".2f"),
    ("http_429", "429s", "d"),
    ("goal_met", f">= {GOAL:.0f}/s", ""),
]


def main(argv: list[str] | None = None) -> None:
    args = base_parser(__doc__ or "").parse_args(argv)
    quiet_logs()
    rows = asyncio.run(run(args))
    print_table("Reply ingestion (Application.process_update, sequential)", rows, COLUMNS)
    write_results(
        "ingest",
        params={"quick": args.quick, "goal_per_second": GOAL, "limited_n": LIMITED_N},
        rows=rows,
        pg_url=args.postgres,
    )


if __name__ == "__main__":
    main()
