"""The devnet's example sites, each attested by a real attestor process.

For every example site (``devnet.examples``) this sets up keys with ``attestor init`` (cheap
KDF: local use only), registers the facility with the attestor's address and CA fingerprint,
funds the attestor from the chain's development account, and starts ``attestor run --config
examples/<site>.toml`` with the devnet's RPC URL, directories and free loopback ports passed as
``ATTESTOR_*`` environment variables. The attestor is a separate program: the harness starts it
as a subprocess and never imports it.

Sites named in ``tpm_sites`` run on a software TPM (``devnet.swtpm``): one manufacturer for the
devnet, a swtpm per such site measuring the firmware image ``DEVNET_FIRMWARE`` into PCR 0, its
AK, EK and CA certificates written to the site's keys directory, the attestor started with
``ATTESTOR_IDENTITY__BACKEND=tpm``, and the manufacturer's root pinned policy-wide on-chain.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests
from eth_account.signers.local import LocalAccount
from prometheus_client.parser import text_string_to_metric_families
from web3 import Web3

from devnet.examples import EXAMPLES_DIR, example_site
from devnet.ports import free_port, free_udp_port
from devnet.swtpm import Manufacturer, ProvisionedTpm, SoftTpm, start_tpm
from redundancy.domains import facility_id
from redundancy.errors import RedundancyError
from redundancy.registry import RegistryClient

FUNDING_WEI = 10 * 10**18
DEVNET_FIRMWARE = "devnet-uefi-1.0"  # the simulated firmware image the devnet's TPMs measure
DEV_KDF_ITERATIONS = 1024
#: How long ``attestor init`` of every site may take together (they run in parallel).
INIT_TIMEOUT = 180.0


def attestor_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "attestor", *args]


@dataclass
class SiteProcess:
    """A running attestor for one example site."""

    name: str
    attestor: str
    http_port: int
    latency_port: int
    log_path: Path
    process: subprocess.Popen[bytes]
    log_file: IO[bytes]
    tpm: SoftTpm | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/metrics"

    def peer_rtts(self) -> dict[str, int]:
        """The fastest signed round trip to each peer, in microseconds, from /metrics."""
        try:
            reply = requests.get(self.metrics_url, timeout=2)
            reply.raise_for_status()
        except requests.RequestException:
            return {}
        return {
            sample.labels["peer"]: int(sample.value)
            for family in text_string_to_metric_families(reply.text)
            for sample in family.samples
            if sample.name == "attestor_peer_rtt_microseconds"
        }

    def log_tail(self, lines: int = 5) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def init_keys(names: list[str], sites_dir: Path) -> dict[str, tuple[str, bytes, Path]]:
    """``attestor init`` for every site at once: name -> (attestor, CA fingerprint, password)."""
    runs = {}
    for name in names:
        keys = sites_dir / name / "keys"
        keys.mkdir(parents=True)
        password = keys / "password"
        password.write_text(secrets.token_hex(16) + "\n")
        password.chmod(0o600)
        command = attestor_command(
            "init",
            "--facility",
            name,
            "--dir",
            str(keys),
            "--password-file",
            str(password),
            "--kdf-iterations",
            str(DEV_KDF_ITERATIONS),
            "--json",
        )
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs[name] = (proc, password)
    out = {}
    deadline = time.monotonic() + INIT_TIMEOUT
    for name, (proc, password) in runs.items():
        try:
            stdout, stderr = proc.communicate(timeout=max(deadline - time.monotonic(), 1.0))
        except subprocess.TimeoutExpired:
            for other, _ in runs.values():
                other.kill()
                other.wait()
            raise RedundancyError(
                f"attestor init for {name} did not finish in {INIT_TIMEOUT:.0f} s "
                "(is the machine overloaded?)"
            ) from None
        if proc.returncode != 0:
            raise RedundancyError(f"attestor init for {name} failed: {stderr.strip()}")
        facts = json.loads(stdout)
        out[name] = (str(facts["attestor"]), bytes.fromhex(facts["caFingerprint"][2:]), password)
    return out


def fund(w3: Web3, owner: LocalAccount, addresses: list[str], value: int = FUNDING_WEI) -> None:
    """Send every address (attestors: they pay their own gas) ``value`` wei from ``owner``, then
    wait for all the transfers."""
    nonce = w3.eth.get_transaction_count(owner.address, "pending")
    hashes = []
    for i, to in enumerate(addresses):
        fields: dict[str, Any] = {
            "to": to,
            "value": value,
            "gas": 21_000,
            "gasPrice": w3.eth.gas_price,
            "nonce": nonce + i,
            "chainId": w3.eth.chain_id,
        }
        hashes.append(w3.eth.send_raw_transaction(owner.sign_transaction(fields).raw_transaction))
    for tx_hash in hashes:
        w3.eth.wait_for_transaction_receipt(tx_hash)


def start_sites(
    names: list[str],
    rpc_url: str,
    registry: RegistryClient,
    owner: LocalAccount,
    deployment_file: Path,
    state_dir: Path,
    extra_env: dict[str, str] | None = None,
    tpm_sites: Sequence[str] = (),
    registered: Callable[[], object] | None = None,
) -> list[SiteProcess]:
    """Set up, register, fund and start one attestor per site (fresh keys every run);
    ``extra_env`` adds ``ATTESTOR_*`` settings to every site's (a shorter heartbeat, say); the
    ``tpm_sites`` run on a software TPM each; ``registered`` is called once every facility is
    registered, before any attestor starts (to fix a landmark before the first round trips)."""
    sites_dir = state_dir / "sites"
    shutil.rmtree(sites_dir, ignore_errors=True)
    shutil.rmtree(state_dir / "tpm-manufacturer", ignore_errors=True)
    keys = init_keys(names, sites_dir)
    tpms: dict[str, ProvisionedTpm] = {}
    if tpm_sites:
        manufacturer = Manufacturer(state_dir / "tpm-manufacturer")
        for name in tpm_sites:
            tpms[name] = start_tpm(
                name, manufacturer, DEVNET_FIRMWARE, directory=sites_dir / name / "tpm"
            )
            tpms[name].write(sites_dir / name / "keys")
        registry.set_tpm_manufacturer_ca(bytes(32), manufacturer.root_fingerprint)
    for name in names:
        address, ca_fingerprint, _ = keys[name]
        registry.register_facility(facility_id(name), address, ca_fingerprint)
    fund(registry.w3, owner, [keys[name][0] for name in names])
    if registered is not None:
        registered()
    ports = {name: (free_port(), free_udp_port()) for name in names}
    started: list[SiteProcess] = []
    try:
        for name in names:
            site_dir = sites_dir / name
            address, _, password = keys[name]
            http_port, latency_port = ports[name]
            # the peers its config names that run in this world (each measures only those)
            wanted = example_site(name).peers or tuple(names)
            peers = [
                {"facility": other, "address": f"127.0.0.1:{ports[other][1]}"}
                for other in names
                if other != name and other in wanted
            ]
            env = {
                **os.environ,
                "ATTESTOR_CHAIN__RPC_URL": rpc_url,
                "ATTESTOR_CHAIN__DEPLOYMENT": str(deployment_file.resolve()),
                "ATTESTOR_DATA_DIR": str(site_dir.resolve() / "data"),
                "ATTESTOR_KEYS__DIR": str(site_dir.resolve() / "keys"),
                "ATTESTOR_KEYS__PASSWORD_FILE": str(password.resolve()),
                "ATTESTOR_HTTP__LISTEN": f"127.0.0.1:{http_port}",
                "ATTESTOR_LATENCY__LISTEN": f"127.0.0.1:{latency_port}",
                "ATTESTOR_LATENCY__PEERS": json.dumps(peers),
                **(extra_env or {}),
            }
            if name in tpms:
                env["ATTESTOR_IDENTITY__BACKEND"] = "tpm"
                env["ATTESTOR_IDENTITY__TCTI"] = tpms[name].tpm.tcti
            log_path = site_dir / "attestor.log"
            log_file = log_path.open("wb")
            process = subprocess.Popen(
                attestor_command("run", "--config", str(EXAMPLES_DIR / f"{name}.toml")),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
            )
            tpm = tpms.pop(name).tpm if name in tpms else None
            started.append(
                SiteProcess(
                    name, address, http_port, latency_port, log_path, process, log_file, tpm
                )
            )
    except BaseException:
        stop_sites(started)
        for left in tpms.values():
            left.tpm.stop()
        raise
    return started


def wait_fresh(registry: RegistryClient, sites: list[SiteProcess], timeout: float) -> bool:
    """Wait until no site is stale; False on timeout. Raises if an attestor exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for site in sites:
            if site.process.poll() is not None:
                raise RedundancyError(
                    f"the attestor for {site.name} exited with {site.process.returncode}; "
                    f"its log ({site.log_path}) ends:\n{site.log_tail()}"
                )
        if not any(registry.facility_status(facility_id(s.name)).stale for s in sites):
            return True
        time.sleep(0.5)
    return False


