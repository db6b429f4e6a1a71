"""The README's demo: a devnet that deploys, registers example sites and lands their proofs,
stakes demo validators, and serves the API and dashboard."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from redundancy.chain import connect
from redundancy.deployment import Deployment


def test_devnet_once_deploys_and_lands_fresh_proofs(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "redundancy.devnet", "--once", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "published 15 signed site proofs in one transaction" in proc.stdout
    rows = [
        line.split() for line in proc.stdout.splitlines() if line[:4] in ("fra1", "ams1", "dal1")
    ]
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("fra1", "false", "-"),
        ("ams1", "false", "-"),
        ("dal1", "false", "-"),
    ]
    assert "staked 3 demo validators, selected a committee, reported 3 RTTs" in proc.stdout
    urls = dict(
        line.split()[:2] for line in proc.stdout.splitlines() if line[:4] in ("API ", "dash")
    )
    assert urls["API"].startswith("http://127.0.0.1:") and urls["API"].endswith("/docs")
    assert urls["dashboard"] == urls["API"].removesuffix("docs")
    assert "Uvicorn running" in (tmp_path / "api.log").read_text()
    with pytest.raises(OSError):  # --once stops the API too
        urllib.request.urlopen(urls["dashboard"] + "health", timeout=1)
    dep = Deployment.read(tmp_path / "deployment.json")
    assert dep.chain_id == 31337
    # --once stops the chain it started
    try:
        connect(proc.stdout.split()[1], timeout=1)
        reachable = True
    except Exception:
        reachable = False
    assert not reachable
