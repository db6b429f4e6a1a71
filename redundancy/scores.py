"""Redundancy scores: the reference implementation the contract matches bit for bit.

For a set of validators with stakes ``s_v`` (total ``S``), consensus halts when offline stake
``O`` satisfies ``3*O >= S``. Per dimension, stake is summed per domain and sorted descending
``w1 >= w2 >= ...``:

- Nakamoto coefficient ``N`` = the least ``k`` with ``3*(w1+...+wk) >= S`` (0 for an empty set);
- tolerance ``T = N - 1`` (0 for an empty set): whole domains that may fail with consensus live;
- concentration ``HHI = floor(10000 * sum(w_i^2) / S^2)`` basis points;
- the largest domain (ties: the smallest domain id) and its share ``floor(10000 * w1 / S)``.

The redundancy score is ``min_d T_d``; the weakest dimension is the first (in ``Dimension``
order) that reaches it. A zero domain id (never attested) is one shared domain: unknown
locations are assumed to fail together. Pure functions, integers only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from redundancy.domains import Dimension

DIMENSIONS: tuple[Dimension, ...] = tuple(Dimension)
ZERO_DOMAIN = bytes(32)


@dataclass(frozen=True, slots=True)
class Member:
    """A validator as the scores see it: address, stake and one domain id per dimension."""

    address: str
    stake: int
    domains: tuple[bytes, ...]  # indexed by Dimension, len 7

    @property
    def facility(self) -> bytes:
        return self.domains[Dimension.FACILITY]


@dataclass(frozen=True, slots=True)
class DimensionScore:
    dimension: Dimension
    nakamoto: int
    tolerance: int
    hhi_bps: int
    largest_domain: bytes
    largest_share_bps: int
    domain_count: int


@dataclass(frozen=True, slots=True)
class Scores:
    total_stake: int
    dimensions: tuple[DimensionScore, ...]
    score: int
    weakest: Dimension

    def of(self, dimension: Dimension) -> DimensionScore:
        return self.dimensions[dimension]


class ConfigurationClass(IntEnum):
    """The seed's configurations, from least to most resilient (values match the contract).

    UNPROTECTED is the case the seed's table leaves out: one facility's failure halts the
    committee and no compliant committee could be formed without it.
    """

    EMPTY = 0
    SINGLE_SITE = 1
    UNPROTECTED = 2
    ACTIVE_PASSIVE = 3
    ACTIVE_ACTIVE = 4


def domain_stakes(members: Iterable[Member], dimension: Dimension) -> dict[bytes, int]:
    """Total stake per domain in one dimension."""
    out: dict[bytes, int] = {}
    for m in members:
        key = m.domains[dimension]
        out[key] = out.get(key, 0) + m.stake
    return out


def nakamoto(sorted_desc: Sequence[int], total: int) -> int:
    """The least k with 3 * (w1 + ... + wk) >= total (0 when total is 0)."""
    if total == 0:
        return 0
    running = 0
    for k, w in enumerate(sorted_desc, start=1):
        running += w
        if 3 * running >= total:
            return k
    raise AssertionError("unreachable: the domain stakes sum to the total")


def dimension_score(members: Sequence[Member], dimension: Dimension) -> DimensionScore:
    stakes = domain_stakes(members, dimension)
    total = sum(stakes.values())
    ordered = sorted(stakes.values(), reverse=True)
    n = nakamoto(ordered, total)
    if total == 0:
        return DimensionScore(dimension, 0, 0, 0, ZERO_DOMAIN, 0, 0)
    top = ordered[0]
    largest = min(d for d, w in stakes.items() if w == top)
    return DimensionScore(
        dimension=dimension,
        nakamoto=n,
        tolerance=n - 1,
        hhi_bps=10_000 * sum(w * w for w in ordered) // (total * total),
        largest_domain=largest,
        largest_share_bps=10_000 * top // total,
        domain_count=len(stakes),
    )


def compute_scores(members: Sequence[Member]) -> Scores:
    """Scores of a validator set in every dimension, the overall score and the weakest dimension."""
    dims = tuple(dimension_score(members, d) for d in DIMENSIONS)
    score = min(d.tolerance for d in dims)
    weakest = next(d.dimension for d in dims if d.tolerance == score)
    return Scores(sum(m.stake for m in members), dims, score, weakest)


def fail_domains(
    members: Sequence[Member], failed: Iterable[tuple[Dimension, bytes]]
) -> tuple[int, int, bool]:
    """What-if: (offline stake, total stake, still live) when the given domains all fail."""
    failed_set = set(failed)
    offline = sum(
        m.stake for m in members if any((d, m.domains[d]) in failed_set for d in DIMENSIONS)
    )
    total = sum(m.stake for m in members)
    return offline, total, not (total > 0 and 3 * offline >= total)
