"""Real Network UPS Tools for tests, drills and the demo: one ``upsd`` on a free loopback port and
one ``dummy-ups`` driver per site, in a temporary directory, run by whoever runs the harness (no
system service, no ``/etc/nut``; as root, told to stay root rather than switch to ``nut``).

``dummy-ups`` in ``dummy-once`` mode replays a UPS state from a ``<site>.dev`` file and re-reads
it whenever the file changes, so ``set_status(site, "OB")`` puts a site's UPS on battery and
``set_status(site, "OL")`` back on line; ``upsc <site>@127.0.0.1:<port>`` (what the attestor's
power and health probes, and the validator node's site watch, run) sees it within the driver's
poll interval. Debian packages ``nut-server`` (upsd, the drivers) and ``nut-client`` (upsc).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devnet.errors import ToolchainError
from devnet.ports import free_port

NUT_LIB = Path("/lib/nut")
UPSD = NUT_LIB / "upsd"
DUMMY_UPS = NUT_LIB / "dummy-ups"
UPSC = "/usr/bin/upsc"
#: A healthy UPS, as NUT variables (what ``upsc`` prints for a real one on line).
ON_LINE = {
    "ups.status": "OL",
    "battery.charge": "100",
    "battery.runtime": "2460",
    "input.voltage": "230.1",
    "ups.load": "23",
}


def nut_installed() -> bool:
    return UPSD.exists() and DUMMY_UPS.exists() and Path(UPSC).exists()


@dataclass
class UpsFarm:
    """upsd plus a dummy UPS per site; ``name(site)`` is what ``upsc`` takes."""

    root: Path
    port: int
    sites: list[str]
    poll_interval: int = 1
    upsd: subprocess.Popen[bytes] | None = None
    drivers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _owned_root: bool = False
    _stamps: dict[str, int] = field(default_factory=dict)

    def name(self, site: str) -> str:
        return f"{site}@127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        root = str(self.root)
        return {**os.environ, "NUT_CONFPATH": root, "NUT_STATEPATH": root, "NUT_ALTPIDPATH": root}

    def _as_me(self) -> list[str]:
        # as root, NUT switches to its own user unless told otherwise; that user could not
        # read a temporary directory made by root
        return ["-u", "root"] if os.geteuid() == 0 else []

    def _write_config(self) -> None:
        sections = [
            f"[{s}]\n  driver = dummy-ups\n  port = {s}.dev\n  mode = dummy-once\n"
            f'  desc = "devnet UPS of {s}"\n'
            for s in self.sites
        ]
        (self.root / "ups.conf").write_text("\n".join(sections))
        (self.root / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {self.port}\n")
        (self.root / "upsd.conf").chmod(0o600)
        users = self.root / "upsd.users"
        users.write_text("")
        users.chmod(0o600)
        for s in self.sites:
            self.set_status(s, "OL")

    def set_status(self, site: str, status: str) -> None:
        """Set a site's UPS status (``OL``, ``OB``, ``OB LB``...): written whole, then renamed, so
        the driver never reads half a file."""
        if site not in self.sites:
            raise KeyError(f"no UPS for site {site!r}; sites: {self.sites}")
        values = {**ON_LINE, "ups.status": status}
        if "OB" in status.split():
            values["input.voltage"] = "0"
        if "LB" in status.split():
            values["battery.charge"], values["battery.runtime"] = "8", "95"
        path = self.root / f"{site}.dev"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{k}: {v}\n" for k, v in values.items()))
        # the driver notices a change by the file's mtime in whole seconds: two changes within
        # one second would look like one, so each gets a later second than the last
        stamp = max(int(time.time()), self._stamps.get(site, 0) + 1)
        self._stamps[site] = stamp
        os.utime(tmp, (stamp, stamp))
        tmp.replace(path)

    def status(self, site: str, timeout: float = 2.0) -> str | None:
        """What ``upsc`` says ``ups.status`` of a site's UPS is now (None: no answer)."""
        try:
            done = subprocess.run(
                [UPSC, self.name(site), "ups.status"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
        return done.stdout.strip() or None if done.returncode == 0 else None

    def wait_status(self, site: str, status: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (seen := self.status(site)) != status:
            if time.monotonic() > deadline:
                raise TimeoutError(f"UPS of {site} reports {seen!r}, not {status!r}")
            time.sleep(0.05)

    def start(self) -> UpsFarm:
        self._write_config()
        env = self._env()
        log = open(self.root / "nut.log", "ab")  # noqa: SIM115 - owned by the children
        for s in self.sites:
            self.drivers[s] = subprocess.Popen(
                [str(DUMMY_UPS), "-a", s, "-F", "-i", str(self.poll_interval), *self._as_me()],
                env=env,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 10.0
        for s in self.sites:  # upsd connects to each driver's socket once at start-up
            while not (self.root / f"dummy-ups-{s}").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        self.upsd = subprocess.Popen(
            [str(UPSD), "-F", *self._as_me()], env=env, stdout=log, stderr=log
        )
        for s in self.sites:
            self.wait_status(s, "OL")
        return self

    def stop(self) -> None:
        for proc in [self.upsd, *self.drivers.values()]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.upsd = None
        self.drivers.clear()
        if self._owned_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> UpsFarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_ups(sites: list[str], root: Path | None = None, poll_interval: int = 1) -> UpsFarm:
    """upsd and a dummy UPS (on line) per site, answering ``upsc``."""
    if not nut_installed():
        raise ToolchainError(
            f"Network UPS Tools missing ({UPSD}, {DUMMY_UPS}, {UPSC}): "
            "apt-get install nut-server nut-client (scripts/bootstrap.sh)"
        )
    owned = root is None
    where = Path(tempfile.mkdtemp(prefix="nut-")) if root is None else root
    where.mkdir(parents=True, exist_ok=True)
    farm = UpsFarm(where, free_port(), list(sites), poll_interval, _owned_root=owned)
    try:
        return farm.start()
    except BaseException:
        farm.stop()
        raise
