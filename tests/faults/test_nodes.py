"""Site failures against a real 3-member etcd cluster with node and gateway processes."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
import tomllib
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devnet import logdump
from devnet.etcdcluster import EtcdCluster
from devnet.flow import OrderClients, order_flow
from devnet.http import http_json
from devnet.nodes import Sites, make_sites, write_config
from validator.engine import snapshot as snapshot_format
from validator.engine.codec import decode_object, encode_message
from validator.node.snapshot_files import sealed


def send(sites: Sites, msgs: list[dict[str, object]], batch: int = 50, site: int = 0) -> None:
    for i in range(0, len(msgs), batch):
        url = sites.sites[(site + i // batch) % len(sites.sites)].gateway_url
        status, body = http_json(url + "/orders/batch", msgs[i : i + batch])
        assert status == 200, body


def hashes(sites: Sites, timeout: float = 20.0) -> dict[str, Any]:
    """Each running node's state hash, once all of them have applied the same chunk."""
    deadline = time.monotonic() + timeout
    while True:
        got = {s.name: http_json(s.node_url + "/state_hash")[1] for s in sites.sites if s.node}
        if len({(v["applied_chunk"], v["hash"]) for v in got.values()}) == 1:
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.1)


def read_log(cluster: EtcdCluster) -> dict[tuple[int, int], bytes]:
    """Every logged message by (revision, index), read straight from a live etcd member."""
    for m in cluster.members:
        if m.process is not None:
            return logdump.by_position(logdump.read_log(m.client_url))
    raise AssertionError("no etcd member answered")


def test_killed_validator_restarts_from_its_snapshot_to_the_same_state_hash(sites: Sites) -> None:
    msgs = order_flow(3000)
    send(sites, msgs[:1500])
    sites.kill_node("ams1")  # SIGKILL mid-stream
    send(sites, msgs[1500:2500])
    sites.start_node(sites.site("ams1"))
    sites.wait_up()
    send(sites, msgs[2500:])
    got = hashes(sites)
    assert got["ams1"]["seq"] == got["fra1"]["seq"] > 2900
    events = [json.loads(line) for line in (sites.root / "ams1-run.log").read_text().splitlines()]
    restored = [e for e in events if e["event"].startswith("restored snapshot at chunk")]
    assert restored and restored[-1]["logger"] == "validator.node.follower"  # JSON lines only


def test_killing_the_etcd_leader_loses_no_acknowledged_order(
    uncompacted_sites: Sites, cluster: EtcdCluster
) -> None:
    sites = uncompacted_sites
    clients = OrderClients([s.gateway_url for s in sites.sites], order_flow(4000), timeout=2)
    clients.start()
    # more than 100 orders acknowledged before the kill (however slow the machine is today)
    give_up = time.monotonic() + 30.0
    while len(clients.acked) <= 100 and time.monotonic() < give_up:
        time.sleep(0.1)
    leader = cluster.leader()
    killed_at = time.monotonic()
    cluster.kill(leader)
    time.sleep(2.0)
    # Keep the clients going until writes resumed or the 3 s bound has passed: stopped at 2 s
    # (when requests sent at the kill time out, 2 s client timeout), a resumption between 2
    # and 3 s was never seen and the test failed "writes never resumed" inside its own bound.
    while time.monotonic() < killed_at + 3.0 and not any(
        t > killed_at + 0.01 for t in clients.ack_times
    ):
        time.sleep(0.05)
    clients.finish()
    resumed = min((t for t in clients.ack_times if t > killed_at + 0.01), default=None)
    assert resumed is not None, "writes never resumed"
    assert resumed - killed_at < 3.0
    acked = {(rev, pos): msg for rev, pos, msg in clients.acked}
    logged = read_log(cluster)
    assert len(acked) > 100
    for position, msg in acked.items():
        assert json.loads(logged[position]) == msg, f"acknowledged {position} lost or changed"


