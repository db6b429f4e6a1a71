"""The Python reference's physical selection rules and what-if, by fixed examples at their
boundaries (the mutation run found them covered only by the anvil-backed parity tests):
minimum proven separation, the leader latency budget, the failure they report, the policy's
ABI round trip and ``fail_domains``."""

from __future__ import annotations

import pytest

from redundancy.domains import Dimension
from redundancy.geodesy import Disc, proven_separation_m
from redundancy.scores import (
    ConfigurationClass,
    DimensionScore,
    Scores,
    compute_scores,
    domain_stakes,
    fail_domains,
    nakamoto,
)
from redundancy.selection import (
    MAX_STAKE,
    DimensionRule,
    DiversityPolicy,
    Failure,
    GeoFacts,
    Selection,
    check_policy,
    classify,
    pair_key,
    select_committee,
)
from tests.selection_vectors import member, rules

A, B, C, D = (member(i, 1, f).facility for i, f in enumerate("abcd", 1))
#: a is a landmark at (0, 0); b proven within 10 km of a point ~1,100 km east; c has no discs
DISC_A = Disc(b"\x01" * 32, (0, 0), 0)
DISC_B = Disc(b"\x02" * 32, (0, 10_000_000), 10_000)
SEP_AB = proven_separation_m([DISC_A], [DISC_B])
GEO_SEPARATION = GeoFacts(discs={A: (DISC_A,), B: (DISC_B,)})


def addresses(selection: Selection) -> list[str]:
    return [m.address[-1] for m in selection.members]


def test_the_example_separation_is_large() -> None:
    assert 1_000_000 < SEP_AB < 1_200_000


def test_a_new_facility_joins_only_if_proven_at_least_the_minimum_apart() -> None:
    candidates = [member(1, 3, "a"), member(2, 2, "b"), member(3, 1, "c")]
    at = select_committee(candidates, DiversityPolicy(3, min_separation_m=SEP_AB), GEO_SEPARATION)
    assert addresses(at) == ["1", "2"] and at.failure == Failure.NONE  # c proves nothing
    past = DiversityPolicy(3, min_separation_m=SEP_AB + 1)
    assert addresses(select_committee(candidates, past, GEO_SEPARATION)) == ["1"]


def test_a_second_member_at_a_facility_already_in_needs_no_separation() -> None:
    candidates = [member(1, 3, "a"), member(2, 2, "a"), member(3, 1, "c")]
    chosen = select_committee(candidates, DiversityPolicy(3, min_separation_m=1), GEO_SEPARATION)
    assert addresses(chosen) == ["1", "2"]


def test_a_rule_failing_after_separation_left_members_out_is_reported_as_separation() -> None:
    candidates = [member(1, 3, "a"), member(2, 2, "b"), member(3, 1, "c")]
    policy = DiversityPolicy(
        3, rules=rules(facility=DimensionRule(min_distinct=3)), min_separation_m=SEP_AB
    )
    chosen = select_committee(candidates, policy, GEO_SEPARATION)
    assert (chosen.failure, chosen.dimension) == (Failure.SEPARATION, Dimension.FACILITY)
    assert chosen.describe() == (
        "policy not met in facility: a rule fails once facilities not proven far enough apart "
        "are left out"
    )
    without = DiversityPolicy(3, rules=policy.rules)
    assert select_committee(candidates, without, GEO_SEPARATION).ok


GEO_RTT = GeoFacts(rtts={pair_key(A, B): 1_000, pair_key(C, A): 1_001})


def test_the_latency_budget_admits_a_member_at_exactly_the_budget() -> None:
    candidates = [member(1, 2, "a"), member(2, 1, "b")]
    chosen = select_committee(candidates, DiversityPolicy(2, max_leader_rtt_micros=1_000), GEO_RTT)
    assert addresses(chosen) == ["1", "2"]


def test_a_far_member_joins_only_while_the_near_stake_stays_above_two_thirds() -> None:
    # In stake order a 5, b 4 (near: 9 of 9); d 4 unmeasured: 3 * 9 = 27 > 2 * 13 = 26, joins;
    # c 1 at 1_001 us: 27 <= 2 * 14 = 28, left out
    candidates = [member(1, 5, "a"), member(2, 4, "b"), member(3, 1, "c"), member(4, 4, "d")]
    chosen = select_committee(candidates, DiversityPolicy(4, max_leader_rtt_micros=1_000), GEO_RTT)
    assert addresses(chosen) == ["1", "2", "4"]
    assert select_committee(candidates, DiversityPolicy(4), GEO_RTT).members == tuple(
        sorted(candidates, key=lambda m: -m.stake)
    )


