"""GET /attestations, /attestations/{tx}/{index} and /attestations/{tx}/{index}/verify."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from web3.exceptions import TransactionNotFound

from api.blockview import BlockView
from api.errors import AttestationNotFoundError
from api.eventindex import ProofRecord
from api.names import NameBook
from api.params import Cursor, FacilityRef
from api.schemas.attestations import (
    AttestationPublic,
    AttestationsPublic,
    AttestationSummaryPublic,
    CheckPublic,
    SignaturePublic,
    VerificationPublic,
)
from api.schemas.common import DomainPublic, LocationPublic, location
from api.views.common import block_public, domain_public, hx
from redundancy.attestation_verifier import ProofReport
from redundancy.domains import KIND_DIMENSIONS, Kind
from redundancy.errors import EvidenceError, VerificationError
from redundancy.evidence import parse_document
from redundancy.proofs import Attestation, SignedProof


@dataclass(frozen=True)
class AttestationQuery:
    facility: FacilityRef | None
    kind: Kind | None
    from_block: int | None
    to_block: int | None
    cursor: Cursor | None
    limit: int


def _asserted(a: Attestation, names: NameBook) -> tuple[list[DomainPublic], LocationPublic | None]:
    domains = [
        domain_public(dim, d, names)
        for dim, d in zip(
            KIND_DIMENSIONS[a.kind], (a.domain_id, a.secondary_domain_id), strict=False
        )
    ]
    geo = location(a.latitude_e6, a.longitude_e6) if a.kind == Kind.GEOGRAPHY else None
    return domains, geo


def summary(p: ProofRecord, names: NameBook) -> AttestationSummaryPublic:
    a = p.attestation
    domains, geo = _asserted(a, names) if a else ([], None)
    return AttestationSummaryPublic(
        tx=p.tx,
        index=p.index,
        block_number=p.block,
        log_index=p.log_index,
        facility_id=hx(p.facility_id),
        facility_name=names.facility(p.facility_id),
        attestor=p.attestor,
        sequence=p.sequence,
        kind=p.kind.name.lower(),
        subject=hx(p.subject),
        valid_until=p.valid_until,
        issued_at=a.issued_at if a else None,
        expires_at=a.expires_at if a else None,
        domains=domains,
        location=geo,
    )


def list_attestations(snap: BlockView, q: AttestationQuery) -> AttestationsPublic:
    index = snap.index()
    lo = q.from_block or 0
    hi = snap.block if q.to_block is None else min(q.to_block, snap.block)
    items: list[ProofRecord] = []
    more = False
    for p in index.proofs:  # oldest first; the index holds only this deployment's proofs
        if p.block < lo or p.block > hi:
            continue
        if q.cursor is not None and p.position <= (q.cursor.block, q.cursor.log_index):
            continue
        if q.facility is not None and p.facility_id != q.facility.id:
            continue
        if q.kind is not None and p.kind != q.kind:
            continue
        if len(items) == q.limit:
            more = True
            break
        items.append(p)
    last = items[-1] if items and more else None
    return AttestationsPublic(
        block=block_public(snap.head),
        items=[summary(p, index.names) for p in items],
        next_cursor=str(Cursor(last.block, last.log_index)) if last else None,
    )


# --------------------------------------------------------------- one proof


@dataclass(frozen=True)
class Submission:
    block: int
    declared: bytes
    proofs: list[SignedProof | ValueError]
    accepted: set[tuple[bytes, int]]
    rejected: dict[int, str]
    reverted: bool


def submission(snap: BlockView, tx: str) -> Submission:
    """A proof submission mined at or before the snapshot's block (404 otherwise)."""
    return snap.once(f"tx:{tx}", lambda: _submission(snap, tx))