def stop_sites(sites: list[SiteProcess], timeout: float = 20.0) -> list[int]:
    """SIGTERM every attestor (each finishes its in-flight publish), wait; their exit codes."""
    for site in sites:
        if site.process.poll() is None:
            site.process.send_signal(signal.SIGTERM)
    codes = []
    for site in sites:
        try:
            codes.append(site.process.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            site.process.kill()
            codes.append(site.process.wait())
        site.log_file.close()
        if site.tpm is not None:
            site.tpm.stop()
    return codes


def landed_count(registry: RegistryClient, attestor: str) -> int:
    """How many of this attestor's proofs the registry has accepted."""
    return len(registry.accepted_proofs(0, attestor=attestor))


def status_table(registry: RegistryClient, sites: list[SiteProcess]) -> list[str]:
    """One line per site: attestor, stale, proofs landed, identity (tpm: bound to a TPM AK, or
    file), peer RTTs, status URL, reasons."""
    lines = [
        f"{'site':6} {'attestor':44} {'stale':6} {'landed':>6} {'identity':8}  "
        f"{'rtt to peers (ms)':26} {'metrics':32} reasons"
    ]
    for site in sites:
        fid = facility_id(site.name)
        status = registry.facility_status(fid)
        identity = "file" if registry.facility(fid).tpm_ak_certificate == bytes(32) else "tpm"
        rtts = " ".join(f"{p}={us / 1000:.1f}" for p, us in sorted(site.peer_rtts().items()))
        lines.append(
            f"{site.name:6} {site.attestor:44} {str(status.stale).lower():6} "
            f"{landed_count(registry, site.attestor):>6} {identity:8}  {rtts or '-':26} "
            f"{site.metrics_url:32} {', '.join(status.reasons()) or '-'}"
        )
    return lines
