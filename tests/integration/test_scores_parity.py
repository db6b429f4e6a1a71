"""The contract's scores, selection and class equal the Python reference, bit for bit.

Hypothesis generates validator sets (stakes, domains from small pools so that domains are
shared), policies (with the physical rules: minimum proven separation and latency budget) and
physical facts (landmark discs per facility, two-sided RTTs per pair); both implementations run
on each, the contract on a real anvil. The geography flag rule is checked the same way, through
the contract's own storage: random landmark discs and a contradicting pair, the sites it flags
and the flags anyone can then clear, against ``redundancy.geodesy``.

The default run draws a CI profile of cases (about 30 s of anvil calls); ``PARITY_SCALE=10``
draws ten times as many in every test (the long profile, opt-in).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from web3 import Web3

from devnet.world import FacilitySpec, World, build
from redundancy.domains import Dimension
from redundancy.errors import ContractRevertError
from redundancy.geodesy import (
    Disc,
    clearing_landmark,
    distance_lower_bound_m,
    own_discs,
    pair_flags,
    proven_separation_m,
)
from redundancy.registry import RegistryClient
from redundancy.scores import ConfigurationClass, Member, compute_scores
from redundancy.selection import (
    NO_GEO,
    DimensionRule,
    DiversityPolicy,
    Failure,
    GeoFacts,
    classify,
    pair_key,
    select_committee,
)
from redundancy.selector import GeographyPolicy, SelectorClient

ADDRESSES = [to_checksum_address(keccak(text=f"validator-{i}")[-20:]) for i in range(64)]
POOLS = {d: [bytes(32)] + [keccak(text=f"{d.name}-{i}") for i in range(6)] for d in Dimension}


@pytest.fixture(scope="module")
def selector(w3: Web3, owner: LocalAccount, registry: RegistryClient) -> Iterator[SelectorClient]:
    client, _ = SelectorClient.deploy(w3, owner, registry.address)
    yield client


@st.composite
def members(draw: st.DrawFn, max_size: int = 30) -> list[Member]:
    addrs = draw(st.lists(st.sampled_from(ADDRESSES), unique=True, max_size=max_size))
    out = []
    for a in addrs:
        stake = draw(st.one_of(st.integers(1, 5).map(lambda x: x * 10**18), st.integers(1, 2**90)))
        domains = tuple(
            draw(st.sampled_from(POOLS[d][: draw(st.integers(1, 7))])) for d in Dimension
        )
        out.append(Member(a, stake, domains))
    return out


rules = st.builds(
    DimensionRule,
    max_members=st.sampled_from([0, 0, 1, 2, 4]),
    min_distinct=st.sampled_from([0, 0, 1, 2, 3]),
    max_share_bps=st.sampled_from([0, 0, 3_400, 5_000, 10_000]),
)
policies = st.builds(
    DiversityPolicy,
    committee_size=st.integers(1, 30),
    min_tolerance=st.sampled_from([0, 0, 1, 2]),
    rules=st.tuples(*[rules] * len(Dimension)),
    min_separation_m=st.sampled_from([0, 0, 300_000, 2_000_000, 6_000_000]),
    max_leader_rtt_micros=st.sampled_from([0, 0, 5_000, 40_000, 150_000]),
)
coords = st.tuples(st.integers(-90_000_000, 90_000_000), st.integers(-180_000_000, 180_000_000))
#: a few landmark positions, so that facilities share landmarks
LANDMARKS = [
    (keccak(text=f"landmark-{i}"), pos)
    for i, pos in enumerate(
        [(52_367_573, 4_904_139), (32_776_664, -96_796_988), (35_689_487, 139_691_706), (0, 0)]
    )
]
discs = st.builds(
    lambda lm, radius: Disc(lm[0], lm[1], radius),
    st.sampled_from(LANDMARKS),
    st.one_of(st.just(0), st.integers(1, 3_000_000)),
)


@st.composite
def geo_facts(draw: st.DrawFn) -> GeoFacts:
    """Discs for some facilities of the pool, RTTs for some pairs."""
    facilities = POOLS[Dimension.FACILITY]
    found: dict[bytes, tuple[Disc, ...]] = {}
    for f in facilities:
        chosen = draw(st.lists(discs, max_size=3, unique_by=lambda d: d.landmark))
        if chosen:
            found[f] = tuple(chosen)
    rtts: dict[tuple[bytes, bytes], int] = {}
    for i, a in enumerate(facilities):
        for b in facilities[i + 1 :]:
            if draw(st.booleans()):
                rtts[pair_key(a, b)] = draw(st.integers(10, 200_000))
    return GeoFacts(found, rtts)


def parity(ci_examples: int) -> settings:
    """Hypothesis settings drawing ``ci_examples`` cases, times ``PARITY_SCALE`` if set."""
    scale = float(os.environ.get("PARITY_SCALE", "1"))
    return settings(
        max_examples=max(1, math.ceil(ci_examples * scale)),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


def _key(m: Member) -> tuple[str, int, tuple[bytes, ...]]:
    return (m.address.lower(), m.stake, m.domains)


@parity(100)
@given(members())
def test_scores_match_python(selector: SelectorClient, ms: list[Member]) -> None:
    assert selector.scores_of(ms) == compute_scores(ms)


@parity(100)
@given(members(), policies, st.one_of(st.just(NO_GEO), geo_facts()))
def test_selection_and_class_match_python(
    selector: SelectorClient, candidates: list[Member], policy: DiversityPolicy, geo: GeoFacts
) -> None:
    ours = select_committee(candidates, policy, geo)
    theirs = selector.select_from(candidates, policy, geo)
    assert (theirs.failure, theirs.dimension) == (ours.failure, ours.dimension)
    assert [_key(m) for m in theirs.members] == [_key(m) for m in ours.members]
    assert selector.class_of(ours.members, candidates, policy, geo) == classify(
        ours.members, candidates, policy, geo
    )


@parity(60)
@given(
    st.lists(st.builds(Disc, st.just(b""), coords, st.integers(0, 4_000_000)), max_size=3),
    st.lists(st.builds(Disc, st.just(b""), coords, st.integers(0, 4_000_000)), max_size=3),
)
def test_proven_separation_matches_python(
    selector: SelectorClient, a: list[Disc], b: list[Disc]
) -> None:
    assert selector.proven_separation_from(a, b) == proven_separation_m(a, b)


@parity(100)
@given(coords, coords)
def test_distance_bound_matches_python(
    selector: SelectorClient, a: tuple[int, int], b: tuple[int, int]
) -> None:
    assert selector.distance_lower_bound_m(a, b) == distance_lower_bound_m(a, b)


# ------------------------------------------------------------ hand-worked fixtures


def _m(i: int, facility: str, stake: int, **shared: str) -> Member:
    """A member whose domains are its facility's own unless ``shared`` names another value."""

    def value(d: Dimension) -> str:
        own = f"hw{i}" if d == Dimension.HARDWARE else facility
        return shared.get(d.name.lower(), own)

    return Member(
        ADDRESSES[i], stake, tuple(keccak(text=f"{d.name}:{value(d)}") for d in Dimension)
    )


