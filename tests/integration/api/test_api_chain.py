"""Per-block caching, the chain going away and coming back, health, metrics and CORS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from fastapi.testclient import TestClient
from web3 import Web3

from api.app import create_app
from devnet.localchain import LocalChain, start_chain
from devnet.ports import free_port
from redundancy.batches import Batch
from redundancy.chain import connect
from redundancy.deployment import Deployment, deploy
from redundancy.eip712 import Signer
from redundancy.ledger import SettlementClient
from tests.integration.api.conftest import BATCH_ROOT, ApiWorld, api_settings, wait_synced

ENDPOINTS = ["/facilities", "/validators", "/committee", "/scores", "/latency", "/batches"]


def wait_for(client: TestClient, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get("/health").json()
        if predicate(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"health never satisfied the condition: {body}")
        time.sleep(0.02)


def test_every_response_names_the_same_block_and_repeats_are_byte_identical(
    client: TestClient,
) -> None:
    block = client.get("/health").json()["block"]
    for path in ENDPOINTS:
        first, second = client.get(path), client.get(path)
        assert first.status_code == 200, path
        assert first.json()["block"] == block, path
        assert first.content == second.content, path


def test_a_new_block_is_reflected(client: TestClient, w3: Web3) -> None:
    before = client.get("/scores").json()["block"]["number"]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert wait_synced(client, w3) == before + 1
    assert client.get("/scores").json()["block"]["number"] == before + 1


class CountingProxy:
    """A test double of a chain node: a JSON-RPC endpoint (``http.server``) in front of the real
    anvil that forwards every call to it (with ``requests``) and counts the calls."""

    def __init__(self, upstream: str) -> None:
        self.calls: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.calls.append(json.loads(body).get("method", "?"))
                response = requests.post(
                    upstream, data=body, headers={"Content-Type": "application/json"}, timeout=10
                )
                response.raise_for_status()
                reply = response.content
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_warm_requests_make_no_rpc_call(api_world: ApiWorld) -> None:
    """With the poller idle (one poll a minute), answering from the cache touches no RPC."""
    proxy = CountingProxy(api_world.rpc_url)
    app = create_app(api_settings(api_world.path, proxy.url, block_poll_ms=60_000))
    try:
        with TestClient(app) as client:
            for path in ENDPOINTS:  # cold: computed once per block
                assert client.get(path).status_code == 200
            cold = len(proxy.calls)
            for _ in range(20):
                for path in ENDPOINTS:
                    assert client.get(path).status_code == 200
            assert cold > 0 and len(proxy.calls) == cold
            metrics = client.get("/metrics").text
    finally:
        proxy.close()
    assert 'api_cache_lookups_total{endpoint="scores",outcome="hit"} 20.0' in metrics
    assert 'api_cache_lookups_total{endpoint="scores",outcome="miss"} 1.0' in metrics


@pytest.fixture
def own_chain(tmp_path: Path) -> Iterator[tuple[LocalChain, Path]]:
    """A chain of this test's own (it stops it), with a deployment, state kept across restarts."""
    state = tmp_path / "anvil"
    state.mkdir()
    chain = start_chain("anvil", state_dir=state)
    w3 = connect(chain.rpc_url)
    dep = deploy(w3, Account.from_key(chain.dev_keys[0]))
    path = tmp_path / "deployment.json"
    dep.write(path)
    try:
        yield chain, path
    finally:
        chain.stop()


def test_chain_down_is_503_with_retry_after_and_recovers(
    own_chain: tuple[LocalChain, Path],
) -> None:
    chain, path = own_chain
    app = create_app(api_settings(path, chain.rpc_url, retry_after_s=3))
    with TestClient(app) as client:
        assert client.get("/facilities").status_code == 200
        chain.stop()
        body = wait_for(client, lambda h: not h["chain_reachable"])
        assert body["status"] == "unavailable" and body["block"] is not None
        assert client.get("/health").status_code == 503
        assert client.get("/health").headers["retry-after"] == "3"
        for path_ in [*ENDPOINTS, "/facilities/fra1", "/scores/what-if?fail=power:x"]:
            response = client.get(path_)
            assert response.status_code == 503, path_
            assert response.headers["retry-after"] == "3"
            assert response.json()["error"] == "chain_unavailable"
            assert response.json()["retry_after_s"] == 3
            assert response.json()["detail"].startswith("the chain is unavailable: ")
        # malformed input is still 422, not 503: it never needed the chain
        assert client.get("/facilities/0x12").status_code == 422
        restarted = start_chain("anvil", port=chain.port, state_dir=path.parent / "anvil")
        try:
            wait_for(client, lambda h: h["chain_reachable"])
            assert client.get("/facilities").status_code == 200
        finally:
            restarted.stop()


