"""GET /latency: measured pairs, each end's newest accepted report, the two-sided RTT."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from web3 import Web3

from redundancy.errors import ContractRevertError
from tests.integration.api.conftest import AMS1, DAL1, FRA1, NRT1, ApiWorld, wait_synced
from tests.integration.conftest import advance_time


def pair(body: dict[str, Any], a: bytes, b: bytes) -> dict[str, Any]:
    ids = {"0x" + a.hex(), "0x" + b.hex()}
    [link] = [x for x in body["links"] if {x["facility_id"], x["peer_facility_id"]} == ids]
    return link


def test_each_pair_shows_both_ends_and_the_larger_rtt(client: TestClient) -> None:
    body = client.get("/latency").json()
    assert len(body["links"]) == 3
    fra_ams = pair(body, FRA1.facility_id, AMS1.facility_id)
    assert (fra_ams["rtt_micros"], fra_ams["consistent"], fra_ams["flagged_on_chain"]) == (
        4_500,
        True,
        False,
    )
    assert fra_ams["rtt_distance_bound_m"] == 450_000
    reports = fra_ams["reports"]
    assert {r["facility_name"] for r in reports} == {"fra1", "ams1"}
    assert len({r["exchange_id"] for r in reports}) == 1  # one exchange, both ends
    assert all(r["fresh"] for r in reports)
    nrt_ams = pair(body, NRT1.facility_id, AMS1.facility_id)
    assert (nrt_ams["consistent"], nrt_ams["flagged_on_chain"]) == (False, True)
    assert pair(body, DAL1.facility_id, FRA1.facility_id)["consistent"] is True
    assert body["max_anchor_age_blocks"] == 256


def test_one_end_alone_proves_no_rtt(client: TestClient, api_world: ApiWorld, w3: Web3) -> None:
    world, selector = api_world.world, api_world.selector
    ds = world.registry.domain_separator()
    selector.report_latency(ds, *world.latency(NRT1, DAL1, 120_000), sender=api_world.relayer)
    wait_synced(client, w3)
    link = pair(client.get("/latency").json(), NRT1.facility_id, DAL1.facility_id)
    assert (link["rtt_micros"], link["consistent"]) == (None, None)
    assert [r["rtt_micros"] for r in link["reports"]] == [120_000]


def test_an_older_report_cannot_replace_the_newest(
    client: TestClient, api_world: ApiWorld, w3: Web3
) -> None:
    """Regression: a relayed older measurement was accepted and then shown as the latest."""
    world, selector, relayer = api_world.world, api_world.selector, api_world.relayer
    ds = world.registry.domain_separator()
    older = world.latency(FRA1, AMS1, 4_400)
    newer = world.latency(FRA1, AMS1, 4_600)
    selector.report_latency(ds, *newer, sender=relayer)
    with pytest.raises(ContractRevertError) as caught:
        selector.report_latency(ds, *older, sender=relayer)
    assert caught.value.error_name == "SelectorMeasurementReplayed"
    wait_synced(client, w3)
    link = pair(client.get("/latency").json(), FRA1.facility_id, AMS1.facility_id)
    [fra] = [r for r in link["reports"] if r["facility_name"] == "fra1"]
    assert (fra["rtt_micros"], fra["measured_at"]) == (4_600, newer[0].measured_at)
    assert link["rtt_micros"] == 4_600


def test_a_pair_measured_before_its_landmark_was_fixed_is_shown_not_weighed(
    client: TestClient, api_world: ApiWorld, w3: Web3
) -> None:
    """As the selector: a round trip with a landmark measured before its position was fixed
    proves nothing (no RTT, no verdict) until both ends measure again."""
    world, selector, relayer = api_world.world, api_world.selector, api_world.relayer
    ds = world.registry.domain_separator()
    for m, sig in world.round_trip(NRT1, DAL1, 120_000):
        selector.report_latency(ds, m, sig, sender=relayer)
    advance_time(w3, 1)
    selector.set_landmark(DAL1.facility_id, DAL1.latitude_e6, DAL1.longitude_e6)
    wait_synced(client, w3)
    link = pair(client.get("/latency").json(), NRT1.facility_id, DAL1.facility_id)
    assert (link["rtt_micros"], link["consistent"], len(link["reports"])) == (None, None, 2)
    for m, sig in world.round_trip(NRT1, DAL1, 120_000):
        selector.report_latency(ds, m, sig, sender=relayer)
    wait_synced(client, w3)
    link = pair(client.get("/latency").json(), NRT1.facility_id, DAL1.facility_id)
    assert (link["rtt_micros"], link["consistent"]) == (120_000, True)