def test_exactly_two_thirds_near_is_not_enough() -> None:
    # leader a (stake 2) near; c stake 1 far: 3 * 2 == 2 * (2 + 1), so c is left out
    candidates = [member(1, 2, "a"), member(3, 1, "c")]
    policy = DiversityPolicy(2, max_leader_rtt_micros=1_000)
    assert addresses(select_committee(candidates, policy, GEO_RTT)) == ["1"]
    heavier_leader = [member(1, 3, "a"), member(3, 1, "c")]  # 9 > 8: joins
    assert addresses(select_committee(heavier_leader, policy, GEO_RTT)) == ["1", "3"]


def test_a_far_member_does_not_count_as_near_stake() -> None:
    # a 6 near; c 2 far joins (18 > 16); then d 1 unmeasured: near stays 6, 18 <= 18: out.
    # Had c counted as near, d would join (24 > 18).
    geo = GeoFacts(rtts={pair_key(A, C): 5_000})
    candidates = [member(1, 6, "a"), member(3, 2, "c"), member(4, 1, "d")]
    chosen = select_committee(candidates, DiversityPolicy(3, max_leader_rtt_micros=1_000), geo)
    assert addresses(chosen) == ["1", "3"]


def test_a_rule_failing_after_the_budget_left_members_out_is_reported_as_latency() -> None:
    candidates = [member(1, 2, "a"), member(3, 1, "c")]
    policy = DiversityPolicy(
        2, rules=rules(facility=DimensionRule(min_distinct=2)), max_leader_rtt_micros=1_000
    )
    chosen = select_committee(candidates, policy, GEO_RTT)
    assert (chosen.failure, chosen.dimension) == (Failure.LATENCY, Dimension.FACILITY)
    assert chosen.describe() == (
        "policy not met in facility: a rule fails once members beyond the latency budget are "
        "left out"
    )


def test_geo_facts_rtt_is_symmetric_zero_to_itself_and_none_unmeasured() -> None:
    assert GEO_RTT.rtt(A, B) == GEO_RTT.rtt(B, A) == 1_000
    assert GEO_RTT.rtt(D, D) == 0 and GEO_RTT.rtt(A, D) is None
    assert pair_key(B, A) == pair_key(A, B) == (min(A, B), max(A, B))


@pytest.mark.parametrize(
    ("failure", "text"),
    [
        (Failure.EMPTY, "no eligible validator"),
        (Failure.DISTINCT, "too few distinct domains"),
        (Failure.SHARE, "one domain holds too much stake"),
        (Failure.TOLERANCE, "tolerance below the minimum"),
    ],
)
def test_describe_names_the_dimension_and_the_rule(failure: Failure, text: str) -> None:
    assert Selection((), failure, Dimension.POWER).describe() == f"policy not met in power: {text}"


def test_describe_a_met_policy_counts_the_members() -> None:
    assert Selection((member(1, 1, "a"),), Failure.NONE, Dimension.FACILITY).describe() == (
        "1 members meet the policy"
    )


def test_the_policy_round_trips_through_its_abi_form() -> None:
    policy = DiversityPolicy(
        7,
        3,
        tuple(DimensionRule(i, i + 1, 100 * i) for i in range(len(Dimension))),
        min_separation_m=250_000,
        max_leader_rtt_micros=40_000,
    )
    assert DiversityPolicy.from_abi(policy.as_abi()) == policy
    assert policy.physical and DiversityPolicy(1, max_leader_rtt_micros=1).physical
    assert not DiversityPolicy(1).physical


def test_fail_domains_counts_a_member_once_and_is_live_below_one_third() -> None:
    members = [
        member(1, 2, "a", power="grid1"),
        member(2, 3, "b", power="grid1"),
        member(3, 6, "c"),
    ]
    power = members[0].domains[Dimension.POWER]
    assert fail_domains(members, [(Dimension.POWER, power), (Dimension.FACILITY, A)]) == (
        5,
        11,
        False,
    )
    assert fail_domains(members, [(Dimension.FACILITY, A)]) == (2, 11, True)
    exactly_third = [member(1, 1, "a"), member(2, 2, "b")]
    assert fail_domains(exactly_third, [(Dimension.FACILITY, A)]) == (1, 3, False)
    assert fail_domains([], []) == (0, 0, True)


# -- more survivors of the mutation run: empty sets, caps, the stake bound


def test_the_scores_of_nobody_are_zero_in_every_dimension() -> None:
    scores = compute_scores([])
    assert scores == Scores(
        0,
        tuple(DimensionScore(d, 0, 0, 0, bytes(32), 0, 0) for d in Dimension),
        0,
        Dimension.FACILITY,
    )
    one = compute_scores([member(1, 1, "a")])
    assert one.total_stake == 1 and one.of(Dimension.FACILITY).nakamoto == 1


