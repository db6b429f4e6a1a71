"""Sites that lie about geography, run small: the same experiments ``scripts/geo_adversarial.py``
prints the figures of (``devnet/geolies.py``), against the real contracts on this module's anvil.

Pair lies: one site of a pair lies (low RTT, high RTT, replay, stale or wrong block anchor, forged
signature, swapped responder signature, a measurement relayed for another pair), every class in
turn; each case's outcome must be the expected one (the error with its arguments and an unchanged
link, or acceptance with the pair's bound the larger report) and no honest facility is flagged.
Landmark worlds: every claim outside one of its own fresh discs is flagged, and no honest site is
flagged by a landmark. ``ADVERSARIAL_EXAMPLES`` sizes the pair cases like the folder's other
classes.
"""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.geolies import LIES, landmark_worlds, pair_lies, render
from tests.adversarial import tally


@tally.timeout("geography")
def test_one_lying_end_never_gets_an_honest_facility_flagged(
    w3: Web3, owner: LocalAccount, relayer: LocalAccount
) -> None:
    cases = tally.examples("geography")
    figures = pair_lies(w3, owner, relayer, cases, seed=7, sites=8, progress=None)
    print(render(figures, None))
    assert figures.disagreements == []
    assert figures.honest_flagged == 0
    assert figures.flag_events == 0
    assert sum(figures.cases.values()) == cases
    if cases >= len(LIES):
        assert set(figures.cases) == set(LIES)
    refused = sum(n for c in figures.outcomes.values() for o, n in c.items() if "refused" in o)
    assert refused >= cases * 4 // len(LIES)  # replay, anchor, forged, swapped always refuse
    for _ in range(cases):
        tally.count("geography")


@pytest.mark.timeout(600)
def test_every_claim_outside_its_own_landmark_disc_is_flagged(
    w3: Web3, owner: LocalAccount, relayer: LocalAccount
) -> None:
    figures = landmark_worlds(w3, owner, relayer, worlds=1, seed=11, min_sites=10, max_sites=10)
    print(render(None, figures))
    assert figures.disagreements == []
    assert figures.sites == 10
    assert figures.provably_false_missed == 0
    assert figures.beyond_diameter_missed == 0
    assert figures.honest_flagged_by_landmark == 0
    assert figures.honest_flagged_by_provably_false_peer == 0
