"""The site watch: is this site **degraded** (``redundancy.sitecondition``: UPS on battery or low,
clock unsynchronised, disk nearly full), checked every ``site.poll_interval``, and the venue's
reactions to it, before anything fails.

It lives in the validator node and in its gateway (each process watches for itself: a gateway
must not depend on its node being up to stop taking orders), and reads the facts directly, not
through the chain or the attestor: the attestor publishes the same rule's verdict every heartbeat
(30 s by default, then a block) for everyone to audit, but a UPS on battery may give minutes or
seconds, so the venue acts on its own reading within a poll. Facts:

- the UPS, over NUT's network protocol (``GET VAR <ups> ups.status`` to ``upsd``, the same server
  ``upsc`` asks; one kept connection, no process per poll); a UPS that cannot be read is unknown,
  not degraded;
- the clock, from the kernel (``adjtimex``, as the attestor's health probe);
- the disk holding the node's data directory.

Reactions (``site.react_to`` chooses the families of reasons that count, default all three):

- the node moves etcd leadership away while its site is degraded and its member leads
  (``LeadershipMover``: etcd's ``maintenance/transfer-leadership``, asked of this site's member,
  to the next member in ``etcd_endpoints`` order that answers), again whenever leadership comes
  back;
- the gateway takes no new orders (``NewOrder``, ``CancelReplace``): 503 naming the reasons, so a
  client sends them to another site's gateway; cancels and everything else are still logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redundancy.jsonlog import log_event
from redundancy.kernelclock import ClockState, read_kernel_clock
from redundancy.sitecondition import degraded_reasons, reacted_to
from validator.node.etcd import EtcdClient
from validator.node.settings import SiteSettings

log = logging.getLogger("validator.node.sitewatch")

NUT_PORT = 3493


def split_ups_name(name: str) -> tuple[str, str, int]:
    """``ups@host:port`` (NUT's notation, as ``upsc`` takes it) -> (ups, host, port)."""
    ups, _, where = name.partition("@")
    host, _, port = (where or "localhost").partition(":")
    return ups, host or "localhost", int(port) if port else NUT_PORT


class NutClient:
    """Reads one UPS's ``ups.status`` from ``upsd`` over NUT's line protocol, on one kept
    connection (reopened after any error)."""

    def __init__(self, name: str, timeout: float = 1.0) -> None:
        self.ups, self.host, self.port = split_ups_name(name)
        self.timeout = timeout
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _ask(self, line: str) -> str:
        if self._conn is None:
            self._conn = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._conn
        writer.write(line.encode() + b"\n")
        await writer.drain()
        answer = await reader.readline()
        if not answer:
            raise ConnectionError("upsd closed the connection")
        return answer.decode(errors="replace").strip()

    async def status(self) -> str:
        """The UPS's ``ups.status`` (``"OL"``, ``"OB LB"``...); raises OSError / TimeoutError if
        upsd does not answer, ValueError with upsd's error (``ERR DATA-STALE``) otherwise."""
        try:
            answer = await asyncio.wait_for(
                self._ask(f"GET VAR {self.ups} ups.status"), self.timeout
            )
        except BaseException:
            await self.close()
            raise
        prefix = f"VAR {self.ups} ups.status "
        if not answer.startswith(prefix):
            raise ValueError(answer[:120])
        return str(json.loads(answer[len(prefix) :]))  # the value is a quoted string

    async def close(self) -> None:
        if self._conn is not None:
            writer = self._conn[1]
            self._conn = None
            writer.close()


@dataclass(frozen=True)
class Reading:
    """One poll's facts and what they make of the site."""

    reasons: list[str]
    """Every reason the facts read give (the clock is read only when ``clock`` is reacted to:
    a clock nobody acts on is not worth a system call per poll)."""
    degraded: list[str]
    """The reasons this watch reacts to (empty: not degraded)."""
    ups_status: str | None
    ups_error: str | None


class SiteWatch:
    """Polls the site's facts; ``degraded`` is the current verdict (reasons this watch reacts to,
    empty when none). Listeners run on every change."""

    def __init__(
        self,
        settings: SiteSettings,
        data_dir: Path,
        clock: Callable[[], ClockState | None] = read_kernel_clock,
    ) -> None:
        self.settings = settings
        self.disk_path = settings.disk_path or data_dir
        self.clock = clock
        self.nut = None if settings.ups is None else NutClient(settings.ups, settings.ups_timeout)
        self.reading = Reading([], [], None, None)
        self.listeners: list[Callable[[Reading], None]] = []
        self.changes = 0

    @property
    def degraded(self) -> list[str]:
        return self.reading.degraded

    async def observe(self) -> Reading:
        ups_status = ups_error = None
        if self.nut is not None:
            try:
                ups_status = await self.nut.status()
            except (OSError, TimeoutError, ValueError) as exc:
                ups_error = f"{type(exc).__name__}: {exc}"[:200]
        clock = self.clock() if "clock" in self.settings.react_to else None
        free = total = None
        try:
            usage = shutil.disk_usage(self.disk_path)
            free, total = usage.free >> 20, usage.total >> 20
        except OSError:
            pass
        reasons = degraded_reasons(
            ups_status=ups_status,
            clock_synced=None if clock is None else clock.synced,
            disk_free_mib=free,
            disk_total_mib=total,
        )
        return Reading(reasons, reacted_to(reasons, self.settings.react_to), ups_status, ups_error)

    async def poll(self) -> Reading:
        """Observe once; log and tell the listeners when the verdict changed."""
        new = await self.observe()
        old, self.reading = self.reading, new
        if new.ups_error != old.ups_error and new.ups_error is not None:
            log_event(log, "site.ups_unreadable", logging.WARNING, ups=self.settings.ups,
                      error=new.ups_error)  # fmt: skip
        if new.degraded != old.degraded:
            self.changes += 1
            event = "site.degraded" if new.degraded else "site.recovered"
            level = logging.WARNING if new.degraded else logging.INFO
            log_event(log, event, level, reasons=new.degraded, ups_status=new.ups_status)
            for listener in self.listeners:
                listener(new)
        return new

    async def run(self) -> None:
        try:
            while True:
                await self.poll()
                await asyncio.sleep(self.settings.poll_interval)
        finally:
            if self.nut is not None:
                await self.nut.close()

    def public(self) -> dict[str, Any]:
        """For the node's and the gateway's ``/health``."""
        r = self.reading
        return {
            "degraded": r.degraded,
            "reasons": r.reasons,
            "ups_status": r.ups_status,
            "ups_error": r.ups_error,
            "reacts_to": list(self.settings.react_to),
        }


class LeadershipMover:
    """Keeps etcd leadership off this site's member while the site is degraded: each poll while
    degraded, if this site's member (``etcd.endpoints[0]``) leads, it asks it to hand leadership
    to the next member (in ``etcd_endpoints`` order: nearest first) that answers; after a failed
    transfer, the next check tries the member after that one first."""

    def __init__(
        self,
        etcd: EtcdClient,
        watch: SiteWatch,
        timeout: float = 0.5,
        transfer_timeout: float = 1.5,
    ) -> None:
        self.etcd = etcd
        self.watch = watch
        self.timeout = timeout
        #: longer than etcd's default election timeout (1 s), within which raft completes or
        #: abandons a transfer
        self.transfer_timeout = transfer_timeout
        self.moves = 0
        self.failures = 0
        self.last_target: str | None = None
        watch.listeners.append(self._changed)
        self._wake = asyncio.Event()

    def _changed(self, reading: Reading) -> None:
        if reading.degraded:
            self._wake.set()

    async def step(self) -> bool:
        """One check; True if leadership was handed over.

        A transfer that does not finish within ``transfer_timeout`` is abandoned (raft abandons
        it after an election timeout anyway, while etcd would hold the request open) and the
        next check starts with the next member: a member too far behind to take over must not
        keep leadership on a degraded site."""
        own = await self.etcd.member_status(0, self.timeout)
        if own is None:
            return False
        me, leader = str(own["header"]["member_id"]), str(own.get("leader", "0"))
        if leader != me:
            return False
        others = list(range(1, len(self.etcd.endpoints)))
        if others:
            turn = self.failures % len(others)
            others = others[turn:] + others[:turn]
        for index in others:
            other = await self.etcd.member_status(index, self.timeout)
            if other is None:
                continue
            target = str(other["header"]["member_id"])
            try:
                await self.etcd.transfer_leadership(0, target, timeout=self.transfer_timeout)
            except BaseException:
                self.failures += 1
                raise
            self.moves += 1
            self.last_target = self.etcd.endpoints[index]
            log_event(
                log,
                "etcd.leadership_moved",
                logging.WARNING,
                reasons=self.watch.degraded,
                to=self.last_target,
                to_member=target,
            )
            return True
        log_event(log, "etcd.leadership_kept", logging.WARNING, why="no other member answers")
        return False

    async def run(self) -> None:
        while True:
            if self.watch.degraded:
                try:
                    await self.step()
                except Exception as exc:  # an election under way, a member gone: next poll
                    log_event(log, "etcd.leadership_move_failed", logging.WARNING,
                              error=f"{type(exc).__name__}: {exc}"[:300])  # fmt: skip
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.watch.settings.poll_interval)
