"""Verify site proofs independently, from an RPC URL and deployment.json alone.

    redundancy-verify-attestation --deployment deployment.json --rpc-url URL \
        (--tx HASH | --facility ID) [--json]

Prints every check of every proof (``redundancy.attestation_verifier`` does the work), failures
included. Exit codes: 0 all checks passed; 1 a check failed; 2 RPC unreachable; 3 unknown
transaction; 4 not a registry proof submission; 5 malformed calldata; 6 wrong deployment file;
7 no proofs found for the facility.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from redundancy.attestation_verifier import ProofReport, Verifier, open_deployment, parse_facility
from redundancy.errors import (
    DeploymentFileError,
    MalformedCalldataError,
    NoProofsError,
    NotASubmissionError,
    RedundancyError,
    UnknownTransactionError,
)

PROG = "redundancy-verify-attestation"
EXIT_FAILED, EXIT_RPC = 1, 2
#: Why verification could not start, by error class (anything else: the RPC).
EXIT_CODES: tuple[tuple[type[RedundancyError], int], ...] = (
    (UnknownTransactionError, 3),
    (NotASubmissionError, 4),
    (MalformedCalldataError, 5),
    (DeploymentFileError, 6),
    (NoProofsError, 7),
)


def emit(text: str, stream: TextIO) -> None:
    """Write a line that may quote hostile chain content (a check's detail can name a value
    read from evidence, which JSON escapes let hold a lone surrogate): what the stream's
    encoding cannot carry is written as a backslash escape instead of raising."""
    encoding = stream.encoding or "utf-8"
    stream.write(text.encode(encoding, "backslashreplace").decode(encoding) + "\n")


def exit_code(exc: Exception) -> int:
    """The exit code for an error that stopped verification before any check."""
    return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), EXIT_RPC)


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
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--deployment", type=Path, required=True, help="deployment.json")
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8545", help="JSON-RPC endpoint")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--tx", help="a submission transaction hash")
    target.add_argument(
        "--facility", help="facility id (0x...) or name: every accepted proof of it"
    )
    parser.add_argument(
        "--manufacturer-ca",
        action="append",
        default=[],
        metavar="SHA256",
        help="accept TPM EK chains to this manufacturer root CA (sha256 hex of its DER; "
        "repeatable; added to the registry's pins and the deployment file's "
        "tpm_manufacturer_cas)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        pins = frozenset(bytes.fromhex(p.removeprefix("0x")) for p in args.manufacturer_ca)
    except ValueError:
        parser.error("--manufacturer-ca takes the sha256 hex of a root CA certificate")
    try:
        w3, deployment = open_deployment(args.deployment, args.rpc_url)
        verifier = Verifier(w3, deployment, pins)
        reports = (
            verifier.verify_tx(args.tx)
            if args.tx
            else verifier.verify_facility(parse_facility(args.facility))
        )
    except (RedundancyError, OSError) as exc:
        emit(f"{PROG}: error: {exc}", sys.stderr)
        return exit_code(exc)
    if args.json:
        payload = {"ok": all(r.ok for r in reports), "proofs": [r.as_dict() for r in reports]}
        emit(json.dumps(payload, indent=1), sys.stdout)
    else:
        emit(render(reports), sys.stdout)
    return 0 if all(r.ok for r in reports) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
