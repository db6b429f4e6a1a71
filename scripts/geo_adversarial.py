#!/usr/bin/env python3
"""Sites that lie about geography, against the real contracts on a fresh anvil: prints the
adversarial figures of issue 15 (see devnet/geolies.py for what each case does).

    python scripts/geo_adversarial.py [--cases 1000] [--worlds 10] [--seed 1] [--json]

Exit 0 when every goal holds (no honest facility flagged by a pair lie or by a landmark, none
left flagged against a peer whose own disc proves the peer's claim false, no claim outside one of
its own discs unflagged, no case whose outcome differs from the expected one), 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from eth_account import Account

from devnet.geolies import landmark_worlds, pair_lies, render
from devnet.localchain import start_chain
from redundancy.chain import connect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000, help="pair-lie cases (default 1000)")
    parser.add_argument("--worlds", type=int, default=10, help="landmark worlds (default 10)")
    parser.add_argument("--min-sites", type=int, default=10)
    parser.add_argument("--max-sites", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    args = parser.parse_args(argv)
    if args.cases < 0 or args.worlds < 0 or not 1 <= args.min_sites <= args.max_sites:
        parser.error("--cases and --worlds must be >= 0 and 1 <= --min-sites <= --max-sites")
    started = time.monotonic()
    with start_chain("anvil") as chain:
        w3 = connect(chain.rpc_url)
        owner, relayer = (Account.from_key(chain.dev_keys[i]) for i in (0, 5))
        pairs = pair_lies(w3, owner, relayer, args.cases, args.seed) if args.cases else None
        worlds = (
            landmark_worlds(
                w3, owner, relayer, args.worlds, args.seed, args.min_sites, args.max_sites
            )
            if args.worlds
            else None
        )
    if args.json:
        print(
            json.dumps(
                {
                    "pairs": dataclasses.asdict(pairs) if pairs else None,
                    "worlds": dataclasses.asdict(worlds) if worlds else None,
                },
                indent=2,
                default=str,
            )
        )
    else:
        print(render(pairs, worlds))
        print(f"({time.monotonic() - started:.0f} s, seed {args.seed})")
    ok = (pairs is None or (pairs.honest_flagged == 0 and not pairs.disagreements)) and (
        worlds is None
        or (
            worlds.provably_false_missed == 0
            and worlds.beyond_diameter_missed == 0
            and worlds.honest_flagged_by_landmark == 0
            and worlds.honest_flagged_by_provably_false_peer == 0
            and not worlds.disagreements
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
