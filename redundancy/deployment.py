"""Deploying the contracts, and the deployment file that records it: which chain, which contracts,
from which block, with which artifacts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from web3 import Web3

from redundancy.artifacts import load_artifact
from redundancy.errors import DeploymentFileError
from redundancy.ledger import CONTRACT_NAME as SETTLEMENT_CONTRACT
from redundancy.ledger import SettlementClient
from redundancy.registry import CONTRACT_NAME as REGISTRY_CONTRACT
from redundancy.registry import DEFAULT_POLICY, RegistryClient
from redundancy.selector import CONTRACT_NAME as SELECTOR_CONTRACT
from redundancy.selector import GEOGRAPHY_CONTRACT, REFERENCE_CONTRACT, SelectorClient

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
    #: sha256 hex of the TPM manufacturer root CAs whose EK chains verifiers accept (policy-wide
    #: pin, kept off-chain for now: ``redundancy.tpmquote``).
    tpm_manufacturer_cas: list[str] = field(default_factory=list)

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
        pins = data.get("tpm_manufacturer_cas", [])
        if not isinstance(pins, list) or not all(
            isinstance(p, str) and len(p) == 64 and all(c in "0123456789abcdef" for c in p)
            for p in pins
        ):
            raise DeploymentFileError(
                f"deployment file {path}: tpm_manufacturer_cas must be a list of sha256 hex"
            )
        return cls(**fields, artifacts=data.get("artifacts", {}), tpm_manufacturer_cas=pins)


def deploy(w3: Web3, deployer: LocalAccount) -> Deployment:
    """Deploy a registry (default freshness policy) and its committee selector (open policy)."""
    registry, receipt = RegistryClient.deploy(w3, deployer, DEFAULT_POLICY)
    selector, _ = SelectorClient.deploy(w3, deployer, registry.address)
    settlement, _ = SettlementClient.deploy(w3, deployer, selector.address)
    artifacts = {
        name: {"sha256": a.sha256, "compiler": a.compiler}
        for name, a in (
            (n, load_artifact(n))
            for n in (
                REGISTRY_CONTRACT,
                SELECTOR_CONTRACT,
                GEOGRAPHY_CONTRACT,
                REFERENCE_CONTRACT,
                SETTLEMENT_CONTRACT,
            )
        )
    }
    return Deployment(
        chain_id=int(w3.eth.chain_id),
        registry=registry.address,
        selector=selector.address,
        settlement=settlement.address,
        deploy_block=int(receipt["blockNumber"]),
        deploy_tx=receipt["transactionHash"].to_0x_hex(),
        deployer=deployer.address,
        domain_separator="0x" + registry.domain_separator().hex(),
        artifacts=artifacts,
    )
