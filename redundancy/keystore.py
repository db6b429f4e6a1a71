"""Encrypted key files (Ethereum keystore v3): written mode 0600, refused if readable by others.

Keys are never printed or logged; a passphrase comes from a file or an environment variable.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr

from redundancy.errors import KeystoreError


def read_passphrase(password_file: Path | None, env_var: str) -> str:
    """The passphrase from ``password_file`` (``passphrase_file``), else from the environment
    variable."""
    if password_file is not None:
        return passphrase_file(password_file)
    value = os.environ.get(env_var)
    if value is None:
        raise KeystoreError(f"no passphrase: give --password-file or set {env_var}")
    return value


def passphrase_file(path: Path, *, whole: bool = False) -> str:
    """The first line of a passphrase file (``whole``: the whole text, stripped, as the
    validator node has always read it); KeystoreError if it cannot be read or if group or
    others may read or write it (a passphrase anyone on the machine can read protects nothing)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeystoreError(f"cannot read passphrase file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise KeystoreError(f"passphrase file {path} is not UTF-8 text") from None
    if mode & 0o077:
        raise KeystoreError(
            f"passphrase file {path} has mode {mode:04o}; it must not be readable by others "
            f"(chmod 600 {path})"
        )
    if whole:
        return text.strip()
    return text.splitlines()[0] if text else ""


def check_private_mode(path: Path) -> None:
    """Refuse a key file that group or others may read or write."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeystoreError(
            f"keystore {path} has mode {mode:04o}; it must not be readable by others "
            f"(chmod 600 {path})"
        )


def load_account(path: Path, passphrase: str) -> LocalAccount:
    """Decrypt a keystore file into an account."""
    try:
        check_private_mode(path)
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeystoreError(f"keystore {path} not found") from None
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"keystore {path} is unreadable: {exc}") from None
    try:
        key = Account.decrypt(data, passphrase)
    except ValueError:
        raise KeystoreError(f"wrong passphrase for keystore {path}") from None
    except (KeyError, TypeError) as exc:
        raise KeystoreError(f"keystore {path} is malformed: missing {exc}") from None
    account: LocalAccount = Account.from_key(key)
    return account


def write_keystore(
    path: Path, private_key: bytes | HexStr, passphrase: str, *, iterations: int | None = None
) -> str:
    """Encrypt a key into ``path`` (created mode 0600, never overwritten); returns its address.

    ``iterations`` lowers the scrypt work factor for throwaway development keys only.
    """
    data = Account.encrypt(private_key, passphrase, iterations=iterations)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeystoreError(f"keystore {path} already exists; refusing to overwrite it") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    return str(Account.from_key(private_key).address)
