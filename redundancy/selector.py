"""The typed client of the CommitteeSelector contract: scores, selection, geography checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.types import BlockIdentifier, TxReceipt

from redundancy.chain import ContractClient
from redundancy.domains import Dimension
from redundancy.eip712 import Signature
from redundancy.proofs import LatencyMeasurement
from redundancy.scores import ConfigurationClass, DimensionScore, Member, Scores
from redundancy.selection import DimensionRule, DiversityPolicy, Failure, Selection

CONTRACT_NAME = "CommitteeSelector"


@dataclass(frozen=True)
class GeographyPolicy:
    """Tolerance (metres) of the RTT check, maximum measurement age and minimum epoch length (s)."""

    tolerance_m: int = 20_000
    max_measurement_age: int = 7 * 86_400
    min_epoch_seconds: int = 60

    def as_abi(self) -> tuple[int, int, int]:
        return (self.tolerance_m, self.max_measurement_age, self.min_epoch_seconds)


#: No caps, committee of up to 100, any tolerance: the policy a fresh deployment starts with.
OPEN_POLICY = DiversityPolicy(committee_size=100)


@dataclass(frozen=True)
class Committee:
    epoch: int
    started_at: int
    members: list[str]
    stakes: list[int]


def member_abi(m: Member) -> tuple[str, int, list[bytes]]:
    return (to_checksum_address(m.address), m.stake, list(m.domains))


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

    @classmethod
    def deploy(
        cls,
        w3: Web3,
        deployer: LocalAccount,
        registry: str,
        policy: DiversityPolicy = OPEN_POLICY,
        geo: GeographyPolicy = GeographyPolicy(),
    ) -> tuple[SelectorClient, TxReceipt]:
        return cls._deploy(
            w3, deployer, to_checksum_address(registry), policy.as_abi(), geo.as_abi()
        )

    def _view(self, fn: Any, block: BlockIdentifier = "latest") -> Any:
        return self.tx.call(lambda: fn.call(block_identifier=block))

    # ----------------------------------------------------------- pure views

    def scores_of(self, members: Sequence[Member]) -> Scores:
        return scores_from_abi(
            self._view(self.contract.functions.scoresOf([member_abi(m) for m in members]))
        )

    def select_from(self, candidates: Sequence[Member], policy: DiversityPolicy) -> Selection:
        fn = self.contract.functions.selectFrom(
            [member_abi(m) for m in candidates], policy.as_abi()
        )
        committee, failure, dimension = self._view(fn)
        return Selection(
            tuple(member_from_abi(m) for m in committee), Failure(failure), Dimension(dimension)
        )

    def class_of(
        self, committee: Sequence[Member], candidates: Sequence[Member], policy: DiversityPolicy
    ) -> ConfigurationClass:
        fn = self.contract.functions.classOf(
            [member_abi(m) for m in committee], [member_abi(m) for m in candidates], policy.as_abi()
        )
        return ConfigurationClass(self._view(fn))

    def distance_lower_bound_m(self, a: tuple[int, int], b: tuple[int, int]) -> int:
        return int(self._view(self.contract.functions.distanceLowerBoundM(a[0], a[1], b[0], b[1])))

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

    def is_geography_flagged(self, facility_id: bytes, block: BlockIdentifier = "latest") -> bool:
        return bool(self._view(self.contract.functions.isGeographyFlagged(facility_id), block))

    def landmark(self, facility_id: bytes) -> tuple[int, int] | None:
        lat, lon, is_set = self._view(self.contract.functions.landmark(facility_id))
        return (int(lat), int(lon)) if is_set else None

    # --------------------------------------------------------- transactions

    def select_committee(self, sender: LocalAccount | None = None) -> TxReceipt:
        return self.tx.send(self.contract.functions.selectCommittee(), self._sender(sender))

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

    def report_latency(
        self,
        domain_separator: bytes,
        m: LatencyMeasurement,
        sig: Signature,
        sender: LocalAccount | None = None,
    ) -> TxReceipt:
        fn = self.contract.functions.reportLatency(
            domain_separator, m.as_tuple(), sig.v, sig.r, sig.s
        )
        return self.tx.send(fn, self._sender(sender))


__all__ = ["Committee", "DimensionRule", "GeographyPolicy", "SelectorClient"]
