"""The self-heal drill: a committee site dies, its heartbeat lapses, the registry marks it stale
on-chain, and a keeper's new committee lands; each step timed.

One run: a real anvil with one-second blocks, the contracts deployed, one real attestor per
example site (fra1, ams1, dal1) with a short heartbeat, a validator staked on each site's node, a
``redundancy-keeper`` process (which selects the first committee itself), then a SIGKILL of one
committee site's attestor at a random moment. Figures: kill to stale on-chain (the first block
whose timestamp passes the site's last heartbeat's expiry), stale to the new committee on-chain
(seconds and blocks), and kill to new committee beside the goal of two heartbeat intervals plus
three blocks.

With ``venue`` (``scripts/drill.py --only self-heal --venue``) the venue runs too: an etcd
member, a settling node and a gateway at each committee site under a steady order flow; the
whole site is SIGKILLed (attestor, etcd member, node, gateway), and the drill also times the
new committee's first settlement batch on-chain after the selection, counts acknowledged orders
missing from the log, and checks the surviving nodes' state hashes agree. A fourth site,
``STANDBY_SITE`` (attested, half the stake, so a committee of three leaves it out), runs its
node and gateway from the start with its etcd member planned but not started; every node
follows the committee's membership (``validator.node.membership``), so after the death the dead
member is removed and the standby's added as a learner (a thread playing its operator starts
it) and promoted; a watcher thread times each change.

Emulated on one machine (say so when quoting): a site's death is its processes' SIGKILL; the
keeper watches over loopback.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Self

from eth_account import Account

from devnet import logdump
from devnet.attestors import start_sites, stop_sites, wait_fresh
from devnet.demo import ANVIL_ACCOUNTS, NODE_TIMEOUT, VALIDATOR_ACCOUNTS, VALIDATOR_STAKE
from devnet.errors import DevnetError
from devnet.etcdcluster import EtcdCluster, start_cluster
from devnet.examples import example_site
from devnet.flow import OrderClients, order_flow
from devnet.http import http_json, post_json
from devnet.localchain import dev_keys, start_chain
from devnet.nodes import Sites, make_sites
from devnet.venue import SUBMITTER_ACCOUNTS, chain_settings
from redundancy.chain import connect
from redundancy.deployment import Deployment, deploy
from redundancy.domains import Kind, facility_id
from redundancy.ledger import SettlementClient
from redundancy.registry import RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import GeographyPolicy, SelectorClient

BLOCK_SECONDS = 1
#: the drill's world: three equal sites (a committee of three, so one death leaves the old
#: committee without a 2/3 majority and only the new one can settle)
DRILL_SITES = ("fra1", "ams1", "dal1")
#: a fourth site, attested and staked but with half the stake, so a committee of three leaves it
#: out until one of the three dies; with the venue its etcd member stands by and joins (as a
#: learner, then promoted) when the new committee takes it in
STANDBY_SITE = "lon1"
COMMITTEE_SIZE = 3
#: seconds between a node's membership checks in the drill's venue
MEMBERSHIP_INTERVAL = 0.5
KEEPER_ACCOUNT = 9
#: a long minimum epoch: only the emergency rule can replace the committee during the drill
MIN_EPOCH_SECONDS = 3_600
#: chunks per settlement batch in the drill's venue (a batch every second or so under its flow)
VENUE_BATCH_EVERY = 100
VENUE_ORDERS = 200_000


def _wait(what: Any, timeout: float, message: str, step: float = 0.05) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return time.time()
        time.sleep(step)
    raise DevnetError(message)


def start_venue(
    tmp: Path,
    rpc_url: str,
    deployment_file: Path,
    sites: list[str],
    stack: ExitStack,
    standby: str | None = None,
) -> tuple[Sites, OrderClients]:
    """The venue on the committee's sites (an etcd member, a node that settles and a gateway
    each; the log never compacted, so every acknowledged order can be found after the drill)
    and a steady order flow through their gateways. With ``standby``, that site runs a node and
    a gateway too (following the log through the others' etcd members, taking no orders), its
    etcd member is planned but not started, and every node follows the committee's membership
    through a venue directory naming all the sites."""
    deployment = Deployment.read(deployment_file)
    chains = chain_settings(rpc_url, deployment, sites)
    cluster = stack.enter_context(start_cluster(sites, tmp / "etcd"))
    extra: dict[str, Any] = {}
    if standby is not None:
        cluster.standby(standby)
        keys = {Account.from_key(k).address: k for k in dev_keys("anvil", ANVIL_ACCOUNTS)}
        chains[standby] = {
            **chains[sites[0]],
            "dev_node_key": keys[example_site(standby).node.address],
            "dev_submitter_key": dev_keys("anvil", ANVIL_ACCOUNTS)[
                SUBMITTER_ACCOUNTS[len(sites) % len(SUBMITTER_ACCOUNTS)]
            ],
        }
        directory = tmp / "venue-directory.json"
        directory.write_text(
            json.dumps(
                [
                    {
                        "name": m.name,
                        "facility_id": "0x" + facility_id(m.name).hex(),
                        "etcd_peer_url": m.peer_url,
                        "etcd_client_url": m.advertised_client_url,
                    }
                    for m in cluster.members
                ],
                indent=1,
            )
        )
        extra = {
            "venue_directory": directory,
            "membership_interval": MEMBERSHIP_INTERVAL,
            "learn_members_every": 1.0,
        }
    venue = make_sites(
        cluster,
        tmp / "nodes",
        chain=chains,
        snapshot_every=10**6,
        batch_every=VENUE_BATCH_EVERY,
        **extra,
    )
    stack.callback(venue.stop)
    clients = OrderClients(
        [s.gateway_url for s in venue.sites if s.name != standby],
        order_flow(VENUE_ORDERS, 11),
        timeout=2,
    ).start()
    stack.callback(clients.finish)
    return venue, clients


def listed_members(cluster: EtcdCluster) -> dict[str, bool] | None:
    """Peer URL -> learner?, as a live member lists the cluster (None: no member answered)."""
    for m in cluster.members:
        if m.process is None:
            continue
        try:
            listed = post_json(f"{m.client_url}/v3/cluster/member/list", {}, timeout=1)
        except OSError:
            continue
        return {x["peerURLs"][0]: bool(x.get("isLearner")) for x in listed.get("members", [])}
    return None


class _Poller:
    """A daemon thread running ``poll`` every ``every`` seconds until it returns True or
    ``stop`` is called."""

    every = 0.02

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def poll(self) -> bool:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if self.poll():
                return

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)
        self._stop.set()


class MembershipTimes(_Poller):
    """Polls the cluster's membership and keeps the first moment (wall clock) of each change
    the drill waits for: the dead member gone, the standby listed (as a learner), the standby
    voting, and the membership equal to ``wanted``."""

    def __init__(self, cluster: EtcdCluster, dead: str, standby: str, wanted: set[str]) -> None:
        super().__init__()
        self.cluster = cluster
        self.dead = cluster.member(dead).peer_url
        self.standby = cluster.member(standby).peer_url
        self.wanted = wanted
        self.times: dict[str, float] = {}

    def poll(self) -> bool:
        listed = listed_members(self.cluster)
        if listed is None:
            return False
        now = time.time()
        seen = {
            "dead_removed": self.dead not in listed,
            "standby_listed": self.standby in listed,
            "standby_voting": listed.get(self.standby) is False,
            "converged": {u for u, learner in listed.items() if not learner} == self.wanted
            and not any(listed.values()),
        }
        for key, true in seen.items():
            if true:
                self.times.setdefault(key, now)
        return "converged" in self.times

    def wait(self, timeout: float) -> dict[str, float]:
        self.stop(timeout)
        if "converged" not in self.times:
            raise DevnetError(f"the membership did not follow the new committee: {self.times}")
        return self.times


class StandbyOperator(_Poller):
    """What the standby site's operator does: once the cluster lists the site's peer URL (the
    venue added it as a learner), start its etcd member to join."""

    every = 0.05

    def __init__(self, cluster: EtcdCluster, name: str) -> None:
        super().__init__()
        self.cluster = cluster
        self.name = name
        self.started_at: float | None = None

    def poll(self) -> bool:
        listed = listed_members(self.cluster)
        if listed is None or self.cluster.member(self.name).peer_url not in listed:
            return False
        self.cluster.join(self.name)
        self.started_at = time.time()
        return True


def ledger_transactions(w3: Any, ledger: str, since: int) -> tuple[int, int]:
    """(succeeded, reverted) transactions sent to the ledger after block ``since``."""
    ok = reverted = 0
    for number in range(since + 1, int(w3.eth.block_number) + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["to"] == ledger:
                if int(w3.eth.get_transaction_receipt(tx["hash"])["status"]) == 1:
                    ok += 1
                else:
                    reverted += 1
    return ok, reverted


def venue_outcome(venue: Sites, clients: OrderClients, victim: str) -> dict[str, Any]:
    """After the drill: acknowledged orders missing from the log (read from a survivor's etcd
    member), and whether the surviving nodes' state hashes agree."""
    clients.finish()
    alive = [s for s in venue.sites if s.name != victim]
    deadline = time.monotonic() + 30
    while True:
        got = {s.name: http_json(s.node_url + "/state_hash")[1] for s in alive}
        if len({(v["applied_chunk"], v["hash"]) for v in got.values()}) == 1:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    agree = len({(v["applied_chunk"], v["hash"]) for v in got.values()}) == 1
    member = venue.cluster.member(alive[0].name)
    logged = logdump.by_position(logdump.read_log(member.client_url))
    lost = sum(
        1 for rev, pos, msg in clients.acked if (rev, pos) not in logged
    )  # an ack names the (revision, index) its order was written at
    return {"orders_acked": len(clients.acked), "orders_lost": lost, "hashes_agree": agree}


def run_self_heal(
    tmp: Path, rng: random.Random, heartbeat: int, venue: bool = False
) -> dict[str, Any]:
    """One drill; its figures. With ``venue``, the venue runs on the committee's sites under a
    steady order flow, the whole site dies (attestor, etcd member, node, gateway), and the drill
    also times the first settlement batch the new committee commits."""
    with start_chain(
        "anvil", block_time=BLOCK_SECONDS, extra_args=("--accounts", str(ANVIL_ACCOUNTS))
    ) as chain:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        keys = dev_keys("anvil", ANVIL_ACCOUNTS)  # the standby's accounts are beyond the tenth
        deployment = deploy(w3, owner)
        deployment_file = tmp / "deployment.json"
        deployment.write(deployment_file)
        registry = RegistryClient(w3, deployment.registry, owner)
        selector = SelectorClient(w3, deployment.selector, owner)
        selector.set_geography_policy(GeographyPolicy(min_epoch_seconds=MIN_EPOCH_SECONDS))
        selector.set_diversity_policy(DiversityPolicy(COMMITTEE_SIZE))
        names = list(DRILL_SITES)
        sites = start_sites(
            [*names, STANDBY_SITE],
            chain.rpc_url,
            registry,
            owner,
            deployment_file,
            tmp,
            {"ATTESTOR_HEALTH__HEARTBEAT_INTERVAL": str(heartbeat)},
        )
        keeper: subprocess.Popen[bytes] | None = None
        stack = ExitStack()
        try:
            if not wait_fresh(registry, sites, 180):
                raise DevnetError("the sites did not all turn fresh within 180 s")
            for site in map(example_site, [*DRILL_SITES, STANDBY_SITE]):
                node = site.node.address
                _wait(
                    lambda n=node, f=site.facility.facility_id: (
                        registry.node_info(n).facility_id == f
                    ),
                    NODE_TIMEOUT,
                    f"{site.name}'s node was not attested",
                    0.5,
                )
                operator = Account.from_key(keys[VALIDATOR_ACCOUNTS[site.name]])
                # the node key signs the binding (the example nodes are development accounts)
                node_key = next(
                    a for a in map(Account.from_key, keys) if a.address.lower() == node.lower()
                )
                stake = VALIDATOR_STAKE // 2 if site.name == STANDBY_SITE else VALIDATOR_STAKE
                registry.register_validator(
                    site.facility.facility_id, node_key, stake, sender=operator
                )
            keeper_log = (tmp / "keeper.log").open("wb")
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")},
                "KEEPER_RPC_URL": chain.rpc_url,
                "KEEPER_SELECTOR": deployment.selector,
                "KEEPER_DEV_KEY": chain.dev_keys[KEEPER_ACCOUNT],
                "KEEPER_POLL_INTERVAL": "0.1",
            }
            keeper = subprocess.Popen(
                [sys.executable, "-m", "keeper"], stdout=keeper_log, stderr=keeper_log, env=env
            )
            _wait(lambda: selector.current_committee().epoch == 1, 60, "no first committee")
            first = selector.current_committee()
            validators = {registry.validator_info(m).facility_id: m for m in first.members}
            victim = rng.choice(names)
            ledger = SettlementClient(w3, deployment.settlement)
            venue_sites: Sites | None = None
            clients: OrderClients | None = None
            if venue:
                venue_sites, clients = start_venue(
                    tmp, chain.rpc_url, deployment_file, names, stack, STANDBY_SITE
                )
                standby = StandbyOperator(venue_sites.cluster, STANDBY_SITE).start()
                stack.callback(standby.stop, 0)
                _wait(lambda: ledger.last_epoch() == 1, 120, "no batch by the first committee")
            # a random moment within one heartbeat interval
            time.sleep(rng.uniform(0, heartbeat))
            dying = next(s for s in sites if s.name == victim)
            killed_at = time.time()
            dying.process.send_signal(signal.SIGKILL)
            membership: MembershipTimes | None = None
            if venue_sites is not None:
                venue_sites.kill_site(victim)
                wanted = {
                    venue_sites.cluster.member(n).peer_url
                    for n in [*names, STANDBY_SITE]
                    if n != victim
                }
                membership = MembershipTimes(
                    venue_sites.cluster, victim, STANDBY_SITE, wanted
                ).start()
            fid = facility_id(victim)
            stale_seen = _wait(
                lambda: registry.facility_status(fid).stale, 10 * heartbeat + 60, "never stale"
            )
            expiry = registry.facility(fid).valid_until[Kind.HEALTH]
            selected_seen = _wait(
                lambda: selector.current_committee().epoch == 2, 120, "no new committee"
            )
            (event,) = selector.event_logs("CommitteeSelected", epoch=2)
            selected_block = int(event["blockNumber"])
            selected_time = int(w3.eth.get_block(selected_block)["timestamp"])
            stale_block = next(
                n
                for n in range(selected_block, 0, -1)
                if int(w3.eth.get_block(n - 1)["timestamp"]) < expiry
            )
            emergency = selector.event_logs("EmergencySelection", epoch=2)
            new = selector.current_committee().members
            goal = 2 * heartbeat + 3 * BLOCK_SECONDS
            extra: dict[str, Any] = {}
            if venue_sites is not None and clients is not None and membership is not None:
                batch_seen = _wait(
                    lambda: ledger.last_epoch() == 2, 120, "no batch by the new committee"
                )
                changed = membership.wait(120)
                member_seen = changed["converged"]
                committed, reverted = ledger_transactions(w3, deployment.settlement, 0)
                extra = {
                    "selected_to_first_batch_s": round(batch_seen - selected_seen, 3),
                    "selected_to_membership_s": round(member_seen - selected_seen, 3),
                    **{
                        f"selected_to_{k}_s": round(t - selected_seen, 3)
                        for k, t in changed.items()
                        if k != "converged"
                    },
                    "standby_started_after_selection_s": round(
                        (standby.started_at or member_seen) - selected_seen, 3
                    ),
                    "selected_to_venue_s": round(max(batch_seen, member_seen) - selected_seen, 3),
                    "batch_goal_s": 5.0,
                    "batches_committed": committed,
                    "batch_submissions_reverted": reverted,
                    **venue_outcome(venue_sites, clients, victim),
                }
            return {
                "victim": victim,
                "heartbeat_s": heartbeat,
                "kill_to_stale_s": round(stale_seen - killed_at, 3),
                "stale_to_selected_s": round(selected_seen - stale_seen, 3),
                "stale_to_selected_blocks": selected_block - stale_block,
                "stale_to_selected_chain_s": selected_time - expiry,
                "kill_to_selected_s": round(selected_seen - killed_at, 3),
                "goal_s": goal,
                "met": selected_seen - killed_at <= goal,
                "emergency": bool(emergency),
                "victim_removed": validators.get(fid) not in new,
                "new_committee_size": len(new),
                **extra,
            }
        finally:
            stack.close()  # the venue first: its nodes settle through the chain
            if keeper is not None:
                keeper.send_signal(signal.SIGTERM)
                try:
                    keeper.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    keeper.kill()
                    keeper.wait()
            stop_sites(sites)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians, worst cases and how many runs met the goal."""

    def ordered(key: str) -> list[float]:
        return sorted(float(r[key]) for r in runs)

    def pct(key: str, q: float) -> float:
        values = ordered(key)
        return values[min(len(values) - 1, int(q * len(values)))]

    venue: dict[str, Any] = {}
    if all("selected_to_first_batch_s" in r for r in runs):
        venue = {
            "selected_to_first_batch_median_s": pct("selected_to_first_batch_s", 0.5),
            "selected_to_first_batch_p99_s": pct("selected_to_first_batch_s", 0.99),
            "selected_to_dead_removed_median_s": pct("selected_to_dead_removed_s", 0.5),
            "selected_to_dead_removed_p99_s": pct("selected_to_dead_removed_s", 0.99),
            "selected_to_standby_voting_median_s": pct("selected_to_standby_voting_s", 0.5),
            "selected_to_standby_voting_p99_s": pct("selected_to_standby_voting_s", 0.99),
            "selected_to_membership_median_s": pct("selected_to_membership_s", 0.5),
            "selected_to_membership_p99_s": pct("selected_to_membership_s", 0.99),
            "selected_to_venue_median_s": pct("selected_to_venue_s", 0.5),
            "selected_to_venue_p99_s": pct("selected_to_venue_s", 0.99),
            "batch_goal_s": runs[0]["batch_goal_s"],
            "orders_acked": sum(int(r["orders_acked"]) for r in runs),
            "orders_lost": sum(int(r["orders_lost"]) for r in runs),
            "batches_committed": sum(int(r["batches_committed"]) for r in runs),
            "batch_submissions_reverted": sum(int(r["batch_submissions_reverted"]) for r in runs),
            "hashes_agree": all(r["hashes_agree"] for r in runs),
        }
    return {
        **venue,
        "runs": len(runs),
        "kill_to_stale_median_s": pct("kill_to_stale_s", 0.5),
        "stale_to_selected_median_s": pct("stale_to_selected_s", 0.5),
        "stale_to_selected_blocks_max": max(int(r["stale_to_selected_blocks"]) for r in runs),
        "kill_to_selected_median_s": pct("kill_to_selected_s", 0.5),
        "kill_to_selected_p99_s": pct("kill_to_selected_s", 0.99),
        "goal_s": runs[0]["goal_s"],
        "met": sum(bool(r["met"]) for r in runs),
        "all_emergency": all(r["emergency"] for r in runs),
        "all_victims_removed": all(r["victim_removed"] for r in runs),
    }
