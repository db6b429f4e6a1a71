"""Evidence documents: canonical JSON out (its keccak256 is a proof's ``evidenceHash``), and
bounded parsing in (evidence read back from calldata is hostile input).

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
    """Serialise an evidence document canonically; raises EvidenceError on floats, odd types or
    text UTF-8 cannot encode (a lone surrogate, which a JSON escape such as ``"\\ud800"`` in
    hostile evidence can put in a parsed document)."""
    if not _plain(document):
        _check(document, "$")
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise EvidenceError(
            "evidence holds text that is not Unicode (an escaped lone surrogate)"
        ) from None


def evidence_hash(evidence: bytes) -> bytes:
    """keccak256 of the canonical evidence bytes."""
    return keccak256(evidence)


#: Bounds on a JSON document read from hostile places (evidence in calldata, where anyone can
#: put any bytes; a peer's datagram), checked before the JSON parser runs: a deeply nested
#: document makes the recursive parser overflow the C stack and kill the process (a Python
#: RecursionError is not guaranteed: py_ecc raises the recursion limit to 100,000 when web3
#: imports it), and pydantic refuses to serialise one past about 250 levels. Honest evidence is
#: a few hundred bytes, four levels deep.
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_DOCUMENT_DEPTH = 32

_QUOTE, _BACKSLASH = 0x22, 0x5C
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")


def nesting_depth(raw: bytes, limit: int) -> int:
    """How deeply ``raw``'s arrays and objects nest (brackets inside strings ignored), counting
    no further than ``limit + 1``: one linear pass, no recursion."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return min(limit, raw.count(b"[") + raw.count(b"{"))  # cannot nest deeper
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def parse_document(
    raw: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES, max_depth: int = MAX_DOCUMENT_DEPTH
) -> Any:
    """Parse an untrusted JSON document within bounds; EvidenceError names the problem (too
    large, nested too deep, not UTF-8, not JSON)."""
    if len(raw) > max_bytes:
        raise EvidenceError(f"document is {len(raw)} bytes, more than the {max_bytes} allowed")
    if nesting_depth(raw, max_depth) > max_depth:
        raise EvidenceError(f"document nests deeper than {max_depth} levels")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise EvidenceError("document is not UTF-8") from None
    except ValueError as exc:
        raise EvidenceError(f"document is not JSON: {exc}") from None