def test_single_site_set(selector: SelectorClient) -> None:
    ms = [_m(i, "A", 10) for i in range(3)]
    s = compute_scores(ms)
    assert (s.of(Dimension.FACILITY).nakamoto, s.of(Dimension.FACILITY).tolerance, s.score) == (
        1,
        0,
        0,
    )
    assert s.of(Dimension.FACILITY).hhi_bps == 10_000
    assert classify(ms, ms, DiversityPolicy(10)) == ConfigurationClass.SINGLE_SITE
    assert selector.class_of(ms, ms, DiversityPolicy(10)) == ConfigurationClass.SINGLE_SITE


def test_active_passive_and_unprotected_sets(selector: SelectorClient) -> None:
    committee = [_m(0, "A", 60), _m(1, "B", 20), _m(2, "C", 20)]
    standby = [_m(3, "D", 15), _m(4, "E", 15)]
    policy = DiversityPolicy(3)
    assert select_committee(committee + standby, policy).members == tuple(committee)
    assert compute_scores(committee).of(Dimension.FACILITY).tolerance == 0
    assert classify(committee, committee + standby, policy) == ConfigurationClass.ACTIVE_PASSIVE
    assert (
        selector.class_of(committee, committee + standby, policy)
        == ConfigurationClass.ACTIVE_PASSIVE
    )
    strict = DiversityPolicy(
        3,
        rules=tuple(
            DimensionRule(min_distinct=3) if d == Dimension.FACILITY else DimensionRule()
            for d in Dimension
        ),
    )
    assert classify(committee, committee, strict) == ConfigurationClass.UNPROTECTED
    assert selector.class_of(committee, committee, strict) == ConfigurationClass.UNPROTECTED


