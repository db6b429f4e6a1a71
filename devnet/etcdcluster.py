"""Start a real etcd cluster on loopback: one member per site, each with its own data dir.

For tests, the failover drill and the demo. Members are separate ``etcd`` processes (Debian's
``etcd-server``); ``kill`` is SIGKILL, ``restart`` starts the member again on its old data,
``pause``/``resume`` are SIGSTOP/SIGCONT.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devnet.http import post_json
from devnet.ports import free_port

ETCD = "/usr/bin/etcd"


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


@dataclass
class EtcdCluster:
    members: list[Member]
    root: Path
    heartbeat_ms: int = 50
    election_ms: int = 500
    _owned_root: bool = field(default=False)

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def _initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def start_member(self, member: Member, state: str = "new") -> None:
        cmd = [
            ETCD,
            "--name", member.name,
            "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", self._initial_cluster(),
            "--initial-cluster-state", state,
            "--initial-cluster-token", self.root.name,
            "--heartbeat-interval", str(self.heartbeat_ms),
            "--election-timeout", str(self.election_ms),
            "--quota-backend-bytes", str(4 * 1024**3),
            "--max-request-bytes", str(4 * 1024**2),
            "--log-level", "error",
        ]  # fmt: skip
        log = open(self.root / f"{member.name}.log", "ab")  # noqa: SIM115 - owned by the child
        member.process = subprocess.Popen(cmd, stdout=log, stderr=log)

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
        """The name of the current leader, waiting until some live member reports one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.members:
                st = self.status(m.name)
                if st and st.get("leader") not in (None, "0"):
                    for other in self.members:
                        ost = self.status(other.name)
                        if ost and ost["header"]["member_id"] == st["leader"]:  # type: ignore[index]
                            return other.name
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
) -> EtcdCluster:
    """Start one member per name on free loopback ports and wait for a leader."""
    if not Path(ETCD).exists():
        raise FileNotFoundError(
            f"{ETCD} missing: apt-get install etcd-server (scripts/bootstrap.sh)"
        )
    owned = root is None
    base = Path(tempfile.mkdtemp(prefix="etcd-")) if root is None else root
    base.mkdir(parents=True, exist_ok=True)
    members = [Member(n, free_port(), free_port(), base / f"{n}.etcd") for n in names]
    cluster = EtcdCluster(members, base, heartbeat_ms, election_ms, owned)
    for m in members:
        cluster.start_member(m)
    try:
        cluster.wait_ready()
    except TimeoutError:
        cluster.stop()
        raise
    return cluster
