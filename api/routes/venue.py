"""The venue's nodes, asked now: the one off-chain view (the committee itself is on-chain)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from fastapi import APIRouter, Request

from api.schemas.venue import VenueNodePublic, VenuePublic
from api.settings import Settings
from redundancy.errors import EvidenceError
from redundancy.evidence import parse_document

router = APIRouter(prefix="/venue", tags=["venue"])

#: the most a node's answer may be (it is a handful of fields)
MAX_ANSWER = 16 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=1.0)


def venue_nodes(settings: Settings) -> list[tuple[str | None, str]]:
    """(site, url) of every node the settings name, then every one the venue file lists (an
    absent or unreadable file lists none: the venue is not running)."""
    out: list[tuple[str | None, str]] = [(None, url) for url in settings.venue_nodes]
    path: Path | None = settings.venue_file
    if path is None:
        return out
    try:
        listed = parse_document(path.read_bytes(), max_bytes=MAX_ANSWER, max_depth=4)
    except (OSError, EvidenceError):
        return out
    if isinstance(listed, list):
        for item in listed:
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                site = item.get("site")
                out.append((site if isinstance(site, str) else None, item["url"]))
    return out


async def ask(session: aiohttp.ClientSession, site: str | None, url: str) -> VenueNodePublic:
    none: dict[str, Any] = {
        "node": None,
        "serving": None,
        "seq": None,
        "etcd_leader": None,
        "etcd_voting": None,
        "etcd_learners": None,
    }
    try:
        async with session.get(url.rstrip("/") + "/venue") as reply:
            raw = await reply.content.read(MAX_ANSWER + 1)
            if reply.status != 200 or len(raw) > MAX_ANSWER:
                why = f"HTTP {reply.status}" if reply.status != 200 else "answer too large"
                return VenueNodePublic(site=site, url=url, reachable=False, error=why, **none)
            body = parse_document(raw, max_bytes=MAX_ANSWER, max_depth=4)
    except (aiohttp.ClientError, TimeoutError, EvidenceError) as exc:
        why = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"[:200]
        return VenueNodePublic(site=site, url=url, reachable=False, error=why, **none)
    if not isinstance(body, dict):
        return VenueNodePublic(site=site, url=url, reachable=False, error="not an object", **none)

    node = body.get("node")
    serving, leader, seq = body.get("serving"), body.get("etcd_leader"), body.get("seq")
    voting, learners = _membership(body.get("etcd_members"))
    return VenueNodePublic(
        site=site,
        url=url,
        reachable=True,
        node=node[:64] if isinstance(node, str) else None,
        serving=serving if isinstance(serving, bool) else None,
        seq=seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else None,
        etcd_leader=leader if isinstance(leader, bool) else None,
        etcd_voting=voting,
        etcd_learners=learners,
        error=None,
    )


def _membership(members: object) -> tuple[int | None, int | None]:
    """(voting, learners) from a node's ``etcd_members`` list; (None, None) unless it is a list
    of objects each with a boolean ``learner``."""
    if not isinstance(members, list) or not all(
        isinstance(m, dict) and isinstance(m.get("learner"), bool) for m in members
    ):
        return None, None
    learners = sum(1 for m in members if m["learner"])
    return len(members) - learners, learners


@router.get("", response_model=VenuePublic, summary="The venue's nodes now, and its leader site")
async def get_venue(request: Request) -> VenuePublic:
    """Each configured node asked for its state (one second each, concurrently): serving, the
    last sequence applied, whether its site's etcd member leads, the etcd membership it sees.
    Nodes are found in the settings (``venue_nodes``) or the file the devnet's venue writes
    (``venue_file``)."""
    settings: Settings = request.app.state.settings
    listed = venue_nodes(settings)
    if not listed:
        return VenuePublic(
            configured=False, leader=None, etcd_voting=None, etcd_learners=None, nodes=[]
        )
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        nodes = list(await asyncio.gather(*(ask(session, s, u) for s, u in listed)))
    leaders = [n.site or n.node for n in nodes if n.etcd_leader]
    knowing = sorted(
        (n for n in nodes if n.etcd_voting is not None), key=lambda n: not n.etcd_leader
    )
    return VenuePublic(
        configured=True,
        leader=leaders[0] if leaders else None,
        etcd_voting=knowing[0].etcd_voting if knowing else None,
        etcd_learners=knowing[0].etcd_learners if knowing else None,
        nodes=nodes,
    )
