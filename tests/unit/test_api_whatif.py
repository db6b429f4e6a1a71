"""What-if failures against the definition: liveness from the core, further tolerance checked
by failing that many more of the largest surviving domains (Hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from api.whatif import what_if
from redundancy.domains import Dimension
from redundancy.scores import DIMENSIONS, Member, compute_scores, domain_stakes, fail_domains

DOMAINS = [bytes([i]) * 32 for i in range(1, 5)]

members_st = st.lists(
    st.builds(
        lambda i, stake, doms: Member(f"0x{i:040x}", stake, tuple(doms)),
        st.integers(1, 10**6),
        st.integers(1, 100),
        st.lists(st.sampled_from(DOMAINS), min_size=7, max_size=7),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda m: m.address,
)
failed_st = st.lists(
    st.tuples(st.sampled_from(list(Dimension)), st.sampled_from(DOMAINS)), max_size=3
)


def test_nothing_failed_gives_the_committee_scores() -> None:
    members = [
        Member("0x01", 3, (DOMAINS[0],) * 7),
        Member("0x02", 3, (DOMAINS[1],) * 7),
        Member("0x03", 3, (DOMAINS[2],) * 7),
        Member("0x04", 2, (DOMAINS[3],) * 7),
    ]
    result = what_if(members, [])
    scores = compute_scores(members)
    assert result.live and result.offline == 0 and result.total == 11
    assert result.remaining == {d.dimension: d.tolerance for d in scores.dimensions}
    assert (result.score, result.weakest) == (scores.score, scores.weakest)


def test_failing_a_third_halts() -> None:
    members = [Member(f"0x0{i}", 1, (DOMAINS[i],) * 7) for i in range(3)]
    result = what_if(members, [(Dimension.POWER, DOMAINS[0])])
    assert not result.live and result.score is None and result.weakest is None
    assert result.failed_members == ("0x00",)
    assert all(v is None for v in result.remaining.values())


@settings(max_examples=200, deadline=None)
@given(members_st, failed_st)
def test_remaining_tolerance_is_exactly_the_further_failures_survived(
    members: list[Member], failed: list[tuple[Dimension, bytes]]
) -> None:
    result = what_if(members, failed)
    assert (result.offline, result.total, result.live) == fail_domains(members, failed)
    if not result.live:
        return
    for d in DIMENSIONS:
        k = result.remaining[d]
        assert k is not None and k >= 0
        down = {
            m.address
            for m in members
            if any((dd, m.domains[dd]) in set(failed) for dd in DIMENSIONS)
        }
        up = [m for m in members if m.address not in down]
        largest = [dom for dom, _ in sorted(domain_stakes(up, d).items(), key=lambda kv: -kv[1])]
        assert fail_domains(members, [*failed, *((d, x) for x in largest[:k])])[2]
        assert not fail_domains(members, [*failed, *((d, x) for x in largest[: k + 1])])[2]
