"""GET /validators and /validators/{address}, and GET /committee."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from web3 import Web3

from devnet.world import ValidatorSpec
from redundancy.domains import hardware_domain
from tests.integration.api.conftest import (
    DAL1,
    ETH,
    STALE_VALIDATOR,
    VALIDATORS,
    ApiWorld,
    wait_synced,
)
from tests.integration.conftest import advance_time


def by_address(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["address"]: v for v in body["validators"]}


def test_lists_validators_with_stake_hardware_and_eligibility(client: TestClient) -> None:
    body = client.get("/validators").json()
    assert body["count"] == 6
    validators = by_address(body)
    for spec in VALIDATORS:
        v = validators[spec.account().address]
        assert v["facility_name"] == spec.facility
        assert v["stake_wei"] == str(spec.stake)
        assert v["in_committee"]
        if spec.facility != "nrt1":
            assert (v["eligible"], v["ineligible_reasons"]) == (True, [])
        assert v["hardware"]["node"] == spec.node().address and v["hardware"]["fresh"]
        assert v["hardware"]["domain"]["id"] == "0x" + hardware_domain(*spec.hardware).hex()
        assert v["hardware"]["domain"]["name"] == "/".join(spec.hardware)
    # nrt1's geography was flagged after the committee was selected
    nrt1 = validators[VALIDATORS[4].account().address]
    assert (nrt1["eligible"], nrt1["ineligible_reasons"]) == (False, ["facility geography flagged"])


def test_a_validator_at_a_stale_facility_is_ineligible_and_says_why(client: TestClient) -> None:
    v = by_address(client.get("/validators").json())[STALE_VALIDATOR.account().address]
    assert (v["eligible"], v["in_committee"]) == (False, False)
    assert v["ineligible_reasons"] == [
        "facility stale: no network proof, no provider proof, no health proof"
    ]


def test_one_validator_by_checksummed_or_lower_case_address(client: TestClient) -> None:
    address = VALIDATORS[2].account().address
    first = client.get(f"/validators/{address}")
    assert first.status_code == 200
    assert first.json()["validator"]["address"] == address
    assert client.get(f"/validators/{address.lower()}").json() == first.json()


def test_unknown_validator_is_404(client: TestClient) -> None:
    response = client.get("/validators/0x" + "12" * 20)
    assert response.status_code == 404
    assert response.json()["error"] == "validator_not_found"


def test_malformed_address_is_422_naming_the_field(client: TestClient) -> None:
    address = VALIDATORS[2].account().address
    wrong_case = address[:2] + address[2:].swapcase()
    for bad in ("0x1234", "fra1", "0x" + "zz" * 20, wrong_case):
        response = client.get(f"/validators/{bad}")
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"] == ["path", "address"], bad


def test_committee_members_stake_and_domains(client: TestClient) -> None:
    body = client.get("/committee").json()
    assert (body["epoch"], body["total_stake_wei"], body["halt_share_bps"]) == (
        1,
        str(11 * ETH),
        3334,
    )
    members = {m["address"]: m for m in body["members"]}
    assert set(members) == {v.account().address for v in VALIDATORS}
    fra1a = members[VALIDATORS[0].account().address]
    assert (fra1a["stake_wei"], fra1a["share_bps"], fra1a["facility_name"]) == (
        str(2 * ETH),
        1818,
        "fra1",
    )
    dims = [d["dimension"] for d in fra1a["domains"]]
    assert dims == ["facility", "metro", "country", "power", "network", "provider", "hardware"]
    # flagged geography counts as unknown: nrt1's metro and country are the zero domain
    nrt1 = members[VALIDATORS[4].account().address]
    assert nrt1["domains"][1]["id"] == "0x" + "00" * 32


def test_stake_by_domain_adds_up_in_every_dimension(client: TestClient) -> None:
    body = client.get("/committee").json()
    for dim in body["stake_by_domain"]:
        assert sum(int(d["stake_wei"]) for d in dim["domains"]) == 11 * ETH
        shares = [d["share_bps"] for d in dim["domains"]]
        assert shares == sorted(shares, reverse=True)
    hardware = next(d for d in body["stake_by_domain"] if d["dimension"] == "hardware")
    largest = hardware["domains"][0]
    assert (largest["domain"]["name"], largest["stake_wei"], largest["members"]) == (
        "dell/poweredge r650/2.19.1",
        str(5 * ETH),
        2,
    )
    assert [r["dimension"] for r in body["policy"]["rules"]][:2] == ["facility", "metro"]
    assert body["policy"]["committee_size"] == 10


def test_a_validator_bonded_after_the_first_committee_waits_a_minimum_epoch_and_says_so(
    client: TestClient, api_world: ApiWorld, w3: Web3
) -> None:
    """The bonding rule, as /validators shows it: a founding validator is eligible from its
    bonding time; one registered after the first selection from bonding + the minimum epoch,
    ineligible until then with the reason, and eligible once that time has come."""
    world, registry = api_world.world, api_world.world.registry
    advance_time(w3, 1)  # a later second than the first selection's
    late = ValidatorSpec("v-late", "dal1", 3 * ETH, ("dell", "poweredge r760", "1.6"))
    world.submit([world.hardware_proof(late)], api_world.relayer)
    acct = late.account()
    w3.provider.make_request("anvil_setBalance", [acct.address, hex(10 * ETH)])  # type: ignore[arg-type]
    receipt = registry.register_validator(DAL1.facility_id, late.node(), late.stake, sender=acct)
    bonded = w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    wait = api_world.selector.geography_policy().min_epoch_seconds
    wait_synced(client, w3)
    validators = by_address(client.get("/validators").json())
    founder = validators[VALIDATORS[0].account().address]
    assert founder["eligible_from"] == founder["bonded_at"] > 0
    v = validators[acct.address]
    assert (v["bonded_at"], v["eligible_from"], v["eligible"]) == (bonded, bonded + wait, False)
    assert v["ineligible_reasons"] == [
        f"bonded too recently: eligible from {bonded + wait} (bonded at {bonded})"
    ]
    assert acct.address not in {m.address for m in api_world.selector.eligible_candidates()}
    advance_time(w3, wait)
    world.refresh(api_world.relayer)
    wait_synced(client, w3)
    v = client.get(f"/validators/{acct.address}").json()["validator"]
    assert (v["eligible"], v["ineligible_reasons"]) == (True, [])
    assert acct.address in {m.address for m in api_world.selector.eligible_candidates()}