def test_active_active_set(selector: SelectorClient) -> None:
    ms = [_m(i, f, 25) for i, f in enumerate("ABCD")]
    s = compute_scores(ms)
    assert (s.of(Dimension.FACILITY).nakamoto, s.of(Dimension.FACILITY).tolerance) == (2, 1)
    assert s.of(Dimension.FACILITY).hhi_bps == 2_500
    assert classify(ms, ms, DiversityPolicy(4)) == ConfigurationClass.ACTIVE_ACTIVE
    assert selector.scores_of(ms) == s


def test_power_grid_is_the_weakest_dimension(selector: SelectorClient) -> None:
    ms = [
        _m(0, "A", 25, power="P1"),
        _m(1, "B", 25, power="P1"),
        _m(2, "C", 25, power="P2"),
        _m(3, "D", 25, power="P2"),
    ]
    s = compute_scores(ms)
    assert (s.score, s.weakest) == (0, Dimension.POWER)
    power = s.of(Dimension.POWER)
    assert (
        power.nakamoto,
        power.tolerance,
        power.hhi_bps,
        power.largest_share_bps,
        power.domain_count,
    ) == (1, 0, 5_000, 5_000, 2)
    assert power.largest_domain == min(keccak(text="POWER:P1"), keccak(text="POWER:P2"))
    assert s.of(Dimension.FACILITY).tolerance == 1
    assert selector.scores_of(ms) == s


def test_policy_failure_names_the_dimension(selector: SelectorClient) -> None:
    ms = [_m(0, "A", 25, power="P1"), _m(1, "B", 25, power="P1"), _m(2, "C", 25, power="P1")]
    needs_two_grids = DiversityPolicy(
        5,
        rules=tuple(
            DimensionRule(min_distinct=2) if d == Dimension.POWER else DimensionRule()
            for d in Dimension
        ),
    )
    sel = select_committee(ms, needs_two_grids)
    assert (sel.failure, sel.dimension) == (Failure.DISTINCT, Dimension.POWER)
    assert sel.describe() == "policy not met in power: too few distinct domains"
    assert selector.select_from(ms, needs_two_grids).failure == Failure.DISTINCT
    tolerant = DiversityPolicy(5, min_tolerance=1)
    assert select_committee(ms, tolerant).failure == Failure.TOLERANCE


# ------------------------------------------------------------ the geography flag rule

#: landmarks (Amsterdam, Dallas, Tokyo) and sites whose claims range over three continents
FLAG_LANDMARKS = [
    FacilitySpec(f"plm{i}", f"lg{i}", f"lm{i}", "xx", lat, lon, f"las{i}", "p")
    for i, (lat, lon) in enumerate(
        [(52_367_573, 4_904_139), (32_776_664, -96_796_988), (35_689_487, 139_691_706)]
    )
]
FLAG_SITES = [
    FacilitySpec(f"pst{i}", f"g{i}", f"m{i}", "xx", lat, lon, f"as{i}", "p")
    for i, (lat, lon) in enumerate(
        [
            (50_110_922, 8_682_127),  # Frankfurt
            (51_507_351, -127_758),  # London
            (40_712_776, -74_005_974),  # New York
            (-33_868_820, 151_209_296),  # Sydney
            (1_352_083, 103_819_836),  # Singapore
        ]
    )
]
FLAG_POLICY = GeographyPolicy(tolerance_m=20_000)


@pytest.fixture
def flag_world(
    w3: Web3, registry: RegistryClient, owner: LocalAccount
) -> tuple[World, SelectorClient]:
    world = build(w3, registry, owner, FLAG_LANDMARKS + FLAG_SITES)
    sel, _ = SelectorClient.deploy(w3, owner, registry.address, DiversityPolicy(1), FLAG_POLICY)
    for lm in FLAG_LANDMARKS:
        sel.set_landmark(lm.facility_id, lm.latitude_e6, lm.longitude_e6, owner)
    return world, sel


