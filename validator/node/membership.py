"""The venue's etcd membership follows the on-chain committee, one change at a time.

The chain says who runs the venue (the selector's current committee: validators, each bound by
the registry to a facility); a **venue directory** says where each facility's site runs its etcd
member (peer URL). The voting members should be exactly the committee's sites that the directory
knows. :func:`next_step` compares the two and names the one change to make next;
:class:`MembershipReconciler` applies it through etcd's cluster API and is safe to run at every
site at once (each step is checked against the membership it reads just before, and etcd itself
refuses a second change while one is uncommitted, a duplicate peer URL, or promoting a learner
that has not caught up).

The order of changes keeps the cluster able to commit:

1. a learner no longer wanted is removed (a learner does not vote: removing it changes no quorum);
2. a voting member no longer wanted that does not answer is removed (it is dead: removing it only
   lowers the quorum the live ones must reach), never the last voting member;
3. a wanted learner is promoted (etcd refuses while it lags the leader: the next round tries
   again; a learner whose site never starts blocks only what follows, not the steps above);
4. a wanted site with no member is added **as a learner**, only while no other learner is
   pending, so joins go one at a time; its operator then starts its etcd with
   ``--initial-cluster-state existing`` and it catches up without voting;
5. a voting member no longer wanted that still answers is removed once every wanted site votes,
   never the last voting member.

A joining site's validator node catches up by snapshot transfer from its peers
(``validator.node.catchup``); its signatures count once the settler reads it in the committee.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from redundancy.jsonlog import log_event
from validator.node.errors import EtcdError
from validator.node.etcd import EtcdClient

log = logging.getLogger("validator.node.membership")

Action = Literal["remove-learner", "promote", "add-learner", "remove"]


@dataclass(frozen=True)
class EtcdMember:
    """One member as etcd's ``cluster/member/list`` reports it."""

    member_id: str
    name: str
    peer_urls: tuple[str, ...]
    learner: bool

    @classmethod
    def from_etcd(cls, raw: Mapping[str, Any]) -> EtcdMember:
        return cls(
            member_id=str(raw["ID"]),
            name=str(raw.get("name", "")),
            peer_urls=tuple(str(u) for u in raw.get("peerURLs", [])),
            learner=bool(raw.get("isLearner", False)),
        )


@dataclass(frozen=True)
class Step:
    """One membership change: what, to which site (by its peer URL), and the member id when the
    member exists."""

    action: Action
    peer_url: str
    member_id: str | None = None
    why: str = ""


def _site_of(member: EtcdMember, wanted: set[str]) -> str | None:
    return next((u for u in member.peer_urls if u in wanted), None)


def next_step(
    members: Sequence[EtcdMember],
    wanted_peer_urls: Sequence[str],
    answers: Callable[[EtcdMember], bool] = lambda m: True,
) -> Step | None:
    """The one change to make next so that the voting members become exactly the sites whose
    peer URLs are ``wanted_peer_urls`` (None: nothing to change). ``answers(member)`` says
    whether a voting member responds now (a dead one may be removed before the joins)."""
    wanted = set(wanted_peer_urls)
    if not wanted:
        return None  # no committee site known: never empty the cluster
    present = {u for m in members for u in m.peer_urls}
    for m in members:
        if m.learner and _site_of(m, wanted) is None:
            return Step("remove-learner", m.peer_urls[0] if m.peer_urls else "", m.member_id,
                        "a learner whose site is not in the committee")  # fmt: skip
    voting = [m for m in members if not m.learner]
    unwanted = [m for m in voting if _site_of(m, wanted) is None]
    dead = [m for m in unwanted if not answers(m)]
    if dead and len(voting) > 1:
        m = dead[0]
        return Step("remove", m.peer_urls[0] if m.peer_urls else "", m.member_id,
                    "a member not in the committee and not answering")  # fmt: skip
    for m in members:
        site = _site_of(m, wanted)
        if m.learner and site is not None:
            return Step("promote", site, m.member_id, "a committee site caught up as a learner")
    missing = [u for u in wanted_peer_urls if u not in present]
    if missing:
        return Step("add-learner", missing[0], None, "a committee site without a member")
    if unwanted and len(voting) > 1:
        m = unwanted[0]
        return Step("remove", m.peer_urls[0] if m.peer_urls else "", m.member_id,
                    "a member not in the committee")  # fmt: skip
    return None


def _took_effect(step: Step, members: Sequence[EtcdMember]) -> bool:
    """Whether the member list ``members`` shows ``step`` done."""
    if step.action == "add-learner":
        return any(step.peer_url in m.peer_urls for m in members)
    if step.action == "promote":
        return any(m.member_id == step.member_id and not m.learner for m in members)
    return all(m.member_id != step.member_id for m in members)


@dataclass(frozen=True)
class VenueSite:
    """One site of the venue directory."""

    name: str
    facility_id: bytes
    etcd_peer_url: str
    etcd_client_url: str


