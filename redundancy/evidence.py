"""Canonical JSON for evidence documents: its keccak256 is a proof's ``evidenceHash``.

Canonical means: keys sorted, no insignificant white space, UTF-8, and no floats (a float's text
form is not stable across implementations; use integers in stated units instead).
"""

from __future__ import annotations

import json
from typing import Any

from redundancy.errors import EvidenceError
from redundancy.hashing import keccak256


def _check(value: Any, where: str) -> None:
    if isinstance(value, float):
        raise EvidenceError(f"evidence field {where} is a float ({value!r}); use integers")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EvidenceError(f"evidence key {key!r} at {where} is not a string")
            _check(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]")
    elif value is not None and not isinstance(value, str | int | bool):
        raise EvidenceError(f"evidence field {where} has unsupported type {type(value).__name__}")


_PLAIN = (str, int, bool, type(None))


def _plain(value: Any) -> bool:
    """Whether a document holds only JSON-safe values and no floats (the fast path: exact types,
    no paths built; anything unusual goes to ``_check`` for the precise error)."""
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if kind is list or kind is tuple:
        return all(_plain(item) for item in value)
    return False


def canonical_json(document: Any) -> bytes:
    """Serialise an evidence document canonically; raises EvidenceError on floats or odd types."""
    if not _plain(document):
        _check(document, "$")
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def evidence_hash(evidence: bytes) -> bytes:
    """keccak256 of the canonical evidence bytes."""
    return keccak256(evidence)
