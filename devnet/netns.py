"""Sites as separate hosts: one Linux network namespace per site, joined through a bridge.

    dcrh-<pid>-br     a bridge ``br0``; one veth per site and one for the observer plug into it
    dcrh-<pid>-<site> the site's processes; ``eth0`` holds its *real* address 198.18.0.<10+i>/24,
                      ``lo`` holds every other site's *virtual* address 198.19.0.<10+j>/32, where
                      that site's delaying relay (``devnet.relay``) listens
    dcrh-<pid>-obs    the harness's own seat (198.18.0.2): it reaches every site's real address
                      directly, undelayed and never cut, to start, watch and check them

A site's processes bind its real address; everyone else reaches them at its virtual address,
which in every other site's namespace is that site's relay: the only path between two sites is
a relay, so it decides the delay and the faults of every directed link. The addresses come from
198.18.0.0/15 (RFC 2544, reserved for benchmarking) and exist only inside these namespaces:
nothing is routed to or from the machine's own network.

Namespaces are created and removed by the harness. Their names carry the owner's process id, so
``cleanup`` (``validator-campaign --cleanup``) removes the namespaces, and kills the processes
inside them, of owners that no longer run, and never anything without the harness's prefix.
Needs root (``ip netns``); ``unavailable()`` says why not, and callers fall back to loopback.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devnet.errors import DevnetError

PREFIX = "dcrh"
"""Every namespace the harness creates is named ``dcrh-<owner pid>-<role>``."""
NETNS_DIR = Path("/run/netns")
REAL_NET = "198.18.0"
VIRTUAL_NET = "198.19.0"
OBSERVER_ADDRESS = f"{REAL_NET}.2"
_CLONE_NEWNET = 0x40000000
_NAME = re.compile(rf"^{PREFIX}-(\d+)-([a-z0-9]+)$")


class NetnsError(DevnetError):
    """Raised when a network namespace, link or address cannot be set up or entered."""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def unavailable() -> str | None:
    """Why namespaces cannot be used here (None when they can): not root, or no ``ip netns``."""
    if os.geteuid() != 0:
        return "not root: network namespaces need CAP_SYS_ADMIN"
    probe = f"{PREFIX}-{os.getpid()}-probe"
    try:
        _ip("netns", "add", probe)
    except (NetnsError, FileNotFoundError) as exc:
        return f"ip netns add failed: {exc}"
    _ip("netns", "del", probe)
    return None


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Namespace:
    name: str

    @property
    def path(self) -> str:
        return str(NETNS_DIR / self.name)

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this namespace (nsenter execs it: the pid is the program's)."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def enter(self) -> None:
        """Move the calling *thread* into this namespace for good: every socket it creates from
        now on, and every thread it starts, lives there."""
        _setns(self.path)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """The calling thread inside this namespace for the ``with`` block, then back."""
        home = os.open(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        try:
            _setns(self.path)
            try:
                yield
            finally:
                if _libc.setns(home, _CLONE_NEWNET) != 0:
                    raise NetnsError("could not return to the original network namespace")
        finally:
            os.close(home)

    def pids(self) -> list[int]:
        done = subprocess.run(
            ["ip", "netns", "pids", self.name], capture_output=True, text=True, check=False
        )
        return [int(p) for p in done.stdout.split()]


@dataclass(frozen=True)
class Host:
    """One site's namespace and addresses."""

    site: str
    namespace: Namespace
    real: str
    """The address the site's processes bind (on its ``eth0``)."""
    virtual: str
    """The address every other site reaches it at (its relay in their namespace)."""


@dataclass
class Network:
    """The namespaces of one run: a bridge, one host per site, the observer."""

    owner: int
    hosts: dict[str, Host]
    bridge: Namespace
    observer: Namespace
    removed: bool = field(default=False)

    @property
    def namespaces(self) -> list[Namespace]:
        return [self.bridge, self.observer, *(h.namespace for h in self.hosts.values())]

    def host(self, site: str) -> Host:
        return self.hosts[site]

    def destroy(self) -> None:
        """Kill every process left inside the namespaces, then delete them (with their links)."""
        if not self.removed:
            _remove(self.namespaces)
            self.removed = True

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def _site_token(site: str) -> str:
    if not re.fullmatch(r"[a-z0-9]{1,10}", site):
        raise NetnsError(f"site name {site!r}: 1-10 lower-case letters or digits")
    return site


def create(sites: Sequence[str], owner: int | None = None) -> Network:
    """Create the bridge, the observer and one namespace per site (at most 200 sites)."""
    if len(sites) > 200 or len(set(sites)) != len(sites):
        raise NetnsError("between 1 and 200 distinct sites")
    owner = os.getpid() if owner is None else owner
    base = f"{PREFIX}-{owner}"
    bridge, observer = Namespace(f"{base}-br"), Namespace(f"{base}-obs")
    hosts = {
        s: Host(
            s,
            Namespace(f"{base}-{_site_token(s)}"),
            f"{REAL_NET}.{10 + i}",
            f"{VIRTUAL_NET}.{10 + i}",
        )
        for i, s in enumerate(sites)
    }
    network = Network(owner, hosts, bridge, observer)
    try:
        for ns in network.namespaces:
            _ip("netns", "add", ns.name)
            _ip("-n", ns.name, "link", "set", "lo", "up")
        _ip("-n", bridge.name, "link", "add", "br0", "type", "bridge")
        _ip("-n", bridge.name, "link", "set", "br0", "up")
        plugs = [(observer, OBSERVER_ADDRESS, "obs")] + [
            (h.namespace, h.real, f"s{i}") for i, h in enumerate(hosts.values())
        ]
        for ns, address, port in plugs:
            _ip("-n", bridge.name, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", ns.name)  # fmt: skip
            _ip("-n", bridge.name, "link", "set", port, "master", "br0", "up")
            _ip("-n", ns.name, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns.name, "link", "set", "eth0", "up")
        for h in hosts.values():
            for other in hosts.values():
                if other is not h:
                    _ip("-n", h.namespace.name, "addr", "add", f"{other.virtual}/32", "dev", "lo")
    except BaseException:
        network.destroy()
        raise
    return network


def _remove(namespaces: Sequence[Namespace]) -> None:
    for ns in namespaces:
        if not Path(ns.path).exists():
            continue
        for pid in ns.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, check=False)


def harness_namespaces() -> list[tuple[str, int]]:
    """Every namespace with the harness's prefix: (name, owner pid)."""
    if not NETNS_DIR.is_dir():
        return []
    out = []
    for entry in sorted(NETNS_DIR.iterdir()):
        match = _NAME.match(entry.name)
        if match:
            out.append((entry.name, int(match.group(1))))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup(every_owner: bool = False) -> list[str]:
    """Remove the harness's namespaces whose owner process is gone (all of them with
    ``every_owner``), killing what still runs inside; the names removed. Only names with the
    harness's prefix are touched."""
    stale = [
        Namespace(name)
        for name, owner in harness_namespaces()
        if every_owner or (owner != os.getpid() and not _alive(owner))
    ]
    _remove(stale)
    return [ns.name for ns in stale]
