"""Encryption at rest for patient free text (Fernet, MultiFernet for rotation)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)


class CryptoKeyError(Exception):
    """A key is missing or malformed; the message names where it came from."""


class Cipher:
    """Encrypts with the newest key, decrypts with any of them."""

    def __init__(self, keys: list[bytes], *, new_key_file: Path | None = None) -> None:
        # A key made on a first start and not written yet: nothing may be stored under it
        # before `save_new_key_file` has put it on disk.
        self.new_key_file = new_key_file
        self._keys = list(keys)
        if not keys:
            raise CryptoKeyError("no encryption keys")
        try:
            self._fernets = [Fernet(key) for key in keys]
        except (ValueError, TypeError):
            raise CryptoKeyError(
                "AFTERGLOW_ENCRYPTION_KEYS: each key must be a 32-byte url-safe base64 Fernet key"
            ) from None
        self._multi = MultiFernet(self._fernets)
        # Keyed HMACs to find a patient by Telegram id without storing the id: one key per
        # Fernet key, derived from it, so the index rotates with the keys it comes from.
        self._index_keys = [_index_key(key) for key in self._keys]

    def indexes(self, telegram_id: int) -> tuple[bytes, ...]:
        """The id's HMAC under each key, newest first: a lookup matches any of them (a row
        indexed before a rotation finishes), a write stores the first."""
        message = str(telegram_id).encode()
        return tuple(hmac.new(key, message, hashlib.sha256).digest() for key in self._index_keys)

    def newest_key(self) -> bytes:
        return self._keys[0]

    @property
    def key_count(self) -> int:
        return len(self._fernets)

    def encrypt(self, plain: str) -> bytes:
        if self.new_key_file is not None:
            raise CryptoKeyError(f"the new key file {self.new_key_file} is not written yet")
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


def _index_key(fernet_key: bytes) -> bytes:
    raw = base64.urlsafe_b64decode(fernet_key)
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"afterglow telegram id index v1"
    ).derive(raw)


def load_cipher(keys_env: str | None, key_file: Path, *, may_create: bool = False) -> Cipher:
    """Keys from AFTERGLOW_ENCRYPTION_KEYS, else the key file.

    With no key at all and `may_create` (the service's first start), a new key is made but
    not yet written: `save_new_key_file` writes it once the database is known to hold nothing
    encrypted (`bot/services/keycheck.py`), so a lost key file is never silently replaced.
    """
    if keys_env:
        keys = [part.strip().encode() for part in keys_env.split(",") if part.strip()]
        return Cipher(keys)
    if key_file.exists():
        _refuse_loose_mode(key_file)
        keys = [line.strip().encode() for line in key_file.read_text().splitlines() if line.strip()]
        try:
            return Cipher(keys)
        except CryptoKeyError:
            raise CryptoKeyError(f"{key_file}: not a valid Fernet key file") from None
    if not may_create:
        raise CryptoKeyError(
            f"no encryption key: set AFTERGLOW_ENCRYPTION_KEYS or AFTERGLOW_KEY_FILE "
            f"(no key file at {key_file})"
        )
    return Cipher([Fernet.generate_key()], new_key_file=key_file)


def _refuse_loose_mode(key_file: Path) -> None:
    mode = key_file.stat().st_mode & 0o777
    if mode & 0o077:
        raise CryptoKeyError(
            f"{key_file}: open to group or others (mode {mode:04o}); "
            f"run `chmod 600 {key_file}` and start again"
        )


def save_new_key_file(cipher: Cipher) -> Path | None:
    """Write the key `load_cipher` made, 0600 in a 0700 folder; None if there was none."""
    key_file = cipher.new_key_file
    if key_file is None:
        return None
    folder = key_file.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(cipher.newest_key().decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    cipher.new_key_file = None
    log.warning(
        "AFTERGLOW_ENCRYPTION_KEYS is not set: created key file %s (mode 0600). "
        "Back it up: without it stored replies cannot be read.",
        key_file,
    )
    return key_file