def test_without_quorum_gateways_refuse_and_resume_when_it_returns(
    uncompacted_sites: Sites, cluster: EtcdCluster
) -> None:
    """Without quorum the answer is never a guess: 503 "refused" means the order can never be
    logged, 504 "unknown" that it may be; the retry with the same id is acknowledged once the
    quorum returns, and the log then holds one copy (refused) or at most two (unknown)."""
    sites = uncompacted_sites
    msgs = order_flow(200)
    send(sites, msgs[:100])
    cluster.kill("ams1")
    cluster.kill("dal1")
    status, body = http_json(sites.site("fra1").gateway_url + "/orders", msgs[100], timeout=8)
    assert (status, body["outcome"]) in ((503, "refused"), (504, "unknown")), body
    assert ("NOT acknowledged" if status == 503 else "outcome unknown") in body["error"]
    first = status
    cluster.restart("ams1")
    deadline = time.monotonic() + 15
    while True:
        status, body = http_json(sites.site("fra1").gateway_url + "/orders", msgs[100], timeout=8)
        if status == 200:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    send(sites, msgs[101:], site=0)
    line = encode_message(decode_object(msgs[100]))
    copies = sum(1 for logged in read_log(cluster).values() if logged == line)
    assert copies == 1 if first == 503 else 1 <= copies <= 2


def _set_config(sites: Sites, name: str, **values: Any) -> None:
    site = sites.site(name)
    write_config(site.config, {**tomllib.loads(site.config.read_text()), **values})


def test_a_node_whose_state_diverges_stops_serving_says_why_and_re_syncs_when_allowed(
    sites: Sites,
) -> None:
    """A node restarted from a snapshot whose state differs (a bug wrote it; damage on disk is
    refused at load, see ``tests/unit/test_snapshot_files.py``) must not serve:
    at the next batch boundary its root disagrees with the committee's and it says so. With no
    re-sync allowed (``divergence_resyncs = 0``) it stays so. Restarted with re-syncs allowed,
    it diverges again (its snapshots are still of the wrong state), sets them aside, takes a
    peer's snapshot the committee vouches for, and serves the committee's state again."""
    msgs = order_flow(2400)
    send(sites, msgs[:800])
    hashes(sites)
    sites.kill_node("ams1")
    snapshot = sorted((sites.root / "ams1" / "snapshots").glob("snap-*.bin"))[-1]
    header, _, body = snapshot.read_bytes().partition(b"\n")
    state = snapshot_format.load(body)
    account = max(state.accounts, key=lambda a: a.cash)
    account.cash += 1  # one unit of cash out of thin air: a valid, different state
    changed = snapshot_format.dump_from_scratch(state)  # ``dump`` keeps what the engine changed
    meta = sealed({**json.loads(header), "sha256": hashlib.sha256(changed).hexdigest()})
    snapshot.write_bytes(json.dumps(meta).encode() + b"\n" + changed)  # consistent: no damage
    _set_config(sites, "ams1", divergence_resyncs=0)
    sites.start_node(sites.site("ams1"))
    sites.wait_up()
    send(sites, msgs[800:1600])
    deadline = time.monotonic() + 20
    while True:
        status, body_ = http_json(sites.site("ams1").node_url + "/health")
        if status == 503:
            break
        assert time.monotonic() < deadline, body_
        time.sleep(0.1)
    assert "DIVERGED" in body_["error"] and "committee root" in body_["error"]
    status, refused = http_json(sites.site("ams1").node_url + "/book/BTC-1-60000-C")
    assert status == 503 and refused["error"] == body_["error"]
    run_log = sites.root / "ams1-run.log"
    assert "DIVERGED" in run_log.read_text() and "no re-sync left" in run_log.read_text()
    deadline = time.monotonic() + 20
    while True:  # the others still serve, and agree once both applied the same chunks
        healthy = {
            s.name: http_json(s.node_url + "/state_hash")[1]
            for s in sites.sites
            if s.name != "ams1"
        }
        if healthy["fra1"]["applied_chunk"] == healthy["dal1"]["applied_chunk"]:
            break
        assert time.monotonic() < deadline, healthy
        time.sleep(0.1)
    assert healthy["fra1"]["hash"] == healthy["dal1"]["hash"]
    assert http_json(sites.site("ams1").node_url + "/health")[0] == 503  # for good
    assert list(sites.root.glob("ams1/snapshots.diverged-*")) == []

    sites.kill_node("ams1")
    _set_config(sites, "ams1", divergence_resyncs=1)
    sites.start_node(sites.site("ams1"))
    sites.wait_up()
    send(sites, msgs[1600:])
    deadline = time.monotonic() + 30
    while "re-synced at chunk" not in (text := run_log.read_text()):
        assert time.monotonic() < deadline, "the node did not re-sync"
        time.sleep(0.1)
    assert "re-syncing (1 of 1)" in text
    assert text.index("DIVERGED", text.index("no re-sync left")) < text.index("re-syncing (1 of 1)")
    got = hashes(sites)  # ams1 serves again, on the committee's state
    assert set(got) == {"ams1", "fra1", "dal1"}
    aside = list(sites.root.glob("ams1/snapshots.diverged-*"))
    assert len(aside) == 1 and "DIVERGED" in (aside[0] / "WHY").read_text()
    assert list(aside[0].glob("snap-*.bin")), "the diverged snapshots were not kept"


