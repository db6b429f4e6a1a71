"""Committee selection never violates the diversity policy it reports as met.

Hypothesis draws candidates (stakes from zero to past the 2^96 cap, with ties; domains from
small pools so that they collide) and policies (committee size, per-domain member caps, minimum
distinct domains, maximum share, minimum tolerance; small values mostly, any uint32 sometimes)
and asks the contract's pure ``selectFrom``. The test checks the answer on its own, with the
rules written out here (not ``redundancy.selection``): the committee is the greedy one (stake
descending, address ascending, skipping a candidate that would exceed a cap, up to the size);
if no failure is reported, it respects the size, every cap, every minimum of distinct domains,
every maximum share and the minimum tolerance; if a failure is reported, the rule it names is
broken in the dimension it names, and every rule checked before it holds. A candidate staking
more than 2^96 - 1 wei is refused with ``RedundancyMathStakeTooLarge`` naming the first one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import event, given
from hypothesis import strategies as st
from web3 import Web3

from redundancy.domains import Dimension
from redundancy.errors import ContractRevertError
from redundancy.registry import RegistryClient
from redundancy.scores import Member
from redundancy.selection import DimensionRule, DiversityPolicy, Failure
from redundancy.selector import SelectorClient
from tests.adversarial import tally

MAX_STAKE = 2**96 - 1
U32 = 2**32 - 1
DIMS = list(Dimension)


@pytest.fixture(scope="module")
def selector(w3: Web3, owner: LocalAccount) -> SelectorClient:
    registry, _ = RegistryClient.deploy(w3, owner)
    client, _ = SelectorClient.deploy(w3, owner, registry.address)
    return client


# ------------------------------------------------------------------------------ strategies

stakes = st.one_of(
    st.integers(0, 12),  # small, often equal: ties broken by address
    st.integers(0, MAX_STAKE),
    st.sampled_from([MAX_STAKE, MAX_STAKE - 1, 10**18, 3 * 10**18]),
)
too_large = st.integers(MAX_STAKE + 1, 2**256 - 1)


def sometimes(on: st.SearchStrategy[int], off: int = 0) -> st.SearchStrategy[int]:
    """``off`` two times in three, else a draw of ``on``: most dimensions of a policy are
    unconstrained, or almost every committee would fail it."""
    return st.sampled_from([False, False, True]).flatmap(lambda x: on if x else st.just(off))


@st.composite
def candidates(draw: st.DrawFn, oversized: bool = False, loose: bool = False) -> list[Member]:
    """Up to 24 candidates with distinct addresses; in each dimension their domains come from
    a pool of one to eight ids (the zero id among them), so that some collide. ``loose``:
    at least eight, stakes of one order of magnitude, pools of three or more."""
    pools = [draw(st.integers(3 if loose else 1, 8)) for _ in DIMS]
    addresses = draw(
        st.lists(
            st.binary(min_size=20, max_size=20),
            min_size=8 if loose else 0,
            max_size=24,
            unique=True,
        )
    )
    stake = st.integers(10, 100).map(lambda s: s * 10**17) if loose else stakes
    out = [
        Member(
            Web3.to_checksum_address(a),
            draw(stake),
            tuple(draw(st.integers(0, n - 1)).to_bytes(32, "big") for n in pools),
        )
        for a in addresses
    ]
    if oversized and out:
        i = draw(st.integers(0, len(out) - 1))
        out[i] = Member(out[i].address, draw(too_large), out[i].domains)
    return out


#: Any policy: each rule off two times in three, else small or any uint32. Most committees
#: fail one: the failures' reports are what these test.
strict_policies = st.builds(
    DiversityPolicy,
    committee_size=st.one_of(st.integers(1, 30), st.integers(0, U32)),
    min_tolerance=sometimes(st.one_of(st.integers(1, 3), st.integers(0, U32))),
    rules=st.tuples(
        *(
            st.builds(
                DimensionRule,
                max_members=sometimes(st.one_of(st.integers(1, 4), st.integers(0, U32))),
                min_distinct=sometimes(st.one_of(st.integers(1, 4), st.integers(0, U32))),
                max_share_bps=sometimes(st.one_of(st.integers(2_500, 10_000), st.integers(0, U32))),
            )
            for _ in DIMS
        )
    ),
)


@st.composite
def loose_policies(draw: st.DrawFn) -> DiversityPolicy:
    """A policy a committee of the loose candidates often meets: two dimensions at most
    constrained, caps of one to four, two or three distinct domains, shares from half up."""
    rules = [DimensionRule() for _ in DIMS]
    for d in draw(st.lists(st.sampled_from(DIMS), max_size=2, unique=True)):
        rules[d] = DimensionRule(
            draw(st.integers(0, 4)), draw(st.integers(0, 3)), draw(st.integers(5_000, 10_000))
        )
    return DiversityPolicy(draw(st.integers(4, 30)), draw(st.integers(0, 1)), tuple(rules))


# --------------------------------------------------------------- the rules, written out


def per_domain(members: list[Member], d: int) -> dict[bytes, int]:
    out: dict[bytes, int] = {}
    for m in members:
        out[m.domains[d]] = out.get(m.domains[d], 0) + m.stake
    return out


def tolerance(members: list[Member], d: int) -> int:
    """How many of dimension d's largest domains can fail with the rest still holding more
    than 2/3 of the stake: one less than the fewest domains holding at least a third."""
    sums = sorted(per_domain(members, d).values(), reverse=True)
    total = sum(sums)
    if total == 0:
        return 0
    running = 0
    for k, w in enumerate(sums, 1):
        running += w
        if 3 * running >= total:
            return k - 1
    raise AssertionError("unreachable")


def greedy(candidates: list[Member], policy: DiversityPolicy) -> list[Member]:
    chosen: list[Member] = []
    for c in sorted(candidates, key=lambda m: (-m.stake, int(m.address, 16))):
        if len(chosen) >= policy.committee_size:
            break
        over_cap = any(
            rule.max_members
            and sum(1 for m in chosen if m.domains[d] == c.domains[d]) >= rule.max_members
            for d, rule in enumerate(policy.rules)
        )
        if not over_cap:
            chosen.append(c)
    return chosen


def distinct_broken(members: list[Member], policy: DiversityPolicy, d: int) -> bool:
    return len(per_domain(members, d)) < policy.rules[d].min_distinct


def share_broken(members: list[Member], policy: DiversityPolicy, d: int) -> bool:
    bps = policy.rules[d].max_share_bps
    sums = per_domain(members, d)
    total = sum(sums.values())
    return bps != 0 and 10_000 * max(sums.values()) > bps * total


def assert_respects(committee: list[Member], policy: DiversityPolicy) -> None:
    assert 0 < len(committee) <= policy.committee_size
    for d, rule in enumerate(policy.rules):
        counts: dict[bytes, int] = {}
        for m in committee:
            counts[m.domains[d]] = counts.get(m.domains[d], 0) + 1
        if rule.max_members:
            assert max(counts.values()) <= rule.max_members, (d, counts)
        assert len(counts) >= rule.min_distinct, (d, len(counts))
        assert not share_broken(committee, policy, d), d
    assert min(tolerance(committee, d) for d in DIMS) >= policy.min_tolerance


def assert_broken_as_reported(
    committee: list[Member], policy: DiversityPolicy, failure: Failure, dim: Dimension
) -> None:
    if failure == Failure.EMPTY:
        assert committee == [] and dim == Dimension.FACILITY
        return
    assert committee, "a non-empty failure for an empty committee"
    for d in DIMS[:dim]:  # every rule the contract checks before the reported one holds
        assert not distinct_broken(committee, policy, d), (failure, dim, d)
        assert not share_broken(committee, policy, d), (failure, dim, d)
    if failure == Failure.DISTINCT:
        assert distinct_broken(committee, policy, dim)
    elif failure == Failure.SHARE:
        assert not distinct_broken(committee, policy, dim)
        assert share_broken(committee, policy, dim)
    else:
        assert failure == Failure.TOLERANCE
        for d in DIMS:
            assert not distinct_broken(committee, policy, d)
            assert not share_broken(committee, policy, d)
        tolerances = [tolerance(committee, d) for d in DIMS]
        assert tolerances[dim] == min(tolerances) < policy.min_tolerance
        assert tolerances.index(min(tolerances)) == dim  # the first weakest dimension


@dataclass(frozen=True)
class Case:
    candidates: list[Member]
    policy: DiversityPolicy


@pytest.mark.parametrize("regime", ["strict", "loose"])
@tally.timeout("selection", 0.45)
@tally.profile("selection", 0.45)
@given(data=st.data())
def test_a_committee_reported_compliant_meets_the_policy_and_a_failure_is_real(
    selector: SelectorClient, regime: str, data: st.DataObject
) -> None:
    loose = regime == "loose"
    case = Case(
        data.draw(candidates(loose=loose), label="candidates"),
        data.draw(loose_policies() if loose else strict_policies, label="policy"),
    )
    chosen = selector.select_from(case.candidates, case.policy)
    committee = list(chosen.members)
    assert [m.address for m in committee] == [
        m.address for m in greedy(case.candidates, case.policy)
    ]
    by_address = {m.address: m for m in case.candidates}
    assert all(by_address[m.address] == m for m in committee)  # members as given, unaltered
    if chosen.failure == Failure.NONE:
        assert_respects(committee, case.policy)
    else:
        assert_broken_as_reported(committee, case.policy, chosen.failure, chosen.dimension)
    event(f"{chosen.failure.name} {chosen.dimension.name if chosen.failure else ''}".strip())
    tally.count("selection")


@tally.timeout("selection", 0.1)
@tally.profile("selection", 0.1)
@given(members=candidates(oversized=True), policy=strict_policies)
def test_a_stake_past_the_cap_is_refused_naming_the_first_such_candidate(
    selector: SelectorClient, members: list[Member], policy: DiversityPolicy
) -> None:
    if not members:
        members = [Member(Web3.to_checksum_address(b"\x01" * 20), MAX_STAKE + 1, (bytes(32),) * 7)]
    first = next(m for m in members if m.stake > MAX_STAKE)
    with pytest.raises(ContractRevertError) as caught:
        selector.select_from(members, policy)
    assert caught.value.error_name == "RedundancyMathStakeTooLarge"
    assert caught.value.args_by_name == {"validator": first.address.lower(), "stake": first.stake}
    tally.count("selection")
