"""Geography proven with physics: signed RTT measurements against claimed coordinates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.world import FacilitySpec, ValidatorSpec, World, build
from redundancy.domains import Kind
from redundancy.eip712 import Signature, Signer
from redundancy.errors import ContractRevertError
from redundancy.geodesy import distance_lower_bound_m
from redundancy.proofs import LatencyMeasurement, registry_domain_separator
from redundancy.registry import RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import GeographyPolicy, SelectorClient

FRA = FacilitySpec("fra9", "amprion", "frankfurt", "de", 50_110_922, 8_682_127, "as3320", "equinix")
AMS = FacilitySpec("ams9", "tennet", "amsterdam", "nl", 52_367_573, 4_904_139, "as1136", "dr")
SYD = (-33_868_820, 151_209_296)
ETH = 10**18
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


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
    client, _ = SelectorClient.deploy(
        w3, owner, registry.address, DiversityPolicy(5), GeographyPolicy(20_000)
    )
    yield client


def measure(
    world: World,
    spec: FacilitySpec,
    peer: FacilitySpec,
    rtt_us: int,
    signer: Signer | None = None,
    at: int | None = None,
) -> tuple[LatencyMeasurement, Signature]:
    m = LatencyMeasurement(
        spec.facility_id, peer.facility_id, rtt_us, at if at is not None else world.now()
    )
    sig = (signer or spec.signer()).sign(world.registry.domain_separator(), m)
    return m, sig


def report(
    world: World,
    selector: SelectorClient,
    m: LatencyMeasurement,
    sig: Signature,
    sender: LocalAccount,
) -> object:
    return selector.report_latency(world.registry.domain_separator(), m, sig, sender=sender)


def test_consistent_measurement_is_recorded_without_flag(
    world: World, selector: SelectorClient, relayer: LocalAccount
) -> None:
    m, sig = measure(world, FRA, AMS, rtt_us=5_000)  # 363 km apart; 5 ms allows 500 km
    receipt = report(world, selector, m, sig, relayer)
    assert selector.events_in(receipt, "LatencyReported") == [
        {
            "facilityId": FRA.facility_id,
            "peerFacilityId": AMS.facility_id,
            "rttMicros": 5_000,
            "measuredAt": m.measured_at,
        }
    ]
    assert selector.events_in(receipt, "GeographyFlagged") == []
    assert not selector.is_geography_flagged(FRA.facility_id)


def test_contradicting_measurement_flags_both_and_makes_them_ineligible(
    world: World, selector: SelectorClient, relayer: LocalAccount
) -> None:
    assert len(selector.eligible_candidates()) == 2
    m, sig = measure(world, FRA, AMS, rtt_us=2_000)  # 2 ms allows 200 + 20 km; they claim 363 km
    receipt = report(world, selector, m, sig, relayer)
    lower = distance_lower_bound_m(
        (FRA.latitude_e6, FRA.longitude_e6), (AMS.latitude_e6, AMS.longitude_e6)
    )
    assert selector.events_in(receipt, "GeographyFlagged") == [
        {
            "facilityId": FRA.facility_id,
            "peerFacilityId": AMS.facility_id,
            "rttMicros": 2_000,
            "distanceLowerBoundM": lower,
        }
    ]
    assert selector.is_geography_flagged(FRA.facility_id) and selector.is_geography_flagged(
        AMS.facility_id
    )
    assert selector.eligible_candidates() == []


def test_new_coordinates_clear_the_flag(
    world: World, selector: SelectorClient, relayer: LocalAccount, owner: LocalAccount
) -> None:
    m, sig = measure(world, FRA, AMS, rtt_us=2_000)
    report(world, selector, m, sig, relayer)
    world.submit(
        world.facility_proofs(AMS, [Kind.GEOGRAPHY], coordinates=(50_500_000, 8_000_000)), owner
    )
    assert not selector.is_geography_flagged(AMS.facility_id)
    assert selector.is_geography_flagged(FRA.facility_id)


def test_landmark_position_is_trusted_and_never_flagged(
    world: World, selector: SelectorClient, relayer: LocalAccount, owner: LocalAccount
) -> None:
    receipt = selector.set_landmark(
        AMS.facility_id, AMS.latitude_e6, AMS.longitude_e6, sender=owner
    )
    assert selector.events_in(receipt, "LandmarkSet") == [
        {
            "facilityId": AMS.facility_id,
            "latitudeE6": AMS.latitude_e6,
            "longitudeE6": AMS.longitude_e6,
        }
    ]
    world.submit(
        world.facility_proofs(FRA, [Kind.GEOGRAPHY], coordinates=SYD), owner
    )  # FRA now claims Sydney
    m, sig = measure(world, AMS, FRA, rtt_us=4_000)
    report(world, selector, m, sig, relayer)
    assert selector.is_geography_flagged(FRA.facility_id)
    assert not selector.is_geography_flagged(AMS.facility_id)
    assert selector.landmark(AMS.facility_id) == (AMS.latitude_e6, AMS.longitude_e6)


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


def test_measurement_rejections(
    world: World, selector: SelectorClient, relayer: LocalAccount, outsider: LocalAccount, w3: Web3
) -> None:
    forged = measure(world, FRA, AMS, 2_000, signer=Signer(bytes(outsider.key)))
    err = refused(world, selector, *forged, relayer)
    assert (err.error_name, err.args_by_name["signer"]) == (
        "SelectorSignerNotAttestor",
        outsider.address.lower(),
    )
    old = measure(world, FRA, AMS, 2_000, at=world.now() - 8 * 86_400)
    err = refused(world, selector, *old, relayer)
    assert (err.error_name, err.args_by_name["maxMeasurementAge"]) == (
        "SelectorStaleMeasurement",
        7 * 86_400,
    )
    same = measure(world, FRA, FRA, 2_000)
    assert refused(world, selector, *same, relayer).error_name == "SelectorSameFacility"
    foreign = registry_domain_separator(1, world.registry.address)
    err = refused(world, selector, *measure(world, FRA, AMS, 2_000), relayer, ds=foreign)
    assert (err.error_name, err.args_by_name["given"]) == ("SelectorWrongDomain", foreign)
    ghost = FacilitySpec("ghost", "", "", "", 0, 0, "", "")
    err = refused(world, selector, *measure(world, FRA, ghost, 2_000), relayer)
    assert (err.error_name, err.args_by_name) == (
        "SelectorUnknownFacility",
        {"facilityId": ghost.facility_id},
    )
    assert not selector.is_geography_flagged(FRA.facility_id)


def test_malformed_measurement_signatures_are_refused(
    world: World, selector: SelectorClient, relayer: LocalAccount
) -> None:
    """The malleable twin (r, n - s, flipped v), a bad v and an unrecoverable r."""
    m, sig = measure(world, FRA, AMS, 2_000)
    twin = Signature(55 - sig.v, sig.r, (ORDER - int.from_bytes(sig.s, "big")).to_bytes(32, "big"))
    for bad in (twin, Signature(29, sig.r, sig.s), Signature(27, bytes(32), sig.s)):
        err = refused(world, selector, m, bad, relayer)
        assert (err.error_name, err.args_by_name) == ("SelectorInvalidSignature", {})
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
    err = refused(world, selector, *measure(world, FRA, AMS, 2_000), relayer)
    assert (err.error_name, err.args_by_name) == (
        "SelectorNoCoordinates",
        {"facilityId": AMS.facility_id},
    )
