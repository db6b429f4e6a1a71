"""One verification check's outcome: verifiers report every check, not just the first failure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A check's id (``attestation.signature.attestor``), whether it passed, and why not."""

    id: str
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "ok": self.ok, "detail": self.detail}


def check(check_id: str, ok: bool, failure_detail: str = "") -> CheckResult:
    """A result whose detail is only kept when the check failed."""
    return CheckResult(check_id, ok, "" if ok else failure_detail)
