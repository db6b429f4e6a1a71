"""The typed client of the CommitteeSelector contract (with its geography extension, which runs
at the selector's address): scores, selection, two-sided RTT reports, landmarks, discs, flags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import BlockIdentifier, TxReceipt

from redundancy.artifacts import load_artifact
from redundancy.chain import ContractClient, deploy_contract
from redundancy.domains import Dimension
from redundancy.eip712 import Signature
from redundancy.errors import ContractRevertError
from redundancy.geodesy import Disc
from redundancy.proofs import LatencyMeasurement
from redundancy.scores import ConfigurationClass, DimensionScore, Member, Scores
from redundancy.selection import (
    NO_GEO,
    DimensionRule,
    DiversityPolicy,
    Failure,
    GeoFacts,
    Selection,
)

CONTRACT_NAME = "CommitteeSelector"
GEOGRAPHY_CONTRACT = "SelectorGeography"
REFERENCE_CONTRACT = "SelectionReference"

#: reportLatency outcomes (the contract's OUTCOME_*). CONTRADICTED: the pair's bound contradicts a
#: claim and nothing is flagged yet; ``flag_contradiction`` records it.
OUTCOME_RECORDED, OUTCOME_CONSISTENT, OUTCOME_CONTRADICTED = 0, 1, 2


@dataclass(frozen=True)
class GeographyPolicy:
    """How geography is checked: tolerance (metres) on claimed coordinates, how long a report
    counts as fresh (s), the shortest epoch (s), how many blocks old a measurement's anchor may
    be (1..256), and the RTT range (microseconds) a report may carry."""

    tolerance_m: int = 20_000
    max_measurement_age: int = 86_400
    min_epoch_seconds: int = 60
    max_anchor_age_blocks: int = 256
    min_rtt_micros: int = 10
    max_rtt_micros: int = 1_000_000

    def as_abi(self) -> tuple[int, int, int, int, int, int]:
        return (
            self.tolerance_m,
            self.max_measurement_age,
            self.min_epoch_seconds,
            self.max_anchor_age_blocks,
            self.min_rtt_micros,
            self.max_rtt_micros,
        )


@dataclass(frozen=True)
class Landmark:
    """A landmark's owner-fixed position, its index (1-based slot) and when the position was
    fixed (a pair with it proves a disc only from reports measured since)."""

    latitude_e6: int
    longitude_e6: int
    index: int
    set_at: int

    @property
    def position(self) -> tuple[int, int]:
        return (self.latitude_e6, self.longitude_e6)


@dataclass(frozen=True)
class StoredDisc:
    """A fresh landmark disc as the selector stores it."""

    landmark_id: bytes
    rtt_micros: int
    valid_until: int
    radius_m: int


@dataclass(frozen=True)
class GeoFlag:
    """A facility's flag record: what contradicted its claim, with which RTT, when; and whether it
    holds now (the claim is still contradicted)."""

    against: bytes
    rtt_micros: int
    raised_at: int
    holds: bool


@dataclass(frozen=True)
class LatencyLink:
    """Both directions of a pair as stored: each end's latest RTT and when it measured it."""

    rtt_ab: int
    measured_at_ab: int
    rtt_ba: int
    measured_at_ba: int


#: No caps, committee of up to 100, any tolerance: the policy a fresh deployment starts with.
OPEN_POLICY = DiversityPolicy(committee_size=100)


@dataclass(frozen=True)
class Committee:
    epoch: int
    started_at: int
    members: list[str]
    stakes: list[int]
    #: the registry's bond count at its selection (``committee_at`` only; 0 where not read)
    bonds: int = 0


def member_abi(m: Member) -> tuple[str, int, list[bytes]]:
    return (to_checksum_address(m.address), m.stake, list(m.domains))


def disc_abi(d: Disc) -> tuple[int, int, int]:
    return (d.center[0], d.center[1], d.radius_m)


def geo_abi(
    geo: GeoFacts,
) -> tuple[list[tuple[bytes, list[tuple[int, int, int]]]], list[tuple[bytes, bytes, int]]]:
    """The facts as selectFrom/classOf take them: discs per facility, and the measured pairs."""
    facts = [(fid, [disc_abi(d) for d in discs]) for fid, discs in geo.discs.items()]
    pairs = [(a, b, rtt) for (a, b), rtt in geo.rtts.items()]
    return facts, pairs


def member_from_abi(raw: Sequence[Any]) -> Member:
    addr, stake, domains = raw
    return Member(str(addr), int(stake), tuple(bytes(d) for d in domains))