def read_directory(path: Path) -> list[VenueSite]:
    """The venue directory: a JSON list of ``{"name", "facility_id" (0x hex), "etcd_peer_url",
    "etcd_client_url"}``; raises ValueError naming the entry and field that is wrong."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of sites")
    sites = []
    for i, entry in enumerate(raw):
        where = f"{path}: site {i}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object")
        for key in ("name", "facility_id", "etcd_peer_url", "etcd_client_url"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise ValueError(f"{where}: {key} missing or not a string")
        try:
            facility = bytes.fromhex(entry["facility_id"].removeprefix("0x"))
        except ValueError:
            raise ValueError(f"{where}: facility_id is not hex") from None
        if len(facility) != 32:
            raise ValueError(f"{where}: facility_id must be 32 bytes, got {len(facility)}")
        sites.append(
            VenueSite(entry["name"], facility, entry["etcd_peer_url"], entry["etcd_client_url"])
        )
    return sites


def wanted_peer_urls(
    committee_facilities: Sequence[bytes], directory: Sequence[VenueSite]
) -> list[str]:
    """The etcd peer URLs of the committee's facilities that the directory knows, in committee
    order, each once (several validators may share a facility)."""
    by_facility = {s.facility_id: s for s in directory}
    out: list[str] = []
    for facility in committee_facilities:
        site = by_facility.get(facility)
        if site is not None and site.etcd_peer_url not in out:
            out.append(site.etcd_peer_url)
    return out


class MembershipReconciler:
    """Reads etcd's membership and applies :func:`next_step`, one change per :meth:`step`."""

    def __init__(self, etcd: EtcdClient, probe_timeout: float = 0.5) -> None:
        self.etcd = etcd
        self.probe_timeout = probe_timeout
        self.changes = 0

    async def members(self) -> tuple[list[EtcdMember], dict[str, list[str]]]:
        """The members as etcd lists them, and each one's client URLs (by member id)."""
        data = await self.etcd.call("cluster/member/list", {})
        raw = data.get("members", [])
        urls = {str(m["ID"]): [str(u).rstrip("/") for u in m.get("clientURLs", [])] for m in raw}
        return [EtcdMember.from_etcd(m) for m in raw], urls

    async def _answering(
        self, members: Sequence[EtcdMember], urls: dict[str, list[str]]
    ) -> set[str]:
        """Ids of the voting members that answer a status request now, through their client
        URLs (a member that has never started lists none)."""
        endpoints = [u for m in members if not m.learner for u in urls.get(m.member_id, [])]
        if not endpoints:
            return set()
        probe = EtcdClient(endpoints, self.probe_timeout)
        alive: set[str] = set()
        try:
            for m in members:
                for url in [] if m.learner else urls.get(m.member_id, []):
                    if await probe.member_status(endpoints.index(url), self.probe_timeout):
                        alive.add(m.member_id)
                        break
        finally:
            await probe.aclose()
        return alive

    async def step(self, wanted: Sequence[str]) -> Step | None:
        """Make the next change towards ``wanted`` (peer URLs); returns it (None: converged).
        Raises EtcdError when etcd refuses it (a learner not caught up yet, another change
        still uncommitted): the next call tries again."""
        members, urls = await self.members()
        alive = await self._answering(members, urls)
        step = next_step(members, wanted, lambda m: m.member_id in alive)
        if step is None:
            return None
        try:
            await self._apply(step)
        except EtcdError:
            # An answer lost after etcd applied the change (a timeout, then a retry refused as a
            # duplicate): the member list says whether it took effect.
            if not _took_effect(step, (await self.members())[0]):
                raise
        self.changes += 1
        log_event(log, "venue.membership_changed", logging.WARNING, action=step.action,
                  peer_url=step.peer_url, member=step.member_id, why=step.why)  # fmt: skip
        return step

    async def _apply(self, step: Step) -> None:
        if step.action == "add-learner":
            await self.etcd.call(
                "cluster/member/add", {"peerURLs": [step.peer_url], "isLearner": True}
            )
        elif step.action == "promote":
            await self.etcd.call("cluster/member/promote", {"ID": step.member_id})
        else:
            await self.etcd.call("cluster/member/remove", {"ID": step.member_id})

    async def converge(
        self, wanted: Sequence[str], rounds: int = 100, interval: float = 0.2
    ) -> list[Step]:
        """Steps until nothing is left to change, or ``rounds`` rounds; a refusal (a learner
        still catching up, a change not yet committed) waits ``interval`` and counts as a round."""
        done: list[Step] = []
        for _ in range(rounds):
            try:
                step = await self.step(wanted)
            except EtcdError as exc:
                log_event(log, "venue.membership_waiting", logging.INFO, error=str(exc)[:200])
                await asyncio.sleep(interval)
                continue
            if step is None:
                break
            done.append(step)
        return done


async def follow_committee(
    reconciler: MembershipReconciler,
    committee_facilities: Callable[[], Sequence[bytes]],
    directory: Sequence[VenueSite],
    interval: float,
) -> None:
    """Forever: every ``interval`` seconds, read the committee's facilities (a blocking chain
    read, run in a thread) and make at most one membership change towards them. A chain or etcd
    outage only delays it."""
    while True:
        try:
            facilities = await asyncio.to_thread(committee_facilities)
            await reconciler.step(wanted_peer_urls(facilities, directory))
        except Exception as exc:  # chain or etcd unreachable, a change refused: next round
            log_event(log, "venue.membership_waiting", logging.INFO,
                      error=f"{type(exc).__name__}: {exc}"[:300])  # fmt: skip
        await asyncio.sleep(interval)
