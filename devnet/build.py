"""Compile the Solidity sources with the pinned compiler and keep the artifacts Python loads.

``redundancy-build`` writes ``redundancy/artifacts/<Contract>.json``; ``redundancy-build --check``
recompiles and fails if any artifact differs from what is committed.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import sys
from pathlib import Path
from typing import Any

import solcx

from devnet.errors import CompilationError
from devnet.toolchain import ARTIFACTS_DIR, CONTRACTS_DIR, PROJECT_ROOT, solc_binary
from redundancy.errors import RedundancyError

SOLC_VERSION = "0.8.28"
#: paris (no PUSH0) so one bytecode runs on anvil and on ganache 7.9, which predates Cancun.
EVM_VERSION = "paris"
OPTIMIZER_RUNS = 10_000
#: Contracts whose artifacts are kept (interfaces are compiled but not kept).
DEPLOYABLE = (
    "RedundancyRegistry",
    "CommitteeSelector",
    "SelectorGeography",
    "SelectionReference",
    "SettlementLedger",
)
#: Import prefixes served from the pinned npm packages, and the folder each is read from.
PACKAGE_ROOTS = {
    "@openzeppelin/contracts/": PROJECT_ROOT / "node_modules" / "@openzeppelin" / "contracts",
}

# A string literal (kept, so "//" inside one is not a comment) or a comment (dropped).
_STRING_OR_COMMENT = re.compile(
    r"(\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')|//[^\n]*|/\*.*?\*/", re.DOTALL
)
# Every form of import directive: `import "p";`, `import "p" as X;`, `import * as X from "p";`,
# `import {A, B as C} from "p";`.
_IMPORT = re.compile(r"\bimport\s+(?:[^;\"']*?\bfrom\s+)?[\"']([^\"']+)[\"']")


def imported_paths(source: str) -> list[str]:
    """The paths a Solidity source imports, as written, in order (comments ignored)."""
    code = _STRING_OR_COMMENT.sub(lambda m: m.group(1) or " ", source)
    return _IMPORT.findall(code)


def source_unit_name(importer: str, path: str) -> str:
    """The source unit name solc gives ``path`` imported from the unit ``importer``.

    Relative paths (``./``, ``../``) are taken from the importer's folder; any other path is a
    unit name as it stands.
    """
    if path.startswith(("./", "../")):
        return posixpath.normpath(posixpath.join(posixpath.dirname(importer), path))
    return path


def read_source(unit: str) -> str:
    """The text of a source unit: contracts/<unit>, or a file of a pinned npm package."""
    for prefix, root in PACKAGE_ROOTS.items():
        if unit.startswith(prefix):
            path = root / unit[len(prefix) :]
            if not path.is_file():
                raise CompilationError(
                    f"import {unit!r}: {path} not found; run `npm install --no-save` "
                    f"(scripts/bootstrap.sh) in {PROJECT_ROOT}"
                )
            return path.read_text(encoding="utf-8")
    path = CONTRACTS_DIR / unit
    if "/" in unit or not path.is_file():
        raise CompilationError(
            f"import {unit!r}: not a file in contracts/ nor under {sorted(PACKAGE_ROOTS)}"
        )
    return path.read_text(encoding="utf-8")


def collect_sources() -> dict[str, str]:
    """Every contracts/*.sol and, transitively, every file they import, by source unit name."""
    pending = [p.name for p in sorted(CONTRACTS_DIR.glob("*.sol"))]
    sources: dict[str, str] = {}
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        text = read_source(unit)
        sources[unit] = text
        pending.extend(source_unit_name(unit, path) for path in imported_paths(text))
    return dict(sorted(sources.items()))


def standard_input() -> dict[str, Any]:
    """The solc standard-JSON input: contracts/*.sol and everything they import."""
    sources = {unit: {"content": text} for unit, text in collect_sources().items()}
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
