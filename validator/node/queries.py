"""Read queries a node serves from its own engine: health, book depth, accounts, positions.

A node that does not serve (diverged from the committee, or still catching up) answers every query
with 503 and the reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from validator.node.errors import EtcdError
from validator.node.follower import Node
from validator.node.sitewatch import LeadershipMover, SiteWatch
from validator.node.snapshot_files import body_problem

log = logging.getLogger("validator.node.queries")


def _damage(raw: bytes) -> str | None:
    """Why a snapshot file's body does not match its header's sha256 (None if it does)."""
    end = raw.find(b"\n")
    try:
        meta = json.loads(raw[: max(end, 0)])
    except ValueError:
        return "unreadable header"
    return body_problem(meta, memoryview(raw)[end + 1 :])  # no copy of a large body


def create_app(
    node: Node, watch: SiteWatch | None = None, mover: LeadershipMover | None = None
) -> FastAPI:
    app = FastAPI(title=f"validator node {node.settings.node_id}")

    def refused() -> Response | None:
        if not node.serving:
            return JSONResponse({"error": node.why_not_serving}, status_code=503)
        return None

    @app.get("/health")
    async def health() -> Response:
        body: dict[str, Any] = {
            "node": node.settings.node_id,
            "serving": node.serving,
            "applied_chunk": node.applied,
            "revision": node.revision,
            "seq": node.engine.seq,
            "error": node.why_not_serving,
            "condition": None if watch is None else watch.public(),
            "leadership_moves": None if mover is None else mover.moves,
            "snapshot_failures": node.snapshot_failures,
        }
        return JSONResponse(body, status_code=200 if node.serving else 503)

    @app.get("/venue")
    async def venue() -> Response:
        """This node's place in the venue: serving or not, whether its site's etcd member
        leads the cluster (null when the member does not answer within half a second), and the
        etcd membership as the cluster lists it (null when no member answers in half a second):
        name, peer URL and learner or voting, for each member."""
        status = await node.etcd.member_status(0, 0.5)
        leads = None
        if status is not None:
            leads = str(status["header"]["member_id"]) == str(status.get("leader", ""))
        members: list[dict[str, Any]] | None = None
        try:
            listed = await node.etcd.call("cluster/member/list", {}, timeout=0.5)
            members = [
                {
                    "name": str(m.get("name", "")),
                    "peer_url": str((m.get("peerURLs") or [""])[0]),
                    "learner": bool(m.get("isLearner", False)),
                }
                for m in listed.get("members", [])
            ]
        except EtcdError:
            pass
        body = {
            "node": node.settings.node_id,
            "serving": node.serving,
            "seq": node.engine.seq,
            "applied_chunk": node.applied,
            "etcd_leader": leads,
            "etcd_members": members,
        }
        return JSONResponse(body)

    @app.get("/snapshot")
    async def snapshot() -> Response:
        """The snapshot file this node holds for the committee (header line, then the engine's
        canonical snapshot; see ``Node._snapshot``), else its newest, for a peer catching up;
        404 before the first."""
        for _attempt in range(3):  # a newer one may replace it (and delete it) meanwhile
            if node.published is None:  # not read back from etcd yet
                return JSONResponse(
                    {"error": "the held snapshot is not known yet (etcd unread)"}, status_code=503
                )
            path = node.store.path_at(node.published)
            if path is None and node.published and node.store.latest() is not None:
                # another (the newest) would skip batches the ledger lacks: a peer taking it
                # could never sign them
                return JSONResponse(
                    {"error": f"the snapshot held at chunk {node.published} is not here yet"},
                    status_code=503,
                )
            if path is None:
                return JSONResponse({"error": "no snapshot yet"}, status_code=404)
            try:
                raw = await asyncio.to_thread(path.read_bytes)
            except FileNotFoundError:
                continue
            problem = await asyncio.to_thread(_damage, raw)
            if problem is not None:  # a peer would refuse it anyway: say so at once
                log.error("held snapshot %s not served: %s", path, problem)
                return JSONResponse(
                    {"error": f"the snapshot held at chunk {node.published} is damaged: {problem}"},
                    status_code=503,
                )
            return Response(raw, media_type="application/octet-stream")
        return JSONResponse({"error": "snapshots kept changing; ask again"}, status_code=503)

    @app.get("/state_hash")
    async def state_hash() -> Response:
        return refused() or JSONResponse(
            {
                "applied_chunk": node.applied,
                "revision": node.revision,
                "seq": node.engine.seq,
                "hash": node.engine.state_hash().hex(),
            }
        )

    @app.get("/book/{series}")
    async def book(series: str) -> Response:
        bids, asks = node.engine.depth(series)
        return refused() or JSONResponse({"seq": node.engine.seq, "bids": bids, "asks": asks})

    @app.get("/accounts/{account}")
    async def account(account: str) -> Response:
        view = node.engine.account(account)
        if view is None:
            return refused() or JSONResponse({"error": "unknown account"}, status_code=404)
        body = {
            "seq": node.engine.seq,
            "cash": view.cash,
            "required": view.required,
            "available": view.available,
            "positions": view.positions,
            "orders": view.orders,
        }
        return refused() or JSONResponse(body)

    @app.get("/positions/{series}")
    async def positions(series: str) -> Response:
        return refused() or JSONResponse(
            {"seq": node.engine.seq, "positions": node.engine.positions(series)}
        )

    return app
