"""Encryption at rest: round trip, rotation with MultiFernet, key loading and key-file creation."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.db.crypto import Cipher, CryptoKeyError, load_cipher, save_new_key_file

OLD_KEY = Fernet.generate_key()
NEW_KEY = Fernet.generate_key()


@pytest.fixture
def cipher() -> Cipher:
    return Cipher([NEW_KEY])


@pytest.mark.parametrize(
    "plain",
    [
        "",
        "I felt lighter after the walk.",
        "Ünïcødé — naïve café ✓",
        "🌈🧠💜 felt calmer 🙏🏽",
        "心が軽くなった",
        "line one\nline two\ttab",
        "x" * 20_000,
    ],
)
def test_round_trip(cipher: Cipher, plain: str) -> None:
    assert cipher.decrypt(cipher.encrypt(plain)) == plain


@pytest.mark.parametrize("plain", ["my reflection about my mother", "🌈 über-calm " * 10])
def test_ciphertext_hides_plaintext(cipher: Cipher, plain: str) -> None:
    token = cipher.encrypt(plain)
    assert plain.encode("utf-8") not in token
    assert plain.encode("utf-8") not in base64.urlsafe_b64decode(token)


def test_same_plaintext_encrypts_differently(cipher: Cipher) -> None:
    assert cipher.encrypt("same") != cipher.encrypt("same")


def test_old_key_second_in_list_still_decrypts() -> None:
    token = Cipher([OLD_KEY]).encrypt("before rotation")
    both = Cipher([NEW_KEY, OLD_KEY])
    assert both.key_count == 2
    assert both.decrypt(token) == "before rotation"
    assert not both.is_current(token)


def test_new_writes_use_newest_key() -> None:
    token = Cipher([NEW_KEY, OLD_KEY]).encrypt("fresh")
    assert Cipher([NEW_KEY]).decrypt(token) == "fresh"
    with pytest.raises(CryptoKeyError):
        Cipher([OLD_KEY]).decrypt(token)


def test_rotate_re_encrypts_under_newest_key() -> None:
    old_token = Cipher([OLD_KEY]).encrypt("rotate me")
    both = Cipher([NEW_KEY, OLD_KEY])
    rotated = both.rotate(old_token)
    assert rotated != old_token
    assert both.is_current(rotated)
    assert Cipher([NEW_KEY]).decrypt(rotated) == "rotate me"
    with pytest.raises(CryptoKeyError):
        Cipher([OLD_KEY]).decrypt(rotated)


def test_rotate_unknown_token_raises_crypto_key_error() -> None:
    with pytest.raises(CryptoKeyError):
        Cipher([NEW_KEY]).rotate(Cipher([OLD_KEY]).encrypt("lost key"))


@pytest.mark.parametrize("token", [b"", b"garbage", Cipher([OLD_KEY]).encrypt("other key")])
def test_undecryptable_token(cipher: Cipher, token: bytes) -> None:
    assert not cipher.is_current(token)
    with pytest.raises(CryptoKeyError, match="cannot be decrypted"):
        cipher.decrypt(token)


@pytest.mark.parametrize(
    "keys",
    [[b"not-a-fernet-key"], [NEW_KEY, b"short"], [NEW_KEY[:-4]], [b""]],
)
def test_bad_key(keys: list[bytes]) -> None:
    with pytest.raises(CryptoKeyError) as caught:
        Cipher(keys)
    message = str(caught.value)
    assert "AFTERGLOW_ENCRYPTION_KEYS" in message
    assert all(key.decode() not in message for key in keys if key)


def test_no_keys() -> None:
    with pytest.raises(CryptoKeyError):
        Cipher([])


# --- load_cipher ---


def test_load_from_env_keys_newest_first(tmp_path: Path) -> None:
    key_file = tmp_path / "afterglow.key"
    loaded = load_cipher(f" {NEW_KEY.decode()} , {OLD_KEY.decode()} ,", key_file)
    assert loaded.key_count == 2
    assert Cipher([NEW_KEY]).decrypt(loaded.encrypt("x")) == "x"
    assert not key_file.exists()


def test_env_keys_beat_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "afterglow.key"
    key_file.write_text(OLD_KEY.decode() + "\n")
    key_file.chmod(0o600)
    loaded = load_cipher(NEW_KEY.decode(), key_file)
    assert loaded.key_count == 1
    assert Cipher([NEW_KEY]).decrypt(loaded.encrypt("x")) == "x"


def test_bad_env_key_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(CryptoKeyError, match="AFTERGLOW_ENCRYPTION_KEYS"):
        load_cipher("nonsense", tmp_path / "afterglow.key")


def test_load_from_existing_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "afterglow.key"
    key_file.write_text(f"{NEW_KEY.decode()}\n\n  {OLD_KEY.decode()}  \n")
    key_file.chmod(0o600)
    loaded = load_cipher(None, key_file)
    assert loaded.key_count == 2
    assert loaded.decrypt(Cipher([OLD_KEY]).encrypt("old")) == "old"
    assert Cipher([NEW_KEY]).decrypt(loaded.encrypt("new")) == "new"


def test_bad_key_file_names_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "afterglow.key"
    key_file.write_text("not a key\n")
    key_file.chmod(0o600)
    with pytest.raises(CryptoKeyError, match=r"afterglow\.key"):
        load_cipher(None, key_file)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Make sure 0600 comes from the code, not from a strict umask."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
@pytest.mark.parametrize("keys_env", [None, ""])
def test_creates_key_file_0600_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, keys_env: str | None
) -> None:
    key_file = tmp_path / "state" / "afterglow.key"
    with caplog.at_level(logging.WARNING, logger="bot.db.crypto"):
        created = load_cipher(keys_env, key_file, may_create=True)
        assert not key_file.exists(), "written only once the database is known to be new"
        with pytest.raises(CryptoKeyError, match="not written yet"):
            created.encrypt("nothing is stored under an unsaved key")
        assert save_new_key_file(created) == key_file

    assert os.stat(key_file).st_mode & 0o777 == 0o600
    key = key_file.read_text().strip()
    assert Cipher([key.encode()]).decrypt(created.encrypt("kept")) == "kept"

    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings
    assert any(str(key_file) in record.getMessage() for record in warnings)
    assert key not in caplog.text
    assert all(key not in record.getMessage() for record in caplog.records)


def test_created_key_file_is_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "afterglow.key"
    made = load_cipher(None, key_file, may_create=True)
    save_new_key_file(made)
    token = made.encrypt("survives a restart")
    assert load_cipher(None, key_file).decrypt(token) == "survives a restart"
    assert save_new_key_file(load_cipher(None, key_file)) is None


def test_no_key_and_no_permission_to_make_one_names_both_settings(tmp_path: Path) -> None:
    key_file = tmp_path / "afterglow.key"
    with pytest.raises(CryptoKeyError, match="AFTERGLOW_ENCRYPTION_KEYS or AFTERGLOW_KEY_FILE"):
        load_cipher(None, key_file)
    assert not key_file.exists()
