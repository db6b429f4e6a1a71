"""A site's condition as its latest health evidence shows it: whether it is **degraded**
(``redundancy.sitecondition``) and why, recomputed from the evidence's own fields, beside what the
evidence claims. Kept per health proof by the event index (the evidence itself is not kept)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redundancy.errors import EvidenceError
from redundancy.evidence import parse_document
from redundancy.sitecondition import REASONS, health_reasons


@dataclass(frozen=True, slots=True)
class HealthCondition:
    reasons: tuple[str, ...]
    """Why the site is degraded, recomputed from the evidence's fields (empty: it is not)."""
    claimed: tuple[str, ...] | None
    """The evidence's own ``degraded`` list (None: absent, as in version 1, or malformed)."""
    ups_status: str | None
    version: int | None
    observed_at: int | None


def _text(value: Any) -> str | None:
    """A short string UTF-8 can encode (JSON escapes let evidence hold lone surrogates, which
    no response could carry), or None."""
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value[:64]


def _claimed(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        return None
    return tuple(r for r in value if r in REASONS) if len(value) <= len(REASONS) else None


def health_condition(evidence: bytes) -> HealthCondition | None:
    """The condition a health proof's evidence shows; None when it is not a readable envelope
    (hostile calldata: nothing is shown rather than a guess)."""
    try:
        doc = parse_document(evidence)
    except EvidenceError:
        return None
    if not isinstance(doc, dict) or not isinstance(body := doc.get("body"), dict):
        return None
    ups = body.get("upsStatus")
    version, observed = doc.get("v"), doc.get("observedAt")
    return HealthCondition(
        reasons=tuple(health_reasons(body)),
        claimed=_claimed(body.get("degraded")),
        ups_status=_text(ups),
        version=version if type(version) is int and 0 <= version < 2**31 else None,
        observed_at=observed if type(observed) is int and 0 <= observed < 2**63 else None,
    )