class TamperingPeer:
    """A peer that serves another node's newest snapshot with one byte of its state changed
    (what a compromised or broken peer might send)."""

    def __init__(self, honest: str) -> None:
        source = honest
        self.tamper = True
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                raw = urllib.request.urlopen(source + "/snapshot", timeout=10).read()
                header, _, body = raw.partition(b"\n")
                flipped = bytearray(body)
                if peer.tamper:
                    flipped[len(flipped) // 2] ^= 0x01
                self.send_response(200)
                self.end_headers()
                self.wfile.write(header + b"\n" + bytes(flipped))

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def restart_empty(sites: Sites, name: str, peers: list[str]) -> None:
    """The site's node on a new machine: no snapshots on disk, asking ``peers`` in order."""
    site = sites.site(name)
    shutil.rmtree(sites.root / name)
    config = tomllib.loads(site.config.read_text())
    write_config(site.config, {**config, "peers": peers})
    sites.start_node(site)
    sites.wait_up()


def test_a_node_on_an_empty_disk_catches_up_by_a_verified_peer_snapshot_and_refuses_a_tampered_one(
    cluster: EtcdCluster, tmp_path: Path
) -> None:
    """Before, a node whose log position etcd had compacted away stopped serving for good
    ("it needs a peer's snapshot"). Now it asks its peers; a snapshot whose state root is not
    the one most of the committee published is refused with the reason, and the next peer's is
    taken. With only a tampering peer it does not serve and says why, and keeps trying: once the
    peer serves the true snapshot, it catches up."""
    sites = make_sites(
        cluster, tmp_path, snapshot_every=4, batch_every=2, etcd_timeout=1.0, log_retention=6.0
    )
    try:
        msgs = order_flow(4000)
        for k in range(6):  # orders for longer than log_retention, so the log is compacted
            send(sites, msgs[k * 300 : (k + 1) * 300])
            time.sleep(1.5)
        assert "log compacted" in (sites.root / "fra1-run.log").read_text()
        sites.kill_node("ams1")
        send(sites, msgs[1800:2400])  # what the replaced machine must also get
        fra1, dal1 = sites.site("fra1").node_url, sites.site("dal1").node_url
        liar = TamperingPeer(fra1)
        restart_empty(sites, "ams1", [liar.url, fra1, dal1])
        send(sites, msgs[2400:3000])
        got = hashes(sites, timeout=40)
        assert got["ams1"]["hash"] == got["fra1"]["hash"] and got["ams1"]["seq"] > 2900
        text = (sites.root / "ams1-run.log").read_text()
        assert f"snapshot transfer refused: {liar.url}: state root" in text
        assert "is not the committee's" in text
        assert f"caught up by snapshot transfer from {fra1} at chunk" in text

        sites.kill_node("ams1")  # again, and this time only the liar to ask
        send(sites, msgs[3000:3600])
        restart_empty(sites, "ams1", [liar.url])
        deadline = time.monotonic() + 30
        while (health := http_json(sites.site("ams1").node_url + "/health"))[0] != 503:
            assert time.monotonic() < deadline, health
            time.sleep(0.2)
        error = health[1]["error"]
        assert "no peer's snapshot was accepted" in error and "is not the committee's" in error
        send(sites, msgs[3600:])  # the others go on
        assert http_json(sites.site("fra1").node_url + "/health")[0] == 200
        # the peer serves the true snapshot again: the node, which kept trying, catches up
        # (before, one failed round stopped it until an operator restarted it)
        liar.tamper = False
        deadline = time.monotonic() + 40
        while (health := http_json(sites.site("ams1").node_url + "/health"))[0] != 200:
            assert time.monotonic() < deadline, health
            time.sleep(0.2)
        got = hashes(sites, timeout=20)
        assert got["ams1"]["hash"] == got["fra1"]["hash"]
        assert got["ams1"]["seq"] == got["fra1"]["seq"] > 3900
    finally:
        sites.stop()
