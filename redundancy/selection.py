"""Deterministic committee selection under a diversity policy, and the configuration class.

Selection: eligible candidates sorted by stake (descending), ties by address (ascending); take
each in turn while the committee has room and no per-domain member cap would be exceeded. Then
the policy is checked on the result, dimension by dimension in ``Dimension`` order (minimum
distinct domains, then maximum stake share of one domain), then the minimum tolerance. The
first unmet rule is reported with its dimension; the policy is never relaxed. The contract
implements exactly this.

Two physical rules join the caps when the policy sets them (``GeoFacts`` holds what they read):

- **minimum proven separation**: a candidate whose facility is new to the committee is left out
  unless landmark discs prove that facility at least ``min_separation_m`` metres from every
  facility already in it (a facility without fresh discs proves nothing);
- **latency budget**: the leader is the first candidate (it always joins). A member whose
  facility's two-sided RTT to the leader's facility exceeds ``max_leader_rtt_micros`` (or is not
  measured) is left out unless the stake within the budget stays above two thirds of the
  committee's with it. So the members within the budget always hold a quorum: a BFT round
  (leader to quorum and back) never waits on a member beyond the budget, while members further
  away, the geographic standby, may still join.

Leaving candidates out meets both rules by construction; if the committee then fails another
rule, the failure is reported as ``SEPARATION`` (or ``LATENCY``) with the dimension that failed,
naming the physical rule that kept out candidates the committee needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from redundancy.domains import Dimension
from redundancy.geodesy import Disc, separated
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
    """Committee size, minimum tolerance, a rule per dimension, and the two physical rules:
    ``min_separation_m`` (metres landmark discs must prove between any two committee facilities;
    0: none) and ``max_leader_rtt_micros`` (the latency budget; 0: none)."""

    committee_size: int
    min_tolerance: int = 0
    rules: tuple[DimensionRule, ...] = field(
        default_factory=lambda: tuple(DimensionRule() for _ in DIMENSIONS)
    )
    min_separation_m: int = 0
    max_leader_rtt_micros: int = 0

    def as_abi(self) -> tuple[int, int, list[tuple[int, int, int]], int, int]:
        return (
            self.committee_size,
            self.min_tolerance,
            [(r.max_members, r.min_distinct, r.max_share_bps) for r in self.rules],
            self.min_separation_m,
            self.max_leader_rtt_micros,
        )

    @classmethod
    def from_abi(cls, values: Sequence[Any]) -> DiversityPolicy:
        size, tol, rules, separation, budget = values
        parsed = tuple(DimensionRule(int(a), int(b), int(c)) for a, b, c in rules)
        return cls(int(size), int(tol), parsed, int(separation), int(budget))

    @property
    def physical(self) -> bool:
        """Whether either physical rule is set."""
        return bool(self.min_separation_m or self.max_leader_rtt_micros)


def pair_key(a: bytes, b: bytes) -> tuple[bytes, bytes]:
    """An unordered pair of facilities as a dictionary key."""
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class GeoFacts:
    """What the physical rules read: each facility's fresh landmark discs (a landmark's own, of
    radius 0, included) and each measured pair's two-sided RTT (key: ``pair_key``). Facilities
    and pairs left out have no discs and no measurement."""

    discs: Mapping[bytes, tuple[Disc, ...]] = field(default_factory=dict)
    rtts: Mapping[tuple[bytes, bytes], int] = field(default_factory=dict)

    def rtt(self, a: bytes, b: bytes) -> int | None:
        """The pair's two-sided RTT (0 for a facility with itself; None if not measured)."""
        return 0 if a == b else self.rtts.get(pair_key(a, b))


NO_GEO = GeoFacts()


#: Selection packs stakes into 96 bits (79 billion ether); the contract reverts above it too.
MAX_STAKE = 2**96 - 1


class Failure(IntEnum):
    """Why a selection did not meet the policy (values match the contract). SEPARATION and
    LATENCY: another rule failed (in ``dimension``) after the physical rule left candidates out."""

    NONE = 0
    EMPTY = 1
    DISTINCT = 2
    SHARE = 3
    TOLERANCE = 4
    SEPARATION = 5
    LATENCY = 6


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
            Failure.SEPARATION: "a rule fails once facilities not proven far enough apart "
            "are left out",
            Failure.LATENCY: "a rule fails once members beyond the latency budget are left out",
        }[self.failure]
        return f"policy not met in {self.dimension.name.lower()}: {what}"


def _order_key(m: Member) -> tuple[int, int]:
    return (-m.stake, int(m.address, 16))


def select_committee(
    candidates: Sequence[Member], policy: DiversityPolicy, geo: GeoFacts = NO_GEO
) -> Selection:
    """Select a committee (see the module doc); candidates must already be eligible."""
    for c in candidates:
        if c.stake > MAX_STAKE:
            raise ValueError(
                f"stake {c.stake} of {c.address} exceeds 2^96 - 1 wei, the most selection takes"
            )
    counts: list[dict[bytes, int]] = [{} for _ in DIMENSIONS]
    chosen: list[Member] = []
    ordered = sorted(candidates, key=_order_key)
    physics = _Physics(ordered[0].facility, policy, geo) if ordered and policy.physical else None
    for c in ordered:
        if len(chosen) >= policy.committee_size:
            break
        if any(
            rule.max_members and counts[d].get(c.domains[d], 0) >= rule.max_members
            for d, rule in enumerate(policy.rules)
        ):
            continue
        if physics is not None and not physics.admit(c):
            continue
        chosen.append(c)
        for d in DIMENSIONS:
            counts[d][c.domains[d]] = counts[d].get(c.domains[d], 0) + 1
    failure, dimension = check_policy(chosen, policy)
    if failure != Failure.NONE and physics is not None:
        if physics.separation_skipped:
            failure = Failure.SEPARATION
        elif physics.latency_skipped:
            failure = Failure.LATENCY
    return Selection(tuple(chosen), failure, dimension)


class _Physics:
    """Selection's state for the two physical rules (the contract's ``_Physics``)."""

    def __init__(self, leader: bytes, policy: DiversityPolicy, geo: GeoFacts) -> None:
        self.leader = leader
        self.policy = policy
        self.geo = geo
        self.facilities: list[bytes] = []
        self.near_stake = 0
        self.total_stake = 0
        self.separation_skipped = False
        self.latency_skipped = False

    def admit(self, c: Member) -> bool:
        f, p = c.facility, self.policy
        new = f not in self.facilities
        if p.min_separation_m and new:
            mine = self.geo.discs.get(f, ())
            for g in self.facilities:
                if not separated(mine, self.geo.discs.get(g, ()), p.min_separation_m):
                    self.separation_skipped = True
                    return False
        near = True
        if p.max_leader_rtt_micros:
            rtt = self.geo.rtt(self.leader, f)
            near = rtt is not None and rtt <= p.max_leader_rtt_micros
            if not near and 3 * self.near_stake <= 2 * (self.total_stake + c.stake):
                self.latency_skipped = True
                return False
        if new:
            self.facilities.append(f)
        if near:
            self.near_stake += c.stake
        self.total_stake += c.stake
        return True


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
    committee: Sequence[Member],
    candidates: Sequence[Member],
    policy: DiversityPolicy,
    geo: GeoFacts = NO_GEO,
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
        if not select_committee(standby, policy, geo).ok:
            return ConfigurationClass.UNPROTECTED
    return ConfigurationClass.ACTIVE_PASSIVE