rtts = st.sampled_from([100, 1_000, 5_000, 20_000, 60_000, 120_000])


@parity(8)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 2), rtts, st.booleans()),
        max_size=4,
        unique_by=lambda t: t[:2],
    ),
    st.sampled_from([(a, b) for a in range(5) for b in range(5) if a != b]),
    st.sampled_from([100, 1_000, 5_000, 20_000]),
)
def test_pair_flag_rule_matches_python(
    w3: Web3,
    flag_world: tuple[World, SelectorClient],
    relayer: LocalAccount,
    landmark_rtts: list[tuple[int, int, int, bool]],
    pair: tuple[int, int],
    pair_rtt: int,
) -> None:
    """Sites of the pair measure landmarks (which gives them discs, and may flag them), then
    each other, then maybe more landmarks; the sites the contradiction flags and the flags anyone
    can then clear are the Python reference's (``pair_flags``, ``clearing_landmark``)."""
    world, sel = flag_world
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    measured = dict(world.measured)
    try:
        a, b = FLAG_SITES[pair[0]], FLAG_SITES[pair[1]]
        ds = world.registry.domain_separator()

        def landmarks(after: bool) -> None:
            for side, lm, rtt, later in landmark_rtts:
                if later == after:
                    for m, sig in world.round_trip((a, b)[side], FLAG_LANDMARKS[lm], rtt):
                        sel.report_latency_and_flag(ds, m, sig, sender=relayer)

        landmarks(after=False)
        positions = {lm.facility_id: (lm.latitude_e6, lm.longitude_e6) for lm in FLAG_LANDMARKS}

        def claim(s: FacilitySpec) -> tuple[int, int]:
            return s.latitude_e6, s.longitude_e6

        def discs(s: FacilitySpec) -> list[Disc]:
            return [
                Disc(d.landmark_id, positions[d.landmark_id], d.radius_m)
                for d in sel.discs_of(s.facility_id)
            ]

        def standing(s: FacilitySpec, peer: FacilitySpec) -> bool:
            """_flag keeps a record raised by other evidence while it holds."""
            f = sel.geography_flag(s.facility_id)
            return f is not None and f.against != peer.facility_id and f.holds

        expected = pair_flags(
            claim(a), claim(b), discs(a), discs(b), pair_rtt, FLAG_POLICY.tolerance_m
        )
        kept = (standing(a, b), standing(b, a))
        refuted = [
            own_discs(claim(s), claim(p), discs(s), pair_rtt, FLAG_POLICY.tolerance_m)[0]
            is not None
            for s, p in ((a, b), (b, a))
        ]
        event(f"flags {expected}, refuted {refuted}")  # --hypothesis-show-statistics
        flagged = set()
        for m, sig in world.round_trip(a, b, pair_rtt):
            for receipt in sel.report_latency_and_flag(ds, m, sig, sender=relayer):
                flagged |= {
                    bytes(e["facilityId"]) for e in sel.events_in(receipt, "GeographyFlagged")
                }
        assert flagged == {
            s.facility_id
            for s, flag, keep in zip((a, b), expected, kept, strict=True)
            if flag and not keep
        }
        landmarks(after=True)  # discs that come after a flag may clear it
        for s, peer in ((a, b), (b, a)):
            record = sel.geography_flag(s.facility_id)
            if record is None or record.against != peer.facility_id:
                continue
            want = clearing_landmark(
                claim(s),
                claim(peer),
                discs(s),
                discs(peer),
                record.rtt_micros,
                FLAG_POLICY.tolerance_m,
            )
            if want is None:
                with pytest.raises(ContractRevertError) as caught:
                    sel.clear_geography_flag(s.facility_id, sender=relayer)
                assert caught.value.error_name == "SelectorNotExonerated"
            else:
                receipt = sel.clear_geography_flag(s.facility_id, sender=relayer)
                event("a flag cleared")
                [cleared] = sel.events_in(receipt, "GeographyFlagCleared")
                assert bytes(cleared["by"]) == want
    finally:
        w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
        world.measured.clear()
        world.measured.update(measured)
