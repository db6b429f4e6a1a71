"""Where the project's pinned tools live: the repository root, its node_modules, the solc shim."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from devnet.errors import ToolchainError
from redundancy.artifacts import ARTIFACTS_DIR

__all__ = [
    "ARTIFACTS_DIR",
    "CONTRACTS_DIR",
    "PROJECT_ROOT",
    "SOLC_SHIM",
    "anvil_binary",
    "node_bin",
    "solc_binary",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
SOLC_SHIM = CONTRACTS_DIR / "solc-shim.cjs"


def node_bin(name: str) -> Path:
    """A command from the project's pinned npm packages (node_modules/.bin), else from PATH."""
    local = PROJECT_ROOT / "node_modules" / ".bin" / name
    if local.exists():
        return local
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ToolchainError(
        f"{name} not found in {local.parent} or on PATH; run scripts/bootstrap.sh "
        f"(`npm install --no-save`) in {PROJECT_ROOT}"
    )


#: npm's platform packages of foundry's tools, by (system, machine) as Python names them.
_FOUNDRY_PLATFORMS = {
    ("linux", "x86_64"): "linux-amd64",
    ("linux", "aarch64"): "linux-arm64",
    ("darwin", "x86_64"): "darwin-amd64",
    ("darwin", "arm64"): "darwin-arm64",
}


def anvil_binary() -> Path:
    """The anvil executable itself, from the pinned npm package's platform package, else
    ``node_bin("anvil")``. Not ``node_modules/.bin/anvil``: that is a node wrapper which, on
    SIGTERM, exits without waiting for anvil and, when SIGKILLed, leaves anvil running with its
    port; a chain's signals must reach anvil."""
    key = (platform.system().lower(), platform.machine().lower())
    name = _FOUNDRY_PLATFORMS.get(key)
    if name is not None:
        direct = PROJECT_ROOT / "node_modules" / "@foundry-rs" / f"anvil-{name}" / "bin" / "anvil"
        if direct.exists():
            return direct
    return node_bin("anvil")


def solc_binary() -> Path:
    """A native ``solc`` when SOLC_BINARY names one, else the pinned solc-js behind the shim."""
    explicit = os.environ.get("SOLC_BINARY")
    if explicit:
        return Path(explicit)
    if not (PROJECT_ROOT / "node_modules" / "solc").exists():
        raise ToolchainError(
            "the pinned solc-js is not installed; run scripts/bootstrap.sh "
            f"(`npm install --no-save`) in {PROJECT_ROOT}"
        )
    return SOLC_SHIM
