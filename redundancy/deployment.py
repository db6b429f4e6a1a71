"""The deployment file: which chain, which contracts, from which block, with which artifacts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import is_address, to_checksum_address

from redundancy.errors import DeploymentFileError

_REQUIRED = (
    "chain_id",
    "registry",
    "selector",
    "deploy_block",
    "deploy_tx",
    "deployer",
    "domain_separator",
)


@dataclass(frozen=True)
class Deployment:
    """What a verifier needs, besides an RPC URL, to find and check the contracts."""

    chain_id: int
    registry: str
    selector: str
    settlement: str
    deploy_block: int
    deploy_tx: str
    deployer: str
    domain_separator: str
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Deployment:
        """Read and validate a deployment file; raises DeploymentFileError naming what is wrong."""
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DeploymentFileError(f"deployment file {path} not found") from None
        except (OSError, ValueError) as exc:
            raise DeploymentFileError(f"deployment file {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise DeploymentFileError(f"deployment file {path} is not a JSON object")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise DeploymentFileError(f"deployment file {path} lacks field(s) {', '.join(missing)}")
        if not isinstance(data["chain_id"], int) or not isinstance(data["deploy_block"], int):
            raise DeploymentFileError(
                f"deployment file {path}: chain_id, deploy_block must be integers"
            )
        for key in ("registry", "selector", "settlement"):
            if not is_address(data[key]):
                raise DeploymentFileError(
                    f"deployment file {path}: {key} {data[key]!r} is not an address"
                )
        fields = {k: data[k] for k in _REQUIRED}
        fields["registry"] = to_checksum_address(data["registry"])
        fields["selector"] = to_checksum_address(data["selector"])
        fields["settlement"] = to_checksum_address(data["settlement"])
        return cls(**fields, artifacts=data.get("artifacts", {}))
