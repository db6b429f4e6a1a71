"""Rebuild the registry's and selector's state from their events alone.

Everything the contracts decide from (facilities, domains, freshness, nodes, validators, policies,
landmarks, geography flags, the committee) is announced in an event; replaying the events in
chain order gives the same state, which the Python reference then scores independently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address

from redundancy.domains import Dimension, Kind
from redundancy.events import Event
from redundancy.geodesy import Disc, flag_holds, pair_bound, rtt_distance_bound_m
from redundancy.registry import FreshnessPolicy
from redundancy.scores import Member
from redundancy.selection import DiversityPolicy, GeoFacts, Selection, pair_key, select_committee
from redundancy.selector import Committee, GeographyPolicy

FACILITY_KINDS = (Kind.POWER, Kind.GEOGRAPHY, Kind.NETWORK, Kind.PROVIDER, Kind.HEALTH)


@dataclass
class FacilityState:
    attestor: str
    ca_fingerprint: bytes
    active: bool = True
    latitude_e6: int = 0
    longitude_e6: int = 0
    domains: dict[Dimension, bytes] = field(default_factory=dict)
    valid_until: dict[Kind, int] = field(default_factory=dict)
    tpm_ak_certificate: bytes = bytes(32)


@dataclass
class NodeState:
    facility_id: bytes = bytes(32)
    hardware_domain_id: bytes = bytes(32)
    valid_until: int = 0


@dataclass
class ValidatorState:
    facility_id: bytes
    node: str
    stake: int
    bonded_at: int = 0
    bond_seq: int = 0


@dataclass
class RebuiltState:
    facilities: dict[bytes, FacilityState] = field(default_factory=dict)
    nodes: dict[str, NodeState] = field(default_factory=dict)
    validators: dict[str, ValidatorState] = field(default_factory=dict)
    freshness: FreshnessPolicy | None = None
    diversity: DiversityPolicy | None = None
    geography: GeographyPolicy | None = None
    #: every facility that has been a landmark, in index order, and the ones set now
    landmark_order: list[bytes] = field(default_factory=list)
    landmarks: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    #: landmark -> when its position was last fixed (a disc needs both reports since)
    landmark_set_at: dict[bytes, int] = field(default_factory=dict)
    #: (measuring facility, peer) -> (rtt, measuredAt) of the latest report
    links: dict[tuple[bytes, bytes], tuple[int, int]] = field(default_factory=dict)
    #: facility -> (against, rtt, raisedAt) of its flag record
    flags: dict[bytes, tuple[bytes, int, int]] = field(default_factory=dict)
    committee: Committee = field(default_factory=lambda: Committee(0, 0, [], []))
    #: the registry's bond count so far, and when the first committee was selected (0 before)
    bonds: int = 0
    genesis_bonds: int = 0
    #: validator -> until when it is benched (it allowed an emergency selection)
    benched: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------ derived

    def stale(self, fid: bytes, now: int) -> bool:
        f = self.facilities.get(fid)
        if f is None or not f.active or self.freshness is None:
            return True
        return any(f.valid_until.get(k, 0) <= now for k in self.freshness.required_kinds)

    def position(self, fid: bytes) -> tuple[int, int] | None:
        """A landmark's fixed position, else the facility's claim if it proved its geography."""
        if fid in self.landmarks:
            return self.landmarks[fid]
        f = self.facilities.get(fid)
        if f is None or not f.valid_until.get(Kind.GEOGRAPHY, 0):
            return None
        return (f.latitude_e6, f.longitude_e6)

    def flagged(self, fid: bytes) -> bool:
        """The contract's ``_holds``: the flag record's evidence still contradicts the claim (a
        landmark's flag raised before its position was last fixed holds until answered)."""
        record = self.flags.get(fid)
        if record is None or fid in self.landmarks:
            return False
        against, rtt, raised_at = record
        if against in self.landmarks and raised_at < self.landmark_set_at[against]:
            return True
        position = self.position(against)
        if position is None:
            return False
        f = self.facilities[fid]
        tolerance = self.geography.tolerance_m if self.geography else 0
        return flag_holds((f.latitude_e6, f.longitude_e6), position, rtt, tolerance)

    def geo_facts(self, now: int) -> GeoFacts:
        """Fresh discs per facility and two-sided RTTs per pair, as selection reads them: a
        facility's disc around a set landmark is their pair's fresh two-sided bound, both reports
        measured since the landmark's position was fixed; a landmark has its own disc of radius
        0 and no other."""
        max_age = self.geography.max_measurement_age if self.geography else 0
        rtts: dict[tuple[bytes, bytes], int] = {}
        since: dict[tuple[bytes, bytes], int] = {}  # the pair's older report's measuredAt
        for (a, b), (rtt, at) in self.links.items():
            back = self.links.get((b, a))
            if back is None or a > b:
                continue
            oldest = min(at, back[1])
            if oldest and oldest + max_age >= now:
                rtts[pair_key(a, b)] = pair_bound(rtt, back[0])
                since[pair_key(a, b)] = oldest
        discs: dict[bytes, tuple[Disc, ...]] = {}
        for fid in self.facilities:
            if fid in self.landmarks:
                discs[fid] = (Disc(fid, self.landmarks[fid], 0),)
                continue
            found = [
                Disc(lid, self.landmarks[lid], rtt_distance_bound_m(rtts[key]))
                for lid in self.landmark_order
                if lid in self.landmarks
                and (key := pair_key(fid, lid)) in rtts
                and since[key] >= self.landmark_set_at[lid]
            ]
            if found:
                discs[fid] = tuple(found)
        return GeoFacts(discs, rtts)

    def member(self, address: str, stake: int) -> Member:
        v = self.validators[address]
        f = self.facilities[v.facility_id]
        flagged = self.flagged(v.facility_id)
        domains = [v.facility_id] + [
            bytes(32)
            if flagged and d in (Dimension.METRO, Dimension.COUNTRY)
            else f.domains.get(d, bytes(32))
            for d in (
                Dimension.METRO,
                Dimension.COUNTRY,
                Dimension.POWER,
                Dimension.NETWORK,
                Dimension.PROVIDER,
            )
        ]
        domains.append(self.nodes.get(v.node, NodeState()).hardware_domain_id)
        return Member(address, stake, tuple(domains))

    def bonded_long_enough(self, v: ValidatorState, now: int) -> bool:
        """The bonding rule: anyone before the first committee; after it, a validator bonded by
        the first selection, or for ``min_epoch_seconds``."""
        wait = self.geography.min_epoch_seconds if self.geography else 0
        return (
            self.committee.epoch == 0
            or v.bond_seq <= self.genesis_bonds
            or v.bonded_at + wait <= now
        )

    def candidates(self, now: int, bench_out: bool = True) -> list[Member]:
        """The eligible validators; with ``bench_out`` False, the benched ones too (selection
        falls back to them when the policy cannot be met without them)."""
        out = []
        for address, v in self.validators.items():
            node = self.nodes.get(v.node, NodeState())
            if v.stake == 0 or node.facility_id != v.facility_id or node.valid_until <= now:
                continue
            if self.stale(v.facility_id, now) or self.flagged(v.facility_id):
                continue
            if not self.bonded_long_enough(v, now):
                continue
            if bench_out and self.benched.get(address, 0) > now:
                continue
            out.append(self.member(address, v.stake))
        return out

    def select(self, now: int, policy: DiversityPolicy, geo: GeoFacts) -> Selection:
        """The contract's selection: from the candidates off the bench, or, if the policy
        cannot be met without the benched ones (and there are any), from every candidate."""
        chosen = select_committee(self.candidates(now), policy, geo)
        if not chosen.ok and any(until > now for until in self.benched.values()):
            chosen = select_committee(self.candidates(now, bench_out=False), policy, geo)
        return chosen

    def committee_members(self) -> list[Member]:
        return [
            self.member(a, s)
            for a, s in zip(self.committee.members, self.committee.stakes, strict=True)
        ]


def _address(subject: bytes) -> str:
    return to_checksum_address(subject[-20:])


# Each handler applies one event's arguments to the state; grouped by the family of state it
# changes. Events without a handler (certificates, rejections, ...) change nothing the scores
# depend on.

Handler = Callable[[RebuiltState, dict[str, Any]], None]


# ---------------------------------------------------------------- facilities


def _facility(s: RebuiltState, a: dict[str, Any]) -> FacilityState:
    return s.facilities[bytes(a["facilityId"])]


def _facility_registered(s: RebuiltState, a: dict[str, Any]) -> None:
    s.facilities[bytes(a["facilityId"])] = FacilityState(
        str(a["attestor"]), bytes(a["caFingerprint"])
    )


def _attestor_rotated(s: RebuiltState, a: dict[str, Any]) -> None:
    _facility(s, a).attestor = str(a["newAttestor"])


def _ca_fingerprint_updated(s: RebuiltState, a: dict[str, Any]) -> None:
    _facility(s, a).ca_fingerprint = bytes(a["caFingerprint"])


def _tpm_identity_set(s: RebuiltState, a: dict[str, Any]) -> None:
    _facility(s, a).tpm_ak_certificate = bytes(a["akCertificate"])


def _facility_deactivated(s: RebuiltState, a: dict[str, Any]) -> None:
    _facility(s, a).active = False


def _facility_reactivated(s: RebuiltState, a: dict[str, Any]) -> None:
    _facility(s, a).active = True


def _facility_domain_updated(s: RebuiltState, a: dict[str, Any]) -> None:
    _facility(s, a).domains[Dimension(a["dimension"])] = bytes(a["domainId"])


def _facility_location_updated(s: RebuiltState, a: dict[str, Any]) -> None:
    f = _facility(s, a)
    f.latitude_e6, f.longitude_e6 = int(a["latitudeE6"]), int(a["longitudeE6"])


# -------------------------------------------------------------------- proofs


def _attestation_accepted(s: RebuiltState, a: dict[str, Any]) -> None:
    kind = Kind(a["kind"])
    if kind == Kind.HARDWARE:
        node = s.nodes.setdefault(_address(bytes(a["subject"])), NodeState())
        node.valid_until = int(a["validUntil"])
    else:
        _facility(s, a).valid_until[kind] = int(a["validUntil"])


# -------------------------------------------------------- nodes, validators


def _node_hardware_updated(s: RebuiltState, a: dict[str, Any]) -> None:
    n = s.nodes.setdefault(str(a["node"]), NodeState())
    n.facility_id, n.hardware_domain_id = bytes(a["facilityId"]), bytes(a["hardwareDomainId"])


def _validator_registered(s: RebuiltState, a: dict[str, Any]) -> None:
    s.bonds = int(a["bondSeq"])
    s.validators[str(a["validator"])] = ValidatorState(
        bytes(a["facilityId"]), str(a["node"]), int(a["stake"]), int(a["bondedAt"]), s.bonds
    )


def _validator_stake_increased(s: RebuiltState, a: dict[str, Any]) -> None:
    s.validators[str(a["validator"])].stake = int(a["total"])


def _validator_deregistered(s: RebuiltState, a: dict[str, Any]) -> None:
    del s.validators[str(a["validator"])]


# ------------------------------------------------------------------ policies


def _freshness_policy_updated(s: RebuiltState, a: dict[str, Any]) -> None:
    s.freshness = FreshnessPolicy.from_abi(tuple(a["policy"].values()))


def _diversity_policy_updated(s: RebuiltState, a: dict[str, Any]) -> None:
    p = a["policy"]
    rules = [(r["maxMembers"], r["minDistinct"], r["maxShareBps"]) for r in p["rules"]]
    s.diversity = DiversityPolicy.from_abi(
        (p["committeeSize"], p["minTolerance"], rules, p["minSeparationM"], p["maxLeaderRttMicros"])
    )


def _geography_policy_updated(s: RebuiltState, a: dict[str, Any]) -> None:
    p = a["policy"]
    s.geography = GeographyPolicy(
        p["toleranceM"],
        p["maxMeasurementAge"],
        p["minEpochSeconds"],
        p["maxAnchorAgeBlocks"],
        p["minRttMicros"],
        p["maxRttMicros"],
    )


# ----------------------------------------------------------------- geography


def _landmark_set(s: RebuiltState, a: dict[str, Any]) -> None:
    fid = bytes(a["facilityId"])
    if fid not in s.landmark_order:
        s.landmark_order.append(fid)
    s.landmarks[fid] = (int(a["latitudeE6"]), int(a["longitudeE6"]))
    s.landmark_set_at[fid] = int(a["setAt"])


def _landmark_removed(s: RebuiltState, a: dict[str, Any]) -> None:
    s.landmarks.pop(bytes(a["facilityId"]), None)


def _latency_reported(s: RebuiltState, a: dict[str, Any]) -> None:
    link = (bytes(a["facilityId"]), bytes(a["peerFacilityId"]))
    s.links[link] = (int(a["rttMicros"]), int(a["measuredAt"]))


def _geography_flagged(s: RebuiltState, a: dict[str, Any]) -> None:
    s.flags[bytes(a["facilityId"])] = (bytes(a["against"]), int(a["rttMicros"]), int(a["raisedAt"]))


def _geography_flag_cleared(s: RebuiltState, a: dict[str, Any]) -> None:
    s.flags.pop(bytes(a["facilityId"]), None)


# ----------------------------------------------------------------- committee


def _committee_selected(s: RebuiltState, a: dict[str, Any]) -> None:
    started = int(a["startedAt"])
    s.committee = Committee(
        int(a["epoch"]), started, [str(m) for m in a["members"]], [int(x) for x in a["stakes"]]
    )
    if s.committee.epoch == 1:
        s.genesis_bonds = s.bonds


def _emergency_selection(s: RebuiltState, a: dict[str, Any]) -> None:
    """After its CommitteeSelected: the member that allowed it is benched for a minimum epoch."""
    wait = s.geography.min_epoch_seconds if s.geography else 0
    s.benched[str(a["ineligibleMember"])] = s.committee.started_at + wait


HANDLERS: dict[str, Handler] = {
    "FacilityRegistered": _facility_registered,
    "AttestorRotated": _attestor_rotated,
    "CaFingerprintUpdated": _ca_fingerprint_updated,
    "TpmIdentitySet": _tpm_identity_set,
    "FacilityDeactivated": _facility_deactivated,
    "FacilityReactivated": _facility_reactivated,
    "FacilityDomainUpdated": _facility_domain_updated,
    "FacilityLocationUpdated": _facility_location_updated,
    "AttestationAccepted": _attestation_accepted,
    "NodeHardwareUpdated": _node_hardware_updated,
    "ValidatorRegistered": _validator_registered,
    "ValidatorStakeIncreased": _validator_stake_increased,
    "ValidatorDeregistered": _validator_deregistered,
    "FreshnessPolicyUpdated": _freshness_policy_updated,
    "DiversityPolicyUpdated": _diversity_policy_updated,
    "GeographyPolicyUpdated": _geography_policy_updated,
    "LandmarkSet": _landmark_set,
    "LandmarkRemoved": _landmark_removed,
    "LatencyReported": _latency_reported,
    "GeographyFlagged": _geography_flagged,
    "GeographyFlagCleared": _geography_flag_cleared,
    "CommitteeSelected": _committee_selected,
    "EmergencySelection": _emergency_selection,
}


def rebuild(events: Iterable[Event]) -> RebuiltState:
    """Replay registry and selector events in chain order."""
    s = RebuiltState()
    for e in events:
        handler = HANDLERS.get(e.name)
        if handler is not None:
            handler(s, e.args)
    return s
