"""The contract's pure views against the fixed examples in tests/selection_vectors.py: the same
numbers the Python reference gives (tests/unit/test_selection_vectors.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from redundancy.domains import Dimension, domain_id
from redundancy.registry import RegistryClient
from redundancy.selector import SelectorClient
from tests.selection_vectors import SCORES, SELECTIONS, ScoreCase, SelectionCase


@pytest.fixture(scope="module")
def selector(w3: Web3, owner: LocalAccount, registry: RegistryClient) -> Iterator[SelectorClient]:
    client, _ = SelectorClient.deploy(w3, owner, registry.address)
    yield client


@pytest.mark.parametrize("case", SCORES, ids=lambda c: c.name)
def test_contract_scores_of_a_fixed_committee(selector: SelectorClient, case: ScoreCase) -> None:
    scores = selector.scores_of(case.members)
    f = scores.of(Dimension.FACILITY)
    got = (f.nakamoto, f.tolerance, f.hhi_bps, f.largest_share_bps, f.domain_count)
    assert got == case.facility
    assert f.largest_domain == domain_id(Dimension.FACILITY, case.largest_facility)
    assert (scores.score, scores.weakest) == (case.score, case.weakest)


@pytest.mark.parametrize("case", SELECTIONS, ids=lambda c: c.name)
def test_contract_selection_and_class_of_fixed_candidates(
    selector: SelectorClient, case: SelectionCase
) -> None:
    selection = selector.select_from(case.candidates, case.policy)
    assert [int(m.address, 16) for m in selection.members] == list(case.selected)
    assert (selection.failure, selection.dimension) == (case.failure, case.dimension)
    klass = selector.class_of(selection.members, case.candidates, case.policy)
    assert klass == case.klass
