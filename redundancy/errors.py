"""The project's exception tree: one root, one branch per area."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit


class RedundancyError(Exception):
    """Raised for any failure the project itself detects (root of the tree)."""


class ArtifactError(RedundancyError, FileNotFoundError):
    """Raised when a contract artifact is missing or unreadable."""


class ChainError(RedundancyError):
    """Raised when the chain cannot be reached or a transaction cannot be sent."""


def redact_url(url: str) -> str:
    """``url`` as it may be printed: scheme, host and port only. A provider's key travels in the
    path, the query or the user part (``https://host/v3/<key>``), and messages end up in logs.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme or not host:
        return "<unparseable URL>"
    shown = f"[{host}]" if ":" in host else host
    hidden = parts.username or parts.password or parts.path.strip("/") or parts.query
    return f"{parts.scheme}://{shown}{f':{port}' if port else ''}{'/...' if hidden else ''}"


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>()]+", re.IGNORECASE)
_URL_PATH = re.compile(r"(\burl: )/[^\s'\"<>()]*", re.IGNORECASE)


def redact_text(text: str) -> str:
    """``text`` (an HTTP library's error message) with every URL as ``redact_url`` shows it and
    a bare request path (``... with url: /v3/<key>``) hidden."""
    return _URL_PATH.sub(r"\1/...", _URL.sub(lambda m: redact_url(m.group(0)), text))


class ChainUnreachableError(ChainError, ConnectionError):
    """Raised when the deployment's chain cannot answer now but may later: the RPC endpoint does
    not answer or fails a request, or it serves another chain (or no contract) than the
    deployment names. Callers retry; the API answers 503 with ``Retry-After``.

    ``reason`` is the cause in a few words, without the endpoint (which may carry a key).
    """

    def __init__(self, rpc_url: str, reason: str) -> None:
        reason = redact_text(reason)
        super().__init__(f"RPC endpoint {redact_url(rpc_url)} is unreachable: {reason}")
        self.rpc_url = rpc_url
        self.reason = reason


class InsufficientFundsError(ChainError):
    """Raised when the sending account cannot pay for a transaction."""

    def __init__(self, address: str, balance: int) -> None:
        super().__init__(
            f"account {address} has {balance} wei, too little to pay for the transaction"
        )
        self.address = address
        self.balance = balance


class FeeCapError(ChainError):
    """Raised when a transaction is not sent because the chain's price is above the sender's fee
    cap (``max_fee_per_gas``): the caller retries later, when the price has fallen."""

    def __init__(self, price: int, cap: int, message: str | None = None) -> None:
        super().__init__(
            message
            or f"the chain asks {price} wei per gas, above the fee cap of {cap} wei: not sent"
        )
        self.price = price
        self.cap = cap


class ContractRevertError(ChainError):
    """Raised when a contract call reverts; carries the decoded custom error."""

    def __init__(self, error_name: str, args: dict[str, object], selector: str) -> None:
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in args.items())
        super().__init__(f"{error_name}({rendered})")
        self.error_name = error_name
        self.args_by_name = args
        self.selector = selector
        self.mined_tx: str | None = None
        """The transaction's hash when it was mined and reverted (None: refused at estimation,
        nothing sent)."""


class ConfigError(RedundancyError, ValueError):
    """Raised when a deployable's settings are missing, not TOML, or have invalid fields.

    ``problems`` holds one line per bad field, each naming the field; the message prefixes
    each with the source (the settings file, or the settings class when there is no file).
    """

    def __init__(self, source: str | Path, problems: list[str]) -> None:
        self.path = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


class KeystoreError(RedundancyError):
    """Raised when a keystore cannot be opened: missing, readable by others, wrong passphrase."""


class DeploymentFileError(RedundancyError, ValueError):
    """Raised when a deployment file is missing, malformed, or for another chain."""


class EvidenceError(RedundancyError, ValueError):
    """Raised when an evidence document cannot be canonicalised (floats, non-string keys, lone
    surrogates) or parsed within bounds."""


class TypedDataError(RedundancyError, ValueError):
    """Raised when an EIP-712 struct type names a field type the encoder does not support, or a
    value does not fit its field (wrong length, out of range)."""


class VerificationError(RedundancyError):
    """Raised when a verification cannot start: its target is not what was asked for."""


class UnknownTransactionError(VerificationError, LookupError):
    """Raised when a transaction hash is malformed or names no transaction on the chain."""

    def __init__(self, tx_hash: str, reason: str) -> None:
        super().__init__(f"transaction {tx_hash!r} {reason}")
        self.tx_hash = tx_hash


class NotASubmissionError(VerificationError):
    """Raised when a transaction is not a proof submission to the registry."""

    def __init__(self, tx_hash: str, reason: str) -> None:
        super().__init__(f"transaction {tx_hash} {reason}")
        self.tx_hash = tx_hash


class MalformedCalldataError(VerificationError, ValueError):
    """Raised when a submission's calldata does not decode as the registry's ABI."""

    def __init__(self, tx_hash: str, reason: str) -> None:
        super().__init__(f"transaction {tx_hash}: calldata does not decode: {reason}")
        self.tx_hash = tx_hash


class NoProofsError(VerificationError, LookupError):
    """Raised when a facility has no accepted proofs to verify."""


def _render(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return str(value)
