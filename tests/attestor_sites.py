"""Helpers for tests that run real attestor processes: site files, registration, the process
itself (JSON logs, /metrics), and reading back what landed on-chain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from prometheus_client.parser import text_string_to_metric_families
from web3 import Web3

from attestor.keys import init_site
from devnet.attestors import fund
from devnet.localchain import LocalChain
from devnet.ports import free_port, free_udp_port
from devnet.siteconfig import site_toml
from devnet.world import FacilitySpec
from redundancy.deployment import deploy
from redundancy.domains import facility_id
from redundancy.proofs import SignedProof
from redundancy.registry import RegistryClient

PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Deployed:
    """A registry deployed on a test chain, with its deployment file."""

    chain: LocalChain
    w3: Web3
    owner: LocalAccount
    registry: RegistryClient
    deployment: Path


def deploy_registry(chain: LocalChain, w3: Web3, directory: Path) -> Deployed:
    owner: LocalAccount = Account.from_key(chain.dev_keys[0])
    dep = deploy(w3, owner)
    path = directory / "deployment.json"
    dep.write(path)
    return Deployed(chain, w3, owner, RegistryClient(w3, dep.registry, owner), path)


@dataclass
class Site:
    """One attestor's files and ports."""

    name: str
    root: Path
    config: Path
    address: str
    ca_fingerprint: bytes
    http_port: int
    latency_port: int
    logs: list[Path] = field(default_factory=list)

    @property
    def facility_id(self) -> bytes:
        return facility_id(self.name)

    @property
    def outbox(self) -> Path:
        return self.root / "data" / "outbox.sqlite"

    @property
    def keystore(self) -> Path:
        return self.root / "keys" / "attestor-key.json"


#: What every test site adds to its config: a short start-up wait, fast publisher retries, a
#: short peer retry interval, and few latency samples with a short timeout.
TEST_TABLES = {
    "chain": "startup_wait = 5",
    "publisher": "backoff_initial = 0.2\nbackoff_max = 1.0",
    "geography": "peer_retry_interval = 3",
    "latency": "samples = 3\ntimeout = 0.5",
}


def _merged(*tables: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for extra in tables:
        for table, lines in extra.items():
            out[table] = f"{lines}\n{out[table]}" if table in out else lines
    return out


def make_site(
    root: Path,
    name: str,
    deployed: Deployed,
    *,
    heartbeat: int = 2,
    peers: dict[str, int] | None = None,
    emulated: dict[str, int] | None = None,
    tweaks: dict[str, str] | None = None,
    latency_port: int | None = None,
) -> Site:
    """Keys (cheap KDF), a password file and a TOML config for a site; not yet registered.
    ``tweaks`` adds lines to a table: ``{"power": "interval = 1"}``."""
    site_dir = root / name
    keys = site_dir / "keys"
    keys.mkdir(parents=True)
    password = keys / "password"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    made = init_site(name, keys, PASSWORD, kdf_iterations=16)
    http_port = free_port()
    latency_port = latency_port or free_udp_port()
    facts = FacilitySpec(
        name,
        f"grid-{name}",
        f"metro-{name}",
        "de",
        50110922,
        8682127,
        "as64500",
        f"provider-{name}",
    )
    config = site_dir / "site.toml"
    config.write_text(
        site_toml(
            facts,
            rpc_url=deployed.chain.rpc_url,
            deployment=deployed.deployment,
            http_port=http_port,
            latency_port=latency_port,
            heartbeat=heartbeat,
            peers=peers,
            emulated=emulated,
            extra=_merged(TEST_TABLES, tweaks or {}),
        )
    )
    return Site(
        name,
        site_dir,
        config,
        made.address,
        bytes.fromhex(made.ca_fingerprint),
        http_port,
        latency_port,
    )


def register(deployed: Deployed, site: Site, fund_wei: int = 10**18) -> None:
    """Register the facility with its attestor and CA, and fund the attestor from account 0."""
    deployed.registry.register_facility(site.facility_id, site.address, site.ca_fingerprint)
    fund(deployed.w3, deployed.owner, [site.address], fund_wei)


def attestor_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "attestor", "run", "--config", str(config)]


class AttestorProcess:
    """A real ``attestor run`` process with its JSON log in a file."""

    def __init__(self, site: Site, env: dict[str, str] | None = None) -> None:
        self.site = site
        self.log = site.root / f"attestor-{len(site.logs)}.log"
        site.logs.append(self.log)
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            attestor_command(site.config),
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "raw", "line": line})
        return out

    def wait_for(
        self,
        event: str,
        timeout: float = 30.0,
        where: Callable[[dict[str, Any]], bool] = lambda _e: True,
        after: int = 0,
    ) -> dict[str, Any]:
        """The first log event named ``event`` (past index ``after``) satisfying ``where``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events()[after:]:
                if e.get("event") == event and where(e):
                    return e
            if self.proc.poll() is not None:
                raise AssertionError(f"attestor exited ({self.proc.returncode}):\n{self.tail()}")
            time.sleep(0.05)
        raise AssertionError(f"no {event} within {timeout} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def metrics(self) -> dict[str, float]:
        """Every sample on /metrics, keyed ``name`` or ``name{label="value",...}``."""
        reply = requests.get(f"http://127.0.0.1:{self.site.http_port}/metrics", timeout=5)
        reply.raise_for_status()
        values = {}
        for family in text_string_to_metric_families(reply.text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return values

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._log_file.close()
        return code

    def kill(self) -> int:
        self.proc.kill()
        code = self.proc.wait(timeout=10)
        self._log_file.close()
        return code


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass(frozen=True)
class Landed:
    """A proof accepted on-chain, in chain order."""

    block: int
    log_index: int
    proof: SignedProof


def landed_proofs(registry: RegistryClient, attestor: str, from_block: int = 0) -> list[Landed]:
    """Every proof of this attestor the registry accepted, in chain order, read back from the
    AttestationAccepted events and the calldata of their transactions."""
    calldata: dict[str, dict[int, SignedProof]] = {}
    out = []
    for event in registry.accepted_proofs(from_block, attestor=attestor):
        if event.tx not in calldata:
            proofs = registry.read_submission(event.tx).proofs
            calldata[event.tx] = {
                p.attestation.sequence: p for p in proofs if isinstance(p, SignedProof)
            }
        out.append(Landed(event.block, event.log_index, calldata[event.tx][event.sequence]))
    return out
