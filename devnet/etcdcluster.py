"""Start a real etcd cluster: one member per site, each with its own data dir.

On loopback by default; given ``placements`` (``devnet.placement``), each member runs in its
site's namespace, binds the site's address and advertises the address the other sites reach it
at. For tests, the failover drill, the fault campaign and the demo. Members are separate
``etcd`` processes (Debian's ``etcd-server``); ``kill`` is SIGKILL, ``restart`` starts the member
again on its old data, ``pause``/``resume`` are SIGSTOP/SIGCONT, ``replace`` swaps a member for
an empty one, ``move_leader`` transfers leadership.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devnet.http import post_json
from devnet.placement import ETCD_CLIENT_PORT, ETCD_PEER_PORT, Placement
from devnet.ports import free_port

ETCD = "/usr/bin/etcd"


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    placement: Placement | None = None

    @property
    def place(self) -> Placement:
        return self.placement or Placement(self.name)

    @property
    def client_url(self) -> str:
        """Where this member's own site (and the harness) reaches its client API."""
        return f"http://{self.place.host}:{self.client_port}"

    @property
    def advertised_client_url(self) -> str:
        """Where the other sites reach its client API."""
        return f"http://{self.place.advertise}:{self.client_port}"

    def client_url_from(self, site: str) -> str:
        """The client URL as site ``site`` reaches it."""
        return self.client_url if site == self.name else self.advertised_client_url

    @property
    def listen_peer_url(self) -> str:
        return f"http://{self.place.host}:{self.peer_port}"

    @property
    def peer_url(self) -> str:
        """Where the other members reach it (advertised, in the cluster's membership)."""
        return f"http://{self.place.advertise}:{self.peer_port}"


