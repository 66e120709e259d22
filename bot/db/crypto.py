"""Encryption at rest for patient free text (Fernet, MultiFernet for rotation)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)


class CryptoKeyError(Exception):
    """A key is missing or malformed; the message names where it came from."""


class Cipher:
    """Encrypts with the newest key, decrypts with any of them."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise CryptoKeyError("no encryption keys")
        try:
            self._fernets = [Fernet(key) for key in keys]
        except (ValueError, TypeError):
            raise CryptoKeyError(
                "AFTERGLOW_ENCRYPTION_KEYS: each key must be a 32-byte url-safe base64 Fernet key"
            ) from None
        self._multi = MultiFernet(self._fernets)

    @property
    def key_count(self) -> int:
        return len(self._fernets)

    def encrypt(self, plain: str) -> bytes:
        return self._multi.encrypt(plain.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self._multi.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise CryptoKeyError(
                "stored text cannot be decrypted with the configured keys"
            ) from None

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt under the newest key (for `afterglow keys rotate`)."""
        try:
            return self._multi.rotate(token)
        except InvalidToken:
            raise CryptoKeyError(
                "stored text cannot be decrypted with the configured keys"
            ) from None

    def is_current(self, token: bytes) -> bool:
        try:
            self._fernets[0].decrypt(token)
        except InvalidToken:
            return False
        return True


def load_cipher(keys_env: str | None, key_file: Path) -> Cipher:
    """Keys from AFTERGLOW_ENCRYPTION_KEYS, else the key file, created 0600 on first use."""
    if keys_env:
        keys = [part.strip().encode() for part in keys_env.split(",") if part.strip()]
        return Cipher(keys)
    if key_file.exists():
        keys = [line.strip().encode() for line in key_file.read_text().splitlines() if line.strip()]
        try:
            return Cipher(keys)
        except CryptoKeyError:
            raise CryptoKeyError(f"{key_file}: not a valid Fernet key file") from None
    key = Fernet.generate_key()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.decode() + "\n")
    log.warning(
        "AFTERGLOW_ENCRYPTION_KEYS is not set: created key file %s (mode 0600). "
        "Back it up: without it stored replies cannot be read.",
        key_file,
    )
    return Cipher([key])
