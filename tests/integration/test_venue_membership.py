"""The venue's etcd membership follows the committee (issue 14, part 2), on a real etcd cluster:
a committee that drops dal1 and takes in the standby sgp1 becomes the voting membership, one
change at a time, learner first, while writes keep committing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from devnet.etcdcluster import EtcdCluster, start_cluster
from devnet.localchain import LocalChain
from devnet.world import build
from redundancy.chain import connect
from redundancy.registry import RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import SelectorClient
from tests.integration.test_committee import SITES as WORLD
from tests.integration.test_committee import VALIDATORS
from validator.node.errors import EtcdError, EtcdUnavailableError
from validator.node.etcd import EtcdClient, b64
from validator.node.membership import MembershipReconciler, Step, VenueSite, follow_committee

SITES = ["fra1", "ams1", "dal1"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    with start_cluster(SITES, tmp_path / "etcd") as c:
        c.standby("sgp1")
        yield c


def _voting(cluster: EtcdCluster) -> dict[str, bool]:
    """Peer URL -> learner?, as the cluster lists its members."""
    from devnet.http import post_json

    live = next(m for m in cluster.members if cluster.status(m.name) is not None)
    listed = post_json(f"{live.client_url}/v3/cluster/member/list", {}, timeout=5)
    return {m["peerURLs"][0]: bool(m.get("isLearner", False)) for m in listed["members"]}


#: How long a write may wait out an election: a change that removes (or a test that kills) the
#: leader leaves the cluster without one for a while, etcd drops proposals meanwhile, and one
#: ``call`` tries each member once. A gateway waits out the same within its 3 s write deadline.
ELECTION_WAIT = 5.0


async def _put(etcd: EtcdClient, key: bytes, value: bytes = b"written") -> None:
    """Write ``key``, retrying for up to ``ELECTION_WAIT`` seconds while no member can commit."""
    give_up = time.monotonic() + ELECTION_WAIT
    while True:
        try:
            await etcd.call("kv/put", {"key": b64(key), "value": b64(value)})
            return
        except EtcdUnavailableError:
            if time.monotonic() >= give_up:
                raise
            await asyncio.sleep(0.1)


async def _follow(cluster: EtcdCluster, wanted: list[str], deadline: float) -> list[Step]:
    """Steps towards ``wanted`` until converged, writing a key after every change. Whenever the
    cluster lists sgp1 as a learner that is not running, start its etcd: what the standby site's
    operator does. (Not "when the step returned add-learner": a member/add that etcd applied
    but answered after the client's timeout is refused as a duplicate when retried, and the
    learner is then seen only in the member list.)"""
    etcd = EtcdClient([m.client_url for m in cluster.members if m.name != "sgp1"], 1.0)
    reconciler = MembershipReconciler(etcd)
    sgp1 = cluster.member("sgp1")
    steps: list[Step] = []
    refused: Exception | None = None
    try:
        while time.monotonic() < deadline:
            try:
                step = await reconciler.step(wanted)
            except Exception as exc:  # a learner still catching up: etcd refuses the promotion
                refused = exc
                step = None
                await asyncio.sleep(0.2)
            else:
                if step is None:
                    return steps
                steps.append(step)
                await _put(etcd, f"/venue/test/{len(steps)}".encode())
            if sgp1.process is None and sgp1.peer_url in _voting(cluster):
                await asyncio.to_thread(cluster.join, "sgp1")
        raise AssertionError(f"membership did not converge: {steps}; last refusal: {refused!r}")
    finally:
        await etcd.aclose()


def test_a_dead_member_leaving_the_committee_is_removed_and_the_standby_joins_as_a_learner(
    cluster: EtcdCluster,
) -> None:
    cluster.kill("dal1")
    wanted = [cluster.member(s).peer_url for s in ("fra1", "ams1", "sgp1")]
    steps = asyncio.run(_follow(cluster, wanted, time.monotonic() + 60))
    sgp1, dal1 = cluster.member("sgp1").peer_url, cluster.member("dal1").peer_url
    # the dead member goes first (that only lowers the quorum), then one join: learner, promoted
    assert [(s.action, s.peer_url) for s in steps] == [
        ("remove", dal1),
        ("add-learner", sgp1),
        ("promote", sgp1),
    ]
    assert _voting(cluster) == {url: False for url in wanted}
    assert cluster.status("sgp1") is not None


def test_a_live_member_leaving_the_committee_is_removed_only_after_the_standby_votes(
    cluster: EtcdCluster,
) -> None:
    wanted = [cluster.member(s).peer_url for s in ("fra1", "ams1", "sgp1")]
    steps = asyncio.run(_follow(cluster, wanted, time.monotonic() + 60))
    sgp1, dal1 = cluster.member("sgp1").peer_url, cluster.member("dal1").peer_url
    assert [(s.action, s.peer_url) for s in steps] == [
        ("add-learner", sgp1),
        ("promote", sgp1),
        ("remove", dal1),
    ]
    assert _voting(cluster) == {url: False for url in wanted}


def test_a_node_task_makes_the_membership_follow_the_committee_on_chain(
    module_chain: LocalChain, tmp_path: Path
) -> None:
    """The committee on a real anvil holds par1, lon1 and sgp1 (nyc1 has no validator); the
    venue's etcd runs par1, lon1 and nyc1 with sgp1 standing by. ``follow_committee`` (what a
    node with ``venue_directory`` runs) reads the committee and changes the membership until it
    matches."""
    w3 = connect(module_chain.rpc_url)
    owner = Account.from_key(module_chain.dev_keys[0])
    registry, _ = RegistryClient.deploy(w3, owner)
    validators = [v for v in VALIDATORS if v.facility != "nyc1"]
    world = build(w3, registry, owner, WORLD, validators)
    selector, _ = SelectorClient.deploy(w3, owner, registry.address, DiversityPolicy(4))
    selector.select_committee(sender=owner)
    names = [s.name for s in WORLD]
    with start_cluster(names[:3], tmp_path / "etcd") as cluster:
        cluster.standby("sgp1")
        directory = [
            VenueSite(
                n,
                world.facilities[n].facility_id,
                cluster.member(n).peer_url,
                cluster.member(n).client_url,
            )
            for n in names
        ]
        wanted = {cluster.member(n).peer_url for n in ("par1", "lon1", "sgp1")}

        async def run() -> None:
            etcd = EtcdClient(cluster.endpoints[:3], 1.0)
            task = asyncio.create_task(
                follow_committee(
                    MembershipReconciler(etcd),
                    lambda: [m.facility for m in selector.committee_members()],
                    directory,
                    0.2,
                )
            )
            try:
                deadline = time.monotonic() + 60
                joined = False
                while time.monotonic() < deadline:
                    members = await asyncio.to_thread(_voting, cluster)
                    if not joined and cluster.member("sgp1").peer_url in members:
                        await asyncio.to_thread(cluster.join, "sgp1")
                        joined = True
                    if members == {url: False for url in wanted}:
                        return
                    await asyncio.sleep(0.2)
                raise AssertionError(f"membership did not follow the committee: {members}")
            finally:
                task.cancel()
                await etcd.aclose()

        asyncio.run(run())


def test_a_client_learns_a_member_added_after_it_started_and_fails_over_to_it(
    cluster: EtcdCluster,
) -> None:
    """A gateway configured with fra1 and dal1 only: the standby sgp1 joins and dal1 leaves;
    learning the membership adds sgp1's client URL (never a learner's), so with fra1 then
    killed its writes still commit, through sgp1 and ams1; without learning, nothing it knows
    would answer."""
    fra1, ams1, sgp1 = (cluster.member(n) for n in ("fra1", "ams1", "sgp1"))
    wanted = [m.peer_url for m in (fra1, ams1, sgp1)]

    async def run() -> tuple[list[str], list[str], list[str]]:
        gateway = EtcdClient([fra1.client_url, cluster.member("dal1").client_url], 1.0)
        try:
            await _follow(cluster, wanted, time.monotonic() + 60)
            learned = await gateway.learn_members()
            again = await gateway.learn_members()
            cluster.kill("fra1")
            # fra1 may have led: the write waits out the election (without the learned members,
            # fra1 is dead and dal1 removed, so no retry could ever commit it)
            await _put(gateway, b"/venue/after", b"ok")
            return learned, again, gateway.endpoints
        finally:
            await gateway.aclose()

    learned, again, endpoints = asyncio.run(run())
    assert sorted(learned) == sorted([ams1.client_url, sgp1.client_url])
    assert again == []
    assert endpoints[:2] == [fra1.client_url, cluster.member("dal1").client_url]


class _LostAnswers(EtcdClient):
    """A real client whose membership changes reach etcd but whose answers are lost, as when
    the reply comes after the client's timeout: the change is applied, the caller sees
    ``EtcdUnavailableError``."""

    async def call(
        self, path: str, body: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        answer = await super().call(path, body, timeout)
        if path in ("cluster/member/add", "cluster/member/remove"):
            raise EtcdUnavailableError(f"{path}: no etcd member answered (timed out)", True)
        return answer


def test_a_change_applied_but_answered_too_late_counts_as_made(cluster: EtcdCluster) -> None:
    """The reconciler reads the member list after a failed change: applied means made (and the
    next step moves on), not applied means the error stands."""

    async def run() -> tuple[Step | None, Step | None]:
        etcd = _LostAnswers(cluster.endpoints[:3], 1.0)
        try:
            reconciler = MembershipReconciler(etcd)
            wanted = [cluster.member(s).peer_url for s in ("fra1", "ams1", "dal1", "sgp1")]
            deadline = time.monotonic() + 30
            while True:  # etcd refuses changes until its members have been connected for 5 s
                try:
                    added = await reconciler.step(wanted)
                    break
                except EtcdError as exc:
                    assert "unhealthy cluster" in str(exc) and time.monotonic() < deadline, exc
                    await asyncio.sleep(0.2)
            promoted = None
            try:
                promoted = await reconciler.step(wanted)  # sgp1 never started: etcd refuses
            except EtcdError as exc:
                assert "in sync with leader" in str(exc), exc
            # the committee drops sgp1 again: its learner is removed, the answer lost too
            removed = await reconciler.step(wanted[:3])
            assert removed is not None and removed.action == "remove-learner"
            return added, promoted
        finally:
            await etcd.aclose()

    added, promoted = asyncio.run(run())
    sgp1 = cluster.member("sgp1").peer_url
    assert added is not None and (added.action, added.peer_url) == ("add-learner", sgp1)
    assert promoted is None
    assert sgp1 not in _voting(cluster)
