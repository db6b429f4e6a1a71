"""Slither over contracts/, compiled by the project's pinned solc-js (contracts/solc-shim.cjs)
with the settings of ``redundancy-build`` (viaIR, optimizer 10,000 runs, EVM paris).

Runs in the static-check virtualenv (``scripts/static-checks.sh`` makes it: slither-analyzer
pulls in its own web3, so it stays out of the project's). Prints every finding by impact;
exits 1 if a high or medium finding in the project's own sources is not accepted, with a
reason, in ``slither-triage.json`` (keyed ``check:Contract.element``), or if an accepted
entry no longer matches any finding (so the file cannot go stale). Findings inside
node_modules (OpenZeppelin) are counted, not judged.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from crytic_compile import CryticCompile
from crytic_compile.platform.solc_standard_json import SolcStandardJson
from slither import Slither
from slither.detectors import all_detectors
from slither.detectors.abstract_detector import AbstractDetector

ROOT = Path(__file__).resolve().parent.parent
TRIAGE = ROOT / "slither-triage.json"
#: the settings of devnet/build.py (redundancy-build): keep them in step
SETTINGS: dict[str, Any] = {
    "viaIR": True,
    "optimizer": {"enabled": True, "runs": 10_000},
    "evmVersion": "paris",
    "remappings": ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"],
}
JUDGED = ("High", "Medium")


def key_of(result: dict[str, Any]) -> str:
    """check:Contract[.function].element of a finding's first element (stable across line
    moves)."""
    first = result["elements"][0] if result["elements"] else {}
    names = [first.get("name", "?")]
    parent = first.get("type_specific_fields", {}).get("parent")
    while parent:
        names.append(parent.get("name", "?"))
        parent = parent.get("type_specific_fields", {}).get("parent")
    return f"{result['check']}:{'.'.join(reversed(names))}"


def accepted_by(key: str, accepted: dict[str, str]) -> str | None:
    """The triage entry accepting ``key``: itself, or a prefix entry ending in ``*``."""
    if key in accepted:
        return key
    return next((k for k in accepted if k.endswith("*") and key.startswith(k[:-1])), None)


def in_dependency(result: dict[str, Any]) -> bool:
    paths = [e.get("source_mapping", {}).get("filename_relative", "") for e in result["elements"]]
    return bool(paths) and all("node_modules" in p for p in paths)


def main() -> int:
    os.chdir(ROOT)
    sources = {
        f"contracts/{p.name}": {"urls": [f"contracts/{p.name}"]}
        for p in sorted((ROOT / "contracts").glob("*.sol"))
    }
    platform = SolcStandardJson({"language": "Solidity", "sources": sources, "settings": SETTINGS})
    compiled = CryticCompile(
        platform, solc=str(ROOT / "contracts" / "solc-shim.cjs"), solc_working_dir=str(ROOT)
    )
    slither = Slither(compiled)
    for _, cls in inspect.getmembers(all_detectors, inspect.isclass):
        if issubclass(cls, AbstractDetector):
            slither.register_detector(cls)
    results = [r for per in slither.run_detectors() for r in per]
    accepted: dict[str, str] = json.loads(TRIAGE.read_text())["accepted"]
    by_impact: Counter[str] = Counter()
    unexplained: list[str] = []
    seen: set[str] = set()
    for r in results:
        if in_dependency(r):
            by_impact["dependency"] += 1
            continue
        by_impact[r["impact"]] += 1
        if r["impact"] not in JUDGED:
            continue
        key = key_of(r)
        entry = accepted_by(key, accepted)
        status = "accepted" if entry else "UNEXPLAINED"
        print(f"[{r['impact']}] {status} {key}\n    {r['description'].strip().splitlines()[0]}")
        if entry is None:
            unexplained.append(key)
        else:
            seen.add(entry)
    stale = sorted(set(accepted) - seen)
    for key in stale:
        print(f"[triage] stale entry (matches no finding): {key}")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(by_impact.items()))
    print(f"slither: {len(results)} findings ({counts})")
    print(f"slither: {len(unexplained)} unexplained high/medium, {len(stale)} stale triage entries")
    return 1 if unexplained or stale else 0


if __name__ == "__main__":
    sys.exit(main())
