"""Domain and facility names, learned from evidence documents and checked against the ids.

The chain stores only ids (keccak256 of ``"<dimension>:<value>"``). An evidence document in
calldata usually names the value (``{"grid": "ercot"}``); a name is recorded only when hashing it
gives exactly the id the proof asserts, so a name shown is always a true preimage of its id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeGuard

from redundancy.domains import KIND_DIMENSIONS, Dimension, domain_id, facility_id, hardware_domain
from redundancy.errors import EvidenceError
from redundancy.evidence import parse_document
from redundancy.proofs import SignedProof
from redundancy.tpmquote import tpm_hardware_domain

MAX_CANDIDATES = 64


def _text(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a string that can name something: one UTF-8 can encode. JSON's
    escapes let evidence hold lone surrogates (``"\\ud800"``), which hashing a name refuses."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    if depth > 6:
        return
    if isinstance(value, str):
        if _text(value):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, depth + 1)


def _hardware_candidates(value: Any, depth: int = 0) -> Iterator[tuple[str, str, str]]:
    """(vendor, model, firmware) of any object holding those three strings."""
    if depth > 6:
        return
    if isinstance(value, dict):
        vendor, model, firmware = (value.get(k) for k in ("vendor", "model", "firmware"))
        if _text(vendor) and _text(model) and _text(firmware):
            yield vendor, model, firmware
        for item in value.values():
            yield from _hardware_candidates(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _hardware_candidates(item, depth + 1)


class NameBook:
    """Names by id, for display only (never used to decide anything)."""

    def __init__(self) -> None:
        self._domains: dict[bytes, str] = {}
        self._facilities: dict[bytes, str] = {}

    def domain(self, domain: bytes) -> str | None:
        return self._domains.get(domain)

    def facility(self, fid: bytes) -> str | None:
        return self._facilities.get(fid)

    def learn(self, proof: SignedProof) -> None:
        a = proof.attestation
        wanted = [
            (dim, d)
            for dim, d in zip(
                KIND_DIMENSIONS[a.kind], (a.domain_id, a.secondary_domain_id), strict=False
            )
            if any(d) and d not in self._domains
        ]
        if a.facility_id in self._facilities and not wanted:
            return
        try:
            doc = parse_document(proof.evidence)
        except EvidenceError:  # too large, too deep or not JSON: no names from it
            return
        if a.facility_id not in self._facilities and isinstance(doc, dict):
            name = doc.get("facility")
            if _text(name) and name.strip() and facility_id(name) == a.facility_id:
                self._facilities[a.facility_id] = " ".join(name.lower().split())
        for dim, target in wanted:
            if dim == Dimension.HARDWARE:
                name = _hardware_name(doc, target)
            else:
                name = _domain_name(doc, dim, target)
            if name is not None:
                self._domains[target] = name


def _domain_name(doc: Any, dim: Dimension, target: bytes) -> str | None:
    for i, text in enumerate(_strings(doc)):
        if i >= MAX_CANDIDATES:
            return None
        if text.strip() and domain_id(dim, text) == target:
            return " ".join(text.lower().split())
    return None


def _tpm_hardware_name(doc: Any, target: bytes) -> str | None:
    """``tpm-pcr0:<hex>`` when a TPM envelope's quoted PCR 0 names the domain (the measured
    firmware, redundancy.tpmquote), whatever the body claims."""
    tpm = doc.get("tpm") if isinstance(doc, dict) else None
    pcrs = tpm.get("pcrs") if isinstance(tpm, dict) else None
    pcr0 = pcrs.get("0") if isinstance(pcrs, dict) else None
    if not isinstance(pcr0, str) or len(pcr0) != 64:
        return None
    try:
        measured = bytes.fromhex(pcr0)
    except ValueError:
        return None
    return f"tpm-pcr0:{pcr0.lower()}" if tpm_hardware_domain(measured) == target else None


def _hardware_name(doc: Any, target: bytes) -> str | None:
    if (measured := _tpm_hardware_name(doc, target)) is not None:
        return measured
    for vendor, model, firmware in _hardware_candidates(doc):
        if vendor.strip() and hardware_domain(vendor, model, firmware) == target:
            return " ".join(f"{vendor}/{model}/{firmware}".lower().split())
    return None
