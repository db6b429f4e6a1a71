"""Geography proven with physics: two-sided signed RTT measurements, anchored to recent blocks,
against claimed coordinates and landmark discs; the flag lifecycle; proven separation and the
latency budget in selection."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.world import FacilitySpec, ValidatorSpec, World, build
from redundancy.chain import deploy_contract
from redundancy.domains import Dimension, Kind
from redundancy.eip712 import Signature, Signer
from redundancy.errors import ContractRevertError
from redundancy.events import contract_events
from redundancy.geodesy import distance_lower_bound_m
from redundancy.proofs import LatencyMeasurement, registry_domain_separator
from redundancy.rebuild import rebuild
from redundancy.registry import RegistryClient
from redundancy.selection import DimensionRule, DiversityPolicy, Failure, select_committee
from redundancy.selector import (
    GEOGRAPHY_CONTRACT,
    OUTCOME_CONSISTENT,
    OUTCOME_CONTRADICTED,
    OUTCOME_RECORDED,
    GeographyPolicy,
    SelectorClient,
)
from tests.integration.conftest import advance_time, now

FRA = FacilitySpec("fra9", "amprion", "frankfurt", "de", 50_110_922, 8_682_127, "as3320", "equinix")
AMS = FacilitySpec("ams9", "tennet", "amsterdam", "nl", 52_367_573, 4_904_139, "as1136", "dr")
DAL = FacilitySpec("dal9", "ercot", "dallas", "us", 32_776_664, -96_796_988, "as7018", "cyrusone")
#: claims Sydney, is next to Frankfurt (its RTTs say so)
LIAR = FacilitySpec("syd9", "ausgrid", "sydney", "au", -33_868_820, 151_209_296, "as1221", "nextdc")
#: claims Frankfurt, is next to Dallas (the issue's dishonest site)
FAKE = FacilitySpec("fra8", "amprion", "frankfurt", "de", 50_110_000, 8_682_000, "as3320", "ntt")
SYD = (-33_868_820, 151_209_296)
ETH = 10**18
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
POLICY = GeographyPolicy(tolerance_m=20_000)


@pytest.fixture
def world(w3: Web3, registry: RegistryClient, owner: LocalAccount) -> World:
    return build(
        w3,
        registry,
        owner,
        [FRA, AMS],
        [ValidatorSpec("vf", "fra9", ETH), ValidatorSpec("va", "ams9", ETH)],
    )


@pytest.fixture
def selector(w3: Web3, owner: LocalAccount, registry: RegistryClient) -> Iterator[SelectorClient]:
    client, _ = SelectorClient.deploy(w3, owner, registry.address, DiversityPolicy(5), POLICY)
    yield client


def report(
    world: World,
    selector: SelectorClient,
    m: LatencyMeasurement,
    sig: Signature,
    sender: LocalAccount,
) -> Any:
    return selector.report_latency(world.registry.domain_separator(), m, sig, sender=sender)


def exchange(
    world: World,
    selector: SelectorClient,
    a: FacilitySpec,
    b: FacilitySpec,
    rtt_us: int,
    sender: LocalAccount,
    rtt_back_us: int | None = None,
) -> list[Any]:
    """Both ends of one exchange report what they measured, then the relayer flags what the
    reports announced as contradicted (as the devnet's relayer does): the two reports' receipts,
    then any flagContradiction's."""
    reports = [
        report(world, selector, m, sig, sender)
        for m, sig in world.round_trip(a, b, rtt_us, rtt_back_us)
    ]
    flags = []
    for x, y in [pair for r in reports for pair in selector.contradictions_in(r)]:
        try:
            flags.append(selector.flag_contradiction(x, y, sender=sender))
        except ContractRevertError as exc:
            assert exc.error_name == "SelectorAlreadyFlagged", exc
    return reports + flags


def stamp(selector: SelectorClient, receipt: Any) -> int:
    """The timestamp of the block a receipt's transaction is in."""
    return int(selector.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


def flag_events(selector: SelectorClient, receipts: list[Any]) -> list[dict[str, Any]]:
    """Every GeographyFlagged event in the receipts, in order."""
    return [e for r in receipts for e in selector.events_in(r, "GeographyFlagged")]


def outcome(selector: SelectorClient, receipt: Any) -> int:
    """reportLatency's return value, read from the call it made (replayed at its block)."""
    tx = selector.w3.eth.get_transaction(receipt["transactionHash"])
    raw = selector.w3.eth.call(
        {"to": tx["to"], "from": tx["from"], "data": tx["input"]},
        receipt["blockNumber"] - 1,
    )
    return int.from_bytes(raw, "big")


def refused(
    world: World,
    selector: SelectorClient,
    m: LatencyMeasurement,
    sig: Signature,
    sender: LocalAccount,
    ds: bytes | None = None,
) -> ContractRevertError:
    with pytest.raises(ContractRevertError) as caught:
        selector.report_latency(ds or world.registry.domain_separator(), m, sig, sender=sender)
    return caught.value


def signed(world: World, spec: FacilitySpec, m: LatencyMeasurement) -> Signature:
    return spec.signer().sign(world.registry.domain_separator(), m)


def add(world: World, owner: LocalAccount, *specs: FacilitySpec) -> None:
    """Register and fully attest more facilities in the world."""
    for spec in specs:
        world.enrol(spec, owner)
    world.submit([p for spec in specs for p in world.facility_proofs(spec)], owner)


def moved(world: World, spec: FacilitySpec, owner: LocalAccount, to: tuple[int, int]) -> None:
    world.submit(world.facility_proofs(spec, [Kind.GEOGRAPHY], coordinates=to), owner)


# ------------------------------------------------------------------ two-sided measurements


def test_one_end_is_recorded_and_the_pair_is_checked_once_both_ends_report(
    world: World, selector: SelectorClient, relayer: LocalAccount
) -> None:
    (m1, s1), (m2, s2) = world.round_trip(FRA, AMS, 5_000, 5_200)  # 363 km; 5 ms allows 500
    first = report(world, selector, m1, s1, relayer)
    assert selector.events_in(first, "LatencyReported") == [
        {
            "facilityId": FRA.facility_id,
            "peerFacilityId": AMS.facility_id,
            "rttMicros": 5_000,
            "measuredAt": m1.measured_at,
            "exchangeId": m1.exchange_id,
        }
    ]
    assert outcome(selector, first) == OUTCOME_RECORDED
    assert selector.pair_rtt(FRA.facility_id, AMS.facility_id) is None  # one side proves nothing
    second = report(world, selector, m2, s2, relayer)
    assert outcome(selector, second) == OUTCOME_CONSISTENT
    assert m1.exchange_id == m2.exchange_id
    assert selector.pair_rtt(AMS.facility_id, FRA.facility_id) == 5_200  # the larger
    link = selector.latency_link(AMS.facility_id, FRA.facility_id)
    assert (link.rtt_ab, link.rtt_ba) == (5_200, 5_000)
    assert selector.events_in(second, "GeographyFlagged") == []


def test_a_lying_end_cannot_get_an_honest_peer_flagged(
    world: World, selector: SelectorClient, relayer: LocalAccount
) -> None:
    """Regression: the challenger alone used to report, so claiming 2 ms (less than the 363 km
    between their claims allows) flagged both. The honest end's 5 ms bounds the pair now."""
    receipts = exchange(world, selector, FRA, AMS, 2_000, relayer, rtt_back_us=5_000)
    assert [selector.events_in(r, "GeographyFlagged") for r in receipts] == [[], []]
    assert not selector.is_geography_flagged(AMS.facility_id)
    assert not selector.is_geography_flagged(FRA.facility_id)
    assert len(selector.eligible_candidates()) == 2


def test_contradiction_both_ends_measured_flags_both_and_makes_them_ineligible(
    world: World, selector: SelectorClient, relayer: LocalAccount
) -> None:
    assert len(selector.eligible_candidates()) == 2
    receipts = exchange(world, selector, FRA, AMS, 2_000, relayer, rtt_back_us=1_900)
    lower = distance_lower_bound_m(
        (FRA.latitude_e6, FRA.longitude_e6), (AMS.latitude_e6, AMS.longitude_e6)
    )
    assert outcome(selector, receipts[1]) == OUTCOME_CONTRADICTED
    assert flag_events(selector, receipts) == [
        {
            "facilityId": AMS.facility_id,
            "against": FRA.facility_id,
            "rttMicros": 2_000,
            "distanceLowerBoundM": lower,
            "raisedAt": stamp(selector, receipts[-1]),
        },
        {
            "facilityId": FRA.facility_id,
            "against": AMS.facility_id,
            "rttMicros": 2_000,
            "distanceLowerBoundM": lower,
            "raisedAt": stamp(selector, receipts[-1]),
        },
    ]
    assert selector.is_geography_flagged(FRA.facility_id)
    assert selector.is_geography_flagged(AMS.facility_id)
    assert selector.eligible_candidates() == []


def test_a_report_announces_a_contradiction_and_flag_contradiction_records_it_once(
    world: World, selector: SelectorClient, relayer: LocalAccount, outsider: LocalAccount
) -> None:
    """The report that completes a contradicted pair flags nothing (its relayer pays the same
    bounded gas whatever the peer claims); it says so, and anyone may then record the flags,
    once. Nothing else can be flagged through it: a consistent pair, a pair measured one way."""
    lower = distance_lower_bound_m(
        (FRA.latitude_e6, FRA.longitude_e6), (AMS.latitude_e6, AMS.longitude_e6)
    )
    err = _refused_call(
        lambda: selector.flag_contradiction(FRA.facility_id, AMS.facility_id, sender=outsider)
    )
    assert (err.error_name, err.args_by_name) == (
        "SelectorPairNotMeasured",
        {"a": FRA.facility_id, "b": AMS.facility_id},
    )
    (m1, s1), (m2, s2) = world.round_trip(FRA, AMS, 2_000, 1_900)
    report(world, selector, m1, s1, relayer)
    second = report(world, selector, m2, s2, relayer)
    assert outcome(selector, second) == OUTCOME_CONTRADICTED
    lo, hi = sorted([FRA.facility_id, AMS.facility_id])
    assert selector.events_in(second, "GeographyContradicted") == [
        {"facilityId": lo, "peerFacilityId": hi, "rttMicros": 2_000, "distanceLowerBoundM": lower}
    ]
    assert selector.events_in(second, "GeographyFlagged") == []
    assert not selector.is_geography_flagged(FRA.facility_id)
    assert len(selector.eligible_candidates()) == 2
    receipt = selector.flag_contradiction(hi, lo, sender=outsider)  # either order, anyone
    assert sorted(e["facilityId"] for e in selector.events_in(receipt, "GeographyFlagged")) == [
        lo,
        hi,
    ]
    assert selector.eligible_candidates() == []
    err = _refused_call(lambda: selector.flag_contradiction(lo, hi, sender=outsider))
    assert (err.error_name, err.args_by_name) == ("SelectorAlreadyFlagged", {"a": lo, "b": hi})
    err = _refused_call(lambda: selector.flag_contradiction(lo, lo, sender=outsider))
    assert (err.error_name, err.args_by_name) == ("SelectorSameFacility", {"facilityId": lo})
    exchange(world, selector, FRA, AMS, 5_000, relayer)  # consistent: clears both flags
    assert selector.eligible_candidates() != []
    err = _refused_call(
        lambda: selector.flag_contradiction(FRA.facility_id, AMS.facility_id, sender=outsider)
    )
    assert (err.error_name, err.args_by_name) == (
        "SelectorNoContradiction",
        {
            "a": FRA.facility_id,
            "b": AMS.facility_id,
            "rttMicros": 5_000,
            "distanceLowerBoundM": lower,
        },
    )
    assert not selector.is_geography_flagged(FRA.facility_id)
    assert not selector.is_geography_flagged(AMS.facility_id)


# ------------------------------------------------------------------------ replay, freshness


def test_a_relayed_measurement_cannot_be_replayed_nor_an_older_one_follow_a_newer(
    world: World, selector: SelectorClient, relayer: LocalAccount, outsider: LocalAccount
) -> None:
    """Regression: anyone could relay an old signed measurement again for up to 7 days."""
    old = world.latency(FRA, AMS, 5_000)
    new = world.latency(FRA, AMS, 5_100)
    report(world, selector, *new, relayer)
    err = refused(world, selector, *new, outsider)
    assert (err.error_name, err.args_by_name) == (
        "SelectorMeasurementReplayed",
        {
            "facilityId": FRA.facility_id,
            "peerFacilityId": AMS.facility_id,
            "measuredAt": new[0].measured_at,
            "lastMeasuredAt": new[0].measured_at,
        },
    )
    err = refused(world, selector, *old, outsider)
    assert err.error_name == "SelectorMeasurementReplayed"
    assert err.args_by_name["measuredAt"] == old[0].measured_at
    assert err.args_by_name["lastMeasuredAt"] == new[0].measured_at
    assert selector.latency_link(FRA.facility_id, AMS.facility_id).rtt_ab == 5_100


def test_a_measurement_anchored_to_an_old_or_unknown_block_is_refused(
    w3: Web3, world: World, selector: SelectorClient, relayer: LocalAccount
) -> None:
    m, _ = world.latency(FRA, AMS, 5_000)
    w3.provider.make_request("anvil_mine", [hex(300)])  # type: ignore[arg-type]
    err = refused(world, selector, m, signed(world, FRA, m), relayer)
    head = int(w3.eth.block_number)
    assert (err.error_name, err.args_by_name) == (
        "SelectorStaleAnchor",
        {"anchorBlock": m.anchor_block, "blockNumber": head, "maxAnchorAgeBlocks": 256},
    )
    fresh, _ = world.latency(FRA, AMS, 5_000)
    forged = dataclasses.replace(fresh, anchor_hash=bytes(31) + b"\x01")
    err = refused(world, selector, forged, signed(world, FRA, forged), relayer)
    assert (err.error_name, err.args_by_name) == (
        "SelectorAnchorMismatch",
        {
            "anchorBlock": fresh.anchor_block,
            "blockHash": fresh.anchor_hash,
            "anchorHash": forged.anchor_hash,
        },
    )
    future = dataclasses.replace(fresh, anchor_block=head + 5)
    err = refused(world, selector, future, signed(world, FRA, future), relayer)
    assert err.error_name == "SelectorStaleAnchor"
    assert err.args_by_name["anchorBlock"] == head + 5


@pytest.mark.parametrize("rtt", [0, 1, 9, 1_000_001, 2**32 - 1])
def test_implausible_rtts_are_refused(
    world: World, selector: SelectorClient, relayer: LocalAccount, rtt: int
) -> None:
    """Regression: 0, 1 and 2^32 - 1 us were accepted."""
    m, sig = world.latency(FRA, AMS, rtt)
    err = refused(world, selector, m, sig, relayer)
    assert (err.error_name, err.args_by_name) == (
        "SelectorRttOutOfRange",
        {"rttMicros": rtt, "minRttMicros": 10, "maxRttMicros": 1_000_000},
    )


def test_a_deactivated_facility_cannot_report(
    world: World, selector: SelectorClient, relayer: LocalAccount, owner: LocalAccount
) -> None:
    """Regression: a deactivated facility's attestor could still report latency."""
    world.registry.deactivate_facility(FRA.facility_id, sender=owner)
    err = refused(world, selector, *world.latency(FRA, AMS, 5_000), relayer)
    assert (err.error_name, err.args_by_name) == (
        "SelectorFacilityInactive",
        {"facilityId": FRA.facility_id},
    )
    report(world, selector, *world.latency(AMS, FRA, 5_000), relayer)  # its peer still may


def test_measurement_rejections(
    world: World, selector: SelectorClient, relayer: LocalAccount, outsider: LocalAccount
) -> None:
    m, _ = world.latency(FRA, AMS, 2_000)
    err = refused(world, selector, m, Signer(bytes(outsider.key)).sign(DS(world), m), relayer)
    assert (err.error_name, err.args_by_name["signer"]) == (
        "SelectorSignerNotAttestor",
        outsider.address.lower(),
    )
    old = dataclasses.replace(m, measured_at=world.now() - 86_400 - 10)
    err = refused(world, selector, old, signed(world, FRA, old), relayer)
    assert (err.error_name, err.args_by_name["maxMeasurementAge"]) == (
        "SelectorStaleMeasurement",
        86_400,
    )
    same = world.latency(FRA, FRA, 2_000)
    assert refused(world, selector, *same, relayer).error_name == "SelectorSameFacility"
    foreign = registry_domain_separator(1, world.registry.address)
    err = refused(world, selector, *world.latency(FRA, AMS, 2_000), relayer, ds=foreign)
    assert (err.error_name, err.args_by_name["given"]) == ("SelectorWrongDomain", foreign)
    ghost = FacilitySpec("ghost", "", "", "", 0, 0, "", "")
    err = refused(world, selector, *world.latency(FRA, ghost, 2_000), relayer)
    assert (err.error_name, err.args_by_name) == (
        "SelectorUnknownFacility",
        {"facilityId": ghost.facility_id},
    )
    assert not selector.is_geography_flagged(FRA.facility_id)


def DS(world: World) -> bytes:
    return world.registry.domain_separator()


def test_malformed_measurement_signatures_are_refused(
    world: World, selector: SelectorClient, relayer: LocalAccount
) -> None:
    """A high s (above n / 2, still below the parity bit of the compact form), an unrecoverable
    r, and the malleable twin (r, n - s, flipped parity), whose s needs the top bit the compact
    form keeps for the parity: it recovers someone else."""
    m, sig = world.latency(FRA, AMS, 2_000)
    high_s = (ORDER // 2 + 1).to_bytes(32, "big")
    for bad in (Signature(27, sig.r, high_s), Signature(27, bytes(32), sig.s)):
        err = refused(world, selector, m, bad, relayer)
        assert (err.error_name, err.args_by_name) == ("SelectorInvalidSignature", {})
    twin = Signature(55 - sig.v, sig.r, (ORDER - int.from_bytes(sig.s, "big")).to_bytes(32, "big"))
    err = refused(world, selector, m, twin, relayer)
    assert err.error_name in ("SelectorInvalidSignature", "SelectorSignerNotAttestor")
    assert err.args_by_name.get("signer") != FRA.signer().address.lower()
    report(world, selector, m, sig, relayer)  # the well-formed original is accepted


def test_facility_without_geography_proof_cannot_be_checked(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    selector: SelectorClient,
    relayer: LocalAccount,
) -> None:
    world = build(w3, registry, owner, [FRA])
    registry.register_facility(AMS.facility_id, AMS.signer().address, sender=owner)
    world.facilities[AMS.name] = AMS
    err = refused(world, selector, *world.latency(FRA, AMS, 2_000), relayer)
    assert (err.error_name, err.args_by_name) == (
        "SelectorNoCoordinates",
        {"facilityId": AMS.facility_id},
    )


# ------------------------------------------------------------------ landmarks and discs


def test_a_landmark_pair_proves_a_disc_and_a_claim_outside_it_is_flagged(
    world: World,
    selector: SelectorClient,
    relayer: LocalAccount,
    owner: LocalAccount,
) -> None:
    """The issue's dishonest site: it claims Frankfurt, its RTT to a Dallas landmark places it
    within 100 km of Dallas."""
    add(world, owner, DAL, FAKE)
    receipt = selector.set_landmark(DAL.facility_id, DAL.latitude_e6, DAL.longitude_e6, owner)
    assert selector.events_in(receipt, "LandmarkSet") == [
        {
            "facilityId": DAL.facility_id,
            "index": 1,
            "latitudeE6": DAL.latitude_e6,
            "longitudeE6": DAL.longitude_e6,
            "setAt": selector.w3.eth.get_block(receipt["blockNumber"])["timestamp"],
        }
    ]
    receipts = exchange(world, selector, FAKE, DAL, 1_000, relayer, rtt_back_us=900)
    discs = selector.events_in(receipts[1], "LandmarkDisc")
    assert [(d["facilityId"], d["landmarkId"], d["rttMicros"]) for d in discs] == [
        (FAKE.facility_id, DAL.facility_id, 1_000)
    ]
    assert flag_events(selector, receipts) == [
        {
            "facilityId": FAKE.facility_id,
            "against": DAL.facility_id,
            "rttMicros": 1_000,
            "distanceLowerBoundM": distance_lower_bound_m(
                (FAKE.latitude_e6, FAKE.longitude_e6), (DAL.latitude_e6, DAL.longitude_e6)
            ),
            "raisedAt": stamp(selector, receipts[-1]),
        }
    ]
    assert selector.is_geography_flagged(FAKE.facility_id)
    assert not selector.is_geography_flagged(DAL.facility_id)  # landmarks are facts
    [disc] = selector.discs_of(FAKE.facility_id)
    assert (disc.landmark_id, disc.radius_m) == (DAL.facility_id, 100_000)
    [own] = selector.discs_of(DAL.facility_id)
    assert (own.landmark_id, own.radius_m) == (DAL.facility_id, 0)
    err = _refused_call(lambda: selector.clear_geography_flag(FAKE.facility_id, sender=relayer))
    assert (err.error_name, err.args_by_name) == (
        "SelectorFlagByLandmark",
        {"facilityId": FAKE.facility_id, "landmarkId": DAL.facility_id},
    )
    # moving the claim a micro-degree does not clear it; a consistent claim does
    moved(world, FAKE, owner, (FAKE.latitude_e6 + 1, FAKE.longitude_e6))
    assert selector.is_geography_flagged(FAKE.facility_id)
    moved(world, FAKE, owner, (DAL.latitude_e6 + 200_000, DAL.longitude_e6))
    assert not selector.is_geography_flagged(FAKE.facility_id)


def test_discs_prove_separation(
    world: World, selector: SelectorClient, relayer: LocalAccount, owner: LocalAccount
) -> None:
    add(world, owner, DAL)
    selector.set_landmark(AMS.facility_id, AMS.latitude_e6, AMS.longitude_e6, owner)
    selector.set_landmark(DAL.facility_id, DAL.latitude_e6, DAL.longitude_e6, owner)
    assert selector.proven_separation_m(FRA.facility_id, DAL.facility_id) == 0  # no disc yet
    exchange(world, selector, FRA, AMS, 5_000, relayer)  # within 500 km of Amsterdam
    ams_dal = distance_lower_bound_m(
        (AMS.latitude_e6, AMS.longitude_e6), (DAL.latitude_e6, DAL.longitude_e6)
    )
    assert selector.proven_separation_m(FRA.facility_id, DAL.facility_id) == ams_dal - 500_000
    assert selector.proven_separation_m(AMS.facility_id, DAL.facility_id) == ams_dal
    assert selector.proven_separation_m(FRA.facility_id, AMS.facility_id) == 0
    receipt = selector.remove_landmark(DAL.facility_id, owner)
    assert selector.events_in(receipt, "LandmarkRemoved") == [{"facilityId": DAL.facility_id}]
    assert selector.proven_separation_m(FRA.facility_id, DAL.facility_id) == 0
    assert selector.landmark(DAL.facility_id) is None
    err = _refused_call(lambda: selector.remove_landmark(DAL.facility_id, owner))
    assert (err.error_name, err.args_by_name) == (
        "SelectorNotLandmark",
        {"facilityId": DAL.facility_id},
    )


def test_at_most_eight_landmarks(
    selector: SelectorClient, registry: RegistryClient, owner: LocalAccount
) -> None:
    for i in range(9):
        spec = FacilitySpec(f"lm{i}", "", "", "", 0, 0, "", "")
        registry.register_facility(spec.facility_id, spec.signer().address, sender=owner)
        if i < 8:
            selector.set_landmark(spec.facility_id, i * 1_000_000, 0, owner)
    err = _refused_call(lambda: selector.set_landmark(spec.facility_id, 0, 0, owner))
    assert (err.error_name, err.args_by_name) == ("SelectorTooManyLandmarks", {"maxLandmarks": 8})
    # a landmark that is moved keeps its slot
    first = FacilitySpec("lm0", "", "", "", 0, 0, "", "")
    receipt = selector.set_landmark(first.facility_id, 1, 1, owner)
    assert selector.events_in(receipt, "LandmarkSet")[0]["index"] == 1


def test_a_disc_is_the_pairs_fresh_bound_and_costs_no_storage_of_its_own(
    w3: Web3, world: World, selector: SelectorClient, relayer: LocalAccount, owner: LocalAccount
) -> None:
    """The report that proves a site's first disc around a landmark writes only the pair's word,
    as a consistent site pair does (no per-facility copy: no storage created); the disc counts
    while both directions are fresh and is gone when one is not. A landmark has its own disc of
    radius 0 and no other, even measured with another landmark. A pair measured before its far
    end became a landmark proves no disc: the landmark may not have stood there then."""
    add(world, owner, DAL)
    selector.set_landmark(DAL.facility_id, DAL.latitude_e6, DAL.longitude_e6, owner)
    assert selector.discs_of(FRA.facility_id) == []
    assert selector.proven_separation_m(FRA.facility_id, DAL.facility_id) == 0
    sites = exchange(world, selector, FRA, AMS, 5_000, relayer)
    receipts = exchange(world, selector, FRA, DAL, 100_000, relayer)
    assert [outcome(selector, r) for r in receipts] == [OUTCOME_RECORDED, OUTCOME_CONSISTENT]
    # the same storage writes as the consistent site pair: its LandmarkDisc event is the difference
    assert abs(receipts[1]["gasUsed"] - sites[1]["gasUsed"]) < 2_500, (receipts, sites)
    [event] = selector.events_in(receipts[1], "LandmarkDisc")
    link = selector.latency_link(FRA.facility_id, DAL.facility_id)
    until = min(link.measured_at_ab, link.measured_at_ba) + POLICY.max_measurement_age
    assert (event["rttMicros"], event["validUntil"]) == (100_000, until)
    [disc] = selector.discs_of(FRA.facility_id)
    assert (disc.landmark_id, disc.rtt_micros, disc.valid_until, disc.radius_m) == (
        DAL.facility_id,
        100_000,
        until,
        10_000_000,
    )
    advance_time(w3, 1)  # times are whole seconds: a report of the same second counts as since
    selector.set_landmark(AMS.facility_id, AMS.latitude_e6, AMS.longitude_e6, owner)
    exchange(world, selector, AMS, DAL, 100_000, relayer)
    assert [(d.landmark_id, d.radius_m) for d in selector.discs_of(AMS.facility_id)] == [
        (AMS.facility_id, 0)
    ]
    # Frankfurt's fresh pair with Amsterdam was measured before Amsterdam's position was fixed:
    # it proves no disc (nor a flag) until both ends measure again
    assert [d.landmark_id for d in selector.discs_of(FRA.facility_id)] == [DAL.facility_id]
    err = _refused_call(
        lambda: selector.flag_contradiction(FRA.facility_id, AMS.facility_id, sender=relayer)
    )
    assert err.error_name == "SelectorPairNotMeasured", err
    advance_time(w3, 10)  # so that the Dallas pair goes stale well before this one
    later = exchange(world, selector, FRA, AMS, 5_000, relayer)
    assert [outcome(selector, r) for r in later] == [OUTCOME_RECORDED, OUTCOME_CONSISTENT]
    assert [(d.landmark_id, d.rtt_micros) for d in selector.discs_of(FRA.facility_id)] == [
        (DAL.facility_id, 100_000),
        (AMS.facility_id, 5_000),
    ]
    advance_time(w3, until - now(w3) + 1)  # the Dallas pair goes stale, the later one does not
    assert [d.landmark_id for d in selector.discs_of(FRA.facility_id)] == [AMS.facility_id]
    assert selector.pair_rtt(FRA.facility_id, DAL.facility_id) is None


# ------------------------------------------------------------------------ flag lifecycle


def test_a_landmarks_flag_from_before_its_position_was_fixed_holds_until_answered(
    w3: Web3, world: World, selector: SelectorClient, relayer: LocalAccount, owner: LocalAccount
) -> None:
    """Review: a flag a landmark raised was weighed against the landmark's position *now*. The
    owner fixing the landmark somewhere else (here next to the liar's claim) quietly ended the
    flag on a round trip measured where the landmark no longer stands. Now such a flag holds
    until a fresh measurement with the landmark answers it; the events-only rebuild agrees."""
    add(world, owner, DAL, FAKE)
    selector.set_landmark(DAL.facility_id, DAL.latitude_e6, DAL.longitude_e6, owner)
    exchange(world, selector, FAKE, DAL, 1_000, relayer)  # within 100 km of Dallas
    assert selector.is_geography_flagged(FAKE.facility_id)

    def rebuilt_flagged() -> bool:
        head = int(w3.eth.block_number)
        state = rebuild(contract_events([world.registry, selector], 0, head))
        return state.flagged(FAKE.facility_id)

    assert rebuilt_flagged()
    advance_time(w3, 1)
    # the owner fixes the landmark in Frankfurt, 1 km from the liar's claim
    selector.set_landmark(DAL.facility_id, FRA.latitude_e6, FRA.longitude_e6, owner)
    assert selector.is_geography_flagged(FAKE.facility_id)
    assert rebuilt_flagged()
    exchange(world, selector, FAKE, DAL, 1_000, relayer)  # consistent with where it stands now
    assert not selector.is_geography_flagged(FAKE.facility_id)
    assert not rebuilt_flagged()


def test_an_honest_site_flagged_by_a_liar_recovers_with_its_landmark_disc(
    world: World, selector: SelectorClient, relayer: LocalAccount, owner: LocalAccount
) -> None:
    """The liar claims Sydney while its RTTs place it next to Frankfurt: the pair contradicts,
    so both are flagged. Frankfurt's own disc around the Amsterdam landmark proves the liar's
    claim false, and clears Frankfurt's flag without Frankfurt changing its coordinates; the
    liar can neither clear its flag that way nor by moving one micro-degree."""
    add(world, owner, LIAR)
    exchange(world, selector, FRA, LIAR, 1_000, relayer)
    assert selector.is_geography_flagged(FRA.facility_id)
    assert selector.is_geography_flagged(LIAR.facility_id)
    err = _refused_call(lambda: selector.clear_geography_flag(FRA.facility_id, sender=relayer))
    assert (err.error_name, err.args_by_name) == (
        "SelectorNotExonerated",
        {"facilityId": FRA.facility_id, "against": LIAR.facility_id},
    )
    selector.set_landmark(AMS.facility_id, AMS.latitude_e6, AMS.longitude_e6, owner)
    exchange(world, selector, FRA, AMS, 5_000, relayer)
    receipt = selector.clear_geography_flag(FRA.facility_id, sender=relayer)
    assert selector.events_in(receipt, "GeographyFlagCleared") == [
        {"facilityId": FRA.facility_id, "against": LIAR.facility_id, "by": AMS.facility_id}
    ]
    assert not selector.is_geography_flagged(FRA.facility_id)
    assert selector.geography_flag(FRA.facility_id) is None
    err = _refused_call(lambda: selector.clear_geography_flag(LIAR.facility_id, sender=relayer))
    assert (err.error_name, err.args_by_name) == (
        "SelectorNotExonerated",
        {"facilityId": LIAR.facility_id, "against": FRA.facility_id},
    )
    moved(world, LIAR, owner, (SYD[0] + 1, SYD[1]))
    assert selector.is_geography_flagged(LIAR.facility_id)
    # with its disc fresh, a new exchange with the liar no longer flags Frankfurt at all; the
    # liar's flag stands as it was (same evidence, same bound: nothing new to record)
    receipts = exchange(world, selector, LIAR, FRA, 1_000, relayer)
    assert selector.contradictions_in(receipts[1]) != []
    assert flag_events(selector, receipts) == []
    assert not selector.is_geography_flagged(FRA.facility_id)
    flag = selector.geography_flag(LIAR.facility_id)
    assert flag is not None and (flag.against, flag.holds) == (FRA.facility_id, True)
    # a tighter bound from the same pair is new evidence: the liar's flag takes it
    receipts = exchange(world, selector, LIAR, FRA, 900, relayer)
    flagged = flag_events(selector, receipts)
    assert [(e["facilityId"], e["rttMicros"]) for e in flagged] == [(LIAR.facility_id, 900)]
    assert not selector.is_geography_flagged(FRA.facility_id)
    err = _refused_call(lambda: selector.clear_geography_flag(AMS.facility_id, sender=relayer))
    assert (err.error_name, err.args_by_name) == (
        "SelectorNotFlagged",
        {"facilityId": AMS.facility_id},
    )


def test_a_peer_whose_own_disc_refutes_its_claim_is_the_only_one_flagged(
    world: World, selector: SelectorClient, relayer: LocalAccount, owner: LocalAccount
) -> None:
    """The liar claims Sydney, and its own disc around the Amsterdam landmark already proves that
    false. A contradiction with Frankfurt (which has no disc at all, so nothing exonerates it) is
    then the liar's doing: only the liar is flagged."""
    add(world, owner, LIAR)
    selector.set_landmark(AMS.facility_id, AMS.latitude_e6, AMS.longitude_e6, owner)
    receipts = exchange(world, selector, LIAR, AMS, 5_000, relayer)  # within 500 km of Amsterdam
    assert [e["facilityId"] for e in flag_events(selector, receipts)] == [LIAR.facility_id]
    assert selector.discs_of(FRA.facility_id) == []
    receipts = exchange(world, selector, FRA, LIAR, 1_000, relayer)
    assert outcome(selector, receipts[1]) == OUTCOME_CONTRADICTED
    # the liar's landmark flag stands (the first contradiction holds until answered): no event
    assert flag_events(selector, receipts) == []
    err = _refused_call(
        lambda: selector.flag_contradiction(FRA.facility_id, LIAR.facility_id, sender=relayer)
    )
    assert (err.error_name, err.args_by_name) == (
        "SelectorAlreadyFlagged",
        {"a": FRA.facility_id, "b": LIAR.facility_id},
    )
    assert not selector.is_geography_flagged(FRA.facility_id)
    assert selector.geography_flag(FRA.facility_id) is None
    flag = selector.geography_flag(LIAR.facility_id)
    assert flag is not None and (flag.against, flag.holds) == (AMS.facility_id, True)


def test_a_flag_raised_before_the_liars_disc_is_cleared_by_it(
    world: World, selector: SelectorClient, relayer: LocalAccount, owner: LocalAccount
) -> None:
    """Frankfurt is flagged by the liar while nothing refutes either claim; once the liar's own
    disc proves its claim false, anyone clears Frankfurt's flag with it, though Frankfurt has no
    disc of its own. The liar cannot clear its flag that way: its own disc refutes it."""
    add(world, owner, LIAR)
    exchange(world, selector, FRA, LIAR, 1_000, relayer)
    assert selector.is_geography_flagged(FRA.facility_id)
    assert selector.is_geography_flagged(LIAR.facility_id)
    selector.set_landmark(AMS.facility_id, AMS.latitude_e6, AMS.longitude_e6, owner)
    err = _refused_call(lambda: selector.clear_geography_flag(FRA.facility_id, sender=relayer))
    assert (err.error_name, err.args_by_name) == (
        "SelectorNotExonerated",
        {"facilityId": FRA.facility_id, "against": LIAR.facility_id},
    )
    exchange(world, selector, LIAR, AMS, 5_000, relayer)  # the liar's disc refutes its claim
    assert selector.discs_of(FRA.facility_id) == []
    receipt = selector.clear_geography_flag(FRA.facility_id, sender=relayer)
    assert selector.events_in(receipt, "GeographyFlagCleared") == [
        {"facilityId": FRA.facility_id, "against": LIAR.facility_id, "by": AMS.facility_id}
    ]
    assert not selector.is_geography_flagged(FRA.facility_id)
    err = _refused_call(lambda: selector.clear_geography_flag(LIAR.facility_id, sender=relayer))
    assert (err.error_name, err.args_by_name) == (
        "SelectorNotExonerated",
        {"facilityId": LIAR.facility_id, "against": FRA.facility_id},
    )
    assert selector.is_geography_flagged(LIAR.facility_id)


def test_a_consistent_fresh_measurement_of_the_pair_answers_its_flag(
    world: World, selector: SelectorClient, relayer: LocalAccount
) -> None:
    exchange(world, selector, FRA, AMS, 2_000, relayer)
    assert selector.is_geography_flagged(FRA.facility_id)
    receipts = exchange(world, selector, AMS, FRA, 4_000, relayer)
    # the first new report already bounds the pair at 4 ms (the larger of it and FRA's 2 ms)
    cleared = selector.events_in(receipts[0], "GeographyFlagCleared")
    assert {(e["facilityId"], e["against"]) for e in cleared} == {
        (FRA.facility_id, AMS.facility_id),
        (AMS.facility_id, FRA.facility_id),
    }
    assert not selector.is_geography_flagged(FRA.facility_id)
    assert not selector.is_geography_flagged(AMS.facility_id)


def test_new_coordinates_consistent_with_the_evidence_clear_the_flag(
    world: World, selector: SelectorClient, relayer: LocalAccount, owner: LocalAccount
) -> None:
    exchange(world, selector, FRA, AMS, 2_000, relayer)
    moved(world, AMS, owner, (50_500_000, 8_000_000))  # 68 km from Frankfurt: consistent
    assert not selector.is_geography_flagged(AMS.facility_id)
    assert not selector.is_geography_flagged(FRA.facility_id)  # its evidence was AMS's claim
    moved(world, AMS, owner, (AMS.latitude_e6, AMS.longitude_e6))  # back: contradicted again
    assert selector.is_geography_flagged(FRA.facility_id)


# --------------------------------------------------------------------------- selection


def _three_sites(world: World, selector: SelectorClient, owner: LocalAccount) -> None:
    """Frankfurt (3 ETH, the leader), Amsterdam and Dallas (landmarks) with validators."""
    add(world, owner, DAL)
    world.submit([world.hardware_proof(ValidatorSpec("vd", "dal9", ETH))], owner)
    v = ValidatorSpec("vd", "dal9", 3 * ETH)
    acct = v.account()
    world.w3.provider.make_request("anvil_setBalance", [acct.address, hex(10 * ETH)])  # type: ignore[arg-type]
    world.registry.register_validator(DAL.facility_id, v.node(), 3 * ETH, sender=acct)
    acct = ValidatorSpec("vf", "fra9", ETH).account()
    world.registry.increase_stake(3 * ETH, sender=acct)
    selector.set_landmark(AMS.facility_id, AMS.latitude_e6, AMS.longitude_e6, owner)
    selector.set_landmark(DAL.facility_id, DAL.latitude_e6, DAL.longitude_e6, owner)


FACILITY_RULE = tuple(
    DimensionRule(min_distinct=3) if d == Dimension.FACILITY else DimensionRule() for d in Dimension
)


def _python_preview(w3: Web3, world: World, selector: SelectorClient) -> Any:
    """The Python reference on the state rebuilt from events: the contract's preview must match."""
    head = int(w3.eth.block_number)
    state = rebuild(contract_events([world.registry, selector], 0, head))
    now = int(w3.eth.get_block(head)["timestamp"])
    assert state.diversity is not None
    return select_committee(state.candidates(now), state.diversity, state.geo_facts(now))


def test_selection_leaves_out_a_facility_not_proven_far_enough(
    w3: Web3,
    world: World,
    selector: SelectorClient,
    relayer: LocalAccount,
    owner: LocalAccount,
) -> None:
    _three_sites(world, selector, owner)
    exchange(world, selector, FRA, AMS, 5_000, relayer)  # FRA within 500 km of Amsterdam
    selector.set_diversity_policy(DiversityPolicy(5, min_separation_m=1_000_000), owner)
    preview = selector.preview_selection()
    # FRA (4 ETH) leads; DAL is proven 7,000+ km from it; AMS proven nothing from FRA
    assert [m.facility for m in preview.members] == [FRA.facility_id, DAL.facility_id]
    assert preview.ok
    ours = _python_preview(w3, world, selector)
    assert (ours.failure, [m.address for m in ours.members]) == (
        preview.failure,
        [m.address for m in preview.members],
    )
    strict = DiversityPolicy(5, rules=FACILITY_RULE, min_separation_m=1_000_000)
    selector.set_diversity_policy(strict, owner)
    with pytest.raises(ContractRevertError) as caught:
        selector.select_committee(sender=owner)
    assert (caught.value.error_name, caught.value.args_by_name) == (
        "SelectorPolicyUnmet",
        {"failure": int(Failure.SEPARATION), "dimension": int(Dimension.FACILITY)},
    )
    assert _python_preview(w3, world, selector).failure == Failure.SEPARATION


def test_selection_keeps_a_quorum_within_the_leaders_latency_budget(
    w3: Web3,
    world: World,
    selector: SelectorClient,
    relayer: LocalAccount,
    owner: LocalAccount,
) -> None:
    _three_sites(world, selector, owner)
    exchange(world, selector, FRA, AMS, 5_000, relayer)
    exchange(world, selector, FRA, DAL, 110_000, relayer)
    budget = DiversityPolicy(5, max_leader_rtt_micros=10_000)
    selector.set_diversity_policy(budget, owner)
    # FRA 4 + AMS 1 within 10 ms; DAL (3, 110 ms) would leave 5 of 8 in budget: not > 2/3
    preview = selector.preview_selection()
    assert [m.facility for m in preview.members] == [FRA.facility_id, AMS.facility_id]
    ours = _python_preview(w3, world, selector)
    assert [m.address for m in ours.members] == [m.address for m in preview.members]
    selector.set_diversity_policy(
        DiversityPolicy(5, rules=FACILITY_RULE, max_leader_rtt_micros=10_000), owner
    )
    with pytest.raises(ContractRevertError) as caught:
        selector.select_committee(sender=owner)
    assert caught.value.args_by_name == {
        "failure": int(Failure.LATENCY),
        "dimension": int(Dimension.FACILITY),
    }
    selector.set_diversity_policy(
        DiversityPolicy(5, rules=FACILITY_RULE, max_leader_rtt_micros=120_000), owner
    )
    receipt = selector.select_committee(sender=owner)
    assert len(selector.events_in(receipt, "CommitteeSelected")[0]["members"]) == 3


# ------------------------------------------------------------------------ policy, wiring


def test_geography_policy_fields_are_checked(selector: SelectorClient, owner: LocalAccount) -> None:
    for bad, field in (
        (GeographyPolicy(max_measurement_age=0), "maxMeasurementAge"),
        (GeographyPolicy(max_anchor_age_blocks=0), "maxAnchorAgeBlocks"),
        (GeographyPolicy(max_anchor_age_blocks=257), "maxAnchorAgeBlocks"),
        (GeographyPolicy(min_rtt_micros=0), "minRttMicros"),
        (GeographyPolicy(min_rtt_micros=50, max_rtt_micros=49), "minRttMicros"),
    ):
        err = _refused_call(lambda bad=bad: selector.set_geography_policy(bad, owner))
        assert (err.error_name, err.args_by_name) == ("SelectorInvalidPolicy", {"field": field})
    receipt = selector.set_geography_policy(GeographyPolicy(max_anchor_age_blocks=64), owner)
    assert (
        selector.events_in(receipt, "GeographyPolicyUpdated")[0]["policy"]["maxAnchorAgeBlocks"]
        == 64
    )
    assert selector.geography_policy() == GeographyPolicy(max_anchor_age_blocks=64)


def test_the_geography_extension_runs_only_through_the_selector(
    w3: Web3,
    world: World,
    selector: SelectorClient,
    registry: RegistryClient,
    relayer: LocalAccount,
    owner: LocalAccount,
) -> None:
    direct = SelectorClient(w3, selector.geography_extension(), relayer)
    m, sig = world.latency(FRA, AMS, 5_000)
    err = _refused_call(lambda: direct.report_latency(DS(world), m, sig))
    assert (err.error_name, err.args_by_name) == ("SelectorNotDelegated", {})
    err = _refused_call(lambda: direct.flag_contradiction(FRA.facility_id, AMS.facility_id))
    assert (err.error_name, err.args_by_name) == ("SelectorNotDelegated", {})
    other, _ = RegistryClient.deploy(w3, owner)
    extension = deploy_contract(w3, owner, GEOGRAPHY_CONTRACT, other.address)
    err = _refused_call(
        lambda: SelectorClient._deploy(
            w3,
            owner,
            registry.address,
            DiversityPolicy(5).as_abi(),
            GeographyPolicy().as_abi(),
            extension["contractAddress"],
            selector.reference.address,
        )
    )
    assert (err.error_name, err.args_by_name) == (
        "SelectorGeographyMismatch",
        {"registry": registry.address.lower(), "geographyRegistry": other.address.lower()},
    )


def _refused_call(call: Any) -> ContractRevertError:
    with pytest.raises(ContractRevertError) as caught:
        call()
    return caught.value


def test_fixing_a_landmark_at_the_same_position_again_changes_nothing(
    w3: Web3, world: World, selector: SelectorClient, relayer: LocalAccount, owner: LocalAccount
) -> None:
    """Review: every setLandmark reset setAt, so fixing the same position again voided the
    landmark's discs and brought back, holding, every old flag it had raised whose facility had
    since corrected its claim. The same position keeps setAt; a new one resets it."""
    add(world, owner, DAL, FAKE)
    first = selector.set_landmark(DAL.facility_id, DAL.latitude_e6, DAL.longitude_e6, owner)
    exchange(world, selector, FAKE, DAL, 1_000, relayer)
    [disc] = selector.discs_of(FAKE.facility_id)
    advance_time(w3, 1)
    again = selector.set_landmark(DAL.facility_id, DAL.latitude_e6, DAL.longitude_e6, owner)
    set_at = [selector.events_in(r, "LandmarkSet")[0]["setAt"] for r in (first, again)]
    assert set_at[0] == set_at[1] == stamp(selector, first)
    assert selector.discs_of(FAKE.facility_id) == [disc]
    advance_time(w3, 1)
    moved_to = selector.set_landmark(DAL.facility_id, DAL.latitude_e6 + 1, DAL.longitude_e6, owner)
    assert selector.events_in(moved_to, "LandmarkSet")[0]["setAt"] == stamp(selector, moved_to)
    assert selector.discs_of(FAKE.facility_id) == []