@dataclass
class EtcdCluster:
    members: list[Member]
    root: Path
    heartbeat_ms: int = 50
    election_ms: int = 500
    _owned_root: bool = field(default=False)
    pre_vote: bool = False
    """Raft pre-vote: a member cut off from the others does not inflate its term and force a
    new election when it returns (etcd 3.4 leaves it off; 3.5 turns it on)."""

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def _initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def start_member(
        self, member: Member, state: str = "new", initial_cluster: str | None = None
    ) -> None:
        cmd = [
            ETCD,
            "--name", member.name,
            "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.advertised_client_url,
            "--listen-peer-urls", member.listen_peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial_cluster or self._initial_cluster(),
            "--initial-cluster-state", state,
            "--initial-cluster-token", self.root.name,
            "--heartbeat-interval", str(self.heartbeat_ms),
            "--election-timeout", str(self.election_ms),
            "--quota-backend-bytes", str(4 * 1024**3),
            "--max-request-bytes", str(4 * 1024**2),
            "--log-level", "error",
            *(["--pre-vote"] if self.pre_vote else []),
        ]  # fmt: skip
        log = open(self.root / f"{member.name}.log", "ab")  # noqa: SIM115 - owned by the child
        member.process = subprocess.Popen(member.place.command(cmd), stdout=log, stderr=log)

    def kill(self, name: str) -> None:
        """SIGKILL one member: a site losing power."""
        member = self.member(name)
        if member.process is not None and member.process.poll() is None:
            member.process.send_signal(signal.SIGKILL)
            member.process.wait()
        member.process = None

    def pause(self, name: str) -> None:
        """SIGSTOP one member: a process frozen (a stalled VM, a long GC, a stuck disk)."""
        member = self.member(name)
        if member.process is not None and member.process.poll() is None:
            member.process.send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """SIGCONT a paused member."""
        member = self.member(name)
        if member.process is not None and member.process.poll() is None:
            member.process.send_signal(signal.SIGCONT)

    def restart(self, name: str) -> None:
        self.start_member(self.member(name))

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def member_id(self, name: str, timeout: float = 0.5) -> str | None:
        st = self.status(name, timeout)
        return None if st is None else str(st["header"]["member_id"])  # type: ignore[index]

    def _any_other(self, name: str) -> Member:
        """A running member other than ``name`` that answers."""
        for m in self.members:
            if m.name != name and self.status(m.name) is not None:
                return m
        raise TimeoutError(f"no member but {name} answers")

    def replace(self, name: str, timeout: float = 20.0) -> None:
        """Replace a member the way an operator replaces a lost machine: remove it from the
        cluster, throw its data away, add it back (a new member id) and start it empty, to
        catch up from the leader."""
        member = self.member(name)
        helper = self._any_other(name)
        members = f"{helper.client_url}/v3/cluster/member"
        listed = post_json(f"{members}/list", {}, timeout=5)
        old = next(m for m in listed["members"] if m.get("name") == name)
        deadline = time.monotonic() + timeout
        while True:  # etcd refuses (503, "unhealthy cluster") to remove a member until every
            try:  # peer has been connected for 5 s: after a start, or a partition's heal
                post_json(f"{members}/remove", {"ID": old["ID"]}, timeout=5)
                break
            except OSError:
                listed = post_json(f"{members}/list", {}, timeout=5)
                if all(m.get("ID") != old["ID"] for m in listed["members"]):
                    break  # an attempt that failed to answer went through
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.kill(name)
        shutil.rmtree(member.data_dir, ignore_errors=True)
        deadline = time.monotonic() + timeout  # the add's own: a slow removal must not eat it
        while True:  # the removal must be committed before the add (etcd: one change at a time)
            try:
                post_json(
                    f"{helper.client_url}/v3/cluster/member/add",
                    {"peerURLs": [member.peer_url]},
                    timeout=5,
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.start_member(member, state="existing")

    def standby(self, name: str) -> Member:
        """A member-to-be for site ``name``, not started and not in the cluster: a standby site
        that the venue may add (as a learner) when the committee takes it in."""
        member = Member(name, free_port(), free_port(), self.root / name)
        self.members.append(member)
        return member

    def join(self, name: str, timeout: float = 10.0) -> None:
        """Start a member the cluster has already added (as a learner, by the venue's
        membership follower): its initial cluster is the membership as etcd lists it now, itself
        included by its peer URL, and it starts with ``existing`` state, empty."""
        member = self.member(name)
        helper = self._any_other(name)
        listed = post_json(f"{helper.client_url}/v3/cluster/member/list", {}, timeout=timeout)
        pairs = []
        for m in listed["members"]:
            peer = m["peerURLs"][0]
            pairs.append(f"{name if peer == member.peer_url else m['name']}={peer}")
        if not any(p.endswith(f"={member.peer_url}") for p in pairs):
            raise RuntimeError(f"{name} ({member.peer_url}) is not in the cluster's membership")
        shutil.rmtree(member.data_dir, ignore_errors=True)
        self.start_member(member, state="existing", initial_cluster=",".join(pairs))

    def request_leadership(self, name: str, leader: str) -> None:
        """Ask ``leader`` once to hand leadership to ``name`` (etcd's leadership transfer); an
        unreachable or refusing member is not an error: the caller checks who leads."""
        target = self.member_id(name)
        if target is not None:
            with contextlib.suppress(OSError):
                post_json(
                    f"{self.member(leader).client_url}/v3/maintenance/transfer-leadership",
                    {"targetID": target},
                    timeout=5,
                )

    def move_leader(self, name: str, timeout: float = 10.0) -> None:
        """Make ``name`` the leader (etcd's leadership transfer, asked of the current leader)."""
        deadline = time.monotonic() + timeout
        while (leader := self.leader(timeout)) != name:
            self.request_leadership(name, leader)
            if time.monotonic() > deadline:
                raise TimeoutError(f"leadership did not move to {name}")
            time.sleep(0.1)

    def status(self, name: str, timeout: float = 0.5) -> dict[str, str] | None:
        member = self.member(name)
        if member.process is None:
            return None
        try:
            data: dict[str, str] = post_json(
                f"{member.client_url}/v3/maintenance/status", {}, timeout=timeout
            )
            return data
        except OSError:
            return None

    def leader(self, timeout: float = 10.0) -> str:
        """The name of the current leader, waiting until some live member reports one (the
        report of the highest term wins: a member cut off from the others may still name an
        old leader)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            statuses = {m.name: self.status(m.name) for m in self.members}
            ids = {
                str(st["header"]["member_id"]): name  # type: ignore[index]
                for name, st in statuses.items()
                if st
            }
            reports = sorted(
                (
                    (int(st.get("raftTerm", 0)), str(st["leader"]))
                    for st in statuses.values()
                    if st and st.get("leader") not in (None, "0")
                ),
                reverse=True,
            )
            for _, leader in reports:
                if leader in ids:
                    return ids[leader]
            time.sleep(0.05)
        raise TimeoutError("no etcd leader")

    def wait_ready(self, timeout: float = 15.0) -> None:
        self.leader(timeout)

    def stop(self) -> None:
        for m in self.members:
            if m.process is not None and m.process.poll() is None:
                m.process.send_signal(signal.SIGCONT)  # a paused member would not see SIGTERM
                m.process.terminate()
                try:
                    m.process.wait(5)
                except subprocess.TimeoutExpired:
                    m.process.kill()
                    m.process.wait()
            m.process = None
        if self._owned_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> EtcdCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_cluster(
    names: list[str],
    root: Path | None = None,
    heartbeat_ms: int = 30,
    election_ms: int = 300,
    placements: dict[str, Placement] | None = None,
    pre_vote: bool = False,
) -> EtcdCluster:
    """Start one member per name (on free loopback ports, or placed as ``placements`` say) and
    wait for a leader."""
    if not Path(ETCD).exists():
        raise FileNotFoundError(
            f"{ETCD} missing: apt-get install etcd-server (scripts/bootstrap.sh)"
        )
    owned = root is None
    base = Path(tempfile.mkdtemp(prefix="etcd-")) if root is None else root
    base.mkdir(parents=True, exist_ok=True)
    members = []
    for n in names:
        place = (placements or {}).get(n)
        if place is not None and place.fixed_ports:
            ports = (ETCD_CLIENT_PORT, ETCD_PEER_PORT)
        else:
            ports = (free_port(), free_port())
        members.append(Member(n, *ports, base / f"{n}.etcd", placement=place))
    cluster = EtcdCluster(members, base, heartbeat_ms, election_ms, owned, pre_vote)
    try:
        for m in members:
            cluster.start_member(m)
        cluster.wait_ready()
    except BaseException:  # whatever went wrong, no member is left running
        cluster.stop()
        raise
    return cluster
