"""Deterministic committee selection under a diversity policy, and the configuration class.

Selection: eligible candidates sorted by stake (descending), ties by address (ascending); take
each in turn while the committee has room and no per-domain member cap would be exceeded. Then
the policy is checked on the result, dimension by dimension in ``Dimension`` order (minimum
distinct domains, then maximum stake share of one domain), then the minimum tolerance. The
first unmet rule is reported with its dimension; the policy is never relaxed. The contract
implements exactly this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from redundancy.domains import Dimension
from redundancy.scores import DIMENSIONS, ConfigurationClass, Member, compute_scores, domain_stakes


@dataclass(frozen=True, slots=True)
class DimensionRule:
    """Per-dimension rule: at most ``max_members`` per domain (0: no cap), at least
    ``min_distinct`` domains, no domain above ``max_share_bps`` of the stake (0: no cap)."""

    max_members: int = 0
    min_distinct: int = 0
    max_share_bps: int = 0


@dataclass(frozen=True, slots=True)
class DiversityPolicy:
    committee_size: int
    min_tolerance: int = 0
    rules: tuple[DimensionRule, ...] = field(
        default_factory=lambda: tuple(DimensionRule() for _ in DIMENSIONS)
    )

    def as_abi(self) -> tuple[int, int, list[tuple[int, int, int]]]:
        return (
            self.committee_size,
            self.min_tolerance,
            [(r.max_members, r.min_distinct, r.max_share_bps) for r in self.rules],
        )

    @classmethod
    def from_abi(cls, values: Sequence[Any]) -> DiversityPolicy:
        size, tol, rules = values
        parsed = tuple(DimensionRule(int(a), int(b), int(c)) for a, b, c in rules)
        return cls(int(size), int(tol), parsed)


#: Selection packs stakes into 96 bits (79 billion ether); the contract reverts above it too.
MAX_STAKE = 2**96 - 1


class Failure(IntEnum):
    """Why a selection did not meet the policy (values match the contract)."""

    NONE = 0
    EMPTY = 1
    DISTINCT = 2
    SHARE = 3
    TOLERANCE = 4


@dataclass(frozen=True, slots=True)
class Selection:
    members: tuple[Member, ...]
    failure: Failure
    dimension: Dimension

    @property
    def ok(self) -> bool:
        return self.failure == Failure.NONE

    def describe(self) -> str:
        if self.ok:
            return f"{len(self.members)} members meet the policy"
        what = {
            Failure.EMPTY: "no eligible validator",
            Failure.DISTINCT: "too few distinct domains",
            Failure.SHARE: "one domain holds too much stake",
            Failure.TOLERANCE: "tolerance below the minimum",
        }[self.failure]
        return f"policy not met in {self.dimension.name.lower()}: {what}"


def _order_key(m: Member) -> tuple[int, int]:
    return (-m.stake, int(m.address, 16))


def select_committee(candidates: Sequence[Member], policy: DiversityPolicy) -> Selection:
    """Select a committee (see the module doc); candidates must already be eligible."""
    for c in candidates:
        if c.stake > MAX_STAKE:
            raise ValueError(
                f"stake {c.stake} of {c.address} exceeds 2^96 - 1 wei, the most selection takes"
            )
    counts: list[dict[bytes, int]] = [{} for _ in DIMENSIONS]
    chosen: list[Member] = []
    for c in sorted(candidates, key=_order_key):
        if len(chosen) >= policy.committee_size:
            break
        if any(
            rule.max_members and counts[d].get(c.domains[d], 0) >= rule.max_members
            for d, rule in enumerate(policy.rules)
        ):
            continue
        chosen.append(c)
        for d in DIMENSIONS:
            counts[d][c.domains[d]] = counts[d].get(c.domains[d], 0) + 1
    return Selection(tuple(chosen), *check_policy(chosen, policy))


def check_policy(members: Sequence[Member], policy: DiversityPolicy) -> tuple[Failure, Dimension]:
    """The first rule a committee breaks, or (NONE, FACILITY)."""
    if not members:
        return Failure.EMPTY, Dimension.FACILITY
    total = sum(m.stake for m in members)
    for d, rule in zip(DIMENSIONS, policy.rules, strict=True):
        stakes = domain_stakes(members, d)
        if len(stakes) < rule.min_distinct:
            return Failure.DISTINCT, d
        if rule.max_share_bps and 10_000 * max(stakes.values()) > rule.max_share_bps * total:
            return Failure.SHARE, d
    scores = compute_scores(members)
    if scores.score < policy.min_tolerance:
        return Failure.TOLERANCE, scores.weakest
    return Failure.NONE, Dimension.FACILITY


def classify(
    committee: Sequence[Member], candidates: Sequence[Member], policy: DiversityPolicy
) -> ConfigurationClass:
    """The configuration class of a committee, given the eligible candidates it came from.

    Active-passive: losing some facility would halt the committee, but for each such facility a
    compliant committee can be selected from the eligible validators elsewhere.
    """
    total = sum(m.stake for m in committee)
    if total == 0:
        return ConfigurationClass.EMPTY
    by_facility = domain_stakes(committee, Dimension.FACILITY)
    if len(by_facility) == 1:
        return ConfigurationClass.SINGLE_SITE
    if compute_scores(committee).of(Dimension.FACILITY).tolerance >= 1:
        return ConfigurationClass.ACTIVE_ACTIVE
    for facility in sorted(f for f, w in by_facility.items() if 3 * w >= total):
        standby = [c for c in candidates if c.facility != facility]
        if not select_committee(standby, policy).ok:
            return ConfigurationClass.UNPROTECTED
    return ConfigurationClass.ACTIVE_PASSIVE
