"""What keeping patients' Telegram ids out of the database costs on the hot paths.

    python -m bench.identity

Every update looks its sender up by the HMAC of their id (`Cipher.indexes`: one HMAC-SHA256
per configured key), and every prompt decrypts the chat id it goes to (`identity.chat_of`: one
Fernet decrypt). Both are measured in this process against the baseline of one Fernet
encrypt of a 120-character reply, which every reply already paid before this change; the
per-reply CPU of the whole ingest path is in `bench/ingest.py` (about 4-5 ms here).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography.fernet import Fernet

from bot.db import identity
from bot.db.crypto import Cipher
from bot.db.models import Patient

ROUNDS = 20_000


def per_call_us(fn: Callable[[], object], rounds: int = ROUNDS) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    one = Cipher([Fernet.generate_key()])
    rotating = Cipher([Fernet.generate_key(), Fernet.generate_key()])
    reply = "I noticed the light on the water and felt calm for a while, then tired. " * 2
    patient = Patient(**identity.columns(one, 7_345_001))

    baseline = per_call_us(lambda: one.encrypt(reply[:120]))
    rows = [
        ("lookup index, 1 key (every update)", per_call_us(lambda: one.indexes(7_345_001))),
        (
            "lookup index, 2 keys (during a rotation)",
            per_call_us(lambda: rotating.indexes(7_345_001)),
        ),
        (
            "chat id decrypt (every prompt sent)",
            per_call_us(lambda: identity.chat_of(patient, one)),
        ),
    ]
    print(f"baseline: Fernet encrypt of a 120-character reply  {baseline:8.2f} µs")
    for name, micros in rows:
        print(f"{name:<42} {micros:8.2f} µs  ratio {micros / baseline:5.2f}")


if __name__ == "__main__":
    main()
