"""Load the compiled contract artifacts kept in ``redundancy/artifacts`` (written by the
harness's ``redundancy-build``, loaded here by every typed contract client)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from redundancy.errors import ArtifactError

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"


@dataclass(frozen=True)
class Artifact:
    """A contract's ABI and bytecode, with the compiler that made them."""

    name: str
    compiler: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    sha256: str


@cache
def load_artifact(name: str) -> Artifact:
    """Read ``<name>.json``; raises ArtifactError naming the file if it is missing or malformed."""
    path = ARTIFACTS_DIR / f"{name}.json"
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
        return Artifact(
            name=name,
            compiler=data["compiler"],
            abi=data["abi"],
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
            sha256=hashlib.sha256(raw).hexdigest(),
        )
    except FileNotFoundError:
        raise ArtifactError(f"artifact {path} not found; run redundancy-build") from None
    except (KeyError, ValueError) as exc:
        raise ArtifactError(f"artifact {path} is malformed: {exc}") from None
