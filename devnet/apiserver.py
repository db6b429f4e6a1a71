"""Start the REST API and dashboard (``redundancy-api``) for the devnet, as a child process.

The core does not import the ``api`` package: it runs its console script, so the devnet needs
nothing of the API but the command.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devnet.errors import ToolchainError
from devnet.http import get_json
from devnet.ports import free_port

DEFAULT_PORT = 8000


@dataclass
class ApiProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def api_command() -> list[str]:
    """``redundancy-api`` beside this Python (a venv's bin/), else ``python -m api.cli``."""
    script = Path(sys.executable).parent / "redundancy-api"
    if script.exists():
        return [str(script)]
    found = shutil.which("redundancy-api")
    return [found] if found else [sys.executable, "-m", "api.cli"]


def pick_port(port: int) -> int:
    """``port`` if given, else 8000 when it is free, else any free port."""
    if port:
        return port
    try:
        return free_port() if _busy(DEFAULT_PORT) else DEFAULT_PORT
    except OSError:
        return free_port()


def _busy(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def launch_api(
    deployment: Path, rpc_url: str, port: int, log: Path, venue_file: Path | None = None
) -> ApiProcess:
    """Start the API on loopback without waiting for it (``wait_api`` waits); ``venue_file`` is
    where the venue will list its nodes (for GET /venue)."""
    cmd = [*api_command(), "--deployment", str(deployment), "--rpc-url", rpc_url]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    if venue_file is not None:
        cmd += ["--venue-file", str(venue_file)]
    with log.open("ab") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    return ApiProcess(process, f"http://127.0.0.1:{port}", log)


def wait_api(api: ApiProcess, timeout: float = 30.0) -> ApiProcess:
    """Wait until the API's /health answers 200; stops it and raises if it does not in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.process.poll() is not None:
            code = api.process.returncode
            raise ToolchainError(f"redundancy-api exited with code {code}; see {api.log}")
        try:
            get_json(api.url + "/health", timeout=1)
            return api
        except (OSError, ValueError):  # not answering yet, or not JSON yet
            pass
        time.sleep(0.2)
    api.stop()
    raise ToolchainError(f"redundancy-api did not answer on {api.url} within {timeout:.0f} s")
