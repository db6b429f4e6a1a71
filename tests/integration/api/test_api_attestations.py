"""GET /attestations (filters, cursor pages), one proof, and its verification: the same checks
and output as the verification script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from web3 import Web3

from api import eventindex
from api.app import create_app
from redundancy.domains import Dimension, Kind, domain_id
from redundancy.eip712 import Signer
from redundancy.evidence import canonical_json
from redundancy.proofs import make_proof
from tests.integration.api.conftest import DAL1, FRA1, NRT1, ApiWorld, api_settings, wait_synced

ROOT = Path(__file__).resolve().parents[3]


def accepted_count(w3: Web3, api_world: ApiWorld) -> int:
    registry = api_world.world.registry
    return len(registry.accepted_proofs(from_block=api_world.deployment.deploy_block))


def test_lists_every_accepted_proof_oldest_first(
    client: TestClient, w3: Web3, api_world: ApiWorld
) -> None:
    body = client.get("/attestations", params={"limit": 500}).json()
    items = body["items"]
    assert len(items) == accepted_count(w3, api_world) == 4 * 5 + 5 + 3
    assert body["next_cursor"] is None
    positions = [(i["block_number"], i["log_index"]) for i in items]
    assert positions == sorted(positions)
    first = items[0]
    assert (first["facility_name"], first["kind"], first["sequence"], first["index"]) == (
        "fra1",
        "power",
        1,
        0,
    )
    assert first["domains"][0]["name"] == "entso-e/amprion"
    geo = next(i for i in items if i["kind"] == "geography" and i["facility_name"] == "dal1")
    assert geo["location"]["latitude_e6"] == DAL1.latitude_e6
    assert [d["dimension"] for d in geo["domains"]] == ["metro", "country"]


def test_cursor_pages_cover_the_list_exactly_once(client: TestClient) -> None:
    everything = client.get("/attestations?limit=500").json()["items"]
    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, object] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/attestations", params=params).json()
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        last = page["items"][-1]
        assert cursor == f"{last['block_number']}-{last['log_index']}"
    assert seen == everything and pages == -(-len(everything) // 7)


def test_filters_by_facility_kind_and_block_range(client: TestClient) -> None:
    lon1 = client.get("/attestations?facility=lon1").json()["items"]
    assert sorted(i["kind"] for i in lon1) == ["geography", "hardware", "power"]
    by_id = client.get(f"/attestations?facility=0x{NRT1.facility_id.hex()}").json()["items"]
    assert {i["facility_name"] for i in by_id} == {"nrt1"} and len(by_id) == 6
    hardware = client.get("/attestations?kind=hardware").json()["items"]
    assert len(hardware) == 6 and {i["kind"] for i in hardware} == {"hardware"}
    assert client.get("/attestations?kind=0").json()["items"] == hardware
    everything = client.get("/attestations?limit=500").json()["items"]
    last_block = everything[-1]["block_number"]
    tail = client.get(f"/attestations?from_block={last_block}&to_block={last_block}").json()
    assert tail["items"] == [i for i in everything if i["block_number"] == last_block]
    assert client.get("/attestations?to_block=0").json()["items"] == []


def test_bad_filters_are_422_naming_the_field(client: TestClient) -> None:
    for query, field in (
        ("from_block=9&to_block=3", "to_block"),
        ("from_block=-1", "from_block"),
        ("cursor=abc", "cursor"),
        ("kind=weather", "kind"),
        ("facility=0x12", "facility"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("from_block=0.0", "from_block"),  # the schema says integer: pydantic alone took it as 0
        ("to_block=%201", "to_block"),
        ("limit=1.0", "limit"),
    ):
        response = client.get(f"/attestations?{query}")
        assert response.status_code == 422, query
        assert response.json()["detail"][0]["loc"] == ["query", field], query


def test_one_proof_decoded_from_calldata(client: TestClient) -> None:
    first = client.get("/attestations?limit=1").json()["items"][0]
    body = client.get(f"/attestations/{first['tx']}/{first['index']}").json()
    assert (body["status"], body["rejection"]) == ("accepted", None)
    assert (body["facility_name"], body["kind"], body["sequence"]) == ("fra1", "power", 1)
    assert body["proofs_in_tx"] >= 25 and body["block_number"] == first["block_number"]
    assert body["evidence"]["body"] == {"grid": FRA1.grid}
    assert body["evidence"]["facility"] == "fra1"
    assert body["domains"] == first["domains"]
    assert set(body["signature"]) == {"v", "r", "s"}
    assert body["issued_at"] < body["expires_at"]


def run_script(api_world: ApiWorld, tx: str) -> dict[str, object]:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "verify_attestation.py"),
            "--deployment",
            str(api_world.path),
            "--rpc-url",
            api_world.rpc_url,
            "--tx",
            tx,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    report: dict[str, object] = json.loads(proc.stdout)
    return report


def test_verify_gives_the_scripts_checks_for_an_accepted_proof(
    client: TestClient, api_world: ApiWorld
) -> None:
    first = client.get("/attestations?limit=1").json()["items"][0]
    body = client.get(f"/attestations/{first['tx']}/3/verify").json()
    block = body.pop("block")
    assert block["number"] >= first["block_number"]
    script = run_script(api_world, first["tx"])
    assert body == script["proofs"][3]  # type: ignore[index]
    assert body["ok"] and {c["id"] for c in body["checks"]} >= {
        "attestation.signature",
        "attestation.attestor",
        "certificate.device.issued_by_ca",
        "evidence.device_signature",
    }


def test_a_forged_proof_in_a_batch_is_rejected_and_fails_verification(
    client: TestClient, api_world: ApiWorld, w3: Web3
) -> None:
    world = api_world.world
    good = world.facility_proofs(FRA1, [Kind.HEALTH])[0]
    forged_attestation = world.facility_proofs(FRA1, [Kind.NETWORK])[0].attestation
    forged = good.__class__(
        forged_attestation,
        good.evidence,
        DAL1.signer().sign(world.registry.domain_separator(), forged_attestation),
    )
    result = world.registry.submit_attestations([good, forged], sender=api_world.relayer)
    tx = result.receipt["transactionHash"].to_0x_hex()
    wait_synced(client, w3)
    rejected = client.get(f"/attestations/{tx}/1").json()
    assert (rejected["status"], rejected["rejection"]) == (
        "rejected",
        "RegistryEvidenceHashMismatch",
    )
    assert client.get(f"/attestations/{tx}/0").json()["status"] == "accepted"
    verdict = client.get(f"/attestations/{tx}/1/verify").json()
    verdict.pop("block")
    assert verdict == run_script(api_world, tx)["proofs"][1]  # type: ignore[index]
    assert not verdict["ok"]
    failed = {c["id"] for c in verdict["checks"] if not c["ok"]}
    assert failed == {"attestation.attestor", "attestation.accepted", "attestation.evidence_hash"}
    # the new accepted proof is listed, the rejected one is not
    listed = client.get(f"/attestations?from_block={result.receipt['blockNumber']}").json()["items"]
    assert [(i["tx"], i["index"]) for i in listed] == [(tx, 0)]


def test_a_forged_twin_riding_after_an_accepted_proof_is_never_shown_as_it(
    client: TestClient, api_world: ApiWorld, w3: Web3
) -> None:
    """Found by review: the index matched an accepted event to the calldata by (facility,
    sequence), the last entry winning, so anyone relaying a copied valid proof P could append a
    forged P' (same facility and sequence, another grid, a stranger's signature): the chain
    accepted P and rejected P', and the API showed P' as the accepted proof."""
    world = api_world.world
    [good] = world.facility_proofs(FRA1, [Kind.POWER])
    a = good.attestation
    forged = make_proof(
        Signer(bytes(Account.create().key)),
        world.registry.domain_separator(),
        facility_id=a.facility_id,
        kind=Kind.POWER,
        evidence=canonical_json({"grid": "attacker-grid"}),
        issued_at=a.issued_at,
        expires_at=a.expires_at,
        sequence=a.sequence,
        domain_id=domain_id(Dimension.POWER, "attacker-grid"),
        secondary_domain_id=bytes(32),
        latitude_e6=0,
        longitude_e6=0,
    )
    result = world.registry.submit_attestations([good, forged], sender=api_world.relayer)
    assert len(result.accepted) == 1 and [i for i, _ in result.rejected] == [1]
    tx = result.receipt["transactionHash"].to_0x_hex()
    wait_synced(client, w3)
    listed = client.get(f"/attestations?from_block={result.receipt['blockNumber']}").json()["items"]
    assert [(i["tx"], i["index"]) for i in listed] == [(tx, 0)]
    names = {d["name"] for d in listed[0]["domains"]}
    assert FRA1.grid in names and "attacker-grid" not in names
    facility = client.get("/facilities/fra1").json()["facility"]
    power = next(p for p in facility["proofs"] if p["kind"] == "power")
    assert (power["latest"]["tx"], power["latest"]["index"]) == (tx, 0)
    assert client.get(f"/attestations/{tx}/1").json()["status"] == "rejected"
    # the verifier does not take the forgery for the accepted proof either
    checks = client.get(f"/attestations/{tx}/1/verify").json()["checks"]
    assert not next(c for c in checks if c["id"] == "attestation.accepted")["ok"]
    assert all(c["ok"] for c in client.get(f"/attestations/{tx}/0/verify").json()["checks"])


def test_unknown_or_non_proof_transactions_are_404(client: TestClient, api_world: ApiWorld) -> None:
    first = client.get("/attestations?limit=1").json()["items"][0]
    cases = [
        (f"/attestations/0x{'ab' * 32}/0", "not found on this chain"),
        (f"/attestations/{api_world.flagging_latency_tx}/0", "not the registry"),
        (f"/attestations/{first['tx']}/999", "no index 999"),
        (f"/attestations/0x{'ab' * 32}/0/verify", "not found on this chain"),
    ]
    for path, words in cases:
        response = client.get(path)
        assert response.status_code == 404, path
        assert words in response.json()["detail"], (path, response.json())
        assert response.json()["error"] == "attestation_not_found"


def test_malformed_transaction_or_index_is_422(client: TestClient) -> None:
    for path, field in (
        ("/attestations/0x1234/0", "tx"),
        ("/attestations/0x" + "ab" * 32 + "/-1", "index"),
        ("/attestations/0x" + "ab" * 32 + "/x/verify", "index"),
        ("/attestations/0x" + "ab" * 32 + "/70000", "index"),
        ("/attestations/0x" + "ab" * 32 + "/0.0", "index"),
    ):
        response = client.get(path)
        assert response.status_code == 422, path
        assert response.json()["detail"][0]["loc"] == ["path", field], path


def test_a_reverted_block_leaves_the_index(
    client: TestClient, api_world: ApiWorld, w3: Web3
) -> None:
    """evm_revert (like a reorg) replaces blocks the index has read: it starts again."""
    before = client.get("/attestations?limit=500").json()["items"]
    snap = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    world = api_world.world
    world.submit(world.facility_proofs(FRA1, [Kind.HEALTH]), api_world.relayer)
    wait_synced(client, w3)
    assert len(client.get("/attestations?limit=500").json()["items"]) == len(before) + 1
    w3.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]  # same height, new hash
    wait_synced(client, w3)
    assert client.get("/attestations?limit=500").json()["items"] == before


def test_the_index_reads_logs_in_bounded_ranges(
    client: TestClient, api_world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventindex, "LOG_RANGE", 3)
    with TestClient(create_app(api_settings(api_world.path, api_world.rpc_url))) as narrow:
        for path in ("/attestations?limit=500", "/latency", "/facilities"):
            assert narrow.get(path).json() == client.get(path).json(), path
