"""The emulated distances between sites: physically possible, from the sites' coordinates."""

from __future__ import annotations

import itertools

import pytest

from devnet.distance import (
    EXTRA_SITES,
    FIBRE_KM_PER_MS,
    DelayMatrix,
    facilities,
    floor_us,
    great_circle_km,
)
from devnet.examples import example_site
from devnet.fabric import etcd_timing, gateway_tuning
from redundancy.geodesy import distance_lower_bound_m

SITES = ("fra1", "ams1", "lon1", "nyc1", "dal1", "sgp1")


@pytest.mark.parametrize("route_factor", [0.5, 1.0, 1.5, 3.0])
def test_every_configured_delay_is_physically_possible(route_factor: float) -> None:
    """No one-way delay is below what light in fibre needs along the great circle, nor below
    the lower bound the registry contract computes from the claimed coordinates."""
    matrix = DelayMatrix.of(SITES, route_factor)
    for (a, b), us in matrix.one_way_us.items():
        fa, fb = facilities()[a], facilities()[b]
        contract_floor_m = distance_lower_bound_m(
            (fa.latitude_e6, fa.longitude_e6), (fb.latitude_e6, fb.longitude_e6)
        )
        assert us * FIBRE_KM_PER_MS / 1000 >= contract_floor_m / 1000, (a, b, us)
        assert us >= floor_us(a, b) >= great_circle_km(a, b) / FIBRE_KM_PER_MS * 1000
        assert us == matrix.one_way_us[b, a]  # symmetric until a fault says otherwise


def test_delays_follow_the_route_factor_above_the_floor() -> None:
    matrix = DelayMatrix.of(SITES, 1.5)
    # Frankfurt-Dallas is about 8,250 km: 41.3 ms at the speed of light in fibre, 61.9 ms routed
    assert great_circle_km("fra1", "dal1") == pytest.approx(8255, abs=15)
    assert matrix.one_way_us["fra1", "dal1"] == pytest.approx(1.5 * floor_us("fra1", "dal1"), 2)
    assert DelayMatrix.of(SITES, 0.5).one_way_us["fra1", "dal1"] == floor_us("fra1", "dal1")


def test_example_sites_take_their_coordinates_from_their_attestor_configs() -> None:
    for name in ("fra1", "ams1", "dal1"):
        assert facilities()[name] == example_site(name).facility
    assert {f.name for f in EXTRA_SITES}.isdisjoint({"fra1", "ams1", "dal1"})


def test_nearest_quorum_and_description() -> None:
    matrix = DelayMatrix.of(("fra1", "ams1", "lon1", "nyc1", "dal1"))
    assert matrix.nearest("fra1")[:2] == ["ams1", "lon1"]
    # a 5-site cluster led from fra1 needs two followers: ams1 and lon1, the farther is lon1
    assert matrix.quorum_rtt_us("fra1") == matrix.rtt_us("fra1", "lon1")
    assert matrix.quorum_rtt_us("dal1") == matrix.rtt_us("dal1", "lon1")
    text = matrix.describe()
    assert "route factor 1.5" in text and "fra1-dal1 61.9" in text
    assert DelayMatrix.zero(["a", "b"]).describe() == "no emulated distance"
    for a, b in itertools.permutations(matrix.sites, 2):
        assert matrix.rtt_us(a, b) == matrix.rtt_us(b, a) > 0


def test_the_measured_floor_is_the_configured_one_from_measured_round_trips() -> None:
    sites = ("fra1", "ams1", "lon1", "nyc1", "dal1")
    matrix = DelayMatrix.of(sites)
    exact = {(a, b): matrix.rtt_us(a, b) / 1000 for a, b in itertools.permutations(sites, 2)}
    for gateway, leader in itertools.product(sites, repeat=2):
        floor = matrix.measured_ack_floor_ms(exact, gateway, leader)
        assert floor == pytest.approx(matrix.ack_floor_us(gateway, leader) / 1000)
    # each relay adds its own time: the measured floor counts it, link by link (fra1's nearest
    # majority of a 5-site cluster is ams1 and lon1, the farther of the two decides)
    slowed = {k: v + (0.4 if "ams1" in k else 0.1) for k, v in exact.items()}
    assert matrix.measured_ack_floor_ms(slowed, "dal1", "fra1") == pytest.approx(
        exact["dal1", "fra1"] + 0.1 + exact["fra1", "lon1"] + 0.1
    )
    assert matrix.measured_ack_floor_ms(slowed, "fra1", "fra1") == pytest.approx(
        max(exact["fra1", "ams1"] + 0.4, exact["fra1", "lon1"] + 0.1)
    )


def test_etcd_timing_follows_the_measured_round_trips() -> None:
    assert etcd_timing({}) == (30, 300)  # loopback: the drill's setting
    assert etcd_timing({("a", "b"): 5.4, ("b", "a"): 5.5}) == (30, 300)
    assert etcd_timing({("fra1", "dal1"): 124.4}) == (125, 1250)  # heartbeat ~RTT, 10x


def test_gateway_tuning_pipelines_every_message_only_where_a_round_trip_outweighs_a_commit() -> (
    None
):
    loopback = gateway_tuning({("a", "b"): 0.1})
    assert loopback == {
        "write_attempt_timeout": 0.2,
        "max_inflight_writes": 2,
        "pipeline_min_messages": 64,  # a commit costs CPU here: a second write for a few waits
    }
    europe = gateway_tuning({("fra1", "ams1"): 5.9, ("fra1", "lon1"): 10.6})
    assert europe["pipeline_min_messages"] == 1  # waiting a round trip costs more
    assert europe["max_inflight_writes"] == 2
    far = gateway_tuning({("fra1", "dal1"): 124.4})
    assert (far["max_inflight_writes"], far["pipeline_min_messages"]) == (13, 1)
    assert far["write_attempt_timeout"] == 0.349
