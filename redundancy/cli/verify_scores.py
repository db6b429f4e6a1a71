"""Recompute eligibility, selection, scores and class from events alone; compare to the contracts.

    redundancy-verify-scores --deployment deployment.json --rpc-url URL [--block N] [--json]

Prints every comparison ``redundancy.score_verifier`` makes and the per-dimension table. Exit
codes: 0 everything matches; 1 a mismatch; 2 RPC unreachable; 6 wrong deployment file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from redundancy.attestation_verifier import open_deployment
from redundancy.errors import DeploymentFileError, RedundancyError
from redundancy.registry import RegistryClient
from redundancy.score_verifier import compare
from redundancy.scores import Scores
from redundancy.selector import SelectorClient

PROG = "redundancy-verify-scores"
EXIT_RPC, EXIT_DEPLOYMENT = 2, 6


def table(scores: Scores, klass: str) -> str:
    lines = [
        f"{'dimension':10} {'N':>3} {'T':>3} {'HHI bps':>8} {'largest domain':>16} "
        f"{'share':>7} {'domains':>7}"
    ]
    for d in scores.dimensions:
        share = f"{d.largest_share_bps / 100:.1f}%"
        lines.append(
            f"{d.dimension.name.lower():10} {d.nakamoto:>3} {d.tolerance:>3} {d.hhi_bps:>8} "
            f"{'0x' + d.largest_domain.hex()[:12]:>16} {share:>7} {d.domain_count:>7}"
        )
    lines.append(
        f"redundancy score {scores.score} (weakest: {scores.weakest.name.lower()}), class {klass}, "
        f"committee stake {scores.total_stake}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--deployment", type=Path, required=True, help="deployment.json")
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8545", help="JSON-RPC endpoint")
    parser.add_argument("--block", type=int, help="block to verify at (default: latest)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        w3, deployment = open_deployment(args.deployment, args.rpc_url)
        block = args.block if args.block is not None else int(w3.eth.block_number)
        registry = RegistryClient(w3, deployment.registry)
        selector = SelectorClient(w3, deployment.selector)
        report = compare(registry, selector, deployment.deploy_block, block)
    except (RedundancyError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_DEPLOYMENT if isinstance(exc, DeploymentFileError) else EXIT_RPC
    comparisons, scores, klass, ok = report.comparisons, report.scores, report.klass, report.ok
    if args.json:
        payload: dict[str, Any] = {
            "block": block,
            "ok": ok,
            "class": klass,
            "score": scores.score,
            "weakest": scores.weakest.name.lower(),
            "comparisons": [c.__dict__ for c in comparisons],
            "dimensions": [
                {
                    "dimension": d.dimension.name.lower(),
                    "nakamoto": d.nakamoto,
                    "tolerance": d.tolerance,
                    "hhi_bps": d.hhi_bps,
                    "largest_domain": "0x" + d.largest_domain.hex(),
                    "largest_share_bps": d.largest_share_bps,
                    "domains": d.domain_count,
                }
                for d in scores.dimensions
            ],
        }
        print(json.dumps(payload, indent=1))
    else:
        print(f"state rebuilt from events up to block {block}, compared with the contracts there:")
        for c in comparisons:
            print(f"  {'ok  ' if c.ok else 'FAIL'} {c.what}{'' if c.ok else ': ' + c.detail}")
        print()
        print(table(scores, klass))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
