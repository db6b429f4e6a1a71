"""Compile the Solidity sources with the pinned compiler and keep the artifacts Python loads.

``redundancy-build`` writes ``redundancy/artifacts/<Contract>.json``; ``redundancy-build --check``
recompiles and fails if any artifact differs from what is committed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import solcx

from devnet.errors import CompilationError
from devnet.toolchain import ARTIFACTS_DIR, CONTRACTS_DIR, solc_binary
from redundancy.errors import RedundancyError

SOLC_VERSION = "0.8.28"
#: paris (no PUSH0) so one bytecode runs on anvil and on ganache 7.9, which predates Cancun.
EVM_VERSION = "paris"
OPTIMIZER_RUNS = 10_000
#: Contracts whose artifacts are kept (interfaces are compiled but not kept).
DEPLOYABLE = ("RedundancyRegistry", "CommitteeSelector", "SettlementLedger")


def standard_input() -> dict[str, Any]:
    """The solc standard-JSON input for every source under contracts/."""
    sources = {
        p.name: {"content": p.read_text(encoding="utf-8")}
        for p in sorted(CONTRACTS_DIR.glob("*.sol"))
    }
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "evmVersion": EVM_VERSION,
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "viaIR": True,
            "metadata": {"bytecodeHash": "none"},
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }


def compile_contracts() -> dict[str, dict[str, Any]]:
    """Compile and return artifacts by contract name, each headed with the compiler version."""
    binary = solc_binary()
    version = str(solcx.wrapper.get_solc_version(binary, with_commit_hash=True))
    if not version.startswith(SOLC_VERSION):
        raise CompilationError(f"solc {version} found, {SOLC_VERSION} is pinned")
    try:
        output = solcx.compile_standard(standard_input(), solc_binary=binary)
    except solcx.exceptions.SolcError as exc:
        messages = [e.get("formattedMessage", "") for e in (exc.error_dict or [])]
        raise CompilationError("\n".join(messages) or exc.message) from None
    artifacts: dict[str, dict[str, Any]] = {}
    for source, contracts in output["contracts"].items():
        for name, out in contracts.items():
            if name not in DEPLOYABLE:
                continue
            artifacts[name] = {
                "compiler": f"solc {version}",
                "settings": {
                    "evmVersion": EVM_VERSION,
                    "optimizerRuns": OPTIMIZER_RUNS,
                    "viaIR": True,
                },
                "source": source,
                "abi": out["abi"],
                "bytecode": "0x" + out["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + out["evm"]["deployedBytecode"]["object"],
            }
    missing = set(DEPLOYABLE) - set(artifacts)
    if missing:
        raise CompilationError(f"compiler produced no artifact for {sorted(missing)}")
    return artifacts


def render(artifact: dict[str, Any]) -> str:
    """The artifact file's exact text (stable, so a rebuild can be compared byte for byte)."""
    return json.dumps(artifact, indent=1, sort_keys=False) + "\n"


def write_artifacts(artifacts: dict[str, dict[str, Any]], out_dir: Path = ARTIFACTS_DIR) -> None:
    """Write each artifact as ``<name>.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, artifact in artifacts.items():
        (out_dir / f"{name}.json").write_text(render(artifact), encoding="utf-8")


def stale_artifacts(
    artifacts: dict[str, dict[str, Any]], out_dir: Path = ARTIFACTS_DIR
) -> list[str]:
    """Names whose committed artifact differs from a fresh compile."""
    stale = []
    for name, artifact in artifacts.items():
        path = out_dir / f"{name}.json"
        if not path.exists() or path.read_text(encoding="utf-8") != render(artifact):
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if artifacts are out of date")
    args = parser.parse_args(argv)
    try:
        artifacts = compile_contracts()
        if args.check:
            stale = stale_artifacts(artifacts)
            if stale:
                print(
                    f"error: artifacts out of date: {', '.join(stale)}; run redundancy-build",
                    file=sys.stderr,
                )
                return 1
            print(f"artifacts up to date ({', '.join(sorted(artifacts))})")
            return 0
        write_artifacts(artifacts)
    except RedundancyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, artifact in sorted(artifacts.items()):
        size = (len(artifact["deployedBytecode"]) - 2) // 2
        print(f"{name}: {size} bytes runtime, {artifact['compiler']}")
    return 0