def test_a_member_cap_per_domain_skips_the_extra_members() -> None:
    candidates = [member(1, 5, "a"), member(2, 4, "a"), member(3, 3, "a"), member(4, 2, "b")]
    capped = DiversityPolicy(4, rules=rules(facility=DimensionRule(max_members=2)))
    assert addresses(select_committee(candidates, capped)) == ["1", "2", "4"]
    one = DiversityPolicy(4, rules=rules(facility=DimensionRule(max_members=1)))
    assert addresses(select_committee(candidates, one)) == ["1", "4"]


def test_a_stake_of_exactly_the_bound_is_selected_and_one_more_is_refused() -> None:
    assert select_committee([member(1, MAX_STAKE, "a")], DiversityPolicy(1)).ok
    with pytest.raises(ValueError, match=r"^stake \d+ of 0x0+1 exceeds 2\^96 - 1 wei"):
        select_committee([member(1, MAX_STAKE + 1, "a")], DiversityPolicy(1))


def test_fail_domains_with_a_single_wei_and_just_under_a_third() -> None:
    alone = [member(1, 1, "a")]
    assert fail_domains(alone, [(Dimension.FACILITY, A)]) == (1, 1, False)
    quarter = [member(1, 1, "a"), member(2, 3, "b")]
    assert fail_domains(quarter, [(Dimension.FACILITY, A)]) == (1, 4, True)


def test_physical_rules_that_leave_nobody_out_report_the_rule_that_failed() -> None:
    candidates = [member(1, 2, "a"), member(2, 1, "b")]
    policy = DiversityPolicy(
        2, rules=rules(facility=DimensionRule(min_distinct=3)), max_leader_rtt_micros=1_000
    )
    chosen = select_committee(candidates, policy, GEO_RTT)
    assert addresses(chosen) == ["1", "2"]
    assert (chosen.failure, chosen.dimension) == (Failure.DISTINCT, Dimension.FACILITY)


def test_a_leader_without_discs_proves_nobody_apart_from_it() -> None:
    candidates = [member(3, 5, "c"), member(1, 3, "a"), member(2, 2, "b")]
    chosen = select_committee(candidates, DiversityPolicy(3, min_separation_m=1), GEO_SEPARATION)
    assert addresses(chosen) == ["3"]


def test_a_member_the_separation_rule_leaves_out_does_not_stop_the_selection() -> None:
    candidates = [member(1, 3, "a"), member(2, 2, "c"), member(3, 1, "b")]  # c proves nothing
    chosen = select_committee(
        candidates, DiversityPolicy(3, min_separation_m=SEP_AB), GEO_SEPARATION
    )
    assert addresses(chosen) == ["1", "3"]


def test_selecting_from_nobody_fails_as_empty_with_or_without_physical_rules() -> None:
    for policy in (DiversityPolicy(3), DiversityPolicy(3, min_separation_m=1)):
        assert select_committee([], policy, GEO_SEPARATION).failure == Failure.EMPTY


def test_a_policy_without_a_rule_per_dimension_is_refused_not_cut_short() -> None:
    short = DiversityPolicy(1, rules=(DimensionRule(),))
    with pytest.raises(ValueError, match="zip"):
        check_policy([member(1, 1, "a")], short)


def test_an_empty_committee_is_classified_empty() -> None:
    assert classify([], [member(1, 1, "a")], DiversityPolicy(1)) == ConfigurationClass.EMPTY


def test_a_standby_committee_is_selected_with_the_geo_facts_classify_was_given() -> None:
    committee = [member(1, 1, "c"), member(2, 1, "d")]
    candidates = [*committee, member(3, 2, "a"), member(4, 2, "b")]  # a and b proven apart
    policy = DiversityPolicy(
        2, rules=rules(facility=DimensionRule(min_distinct=2)), min_separation_m=SEP_AB
    )
    protected = classify(committee, candidates, policy, GEO_SEPARATION)
    assert protected == ConfigurationClass.ACTIVE_PASSIVE
    assert classify(committee, candidates, policy) == ConfigurationClass.UNPROTECTED


def test_domain_stakes_add_up_the_members_of_a_domain() -> None:
    members = [member(1, 2, "a"), member(2, 3, "a"), member(3, 4, "b")]
    assert domain_stakes(members, Dimension.FACILITY) == {A: 5, B: 4}


def test_nakamoto_of_no_stake_is_zero() -> None:
    assert nakamoto([], 0) == 0
    assert nakamoto([1], 1) == 1
