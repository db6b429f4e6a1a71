"""A short fault campaign in CI: sites as hosts at emulated European distances, one run of each
fault family but pauses (partition, kill, clock), every history checked against the committed
log; and the checker, fed a copy of a real run with an acknowledged order dropped and another
duplicated, fails it. Pauses have their own tests (``test_pauses.py``), so the CI campaign leaves
them out to keep the suite within its time. The long campaign is ``validator-campaign --runs
220`` (docs), every fault kind."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from devnet import netns
from devnet.campaign import Campaign, RunResult
from devnet.checker import RunRecord, check
from devnet.nemesis import FAMILIES
from devnet.site_attestors import faketime_missing

SITES = ["fra1", "ams1", "lon1"]
KINDS = ["partition-leader", "kill-site", "clock-jump"]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campaign]:
    c = Campaign(SITES, tmp_path_factory.mktemp("campaign"), seed=11, kinds=KINDS)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def runs(campaign: Campaign) -> list[tuple[RunResult, RunRecord]]:
    out = []
    for i in range(len(campaign.kinds)):
        result = campaign.run(i)
        assert campaign.last_record is not None
        out.append((result, campaign.last_record))
    return out


def test_one_run_of_each_fault_family_passes_the_checker(
    campaign: Campaign, runs: list[tuple[RunResult, RunRecord]]
) -> None:
    families = {r.family for r, _ in runs}
    expected = {"partition", "kill", "clock"}
    if netns.unavailable() is not None:  # loopback: no links to cut (the figures say so)
        expected.discard("partition")
    if faketime_missing() is not None:
        expected.discard("clock")
    assert families == expected
    for result, record in runs:
        v = result.verdict
        assert v.ok, (result.kind, v.problems())
        assert not result.extra.get("clock_problems"), result.extra
        assert v.acked > 100, (result.kind, v.acked)
        assert v.acked == len({op.line for op in record.ops if op.result == "ok"})
    partition = [r for r, _ in runs if r.kind == "partition-leader"]
    if partition:  # the leader's site was cut off: its gateway was in the minority
        window = next(rec.windows for r, rec in runs if r.kind == "partition-leader")
        assert window and window[0].minority == [partition[0].site]
        # its split-brain window runs from the last of its links cut to the first restored:
        # laying and lifting a cut takes time (a relay message per link end), and an ack before
        # the cut is whole or after the heal began is no split brain
        cuts = [t for t, _, _, cut in campaign.fabric.changes if cut]
        heals = [t for t, _, _, cut in campaign.fabric.changes if not cut]
        assert len(cuts) == len(heals) == 2 * (len(SITES) - 1)
        assert max(cuts) <= window[0].start < window[0].end <= min(heals)
    clock = [r for r, _ in runs if r.kind == "clock-jump"]
    if clock:
        assert clock[0].extra["clock"]["landed_again_after_s"] >= 0
    assert "emulated one-way delays" in campaign.describe() or "loopback" in campaign.describe()


def test_the_checker_fails_a_copy_of_a_real_run_with_an_order_dropped_and_one_duplicated(
    runs: list[tuple[RunResult, RunRecord]],
) -> None:
    record = runs[0][1]
    assert check(record).ok
    acked = [op for op in record.ops if op.result == "ok"]
    dropped, doubled = acked[len(acked) // 3], acked[2 * len(acked) // 3]
    bad = copy.deepcopy(record)
    for i, (key, revision, lines) in enumerate(bad.log):
        if revision == dropped.rev:
            bad.log[i] = (key, revision, [x for j, x in enumerate(lines) if j != dropped.pos])
        if revision == doubled.rev:
            bad.log.append((key.rsplit("/", 1)[0] + "/99999999999999999999", 10**9, [doubled.line]))
    verdict = check(bad)
    assert not verdict.ok
    assert any(f"message {dropped.index} acked by {dropped.gateway}" in x for x in verdict.lost)
    assert any(f"message {doubled.index} logged 2x" in x for x in verdict.duplicates)
    assert verdict.nodes  # and no node holds the state of that log


def test_a_campaign_run_leaves_no_process_or_state_behind(
    campaign: Campaign, runs: list[tuple[RunResult, RunRecord]]
) -> None:
    assert not list(campaign.root.glob("run-*"))  # every run's venue removed
    if campaign.fabric.network is None:
        return
    for site in SITES:  # between runs a site's namespace holds its relay and its attestor only
        expected = {campaign.fabric.relays[site].pid}
        if campaign.attestors is not None:
            expected.add(campaign.attestors.site(site).process.pid)
        assert set(campaign.fabric.network.host(site).namespace.pids()) == expected


@pytest.mark.slow
def test_every_fault_kind_on_five_sites_across_the_atlantic(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Opt-in (``-m slow``): every fault kind once on fra1, ams1, lon1, nyc1, dal1 (election
    timeout from the ~125 ms Frankfurt-Dallas round trip). The report's long campaign is
    ``validator-campaign --runs 220`` (docs/validator-nodes.md)."""
    sites = ["fra1", "ams1", "lon1", "nyc1", "dal1"]
    c = Campaign(sites, tmp_path_factory.mktemp("long"), seed=5, kinds=list(FAMILIES))
    try:
        results = [c.run(i) for i in range(len(c.kinds))]
    finally:
        c.stop()
    assert {r.kind for r in results} == set(c.kinds)
    for r in results:
        assert r.verdict.ok and not r.extra.get("clock_problems"), (r.kind, r.verdict.problems())
