"""Keystores: 0600 on write, refused when open to others, clear errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from eth_account import Account

from redundancy.errors import KeystoreError
from redundancy.keystore import load_account, passphrase_file, read_passphrase, write_keystore

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def test_written_keystore_is_private_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    address = write_keystore(path, KEY, "s3cret", iterations=2)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KEY[2:] not in path.read_text()
    assert load_account(path, "s3cret").address == address == Account.from_key(KEY).address


def test_keystore_is_never_overwritten(tmp_path: Path) -> None:
    write_keystore(tmp_path / "k.json", KEY, "a", iterations=2)
    with pytest.raises(KeystoreError, match="already exists"):
        write_keystore(tmp_path / "k.json", KEY, "b", iterations=2)


def test_world_readable_keystore_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_keystore(path, KEY, "pw", iterations=2)
    path.chmod(0o644)
    with pytest.raises(KeystoreError, match="mode 0644"):
        load_account(path, "pw")


def test_wrong_passphrase_and_missing_file(tmp_path: Path) -> None:
    write_keystore(tmp_path / "k.json", KEY, "pw", iterations=2)
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        load_account(tmp_path / "k.json", "nope")
    with pytest.raises(KeystoreError, match="not found"):
        load_account(tmp_path / "missing.json", "pw")


def test_passphrase_from_file_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("line one\nline two\n")
    (tmp_path / "pw").chmod(0o600)
    assert read_passphrase(tmp_path / "pw", "X_PASS") == "line one"
    monkeypatch.setenv("X_PASS", "from env")
    assert read_passphrase(None, "X_PASS") == "from env"
    monkeypatch.delenv("X_PASS")
    with pytest.raises(KeystoreError, match="set X_PASS"):
        read_passphrase(None, "X_PASS")


def test_a_passphrase_file_others_may_read_is_refused(tmp_path: Path) -> None:
    """Before, only the attestor checked: the keeper, redundancy-deploy and a validator node
    took a world-readable passphrase file (the node also crashed on a missing one)."""
    path = tmp_path / "pw"
    path.write_text("secret\n")
    path.chmod(0o644)
    with pytest.raises(KeystoreError, match="mode 0644; it must not be readable by others"):
        read_passphrase(path, "X_PASS")
    with pytest.raises(KeystoreError, match="mode 0644"):
        passphrase_file(path)
    path.chmod(0o600)
    assert passphrase_file(path) == "secret"
    with pytest.raises(KeystoreError, match="cannot read passphrase file"):
        passphrase_file(tmp_path / "missing")