def scores_from_abi(raw: Sequence[Any]) -> Scores:
    total, dims, score, weakest = raw
    return Scores(
        int(total),
        tuple(
            DimensionScore(Dimension(i), int(n), int(t), int(h), bytes(ld), int(ls), int(c))
            for i, (n, t, h, ld, ls, c) in enumerate(dims)
        ),
        int(score),
        Dimension(int(weakest)),
    )


class SelectorClient(ContractClient):
    """Reads and writes one deployed CommitteeSelector."""

    CONTRACT_NAME = CONTRACT_NAME
    EXTENSIONS = (GEOGRAPHY_CONTRACT,)

    @classmethod
    def deploy(
        cls,
        w3: Web3,
        deployer: LocalAccount,
        registry: str,
        policy: DiversityPolicy = OPEN_POLICY,
        geo: GeographyPolicy = GeographyPolicy(),
    ) -> tuple[SelectorClient, TxReceipt]:
        """Deploy the geography extension and the reference views, then the selector that
        delegates to the one and names the other."""
        registry = to_checksum_address(registry)
        extension = deploy_contract(w3, deployer, GEOGRAPHY_CONTRACT, registry)
        reference = deploy_contract(w3, deployer, REFERENCE_CONTRACT)
        return cls._deploy(
            w3,
            deployer,
            registry,
            policy.as_abi(),
            geo.as_abi(),
            extension["contractAddress"],
            reference["contractAddress"],
        )

    def _view(self, fn: Any, block: BlockIdentifier = "latest") -> Any:
        return self.tx.call(lambda: fn.call(block_identifier=block))

    @cached_property
    def reference(self) -> Contract:
        """The SelectionReference contract this selector names (the pure views run there)."""
        address = str(self._view(self.contract.functions.selectionReference()))
        abi = load_artifact(REFERENCE_CONTRACT).abi
        contract: Contract = self.w3.eth.contract(address=to_checksum_address(address), abi=abi)
        return contract

    # ----------------------------------------------------------- pure views

    def scores_of(self, members: Sequence[Member]) -> Scores:
        return scores_from_abi(
            self._view(self.reference.functions.scoresOf([member_abi(m) for m in members]))
        )

    def select_from(
        self, candidates: Sequence[Member], policy: DiversityPolicy, geo: GeoFacts = NO_GEO
    ) -> Selection:
        fn = self.reference.functions.selectFrom(
            [member_abi(m) for m in candidates], policy.as_abi(), *geo_abi(geo)
        )
        committee, failure, dimension = self._view(fn)
        return Selection(
            tuple(member_from_abi(m) for m in committee), Failure(failure), Dimension(dimension)
        )

    def class_of(
        self,
        committee: Sequence[Member],
        candidates: Sequence[Member],
        policy: DiversityPolicy,
        geo: GeoFacts = NO_GEO,
    ) -> ConfigurationClass:
        fn = self.reference.functions.classOf(
            [member_abi(m) for m in committee],
            [member_abi(m) for m in candidates],
            policy.as_abi(),
            *geo_abi(geo),
        )
        return ConfigurationClass(self._view(fn))

    def distance_lower_bound_m(self, a: tuple[int, int], b: tuple[int, int]) -> int:
        return int(self._view(self.reference.functions.distanceLowerBoundM(a[0], a[1], b[0], b[1])))

    def proven_separation_from(self, a: Sequence[Disc], b: Sequence[Disc]) -> int:
        fn = self.reference.functions.provenSeparationFrom(
            [disc_abi(d) for d in a], [disc_abi(d) for d in b]
        )
        return int(self._view(fn))

    # ------------------------------------------------------- stateful views

    def diversity_policy(self, block: BlockIdentifier = "latest") -> DiversityPolicy:
        return DiversityPolicy.from_abi(
            self._view(self.contract.functions.diversityPolicy(), block)
        )

    def geography_policy(self, block: BlockIdentifier = "latest") -> GeographyPolicy:
        return GeographyPolicy(*self._view(self.contract.functions.geographyPolicy(), block))

    def eligible_candidates(self, block: BlockIdentifier = "latest") -> list[Member]:
        return [
            member_from_abi(m)
            for m in self._view(self.contract.functions.eligibleCandidates(), block)
        ]

    def current_committee(self, block: BlockIdentifier = "latest") -> Committee:
        epoch, started, members, stakes = self._view(
            self.contract.functions.currentCommittee(), block
        )
        return Committee(
            int(epoch), int(started), [str(m) for m in members], [int(s) for s in stakes]
        )

    def committee_at(self, epoch: int, block: BlockIdentifier = "latest") -> Committee:
        """Epoch ``epoch``'s committee as selected and the registry's bond count at its selection,
        if it is the current or the previous epoch (no members and 0 otherwise: only those two
        are kept); ``started_at`` is not read and is 0."""
        _, bonds, members, stakes = self._view(self.contract.functions.committeeAt(epoch), block)
        return Committee(epoch, 0, [str(m) for m in members], [int(s) for s in stakes], int(bonds))

    def genesis_bonds(self, block: BlockIdentifier = "latest") -> int:
        """The registry's bond count when the first committee was selected (0 before): a
        validator with a ``bond_seq`` at or below it is a candidate from the start, a later one
        once bonded for ``min_epoch_seconds``."""
        return int(self._view(self.contract.functions.genesisBonds(), block))

    def benched_until(
        self, validators: Sequence[str], block: BlockIdentifier = "latest"
    ) -> list[int]:
        """Until when each validator is benched: no candidate before that time, because its
        ineligibility allowed an emergency selection (0: never benched)."""
        fn = self.contract.functions.benchedUntil([to_checksum_address(v) for v in validators])
        return [int(t) for t in self._view(fn, block)]

    def committee_members(self, block: BlockIdentifier = "latest") -> list[Member]:
        return [
            member_from_abi(m)
            for m in self._view(self.contract.functions.committeeMembers(), block)
        ]

    def current_scores(self, block: BlockIdentifier = "latest") -> Scores:
        return scores_from_abi(self._view(self.contract.functions.currentScores(), block))

    def current_class(self, block: BlockIdentifier = "latest") -> ConfigurationClass:
        return ConfigurationClass(self._view(self.contract.functions.currentClass(), block))

    def preview_selection(self, block: BlockIdentifier = "latest") -> Selection:
        committee, failure, dimension = self._view(
            self.contract.functions.previewSelection(), block
        )
        return Selection(
            tuple(member_from_abi(m) for m in committee), Failure(failure), Dimension(dimension)
        )

    def first_ineligible_member(self, block: BlockIdentifier = "latest") -> str | None:
        """The first current committee member no longer eligible (None if all still are): what
        lets a selection cut the epoch short (the emergency rule)."""
        found = str(self._view(self.contract.functions.firstIneligibleMember(), block))
        return None if int(found, 16) == 0 else found

    def is_geography_flagged(self, facility_id: bytes, block: BlockIdentifier = "latest") -> bool:
        return bool(self._view(self.contract.functions.isGeographyFlagged(facility_id), block))

    def geography_flag(
        self, facility_id: bytes, block: BlockIdentifier = "latest"
    ) -> GeoFlag | None:
        """The facility's flag record (None if it has none), and whether it holds."""
        (against, rtt, raised), holds = self._view(
            self.contract.functions.geographyFlag(facility_id), block
        )
        if not any(against):
            return None
        return GeoFlag(bytes(against), int(rtt), int(raised), bool(holds))

    def landmark(self, facility_id: bytes, block: BlockIdentifier = "latest") -> Landmark | None:
        lat, lon, is_set, index, set_at = self._view(
            self.contract.functions.landmark(facility_id), block
        )
        return Landmark(int(lat), int(lon), int(index), int(set_at)) if is_set else None

    def landmark_ids(self, block: BlockIdentifier = "latest") -> list[bytes]:
        return [bytes(x) for x in self._view(self.contract.functions.landmarkIds(), block)]

    def latency_link(self, a: bytes, b: bytes, block: BlockIdentifier = "latest") -> LatencyLink:
        return LatencyLink(*map(int, self._view(self.contract.functions.latencyLink(a, b), block)))

    def pair_rtt(self, a: bytes, b: bytes, block: BlockIdentifier = "latest") -> int | None:
        """The pair's two-sided RTT (the larger of both fresh directions), None if not measured."""
        measured, rtt = self._view(self.contract.functions.pairRtt(a, b), block)
        return int(rtt) if measured else None

    def discs_of(self, facility_id: bytes, block: BlockIdentifier = "latest") -> list[StoredDisc]:
        return [
            StoredDisc(bytes(lid), int(rtt), int(until), int(radius))
            for lid, rtt, until, radius in self._view(
                self.contract.functions.discsOf(facility_id), block
            )
        ]

    def proven_separation_m(self, a: bytes, b: bytes, block: BlockIdentifier = "latest") -> int:
        return int(self._view(self.contract.functions.provenSeparationM(a, b), block))

    def geography_extension(self) -> str:
        return str(self._view(self.contract.functions.geography()))

    # --------------------------------------------------------- transactions

    def select_committee(self, sender: LocalAccount | None = None) -> TxReceipt:
        return self.tx.send(self.contract.functions.selectCommittee(), self._sender(sender))

    def select_next_committee_call(self, current_epoch: int) -> ContractFunction:
        """The ``selectNextCommittee(currentEpoch)`` call (for estimating before sending)."""
        return self.contract.functions.selectNextCommittee(current_epoch)

    def select_next_committee(
        self, current_epoch: int, sender: LocalAccount | None = None, gas: int | None = None
    ) -> TxReceipt:
        """Select the next committee only if the epoch is still ``current_epoch`` (else the
        contract reverts with SelectorEpochAdvanced: another selection landed first)."""
        return self.tx.send(
            self.select_next_committee_call(current_epoch), self._sender(sender), gas=gas
        )

    def set_diversity_policy(
        self, policy: DiversityPolicy, sender: LocalAccount | None = None
    ) -> TxReceipt:
        return self.tx.send(
            self.contract.functions.setDiversityPolicy(policy.as_abi()), self._sender(sender)
        )

    def set_geography_policy(
        self, policy: GeographyPolicy, sender: LocalAccount | None = None
    ) -> TxReceipt:
        return self.tx.send(
            self.contract.functions.setGeographyPolicy(policy.as_abi()), self._sender(sender)
        )

    def set_landmark(
        self, facility_id: bytes, lat_e6: int, lon_e6: int, sender: LocalAccount | None = None
    ) -> TxReceipt:
        return self.tx.send(
            self.contract.functions.setLandmark(facility_id, lat_e6, lon_e6), self._sender(sender)
        )

    def remove_landmark(self, facility_id: bytes, sender: LocalAccount | None = None) -> TxReceipt:
        return self.tx.send(
            self.contract.functions.removeLandmark(facility_id), self._sender(sender)
        )

    def report_latency(
        self,
        domain_separator: bytes,
        m: LatencyMeasurement,
        sig: Signature,
        sender: LocalAccount | None = None,
    ) -> TxReceipt:
        """Relay one end's signed measurement (EIP-2098 compact signature on the wire)."""
        fn = self.contract.functions.reportLatency(
            domain_separator, m.as_tuple(), sig.r, sig.y_parity_and_s()
        )
        return self.tx.send(fn, self._sender(sender))

    def contradictions_in(self, receipt: TxReceipt) -> list[tuple[bytes, bytes]]:
        """The pairs a reportLatency receipt announced as contradicted (GeographyContradicted)."""
        return [
            (bytes(e["facilityId"]), bytes(e["peerFacilityId"]))
            for e in self.events_in(receipt, "GeographyContradicted")
        ]

    def flag_contradiction(
        self, a: bytes, b: bytes, sender: LocalAccount | None = None
    ) -> TxReceipt:
        """Record what the pair's fresh two-sided bound contradicts (anyone may; the caller pays
        for the flags). Reverts SelectorNoContradiction, SelectorPairNotMeasured or
        SelectorAlreadyFlagged when there is nothing to record."""
        return self.tx.send(self.contract.functions.flagContradiction(a, b), self._sender(sender))

    def report_latency_and_flag(
        self,
        domain_separator: bytes,
        m: LatencyMeasurement,
        sig: Signature,
        sender: LocalAccount | None = None,
    ) -> list[TxReceipt]:
        """Relay one measurement and, if it completes a contradicted pair, flag it at once (a
        relayer that wants no window in which a proven liar is unflagged): the receipts, the
        report's first. A contradiction whose flags already stand adds no receipt."""
        receipts = [self.report_latency(domain_separator, m, sig, sender)]
        for a, b in self.contradictions_in(receipts[0]):
            try:
                receipts.append(self.flag_contradiction(a, b, sender))
            except ContractRevertError as exc:
                if exc.error_name != "SelectorAlreadyFlagged":
                    raise
        return receipts

    def clear_geography_flag(
        self, facility_id: bytes, sender: LocalAccount | None = None
    ) -> TxReceipt:
        return self.tx.send(
            self.contract.functions.clearGeographyFlag(facility_id), self._sender(sender)
        )


__all__ = [
    "Committee",
    "DimensionRule",
    "GeoFlag",
    "GeographyPolicy",
    "Landmark",
    "LatencyLink",
    "SelectorClient",
    "StoredDisc",
]
