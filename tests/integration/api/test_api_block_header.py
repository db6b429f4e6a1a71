"""Every answer names its block (``X-Block-Number``), and /health names every contract."""

from __future__ import annotations

from fastapi.testclient import TestClient
from web3 import Web3

from tests.integration.api.conftest import ApiWorld


def test_every_answer_carries_the_block_it_reflects(client: TestClient, w3: Web3) -> None:
    latest = str(w3.eth.block_number)
    answers = {
        "view": client.get("/scores"),
        "health": client.get("/health"),
        "metrics": client.get("/metrics"),
        "not found": client.get("/facilities/nowhere9"),
        "malformed": client.get("/attestations?limit=0"),
        "dashboard": client.get("/"),
    }
    assert {name: r.status_code for name, r in answers.items()} == {
        "view": 200,
        "health": 200,
        "metrics": 200,
        "not found": 404,
        "malformed": 422,
        "dashboard": 200,
    }
    assert {name: r.headers.get("x-block-number") for name, r in answers.items()} == dict.fromkeys(
        answers, latest
    )


def test_health_names_every_deployed_contract(client: TestClient, api_world: ApiWorld) -> None:
    deployment = client.get("/health").json()["deployment"]
    dep = api_world.deployment
    assert deployment == {
        "chain_id": dep.chain_id,
        "registry": dep.registry,
        "selector": dep.selector,
        "settlement": dep.settlement,
        "deploy_block": dep.deploy_block,
    }
