"""Verify site proofs independently, from an RPC endpoint and a deployment file alone.

For every proof of a submission (or every accepted proof of a facility): decode it from
calldata, recompute the EIP-712 digest, recover the signer, check it was the facility's attestor
at that block, check evidence hash, sequence, expiry and skew, and check the device certificate
chain and the device signature on the evidence (``redundancy.proofcheck``). Every check is
returned, failures included; nothing here prints or exits (``redundancy.cli.verify_attestation``
does).

Raises ``VerificationError`` subclasses when verification cannot start: an unknown transaction,
a transaction that is not a proof submission, calldata that does not decode, a facility with no
accepted proofs; ``DeploymentFileError`` when the deployment file does not fit the chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.types import BlockIdentifier

from redundancy.chain import connect
from redundancy.checks import CheckResult
from redundancy.deployment import Deployment
from redundancy.domains import facility_id
from redundancy.errors import DeploymentFileError, NoProofsError
from redundancy.proofcheck import CertificateStore, ProofContext, passed, verify_proof
from redundancy.registry import FacilityInfo, RegistryClient

_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


@dataclass
class ProofReport:
    """Every check of one proof of one submission."""

    tx: str
    index: int
    facility: str
    kind: str
    sequence: int
    checks: list[CheckResult]

    @property
    def ok(self) -> bool:
        return passed(self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tx": self.tx,
            "index": self.index,
            "facility": self.facility,
            "kind": self.kind,
            "sequence": self.sequence,
            "ok": self.ok,
            "checks": [c.as_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class ManufacturerPins:
    """The TPM manufacturer roots accepted for one facility at one block: the registry's pins
    (for the facility or policy-wide) and any the verifier was given."""

    registry: RegistryClient
    facility_id: bytes
    block: int
    extra: frozenset[bytes]

    def __contains__(self, fingerprint: object) -> bool:
        if not isinstance(fingerprint, bytes) or len(fingerprint) != 32:
            return False
        if fingerprint in self.extra:
            return True
        return self.registry.tpm_manufacturer_ca_accepted(self.facility_id, fingerprint, self.block)


class Verifier:
    """Fetches what each proof's checks need from the chain, with caches per run."""

    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        manufacturer_cas: frozenset[bytes] = frozenset(),
        at_block: int | None = None,
    ) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.at_block = at_block
        """Certificates are looked up as published up to this block (None: the latest): an
        answer labelled with a block must not count a certificate published after it."""
        self.manufacturer_cas = manufacturer_cas | {
            bytes.fromhex(p) for p in deployment.tpm_manufacturer_cas
        }
        self._blocks: dict[int, tuple[bytes, int] | None] = {}
        self.registry = RegistryClient(w3, deployment.registry)
        self.certificates = CertificateStore(self._fetch_certificate)

    def _fetch_certificate(self, sha256_hash: bytes) -> bytes | None:
        to_block: BlockIdentifier = "latest" if self.at_block is None else self.at_block
        found = self.registry.find_certificate(
            sha256_hash, from_block=self.deployment.deploy_block, to_block=to_block
        )
        return found[1] if found else None

    def _block(self, number: int) -> tuple[bytes, int] | None:
        """(hash, timestamp) of a block (a TPM quote's nonce), None if the chain lacks it."""
        if number not in self._blocks:
            try:
                block = self.w3.eth.get_block(number)
                self._blocks[number] = (bytes(block["hash"]), int(block["timestamp"]))
            except Exception:  # no such block (or a number the node refuses)
                self._blocks[number] = None
        return self._blocks[number]

    def verify_tx(self, tx_hash: str, only_facility: bytes | None = None) -> list[ProofReport]:
        """A report per proof of a submission (of one facility's proofs, if given)."""
        submission = self.registry.read_submission(tx_hash)
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        block = int(receipt["blockNumber"])
        timestamp = int(self.w3.eth.get_block(block)["timestamp"])
        policy = self.registry.freshness_policy(block)
        outcome = self.registry.outcome(receipt)
        accepted = set(outcome.accepted)
        rejected = {index for index, _ in outcome.rejected}
        expected_domain = self.registry.domain_separator()
        last: dict[str, int] = {}
        facilities: dict[bytes, FacilityInfo] = {}  # a batch holds many proofs of one facility
        reports = []
        for index, proof in enumerate(submission.proofs):
            if isinstance(proof, ValueError):
                packing = CheckResult("attestation.packing", False, str(proof))
                reports.append(ProofReport(tx_hash, index, "?", "?", 0, [packing]))
                continue
            a = proof.attestation
            if only_facility is not None and a.facility_id != only_facility:
                continue
            info = facilities.get(a.facility_id)
            if info is None:
                info = facilities[a.facility_id] = self.registry.facility(a.facility_id, block)
            attestor = info.attestor if info.registered else None
            if attestor is not None and attestor not in last:
                last[attestor] = self.registry.last_sequence(attestor, block - 1)
            ctx = ProofContext(
                domain_separator=expected_domain,
                declared_domain=submission.declared_domain,
                attestor=attestor,
                facility_active=info.active,
                block_timestamp=timestamp,
                policy=policy,
                previous_sequence=last.get(attestor, 0) if attestor else 0,
                # by position too: a refused copy may share the accepted one's sequence
                accepted=(a.facility_id, a.sequence) in accepted and index not in rejected,
                ca_fingerprint=info.ca_fingerprint,
                certificates=self.certificates,
                manufacturer_cas=ManufacturerPins(
                    self.registry, a.facility_id, block, frozenset(self.manufacturer_cas)
                ),
                block=self._block,
                tpm_ak_certificate=info.tpm_ak_certificate,
            )
            checks = verify_proof(proof, ctx)
            if attestor is not None and ctx.accepted:
                last[attestor] = a.sequence
            facility = "0x" + a.facility_id.hex()
            reports.append(
                ProofReport(tx_hash, index, facility, a.kind.name.lower(), a.sequence, checks)
            )
        return reports

    def verify_facility(self, fid: bytes) -> list[ProofReport]:
        """A report per accepted proof of a facility (NoProofsError if it has none)."""
        events = self.registry.accepted_proofs(self.deployment.deploy_block, facility_id=fid)
        hashes = list(dict.fromkeys(e.tx for e in events))
        if not hashes:
            raise NoProofsError(f"no accepted proofs for facility 0x{fid.hex()}")
        return [r for h in hashes for r in self.verify_tx(h, only_facility=fid)]


def parse_facility(value: str) -> bytes:
    """A facility id as 0x + 64 hex digits, or a facility name ("fra1")."""
    if _HASH.match(value):
        return bytes.fromhex(value[2:])
    return facility_id(value)


def open_deployment(path: Path, rpc_url: str) -> tuple[Web3, Deployment]:
    """Connect and check the deployment file fits the chain. Raises DeploymentFileError (file
    missing, malformed, for another chain, or no registry at its address) or
    ChainUnreachableError."""
    deployment = Deployment.read(path)
    w3 = connect(rpc_url)
    if w3.eth.chain_id != deployment.chain_id:
        raise DeploymentFileError(
            f"{path} is for chain {deployment.chain_id}, but {rpc_url} "
            f"serves chain {w3.eth.chain_id}"
        )
    if not w3.eth.get_code(deployment.registry):  # type: ignore[arg-type]
        raise DeploymentFileError(
            f"{path}: no contract at registry {deployment.registry} on this chain"
        )
    return w3, deployment
