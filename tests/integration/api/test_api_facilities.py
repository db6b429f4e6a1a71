"""GET /facilities and /facilities/{facility} against the real deployment."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi.testclient import TestClient
from web3 import Web3

from redundancy.domains import Kind, facility_id
from tests.integration.api.conftest import AMS1, DAL1, FRA1, LON1, ApiWorld, wait_synced

KINDS = ["hardware", "power", "geography", "network", "provider", "health"]


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in body["facilities"]}


def test_lists_every_facility_at_the_block_it_names(client: TestClient) -> None:
    response = client.get("/facilities")
    assert response.status_code == 200
    body = response.json()
    health = client.get("/health").json()
    assert body["block"] == health["block"]
    assert response.headers["x-block-number"] == str(body["block"]["number"])
    assert body["count"] == 5
    assert list(by_name(body)) == ["fra1", "ams1", "dal1", "nrt1", "lon1"]
    assert body["freshness_policy"]["required_kinds"] == KINDS[1:]


def test_a_fresh_facility_has_its_domains_and_latest_proof_of_each_kind(client: TestClient) -> None:
    fra1 = by_name(client.get("/facilities").json())["fra1"]
    assert fra1["id"] == "0x" + FRA1.facility_id.hex()
    assert (fra1["stale"], fra1["stale_reasons"], fra1["active"]) == (False, [], True)
    assert fra1["attestor"] == FRA1.signer().address
    assert fra1["location"]["latitude_e6"] == FRA1.latitude_e6
    assert fra1["location"]["longitude"] == FRA1.longitude_e6 / 1e6
    names = {d["dimension"]: d["name"] for d in fra1["domains"]}
    assert names == {
        "facility": "fra1",
        "metro": "frankfurt",
        "country": "de",
        "power": "entso-e/amprion",
        "network": "as3320",
        "provider": "equinix",
    }
    proofs = {p["kind"]: p for p in fra1["proofs"]}
    assert list(proofs) == KINDS
    for kind in KINDS:
        assert proofs[kind]["fresh"] and proofs[kind]["expires_in_s"] > 0
        assert proofs[kind]["latest"]["index"] is not None
    assert proofs["health"]["required"] and not proofs["hardware"]["required"]
    assert len(fra1["validators"]) == 2


def test_the_latest_proof_reference_leads_to_that_proof(client: TestClient) -> None:
    fra1 = by_name(client.get("/facilities").json())["fra1"]
    power = next(p for p in fra1["proofs"] if p["kind"] == "power")["latest"]
    proof = client.get(f"/attestations/{power['tx']}/{power['index']}").json()
    assert (proof["kind"], proof["sequence"], proof["status"]) == (
        "power",
        power["sequence"],
        "accepted",
    )
    assert proof["facility_name"] == "fra1"


def test_a_stale_facility_says_why(client: TestClient) -> None:
    lon1 = by_name(client.get("/facilities").json())["lon1"]
    assert lon1["stale"]
    assert lon1["stale_reasons"] == ["no network proof", "no provider proof", "no health proof"]
    proofs = {p["kind"]: p for p in lon1["proofs"]}
    assert proofs["health"] == {
        "kind": "health",
        "required": True,
        "valid_until": 0,
        "fresh": False,
        "expires_in_s": None,
        "lifetime_s": None,
        "latest": None,
    }


def test_geography_flags_landmarks_and_proven_discs(client: TestClient) -> None:
    facilities = by_name(client.get("/facilities").json())
    assert facilities["nrt1"]["geography"]["flagged"]
    assert not facilities["fra1"]["geography"]["flagged"]
    ams1 = facilities["ams1"]["geography"]
    assert ams1["landmark"]["latitude_e6"] == AMS1.latitude_e6 and not ams1["flagged"]
    disc = facilities["fra1"]["geography"]["proven_disc"]
    assert disc["landmark_name"] == "ams1" and disc["radius_m"] == 450_000
    assert disc["center"]["longitude_e6"] == AMS1.longitude_e6 and disc["rtt_micros"] == 4_500
    assert facilities["fra1"]["geography"]["discs"] == [disc]
    # dal1 measured only fra1, which is no landmark: nothing proven
    assert facilities["dal1"]["geography"]["proven_disc"] is None
    # nrt1's claim lies outside the disc its RTT with the landmark ams1 proves
    flag = facilities["nrt1"]["geography"]["flag"]
    assert (flag["against_name"], flag["by_landmark"], flag["rtt_micros"], flag["holds"]) == (
        "ams1",
        True,
        1_500,
        True,
    )
    assert facilities["fra1"]["geography"]["flag"] is None


def test_one_facility_by_name_id_or_upper_case(client: TestClient) -> None:
    by_id = client.get("/facilities/0x" + LON1.facility_id.hex())
    assert by_id.status_code == 200
    for ref in ("lon1", "LON1"):
        response = client.get(f"/facilities/{ref}")
        assert response.status_code == 200
        assert response.json()["facility"] == by_id.json()["facility"]
    assert by_id.json()["block"]["number"] == int(by_id.headers["x-block-number"])


def test_unknown_facility_is_404_with_its_name(client: TestClient) -> None:
    response = client.get("/facilities/nowhere")
    assert response.status_code == 404
    assert response.json() == {
        "detail": "facility nowhere not found",
        "error": "facility_not_found",
    }
    unknown_id = "0x" + facility_id("nowhere").hex()
    assert client.get(f"/facilities/{unknown_id}").status_code == 404


def test_malformed_facility_is_422_naming_the_field(client: TestClient) -> None:
    for bad in ("0x1234", "0x" + "zz" * 32, "fra%201", "-fra1", "a" * 70):
        response = client.get(f"/facilities/{bad}")
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"] == ["path", "facility"], bad


def test_api_world_is_what_the_tests_assume(api_world: ApiWorld) -> None:
    assert api_world.deployment.chain_id == 31337


def test_a_site_whose_health_evidence_shows_its_ups_on_battery_is_degraded(
    client: TestClient, api_world: ApiWorld, w3: Web3
) -> None:
    before = client.get("/facilities/ams1").json()["facility"]["condition"]
    # the world's minimal heartbeat (version 1 evidence) names no reason and claims nothing
    assert before["degraded"] is False and before["reasons"] == []
    assert (before["claimed"], before["consistent"], before["evidence_version"]) == (None, None, 1)
    world = api_world.world
    world.health_bodies["ams1"] = {
        "upsStatus": "OB",
        "clockSynced": True,
        "diskFreeMiB": 10,
        "diskTotalMiB": 1000,
        "degraded": ["disk-nearly-full", "ups-on-battery"],
    }
    try:
        world.submit(world.facility_proofs(AMS1, [Kind.HEALTH]), api_world.relayer)
    finally:
        del world.health_bodies["ams1"]
    wait_synced(client, w3)
    ams1 = client.get("/facilities/ams1").json()["facility"]
    c = ams1["condition"]
    assert c["degraded"] is True and c["fresh"] is True
    assert c["reasons"] == c["claimed"] == ["disk-nearly-full", "ups-on-battery"]
    assert (c["consistent"], c["ups_status"], c["evidence_version"]) == (True, "OB", 2)
    health = next(p for p in ams1["proofs"] if p["kind"] == "health")["latest"]
    assert c["proof"] == health
    # degraded is not stale: the site still counts, the venue is what reacts
    assert ams1["stale"] is False
    listed = by_name(client.get("/facilities").json())
    assert listed["ams1"]["condition"] == c
    assert listed["fra1"]["condition"]["degraded"] is False


def test_a_claim_that_disagrees_with_the_fields_is_shown_as_inconsistent(
    client: TestClient, api_world: ApiWorld, w3: Web3
) -> None:
    world = api_world.world
    world.health_bodies["dal1"] = {"upsStatus": "OL LB", "degraded": []}
    try:
        world.submit(world.facility_proofs(DAL1, [Kind.HEALTH]), api_world.relayer)
    finally:
        del world.health_bodies["dal1"]
    wait_synced(client, w3)
    c = client.get("/facilities/dal1").json()["facility"]["condition"]
    assert c["reasons"] == ["ups-low-battery"] and c["claimed"] == []
    assert c["degraded"] is True and c["consistent"] is False


def test_a_facility_bound_to_a_tpm_is_shown_as_such_and_the_policy_names_tpm_kinds(
    client: TestClient, api_world: ApiWorld, w3: Web3
) -> None:
    listed = by_name(client.get("/facilities").json())
    assert {f["identity"]["backend"] for f in listed.values()} == {"file"}
    assert listed["fra1"]["identity"]["tpm_ak_certificate"] is None
    assert client.get("/facilities").json()["freshness_policy"]["require_tpm"] == []
    registry = api_world.world.registry
    ak = hashlib.sha256(b"dal1's AK certificate").digest()
    registry.set_tpm_identity(DAL1.facility_id, ak)
    try:
        wait_synced(client, w3)
        dal1 = client.get("/facilities/dal1").json()["facility"]["identity"]
        assert dal1 == {"backend": "tpm", "tpm_ak_certificate": "0x" + ak.hex()}
        listed = by_name(client.get("/facilities").json())
        assert [n for n, f in listed.items() if f["identity"]["backend"] == "tpm"] == ["dal1"]
    finally:
        registry.set_tpm_identity(DAL1.facility_id, bytes(32))
    wait_synced(client, w3)
    assert client.get("/facilities/dal1").json()["facility"]["identity"]["backend"] == "file"
