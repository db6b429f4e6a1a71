"""Rebuild the registry's and selector's state from their events alone.

Everything the contracts decide from (facilities, domains, freshness, nodes, validators, policies,
landmarks, geography flags, the committee) is announced in an event; replaying the events in
chain order gives the same state, which the Python reference then scores independently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

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


def rebuild(events: Iterable[Event]) -> RebuiltState:
    """Replay registry and selector events in chain order."""
    s = RebuiltState()
    for e in events:
        a = e.args
        match e.name:
            case "FacilityRegistered":
                s.facilities[bytes(a["facilityId"])] = FacilityState(
                    str(a["attestor"]), bytes(a["caFingerprint"])
                )
            case "AttestorRotated":
                s.facilities[bytes(a["facilityId"])].attestor = str(a["newAttestor"])
            case "CaFingerprintUpdated":
                s.facilities[bytes(a["facilityId"])].ca_fingerprint = bytes(a["caFingerprint"])
            case "FacilityDeactivated" | "FacilityReactivated":
                s.facilities[bytes(a["facilityId"])].active = e.name == "FacilityReactivated"
            case "AttestationAccepted":
                kind = Kind(a["kind"])
                if kind == Kind.HARDWARE:
                    s.nodes.setdefault(
                        _address(bytes(a["subject"])), NodeState()
                    ).valid_until = int(a["validUntil"])
                else:
                    s.facilities[bytes(a["facilityId"])].valid_until[kind] = int(a["validUntil"])
            case "FacilityDomainUpdated":
                s.facilities[bytes(a["facilityId"])].domains[Dimension(a["dimension"])] = bytes(
                    a["domainId"]
                )
            case "FacilityLocationUpdated":
                f = s.facilities[bytes(a["facilityId"])]
                f.latitude_e6, f.longitude_e6 = int(a["latitudeE6"]), int(a["longitudeE6"])
            case "NodeHardwareUpdated":
                n = s.nodes.setdefault(str(a["node"]), NodeState())
                n.facility_id, n.hardware_domain_id = (
                    bytes(a["facilityId"]),
                    bytes(a["hardwareDomainId"]),
                )
            case "ValidatorRegistered":
                s.validators[str(a["validator"])] = ValidatorState(
                    bytes(a["facilityId"]), str(a["node"]), int(a["stake"])
                )
            case "ValidatorStakeIncreased":
                s.validators[str(a["validator"])].stake = int(a["total"])
            case "ValidatorDeregistered":
                del s.validators[str(a["validator"])]
            case "FreshnessPolicyUpdated":
                s.freshness = FreshnessPolicy.from_abi(tuple(a["policy"].values()))
            case "DiversityPolicyUpdated":
                p = a["policy"]
                s.diversity = DiversityPolicy.from_abi(
                    (
                        p["committeeSize"],
                        p["minTolerance"],
                        [(r["maxMembers"], r["minDistinct"], r["maxShareBps"]) for r in p["rules"]],
                    )
                )
            case "GeographyPolicyUpdated":
                p = a["policy"]
                s.geography = GeographyPolicy(
                    p["toleranceM"], p["maxMeasurementAge"], p["minEpochSeconds"]
                )
            case "LandmarkSet":
                s.landmarks[bytes(a["facilityId"])] = (int(a["latitudeE6"]), int(a["longitudeE6"]))
            case "LandmarkRemoved":
                s.landmarks.pop(bytes(a["facilityId"]), None)
            case "GeographyFlagged":
                for key in ("facilityId", "peerFacilityId"):
                    fid = bytes(a[key])
                    if fid not in s.landmarks:
                        f = s.facilities[fid]
                        s.flags[fid] = (f.latitude_e6, f.longitude_e6)
            case "CommitteeSelected":
                s.committee = Committee(
                    int(a["epoch"]),
                    0,
                    [str(m) for m in a["members"]],
                    [int(x) for x in a["stakes"]],
                )
    return s
