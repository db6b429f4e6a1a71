"""Verify site proofs independently, from an RPC URL and deployment.json alone.

    redundancy-verify-attestation --deployment deployment.json --rpc-url URL \
        (--tx HASH | --facility ID) [--json]

For every proof in the transaction (or every accepted proof of the facility): decode it from
calldata, recompute the EIP-712 digest, recover the signer, check it was the facility's attestor
at that block, check evidence hash, sequence, expiry and skew, and check the device certificate
chain and the device signature on the evidence. Every check is printed, failures included.

Exit codes: 0 all checks passed; 1 a check failed; 2 RPC unreachable; 3 unknown transaction;
4 not a registry proof submission; 5 malformed calldata; 6 wrong deployment file; 7 no proofs
found for the facility.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from redundancy.chain import connect
from redundancy.checks import CheckResult
from redundancy.deployment import Deployment
from redundancy.domains import facility_id
from redundancy.errors import ChainUnreachableError, DeploymentFileError, RedundancyError
from redundancy.proofs import SignedProof
from redundancy.registry import RegistryClient
from redundancy.verification import CertificateStore, ProofContext, passed, verify_proof

(
    EXIT_FAILED,
    EXIT_RPC,
    EXIT_UNKNOWN_TX,
    EXIT_NOT_REGISTRY,
    EXIT_MALFORMED,
    EXIT_DEPLOYMENT,
    EXIT_NO_PROOFS,
) = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
)
_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
SUBMIT_FUNCTIONS = ("submitAttestation", "submitAttestations")


class VerifyError(RedundancyError):
    """Raised when verification cannot start: carries the exit code and one-line message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class ProofReport:
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


class Verifier:
    """Fetches what each proof's checks need from the chain, with caches per run."""

    def __init__(self, w3: Web3, deployment: Deployment) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.registry = RegistryClient(w3, deployment.registry)
        self.certificates = CertificateStore(self._fetch_certificate)

    def _fetch_certificate(self, sha256_hash: bytes) -> bytes | None:
        found = self.registry.find_certificate(sha256_hash, from_block=self.deployment.deploy_block)
        return found[1] if found else None

    def proofs_in_tx(self, tx_hash: str) -> tuple[bytes, list[SignedProof | ValueError], Any]:
        """The declared domain and the proofs of a submission (a ValueError for a malformed one)."""
        if not _HASH.match(tx_hash):
            raise VerifyError(
                EXIT_UNKNOWN_TX, f"{tx_hash!r} is not a transaction hash (0x + 64 hex digits)"
            )
        try:
            tx = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            raise VerifyError(
                EXIT_UNKNOWN_TX, f"transaction {tx_hash} not found on this chain"
            ) from None
        to = tx.get("to")
        if to is None or to.lower() != self.registry.address.lower():
            raise VerifyError(
                EXIT_NOT_REGISTRY,
                f"transaction {tx_hash} calls {to}, not the registry {self.registry.address}",
            )
        try:
            fn, params = self.registry.contract.decode_function_input(bytes(tx["input"]))
        except Exception as exc:  # eth-abi raises several decoding errors
            raise VerifyError(
                EXIT_MALFORMED,
                f"transaction {tx_hash}: calldata does not decode: {type(exc).__name__}",
            ) from None
        if fn.fn_name not in SUBMIT_FUNCTIONS:
            raise VerifyError(
                EXIT_NOT_REGISTRY,
                f"transaction {tx_hash} calls registry.{fn.fn_name}, not a proof submission",
            )
        raw = [params["proof"]] if fn.fn_name == "submitAttestation" else list(params["proofs"])
        proofs: list[SignedProof | ValueError] = []
        for item in raw:
            try:
                proofs.append(SignedProof.from_abi(item))
            except ValueError as exc:
                proofs.append(exc)
        return bytes(params["domainSeparator"]), proofs, tx

    def verify_tx(self, tx_hash: str, only_facility: bytes | None = None) -> list[ProofReport]:
        declared, proofs, _ = self.proofs_in_tx(tx_hash)
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        block = int(receipt["blockNumber"])
        timestamp = int(self.w3.eth.get_block(block)["timestamp"])
        policy = self.registry.freshness_policy(block)
        accepted: set[tuple[bytes, int]] = set()
        if receipt["status"] == 1:
            event = self.registry.contract.events.AttestationAccepted()
            for log in event.process_receipt(receipt, errors=DISCARD):
                accepted.add((bytes(log["args"]["facilityId"]), int(log["args"]["sequence"])))
        expected_domain = self.registry.domain_separator()
        last: dict[str, int] = {}
        reports = []
        for index, proof in enumerate(proofs):
            if isinstance(proof, ValueError):
                reports.append(
                    ProofReport(
                        tx_hash,
                        index,
                        "?",
                        "?",
                        0,
                        [CheckResult("attestation.packing", False, str(proof))],
                    )
                )
                continue
            a = proof.attestation
            if only_facility is not None and a.facility_id != only_facility:
                continue
            info = self.registry.facility(a.facility_id, block)
            attestor = info.attestor if info.registered else None
            if attestor is not None and attestor not in last:
                last[attestor] = self.registry.last_sequence(attestor, block - 1)
            ctx = ProofContext(
                domain_separator=expected_domain,
                declared_domain=declared,
                attestor=attestor,
                facility_active=info.active,
                block_timestamp=timestamp,
                policy=policy,
                previous_sequence=last.get(attestor, 0) if attestor else 0,
                accepted=(a.facility_id, a.sequence) in accepted,
                ca_fingerprint=info.ca_fingerprint,
                certificates=self.certificates,
            )
            checks = verify_proof(proof, ctx)
            if attestor is not None and ctx.accepted:
                last[attestor] = a.sequence
            reports.append(
                ProofReport(
                    tx_hash,
                    index,
                    "0x" + a.facility_id.hex(),
                    a.kind.name.lower(),
                    a.sequence,
                    checks,
                )
            )
        return reports

    def verify_facility(self, fid: bytes) -> list[ProofReport]:
        event = self.registry.contract.events.AttestationAccepted()
        logs = event.get_logs(
            from_block=self.deployment.deploy_block, argument_filters={"facilityId": fid}
        )
        hashes = list(dict.fromkeys(log["transactionHash"].to_0x_hex() for log in logs))
        if not hashes:
            raise VerifyError(EXIT_NO_PROOFS, f"no accepted proofs for facility 0x{fid.hex()}")
        return [r for h in hashes for r in self.verify_tx(h, only_facility=fid)]


