"""The committed artifacts are exactly what the pinned compiler makes of the sources, which are
contracts/*.sol and every file they import, found transitively."""

from __future__ import annotations

import re

import pytest

from devnet.build import (
    SOLC_VERSION,
    collect_sources,
    compile_contracts,
    imported_paths,
    read_source,
    render,
    source_unit_name,
)
from devnet.errors import CompilationError
from devnet.toolchain import ARTIFACTS_DIR, CONTRACTS_DIR


@pytest.mark.slow  # opt-in (-m slow): scripts/test.sh runs the same check (redundancy-build
# --check) before pytest; this is for running pytest alone
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


def test_import_directives_are_found_in_every_form_and_not_in_comments() -> None:
    source = """
        import {A} from "./a.sol"; // import "./commented.sol";
        /* import "./block-commented.sol"; */ import "./b.sol" as B;
        import * as C from '../c.sol';
        string constant URL = "https://example.org/x"; import {D,
            E as F} from "@openzeppelin/contracts/d.sol";
    """
    assert imported_paths(source) == [
        "./a.sol",
        "./b.sol",
        "../c.sol",
        "@openzeppelin/contracts/d.sol",
    ]


def test_relative_imports_resolve_against_the_importing_unit() -> None:
    eip712 = "@openzeppelin/contracts/utils/cryptography/EIP712.sol"
    assert source_unit_name(eip712, "../../interfaces/IERC5267.sol") == (
        "@openzeppelin/contracts/interfaces/IERC5267.sol"
    )
    assert source_unit_name(eip712, "./MessageHashUtils.sol") == (
        "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol"
    )
    assert (
        source_unit_name("RedundancyRegistry.sol", "./EIP712Verifier.sol") == "EIP712Verifier.sol"
    )


def test_sources_close_over_imports_with_keys_as_imported() -> None:
    sources = collect_sources()
    assert {p.name for p in CONTRACTS_DIR.glob("*.sol")} <= set(sources)
    # imported directly by a contract, and only transitively (EIP712 -> IERC5267)
    assert "@openzeppelin/contracts/utils/cryptography/EIP712.sol" in sources
    assert "@openzeppelin/contracts/interfaces/IERC5267.sol" in sources
    for unit, text in sources.items():
        for path in imported_paths(text):
            assert source_unit_name(unit, path) in sources, f"{unit} imports {path}"


def test_an_import_that_is_not_installed_is_named() -> None:
    with pytest.raises(CompilationError, match=re.escape("@openzeppelin/contracts/Nope.sol")):
        read_source("@openzeppelin/contracts/Nope.sol")
    with pytest.raises(CompilationError, match=re.escape("other/Thing.sol")):
        read_source("other/Thing.sol")