def _submission(snap: BlockView, tx: str) -> Submission:
    registry = snap.reader.registry
    try:
        decoded = registry.read_submission(tx)
        receipt = snap.reader.w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
    except VerificationError as exc:
        raise AttestationNotFoundError(tx, str(exc)) from None
    except TransactionNotFound:
        raise AttestationNotFoundError(tx, f"transaction {tx} is not mined yet") from None
    block = int(receipt["blockNumber"])
    if block > snap.block:
        raise AttestationNotFoundError(tx, f"transaction {tx} is after block {snap.block}")
    outcome = registry.outcome(receipt)
    return Submission(
        block,
        decoded.declared_domain,
        decoded.proofs,
        set(outcome.accepted),
        dict(outcome.rejected),
        outcome.reverted,
    )


def _proof(sub: Submission, tx: str, index: int) -> SignedProof | ValueError:
    if index >= len(sub.proofs):
        raise AttestationNotFoundError(
            f"{tx}/{index}", f"transaction {tx} holds {len(sub.proofs)} proof(s); no index {index}"
        )
    return sub.proofs[index]


def _evidence(raw: bytes) -> tuple[Any, str | None]:
    """The evidence document parsed within bounds, or None and why not (also when it holds
    text no response can carry: JSON's escapes let it hold a lone surrogate, ``"\\ud800"``,
    which UTF-8 cannot encode)."""
    try:
        doc = parse_document(raw)
    except EvidenceError as exc:
        return None, str(exc)
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return None, "document holds text that is not Unicode (an escaped lone surrogate)"
    return doc, None


def get_attestation(snap: BlockView, tx: str, index: int) -> AttestationPublic:
    sub = submission(snap, tx)
    proof = _proof(sub, tx, index)
    names = snap.index().names
    base: dict[str, Any] = {
        "block": block_public(snap.head),
        "tx": tx,
        "index": index,
        "block_number": sub.block,
        "proofs_in_tx": len(sub.proofs),
        "declared_domain_separator": hx(sub.declared),
    }
    if isinstance(proof, ValueError):
        return AttestationPublic(
            **base,
            status="malformed",
            rejection=sub.rejected.get(index),
            facility_id=None,
            facility_name=None,
            kind=None,
            subject=None,
            sequence=None,
            issued_at=None,
            expires_at=None,
            domains=[],
            location=None,
            evidence_hash=None,
            evidence=None,
            evidence_hex=None,
            signature=None,
            problem=str(proof),
        )
    a = proof.attestation
    domains, geo = _asserted(a, names)
    evidence, evidence_problem = _evidence(proof.evidence)
    accepted = index not in sub.rejected and (a.facility_id, a.sequence) in sub.accepted
    rejection = "transaction reverted" if sub.reverted else sub.rejected.get(index)
    return AttestationPublic(
        **base,
        status="accepted" if accepted else "rejected",
        rejection=None if accepted else rejection,
        facility_id=hx(a.facility_id),
        facility_name=names.facility(a.facility_id),
        kind=a.kind.name.lower(),
        subject=hx(a.subject),
        sequence=a.sequence,
        issued_at=a.issued_at,
        expires_at=a.expires_at,
        domains=domains,
        location=geo,
        evidence_hash=hx(a.evidence_hash),
        evidence=evidence,
        evidence_problem=evidence_problem,
        evidence_hex=hx(proof.evidence),
        signature=SignaturePublic(
            v=proof.signature.v, r=hx(proof.signature.r), s=hx(proof.signature.s)
        ),
    )


def verify_attestation(snap: BlockView, tx: str, index: int) -> VerificationPublic:
    sub = submission(snap, tx)
    _proof(sub, tx, index)
    reports: list[ProofReport] = snap.once(f"verify:{tx}", lambda: snap.verifier().verify_tx(tx))
    report = next(r for r in reports if r.index == index)
    out = report.as_dict()
    return VerificationPublic(
        block=block_public(snap.head),
        tx=report.tx,
        index=report.index,
        facility=report.facility,
        kind=report.kind,
        sequence=report.sequence,
        ok=report.ok,
        checks=[CheckPublic(**c) for c in out["checks"]],
    )