def test_unreachable_at_start_answers_503_until_the_chain_is_up(api_world: ApiWorld) -> None:
    app = create_app(api_settings(api_world.path, f"http://127.0.0.1:{free_port()}"))
    with TestClient(app) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["block"] is None and "refused" in health.json()["reason"].lower()
        assert client.get("/scores").status_code == 503
        assert client.get("/metrics").status_code == 200  # the API itself is alive


def test_a_deployment_for_another_chain_is_503_naming_the_mismatch(
    api_world: ApiWorld, tmp_path: Path
) -> None:
    dep = Deployment.read(api_world.path)
    other = tmp_path / "other.json"
    Deployment(**{**dep.__dict__, "chain_id": 1}).write(other)
    with TestClient(create_app(api_settings(other, api_world.rpc_url))) as client:
        response = client.get("/scores")
        assert response.status_code == 503
        assert "serves chain 31337" in response.json()["detail"]


def test_health_names_the_deployment(client: TestClient, api_world: ApiWorld) -> None:
    body = client.get("/health").json()
    assert (body["status"], body["chain_reachable"], body["reason"]) == ("ok", True, None)
    assert body["deployment"]["registry"] == api_world.deployment.registry
    assert body["deployment"]["selector"] == api_world.deployment.selector
    assert body["deployment"]["settlement"] == api_world.deployment.settlement
    assert body["last_poll_ms"] < 5_000


def test_batches_lists_what_the_settlement_ledger_accepted(
    client: TestClient, api_world: ApiWorld
) -> None:
    body = client.get("/batches").json()
    assert body["settlement_contract"] == api_world.deployment.settlement
    assert body["note"] is None and body["next_cursor"] is None
    (batch,) = body["batches"]
    assert (batch["epoch"], batch["first_sequence"], batch["last_sequence"]) == (1, 1, 100)
    assert batch["state_root"] == "0x" + BATCH_ROOT.hex()
    assert batch["stake_signed_wei"] == batch["committee_stake_wei"] and batch["signers"]
    assert body["block"]["number"] == client.get("/health").json()["block"]["number"]


def test_batches_come_a_page_at_a_time_oldest_first(
    client: TestClient, api_world: ApiWorld, w3: Web3
) -> None:
    """Found by review: /batches read every batch ever committed in one full-range log query at
    each block and returned them all. Now from the event index, in pages."""
    ledger = SettlementClient(w3, api_world.deployment.settlement, api_world.relayer)
    members = set(api_world.selector.current_committee().members)
    nodes = [
        Signer(bytes(v.node().key))
        for v in api_world.world.validators.values()
        if v.account().address in members
    ]
    for first in (101, 201):
        batch = Batch(1, first, first + 99, bytes([first % 256]) * 32)
        ledger.commit_batch(
            batch, [n.sign(ledger.domain_separator, batch) for n in nodes], sender=api_world.relayer
        )
    wait_synced(client, w3)
    seen, cursor = [], None
    for _ in range(4):
        params: dict[str, object] = {"limit": 1}
        if cursor is not None:
            params["cursor"] = cursor
        body = client.get("/batches", params=params).json()
        assert len(body["batches"]) == 1
        seen += [(b["first_sequence"], b["last_sequence"]) for b in body["batches"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [(1, 100), (101, 200), (201, 300)]
    whole = client.get("/batches").json()
    assert [b["first_sequence"] for b in whole["batches"]] == [1, 101, 201]
    assert whole["next_cursor"] is None
    assert client.get("/batches", params={"limit": 0}).status_code == 422
    assert client.get("/batches", params={"cursor": "x"}).status_code == 422


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/facilities/fra1")
    client.get("/facilities/ams1")
    client.get("/facilities/0x12")
    client.get("/no/such/path")
    text = client.get("/metrics").text
    assert 'api_requests_total{method="GET",route="/facilities/{facility}",status="200"}' in text
    assert 'api_requests_total{method="GET",route="/facilities/{facility}",status="422"}' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "api_request_duration_seconds_bucket" in text
    assert "api_chain_block " in text and "api_chain_reachable 1.0" in text
    assert "/facilities/fra1" not in text  # ids never become label values


def test_cors_is_off_by_default_and_on_for_configured_origins(
    client: TestClient, api_world: ApiWorld
) -> None:
    origin = {"Origin": "https://example.org"}
    assert "access-control-allow-origin" not in client.get("/scores", headers=origin).headers
    settings = api_settings(api_world.path, api_world.rpc_url, cors_origins=["https://example.org"])
    with TestClient(create_app(settings)) as other:
        headers = other.get("/scores", headers=origin).headers
        assert headers["access-control-allow-origin"] == "https://example.org"
