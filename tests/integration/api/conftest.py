"""API fixtures: one populated deployment on the session anvil, and the app serving it.

The deployment has five facilities (one a landmark, one whose claimed coordinates an RTT
contradicts, one stale), six validators and a selected committee; tests only read it, and the
per-test snapshot/revert of the integration conftest undoes what a test adds.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from web3 import Web3
from web3.types import TxReceipt

from api.app import create_app
from api.settings import Settings
from devnet.examples import example_facilities
from devnet.localchain import LocalChain
from devnet.ports import free_port
from devnet.world import FacilitySpec, ValidatorSpec, World, build
from redundancy.batches import Batch
from redundancy.deployment import Deployment, deploy
from redundancy.domains import Kind
from redundancy.eip712 import Signer
from redundancy.ledger import SettlementClient
from redundancy.registry import DEFAULT_POLICY, FreshnessPolicy, RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import SelectorClient

ETH = 10**18
#: the example sites (their facts from examples/<site>.toml), and two synthetic ones
FRA1, AMS1, DAL1 = example_facilities()[:3]
NRT1 = FacilitySpec("nrt1", "tepco", "tokyo", "jp", 35_689_487, 139_691_706, "as2516", "kddi")
LON1 = FacilitySpec("lon1", "nget", "london", "gb", 51_507_351, -127_758, "as5400", "telehouse")
FACILITIES = [FRA1, AMS1, DAL1, NRT1]
VALIDATORS = [
    ValidatorSpec("v-fra1-a", "fra1", 2 * ETH, ("dell", "poweredge r650", "2.19.1")),
    ValidatorSpec("v-fra1-b", "fra1", 1 * ETH, ("hpe", "proliant dl380", "u46")),
    ValidatorSpec("v-ams1", "ams1", 3 * ETH, ("supermicro", "sys-620", "3.1")),
    ValidatorSpec("v-dal1", "dal1", 3 * ETH, ("dell", "poweredge r650", "2.19.1")),
    ValidatorSpec("v-nrt1", "nrt1", 2 * ETH, ("lenovo", "sr650", "4.2")),
]
STALE_VALIDATOR = ValidatorSpec("v-lon1", "lon1", 2 * ETH, ("dell", "poweredge r760", "1.5"))
#: Health proofs last an hour here so that a slow run does not see facilities go stale.
POLICY = FreshnessPolicy(
    (86_400, 86_400, 7 * 86_400, 86_400, 86_400, 3_600), 60, DEFAULT_POLICY.required_kinds
)


@dataclass
class ApiWorld:
    deployment: Deployment
    path: Path
    world: World
    selector: SelectorClient
    rpc_url: str
    relayer: LocalAccount
    #: the submission transactions of the build, oldest first
    consistent_latency_tx: str
    flagging_latency_tx: str


BATCH_ROOT = bytes.fromhex("5e" * 32)


@pytest.fixture(scope="package")
def api_world(
    w3: Web3,
    owner: LocalAccount,
    relayer: LocalAccount,
    anvil_chain: LocalChain,
    tmp_path_factory: pytest.TempPathFactory,
) -> ApiWorld:
    dep = deploy(w3, owner)
    path = tmp_path_factory.mktemp("api") / "deployment.json"
    dep.write(path)
    registry = RegistryClient(w3, dep.registry, owner)
    registry.set_freshness_policy(POLICY)
    world = build(w3, registry, owner, FACILITIES, VALIDATORS)
    # lon1: registered with power and geography proofs only, so it is stale, and so is its
    # validator (whose node is attested: it could be eligible but for its facility).
    world.enrol(LON1, owner)
    proofs = world.facility_proofs(LON1, [Kind.POWER, Kind.GEOGRAPHY])
    world.submit([*proofs, world.hardware_proof(STALE_VALIDATOR)], owner)
    acct = STALE_VALIDATOR.account()
    w3.provider.make_request("anvil_setBalance", [acct.address, hex(10 * ETH)])  # type: ignore[arg-type]
    registry.register_validator(LON1.facility_id, STALE_VALIDATOR.node(), 2 * ETH, acct)
    selector = SelectorClient(w3, dep.selector, owner)
    selector.set_diversity_policy(DiversityPolicy(10))
    selector.select_committee()
    selector.set_landmark(AMS1.facility_id, AMS1.latitude_e6, AMS1.longitude_e6)
    ds = registry.domain_separator()

    def exchange(a: FacilitySpec, b: FacilitySpec, rtt: int) -> list[TxReceipt]:
        """Both ends of one exchange report what they measured (a contradiction flagged at once,
        its receipt after the report's)."""
        return [
            receipt
            for m, sig in world.round_trip(a, b, rtt)
            for receipt in selector.report_latency_and_flag(ds, m, sig, sender=relayer)
        ]

    consistent = exchange(FRA1, AMS1, 4_500) + exchange(DAL1, FRA1, 100_000)
    flagging = exchange(NRT1, AMS1, 1_500)[1]  # the second end's report completes the pair
    # one settlement batch, signed by every committee member's node key
    ledger = SettlementClient(w3, dep.settlement, owner)
    members = set(selector.current_committee().members)
    batch = Batch(1, 1, 100, BATCH_ROOT)
    nodes = [
        Signer(bytes(v.node().key))
        for v in world.validators.values()
        if v.account().address in members
    ]
    ledger.commit_batch(
        batch, [n.sign(ledger.domain_separator, batch) for n in nodes], sender=relayer
    )
    return ApiWorld(
        dep,
        path,
        world,
        selector,
        anvil_chain.rpc_url,
        relayer,
        consistent[0]["transactionHash"].to_0x_hex(),
        flagging["transactionHash"].to_0x_hex(),
    )


def api_settings(path: Path, rpc_url: str, **extra: object) -> Settings:
    """Settings for a test app: a fast poll, so tests see new blocks at once."""
    return Settings(**{"deployment": path, "rpc_url": rpc_url, "block_poll_ms": 20, **extra})


@pytest.fixture(scope="package")
def app_client(api_world: ApiWorld) -> Iterator[TestClient]:
    app = create_app(api_settings(api_world.path, api_world.rpc_url))
    with TestClient(app) as client:
        yield client


def wait_synced(client: TestClient, w3: Web3, timeout: float = 5.0) -> int:
    """Wait until the API's head is the chain's latest block; returns its number."""
    target = w3.eth.get_block("latest")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        block = client.get("/health").json().get("block") or {}
        if block.get("hash") == target["hash"].to_0x_hex():
            return int(target["number"])
        time.sleep(0.01)
    raise AssertionError(f"the API did not reach block {target['number']} in {timeout} s")


@pytest.fixture
def client(app_client: TestClient, w3: Web3) -> TestClient:
    """The app, synced to the chain as this test starts (after the snapshot of the test)."""
    wait_synced(app_client, w3)
    return app_client


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def serving(log: Path, *args: str) -> Iterator[LiveServer]:
    """``redundancy-api *args`` on a free loopback port, once /health answers 200; stopped after.
    Its stdout and stderr go to ``log``."""
    port = free_port()
    cmd = [str(Path(sys.executable).parent / "redundancy-api"), *args, "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(server.url + "/health", timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"redundancy-api did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="package")
def live_server(
    api_world: ApiWorld, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """``redundancy-api`` as users start it: a real uvicorn process on a free loopback port."""
    log = tmp_path_factory.mktemp("server") / "api.log"
    args = ["--deployment", str(api_world.path), "--rpc-url", api_world.rpc_url]
    with serving(log, *args, "--block-poll-ms", "50") as server:
        yield server
