"""The self-heal loop end to end, with the venue: a committee site dies whole (attestor, etcd
member, node, gateway) under a steady order flow; its heartbeat lapses on-chain, a keeper's new
committee (the two survivors and the standby) lands, the venue's etcd membership follows it
(the dead member removed, the standby's added as a learner and promoted), and the surviving nodes
settle the next batch under the new epoch.

Opt-in (``-m slow``, about a minute and a half): ``scripts/drill.py --only self-heal --venue``
runs it many times and prints the figures beside the goals."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from devnet.selfheal import run_self_heal


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_dead_committee_site_is_replaced_and_the_new_committee_settles_with_nothing_lost(
    tmp_path: Path,
) -> None:
    run = run_self_heal(tmp_path, random.Random(5), heartbeat=4, venue=True)
    assert run["emergency"] and run["victim_removed"], run
    # the standby (lon1, half the stake: left out of the first committee of three) comes in
    assert run["new_committee_size"] == 3
    # and the venue's etcd follows: the dead member out, the standby's in and voting
    assert run["selected_to_membership_s"] < 60, run
    # a committee of three without one site has no 2/3 majority: only the new committee can
    # settle, and it did (before the settler signed again under a new epoch, it never did)
    assert run["selected_to_first_batch_s"] < 60, run
    assert run["orders_acked"] > 0 and run["orders_lost"] == 0, run
    assert run["hashes_agree"] is True, run
