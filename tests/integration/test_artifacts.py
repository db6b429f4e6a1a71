"""The committed artifacts are exactly what the pinned compiler makes of the sources."""

from __future__ import annotations

from devnet.build import SOLC_VERSION, compile_contracts, render
from devnet.toolchain import ARTIFACTS_DIR


def test_committed_artifacts_match_a_fresh_compile() -> None:
    fresh = compile_contracts()
    for name, artifact in fresh.items():
        committed = (ARTIFACTS_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert committed == render(artifact), f"{name}.json is stale: run redundancy-build"


def test_artifacts_are_headed_with_the_pinned_compiler() -> None:
    for path in ARTIFACTS_DIR.glob("*.json"):
        assert path.read_text(encoding="utf-8").startswith(
            f'{{\n "compiler": "solc {SOLC_VERSION}+'
        )
