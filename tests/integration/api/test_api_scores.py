"""GET /scores (the contract's figures, which the Python reference reproduces) and what-if."""

from __future__ import annotations

from fastapi.testclient import TestClient

from redundancy.domains import Dimension, domain_id
from redundancy.scores import compute_scores
from tests.integration.api.conftest import ETH, VALIDATORS, ApiWorld


def test_scores_are_the_selectors_and_match_the_python_reference(
    client: TestClient, api_world: ApiWorld
) -> None:
    body = client.get("/scores").json()
    block = body["block"]["number"]
    onchain = api_world.selector.current_scores(block)
    assert onchain == compute_scores(api_world.selector.committee_members(block))
    assert (body["score"], body["weakest"]) == (onchain.score, onchain.weakest.name.lower())
    assert (body["score"], body["weakest"]) == (0, "hardware")
    assert body["configuration_class"] == "active_active"
    assert body["total_stake_wei"] == str(11 * ETH) and body["epoch"] == 1
    for row, dim in zip(body["dimensions"], onchain.dimensions, strict=True):
        assert row["dimension"] == dim.dimension.name.lower()
        assert (row["nakamoto"], row["tolerance"], row["hhi_bps"]) == (
            dim.nakamoto,
            dim.tolerance,
            dim.hhi_bps,
        )
        assert (row["largest_share_bps"], row["domain_count"]) == (
            dim.largest_share_bps,
            dim.domain_count,
        )
        assert row["largest_domain"]["id"] == "0x" + dim.largest_domain.hex()
    facility = body["dimensions"][0]
    assert (facility["nakamoto"], facility["tolerance"]) == (2, 1)
    assert body["dimensions"][-1]["largest_domain"]["name"] == "dell/poweredge r650/2.19.1"


def test_what_if_one_grid_fails_the_committee_stays_live(client: TestClient) -> None:
    response = client.get("/scores/what-if", params={"fail": "power:ercot"})
    assert response.status_code == 200
    body = response.json()
    assert body["failed"] == [
        {
            "dimension": "power",
            "id": "0x" + domain_id(Dimension.POWER, "ercot").hex(),
            "name": "ercot",
        }
    ]
    assert body["failed_members"] == [VALIDATORS[3].account().address]
    assert (body["offline_stake_wei"], body["total_stake_wei"]) == (str(3 * ETH), str(11 * ETH))
    assert (body["live"], body["offline_share_bps"], body["score_before"]) == (True, 2727, 0)
    # 3 of 11 are down: the next domain holding >= 2/3 ETH... any further domain halts it
    assert body["score"] == 0 and body["weakest"] == "facility"
    assert {d["tolerance"] for d in body["dimensions"]} == {0}


def test_what_if_a_country_and_a_grid_fail_consensus_halts(client: TestClient) -> None:
    body = client.get("/scores/what-if?fail=power:ercot&fail=country:DE").json()
    assert (body["live"], body["score"], body["weakest"]) == (False, None, None)
    assert body["offline_stake_wei"] == str(6 * ETH)
    assert len(body["failed_members"]) == 3


def test_what_if_by_domain_id_and_unknown_domains(client: TestClient) -> None:
    ercot = "0x" + domain_id(Dimension.POWER, "ercot").hex()
    by_id = client.get(f"/scores/what-if?fail=power:{ercot}").json()
    by_name = client.get("/scores/what-if?fail=power:ercot").json()
    assert by_id["offline_stake_wei"] == by_name["offline_stake_wei"]
    nothing = client.get("/scores/what-if?fail=power:caiso").json()
    assert (nothing["live"], nothing["offline_stake_wei"], nothing["score"]) == (True, "0", 0)
    assert nothing["failed"][0]["name"] is None  # no evidence on chain names caiso


def test_what_if_refuses_malformed_domains_naming_the_field(client: TestClient) -> None:
    for query, loc in (
        ("fail=ercot", ["query", "fail", 0]),
        ("fail=power:ercot&fail=planet:mars", ["query", "fail", 1]),
        ("fail=power:", ["query", "fail", 0]),
        ("", ["query", "fail"]),
    ):
        response = client.get(f"/scores/what-if?{query}")
        assert response.status_code == 422, query
        assert response.json()["detail"][0]["loc"] == loc, query
