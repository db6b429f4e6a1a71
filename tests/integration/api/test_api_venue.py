"""GET /venue: the venue's nodes asked now. A real node answers in the demo's test
(tests/integration/test_devnet.py); here, what the API does with none configured, a node that
does not answer, a venue file that is missing or garbage, and hostile answers (a small HTTP server
in the test answering what a broken or malicious node might)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from devnet.ports import free_port
from tests.integration.api.conftest import ApiWorld, api_settings

ANSWERS: dict[str, bytes] = {
    "/leader/venue": json.dumps(
        {
            "node": "n1",
            "serving": True,
            "seq": 7,
            "applied_chunk": 1,
            "etcd_leader": True,
            "etcd_members": [
                {"name": "fra1", "peer_url": "http://a:2380", "learner": False},
                {"name": "ams1", "peer_url": "http://b:2380", "learner": False},
                {"name": "", "peer_url": "http://c:2380", "learner": True},
            ],
        }
    ).encode(),
    "/follower/venue": json.dumps(
        {
            "node": "n2",
            "serving": False,
            "seq": 3,
            "applied_chunk": 0,
            "etcd_leader": False,
            "etcd_members": [{"name": "fra1", "peer_url": "http://a:2380", "learner": False}],
        }
    ).encode(),
    "/members/venue": json.dumps(
        {
            "node": "n3",
            "serving": True,
            "seq": 1,
            "etcd_leader": None,
            "etcd_members": [{"name": "x", "learner": "no"}],
        }
    ).encode(),
    "/garbage/venue": b"[" * 50_000,
    "/list/venue": b"[1, 2]",
    "/types/venue": json.dumps({"node": 5, "serving": "yes", "seq": -4, "etcd_leader": 1}).encode(),
    "/huge/venue": b'{"node": "' + b"x" * 100_000 + b'"}',
}


class Hostile(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = ANSWERS.get(self.path)
        self.send_response(200 if body is not None else 500)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body or b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def nodes() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def venue(api_world: ApiWorld, **settings: object) -> dict[str, object]:
    app = create_app(api_settings(api_world.path, api_world.rpc_url, **settings))
    with TestClient(app) as client:
        response = client.get("/venue")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_no_venue_configured_or_no_file_yet_says_so(api_world: ApiWorld, tmp_path: Path) -> None:
    assert venue(api_world) == {
        "configured": False, "leader": None, "etcd_voting": None, "etcd_learners": None,
        "nodes": [],
    }  # fmt: skip
    absent = tmp_path / "nodes.json"  # the venue has not started (or has stopped)
    assert venue(api_world, venue_file=absent)["configured"] is False
    absent.write_bytes(b"{not json")
    assert venue(api_world, venue_file=absent)["configured"] is False


def test_the_leader_is_the_node_whose_member_leads_and_the_rest_are_reported(
    api_world: ApiWorld, nodes: str, tmp_path: Path
) -> None:
    listed = tmp_path / "nodes.json"
    listed.write_text(
        json.dumps(
            [
                {"site": "fra1", "url": f"{nodes}/leader"},
                {"site": "ams1", "url": f"{nodes}/follower"},
            ]
        )
    )
    gone = f"http://127.0.0.1:{free_port()}"
    body = venue(api_world, venue_file=listed, venue_nodes=[gone])
    assert body["configured"] is True and body["leader"] == "fra1"
    # the membership the leader's node sees (the follower's, listing one member, is older)
    assert (body["etcd_voting"], body["etcd_learners"]) == (2, 1)
    by_url = {n["url"]: n for n in body["nodes"]}  # type: ignore[union-attr]
    assert by_url[f"{nodes}/leader"] == {
        "site": "fra1", "url": f"{nodes}/leader", "reachable": True, "node": "n1",
        "serving": True, "seq": 7, "etcd_leader": True, "etcd_voting": 2, "etcd_learners": 1,
        "error": None,
    }  # fmt: skip
    assert (by_url[f"{nodes}/follower"]["etcd_voting"], by_url[gone]["etcd_voting"]) == (1, None)
    assert by_url[f"{nodes}/follower"]["serving"] is False
    assert by_url[gone]["reachable"] is False and by_url[gone]["error"]


def test_hostile_answers_are_unreachable_or_typed_never_a_500(
    api_world: ApiWorld, nodes: str
) -> None:
    urls = [f"{nodes}/{p}" for p in ("garbage", "list", "types", "huge", "missing", "members")]
    body = venue(api_world, venue_nodes=urls)
    by_url = {n["url"]: n for n in body["nodes"]}  # type: ignore[union-attr]
    assert body["leader"] is None
    for bad in ("garbage", "list", "huge", "missing"):
        assert by_url[f"{nodes}/{bad}"]["reachable"] is False, by_url[f"{nodes}/{bad}"]
    typed = by_url[f"{nodes}/types"]
    assert typed["reachable"] is True
    assert (typed["node"], typed["serving"], typed["seq"], typed["etcd_leader"]) == (
        None, None, None, None,
    )  # fmt: skip
    # a membership list whose entries do not say learner or voting counts as unknown
    malformed = by_url[f"{nodes}/members"]
    assert malformed["reachable"] is True and malformed["etcd_voting"] is None
    assert body["etcd_voting"] is None
