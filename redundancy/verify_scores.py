"""Recompute eligibility, selection, scores and class from events alone; compare to the contracts.

    redundancy-verify-scores --deployment deployment.json --rpc-url URL [--block N] [--json]

Replays every registry and selector event up to a block, computes with the Python reference, and
compares each result with the contracts' own views at that same block. Prints the per-dimension
table. Exit codes: 0 everything matches; 1 a mismatch; 2 RPC unreachable; 6 wrong deployment file.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redundancy.committee import SelectorClient
from redundancy.domains import Dimension
from redundancy.errors import RedundancyError
from redundancy.events import contract_events
from redundancy.rebuild import rebuild
from redundancy.registry import RegistryClient
from redundancy.scores import Member, Scores, compute_scores
from redundancy.selection import DiversityPolicy, classify, select_committee
from redundancy.verify_attestation import EXIT_RPC, VerifyError, open_deployment


@dataclass
class Comparison:
    what: str
    ok: bool
    detail: str = ""


def _keys(members: list[Member] | tuple[Member, ...]) -> list[tuple[str, int, tuple[bytes, ...]]]:
    return sorted((m.address.lower(), m.stake, m.domains) for m in members)


def compare(
    registry: RegistryClient, selector: SelectorClient, deploy_block: int, block: int
) -> tuple[list[Comparison], Scores, str]:
    w3 = registry.w3
    now = int(w3.eth.get_block(block)["timestamp"])
    state = rebuild(
        contract_events(w3, [registry.contract, selector.contract], deploy_block, block)
    )
    policy = state.diversity or DiversityPolicy(1)
    out: list[Comparison] = []

    for fid, f in state.facilities.items():
        onchain = registry.facility(fid, block)
        same = (
            onchain.attestor == f.attestor
            and onchain.active == f.active
            and (onchain.latitude_e6, onchain.longitude_e6) == (f.latitude_e6, f.longitude_e6)
            and all(
                onchain.domains[d] == f.domains.get(d, bytes(32))
                for d in Dimension
                if d != 0 and d != Dimension.HARDWARE
            )
            and all(onchain.valid_until[k] == f.valid_until.get(k, 0) for k in f.valid_until)
        )
        out.append(
            Comparison(
                f"facility 0x{fid.hex()[:12]}", same, "" if same else "registry view differs"
            )
        )
        stale = registry.facility_status(fid, block).stale
        out.append(
            Comparison(
                f"facility 0x{fid.hex()[:12]} stale={stale}",
                stale == state.stale(fid, now),
                "staleness differs",
            )
        )

    candidates = state.candidates(now)
    onchain_candidates = selector.eligible_candidates(block)
    out.append(
        Comparison(
            f"eligible validators ({len(candidates)})",
            _keys(candidates) == _keys(onchain_candidates),
            "eligible sets differ",
        )
    )

    ours = select_committee(candidates, policy)
    theirs = selector.preview_selection(block)
    out.append(
        Comparison(
            f"selection preview ({ours.describe()})",
            (ours.failure, ours.dimension) == (theirs.failure, theirs.dimension)
            and _keys(ours.members) == _keys(theirs.members),
            "selections differ",
        )
    )

    committee = selector.current_committee(block)
    same_committee = (committee.epoch, committee.members, committee.stakes) == (
        state.committee.epoch,
        state.committee.members,
        state.committee.stakes,
    )
    out.append(
        Comparison(
            f"committee of epoch {committee.epoch} ({len(committee.members)} members)",
            same_committee,
            "stored committee differs from CommitteeSelected events",
        )
    )
    members = state.committee_members()
    scores = compute_scores(members)
    out.append(
        Comparison("committee scores", selector.current_scores(block) == scores, "scores differ")
    )
    klass = classify(members, candidates, policy)
    onchain_class = selector.current_class(block)
    out.append(
        Comparison(
            f"configuration class {klass.name.lower()}",
            onchain_class == klass,
            f"contract says {onchain_class.name.lower()}",
        )
    )
    return out, scores, klass.name.lower()


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
    parser = argparse.ArgumentParser(
        prog="redundancy-verify-scores", description=__doc__.splitlines()[0]
    )
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
        comparisons, scores, klass = compare(registry, selector, deployment.deploy_block, block)
    except VerifyError as exc:
        print(f"redundancy-verify-scores: error: {exc}", file=sys.stderr)
        return exc.code
    except (RedundancyError, OSError) as exc:
        print(f"redundancy-verify-scores: error: {exc}", file=sys.stderr)
        return EXIT_RPC
    ok = all(c.ok for c in comparisons)
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
