"""The harness's member replacement (the campaign's ``replace-member`` fault) on a real etcd
cluster, started the moment the cluster is: etcd refuses a removal (503, "unhealthy cluster")
until every peer has been connected for 5 s, which failed the campaign's first run once."""

from __future__ import annotations

import time
from pathlib import Path

from devnet.etcdcluster import start_cluster
from devnet.http import post_json


def test_a_member_replaced_right_after_the_cluster_started_is_removed_added_and_serves(
    tmp_path: Path,
) -> None:
    with start_cluster(["fra1", "ams1", "dal1"], tmp_path / "etcd") as cluster:
        before = cluster.member_id("ams1", timeout=5)
        assert before is not None
        started = time.monotonic()
        cluster.replace("ams1")  # at once: the peers have been connected for well under 5 s
        assert time.monotonic() - started < 40
        helper = cluster.member("fra1").client_url
        listed = post_json(f"{helper}/v3/cluster/member/list", {}, timeout=5)["members"]
        assert len(listed) == 3
        deadline = time.monotonic() + 15
        while (after := cluster.member_id("ams1")) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert after is not None and after != before  # a new member, not the old one restarted
        assert before not in {str(m["ID"]) for m in listed}
