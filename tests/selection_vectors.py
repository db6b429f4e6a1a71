"""Fixed examples of scores, selection and configuration class, each at a boundary of its rule.

The Python reference (tests/unit/test_selection_vectors.py) and the contract's pure views
(tests/integration/test_selection_vectors.py) are both held to these exact values, so a one-line
slip in either (``>`` for ``>=``, a dropped tie-break, a flooring change) fails a fixed example
on every run, not only a randomised parity run now and then.
"""

from __future__ import annotations

from dataclasses import dataclass

from redundancy.domains import Dimension, domain_id
from redundancy.scores import ConfigurationClass, Member
from redundancy.selection import DimensionRule, DiversityPolicy, Failure

ETH = 10**18


def member(n: int, stake: int, facility: str, **others: str) -> Member:
    """Validator ``n`` (address 0x...n) at a facility; other dimensions default to a value per
    facility (so each facility is its own metro, grid, ...) unless given."""
    domains = []
    for d in Dimension:
        value = facility if d == Dimension.FACILITY else others.get(d.name.lower(), facility)
        domains.append(domain_id(d, value))
    return Member(f"0x{n:040x}", stake, tuple(domains))


def rules(**by_dimension: DimensionRule) -> tuple[DimensionRule, ...]:
    return tuple(by_dimension.get(d.name.lower(), DimensionRule()) for d in Dimension)


@dataclass(frozen=True)
class ScoreCase:
    name: str
    members: tuple[Member, ...]
    #: facility dimension: (nakamoto, tolerance, hhi_bps, largest share bps, domain count)
    facility: tuple[int, int, int, int, int]
    largest_facility: str
    score: int
    weakest: Dimension


@dataclass(frozen=True)
class SelectionCase:
    name: str
    candidates: tuple[Member, ...]
    policy: DiversityPolicy
    selected: tuple[int, ...]  # validator numbers, in selection order
    failure: Failure
    dimension: Dimension
    klass: ConfigurationClass


SCORES = (
    ScoreCase(
        "three equal facilities: one third halts consensus (3*O >= S), tolerance 0",
        (member(1, ETH, "a"), member(2, ETH, "b"), member(3, ETH, "c")),
        (1, 0, 3333, 3333, 3),
        "a",  # ties: the smallest domain id (keccak of "facility:a" is below b's and c's)
        0,
        Dimension.FACILITY,
    ),
    ScoreCase(
        "three at 10 and one at 1: just under a third each, tolerance 1",
        (member(1, 10, "a"), member(2, 10, "b"), member(3, 10, "c"), member(4, 1, "d")),
        (2, 1, 3132, 3225, 4),
        "a",
        1,
        Dimension.FACILITY,
    ),
    ScoreCase(
        "HHI and share are floored: stakes 1 and 2",
        (member(1, 1, "a"), member(2, 2, "b")),
        (1, 0, 5555, 6666, 2),
        "b",
        0,
        Dimension.FACILITY,
    ),
    ScoreCase(
        "tolerant facilities on one grid: the grid is the weakest dimension",
        tuple(member(i, ETH, f"f{i}", power="one grid") for i in range(1, 5)),
        (2, 1, 2500, 2500, 4),
        "f3",  # ties: the smallest domain id, which is f3's
        0,
        Dimension.POWER,
    ),
)

_ABC = (member(1, ETH, "a"), member(2, ETH, "b"), member(3, ETH, "c"))
_FOUR = (*_ABC, member(4, ETH, "d"))

SELECTIONS = (
    SelectionCase(
        "a facility at exactly a third with no standby: unprotected",
        _ABC,
        DiversityPolicy(3, rules=rules(facility=DimensionRule(min_distinct=3))),
        (1, 2, 3),
        Failure.NONE,
        Dimension.FACILITY,
        ConfigurationClass.UNPROTECTED,
    ),
    SelectionCase(
        "the same with a standby elsewhere: active-passive",
        (*_ABC, member(4, ETH // 2, "d")),
        DiversityPolicy(3, rules=rules(facility=DimensionRule(min_distinct=3))),
        (1, 2, 3),
        Failure.NONE,
        Dimension.FACILITY,
        ConfigurationClass.ACTIVE_PASSIVE,
    ),
    SelectionCase(
        "four equal facilities: active-active",
        _FOUR,
        DiversityPolicy(4),
        (1, 2, 3, 4),
        Failure.NONE,
        Dimension.FACILITY,
        ConfigurationClass.ACTIVE_ACTIVE,
    ),
    SelectionCase(
        "by stake, ties by address; a per-facility cap skips the second of a facility",
        (
            member(9, 2 * ETH, "a"),
            member(5, 2 * ETH, "a"),
            member(7, ETH, "b"),
            member(6, ETH, "c"),
        ),
        DiversityPolicy(3, rules=rules(facility=DimensionRule(max_members=1))),
        (5, 6, 7),
        Failure.NONE,
        Dimension.FACILITY,
        ConfigurationClass.ACTIVE_PASSIVE,  # only a halts it, and b + c form a committee
    ),
    SelectionCase(
        "a stake share exactly at the cap is allowed",
        (member(1, 2, "a"), member(2, 1, "b"), member(3, 1, "c")),
        DiversityPolicy(3, rules=rules(facility=DimensionRule(max_share_bps=5000))),
        (1, 2, 3),
        Failure.NONE,
        Dimension.FACILITY,
        ConfigurationClass.ACTIVE_PASSIVE,
    ),
    SelectionCase(
        "one wei over the share cap is reported in its dimension",
        (member(1, 2 * ETH + 1, "a"), member(2, ETH, "b"), member(3, ETH, "c")),
        DiversityPolicy(3, rules=rules(facility=DimensionRule(max_share_bps=5000))),
        (1, 2, 3),
        Failure.SHARE,
        Dimension.FACILITY,
        ConfigurationClass.ACTIVE_PASSIVE,
    ),
    SelectionCase(
        "too few distinct countries is reported in the country dimension",
        (member(1, ETH, "a", country="de"), member(2, ETH, "b", country="de")),
        DiversityPolicy(3, rules=rules(country=DimensionRule(min_distinct=2))),
        (1, 2),
        Failure.DISTINCT,
        Dimension.COUNTRY,
        ConfigurationClass.UNPROTECTED,
    ),
    SelectionCase(
        "a tolerance below the minimum names the weakest dimension",
        tuple(member(i, ETH, f"f{i}", network="as1") for i in range(1, 5)),
        DiversityPolicy(4, min_tolerance=1),
        (1, 2, 3, 4),
        Failure.TOLERANCE,
        Dimension.NETWORK,
        ConfigurationClass.ACTIVE_ACTIVE,
    ),
    SelectionCase(
        "committee size bounds the selection",
        _FOUR,
        DiversityPolicy(2),
        (1, 2),
        Failure.NONE,
        Dimension.FACILITY,
        ConfigurationClass.ACTIVE_PASSIVE,
    ),
)