def parse_facility(value: str) -> bytes:
    """A facility id as 0x + 64 hex digits, or a facility name ("fra1")."""
    if _HASH.match(value):
        return bytes.fromhex(value[2:])
    return facility_id(value)


def open_deployment(path: Path, rpc_url: str) -> tuple[Web3, Deployment]:
    """Connect and check the deployment file matches the chain (VerifyError otherwise)."""
    try:
        deployment = Deployment.read(path)
    except DeploymentFileError as exc:
        raise VerifyError(EXIT_DEPLOYMENT, str(exc)) from None
    try:
        w3 = connect(rpc_url)
    except ChainUnreachableError as exc:
        raise VerifyError(EXIT_RPC, str(exc)) from None
    if w3.eth.chain_id != deployment.chain_id:
        raise VerifyError(
            EXIT_DEPLOYMENT,
            f"{path} is for chain {deployment.chain_id}, but {rpc_url} "
            f"serves chain {w3.eth.chain_id}",
        )
    if not w3.eth.get_code(deployment.registry):  # type: ignore[arg-type]
        raise VerifyError(
            EXIT_DEPLOYMENT, f"{path}: no contract at registry {deployment.registry} on this chain"
        )
    return w3, deployment


def render(reports: list[ProofReport]) -> str:
    lines = []
    for r in reports:
        lines.append(
            f"{'PASS' if r.ok else 'FAIL'} proof {r.index} of {r.tx}: facility {r.facility} "
            f"{r.kind} #{r.sequence}"
        )
        for c in r.checks:
            lines.append(
                f"  {'ok  ' if c.ok else 'FAIL'} {c.id}{': ' + c.detail if c.detail else ''}"
            )
    ok = sum(r.ok for r in reports)
    lines.append(f"{ok} of {len(reports)} proofs passed every check")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="redundancy-verify-attestation", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--deployment", type=Path, required=True, help="deployment.json")
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8545", help="JSON-RPC endpoint")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--tx", help="a submission transaction hash")
    target.add_argument(
        "--facility", help="facility id (0x...) or name: every accepted proof of it"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        w3, deployment = open_deployment(args.deployment, args.rpc_url)
        verifier = Verifier(w3, deployment)
        reports = (
            verifier.verify_tx(args.tx)
            if args.tx
            else verifier.verify_facility(parse_facility(args.facility))
        )
    except VerifyError as exc:
        print(f"redundancy-verify-attestation: error: {exc}", file=sys.stderr)
        return exc.code
    except (RedundancyError, OSError) as exc:
        print(f"redundancy-verify-attestation: error: {exc}", file=sys.stderr)
        return EXIT_RPC
    if args.json:
        print(
            json.dumps(
                {"ok": all(r.ok for r in reports), "proofs": [r.as_dict() for r in reports]},
                indent=1,
            )
        )
    else:
        print(render(reports))
    return 0 if all(r.ok for r in reports) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
