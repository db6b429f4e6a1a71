"""The Python reference against the fixed examples in tests/selection_vectors.py."""

from __future__ import annotations

import pytest

from redundancy.domains import Dimension, domain_id
from redundancy.scores import compute_scores
from redundancy.selection import classify, select_committee
from tests.selection_vectors import SCORES, SELECTIONS, ScoreCase, SelectionCase


@pytest.mark.parametrize("case", SCORES, ids=lambda c: c.name)
def test_scores_of_a_fixed_committee(case: ScoreCase) -> None:
    scores = compute_scores(case.members)
    f = scores.of(Dimension.FACILITY)
    got = (f.nakamoto, f.tolerance, f.hhi_bps, f.largest_share_bps, f.domain_count)
    assert got == case.facility
    assert f.largest_domain == domain_id(Dimension.FACILITY, case.largest_facility)
    assert (scores.score, scores.weakest) == (case.score, case.weakest)


@pytest.mark.parametrize("case", SELECTIONS, ids=lambda c: c.name)
def test_selection_and_class_of_fixed_candidates(case: SelectionCase) -> None:
    selection = select_committee(case.candidates, case.policy)
    assert [int(m.address, 16) for m in selection.members] == list(case.selected)
    assert (selection.failure, selection.dimension) == (case.failure, case.dimension)
    assert classify(selection.members, case.candidates, case.policy) == case.klass
