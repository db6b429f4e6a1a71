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
from redundancy.registry import FreshnessPolicy
from redundancy.scores import Member
from redundancy.selection import DiversityPolicy
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


@dataclass
class RebuiltState:
    facilities: dict[bytes, FacilityState] = field(default_factory=dict)
    nodes: dict[str, NodeState] = field(default_factory=dict)
    validators: dict[str, ValidatorState] = field(default_factory=dict)
    freshness: FreshnessPolicy | None = None
    diversity: DiversityPolicy | None = None
    geography: GeographyPolicy | None = None
    landmarks: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    flags: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    committee: Committee = field(default_factory=lambda: Committee(0, 0, [], []))

    # ------------------------------------------------------------ derived

    def stale(self, fid: bytes, now: int) -> bool:
        f = self.facilities.get(fid)
        if f is None or not f.active or self.freshness is None:
            return True
        return any(f.valid_until.get(k, 0) <= now for k in self.freshness.required_kinds)

    def flagged(self, fid: bytes) -> bool:
        f = self.facilities[fid]
        return self.flags.get(fid) == (f.latitude_e6, f.longitude_e6)

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

    def candidates(self, now: int) -> list[Member]:
        out = []
        for address, v in self.validators.items():
            node = self.nodes.get(v.node, NodeState())
            if v.stake == 0 or node.facility_id != v.facility_id or node.valid_until <= now:
                continue
            if self.stale(v.facility_id, now) or self.flagged(v.facility_id):
                continue
            out.append(self.member(address, v.stake))
        return out

    def committee_members(self) -> list[Member]:
        return [
            self.member(a, s)
            for a, s in zip(self.committee.members, self.committee.stakes, strict=True)
        ]


def _address(subject: bytes) -> str:
    return to_checksum_address(subject[-20:])


# Each handler applies one event's arguments to the state; grouped by the family of state it
# changes. Events without a handler (certificates, latency reports, rejections, ...) change
# nothing the scores depend on.

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
    s.validators[str(a["validator"])] = ValidatorState(
        bytes(a["facilityId"]), str(a["node"]), int(a["stake"])
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
    s.diversity = DiversityPolicy.from_abi((p["committeeSize"], p["minTolerance"], rules))


def _geography_policy_updated(s: RebuiltState, a: dict[str, Any]) -> None:
    p = a["policy"]
    s.geography = GeographyPolicy(p["toleranceM"], p["maxMeasurementAge"], p["minEpochSeconds"])


# ----------------------------------------------------------------- geography


def _landmark_set(s: RebuiltState, a: dict[str, Any]) -> None:
    s.landmarks[bytes(a["facilityId"])] = (int(a["latitudeE6"]), int(a["longitudeE6"]))


def _landmark_removed(s: RebuiltState, a: dict[str, Any]) -> None:
    s.landmarks.pop(bytes(a["facilityId"]), None)


def _geography_flagged(s: RebuiltState, a: dict[str, Any]) -> None:
    """Both ends of a flagged pair, except landmarks, are flagged at their current location."""
    for key in ("facilityId", "peerFacilityId"):
        fid = bytes(a[key])
        if fid not in s.landmarks:
            f = s.facilities[fid]
            s.flags[fid] = (f.latitude_e6, f.longitude_e6)


# ----------------------------------------------------------------- committee


def _committee_selected(s: RebuiltState, a: dict[str, Any]) -> None:
    s.committee = Committee(
        int(a["epoch"]), 0, [str(m) for m in a["members"]], [int(x) for x in a["stakes"]]
    )


HANDLERS: dict[str, Handler] = {
    "FacilityRegistered": _facility_registered,
    "AttestorRotated": _attestor_rotated,
    "CaFingerprintUpdated": _ca_fingerprint_updated,
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
    "GeographyFlagged": _geography_flagged,
    "CommitteeSelected": _committee_selected,
}


def rebuild(events: Iterable[Event]) -> RebuiltState:
    """Replay registry and selector events in chain order."""
    s = RebuiltState()
    for e in events:
        handler = HANDLERS.get(e.name)
        if handler is not None:
            handler(s, e.args)
    return s
