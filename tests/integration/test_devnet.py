"""The README's demo: a devnet that deploys, registers example sites and lands their proofs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    dep = Deployment.read(tmp_path / "deployment.json")
    assert dep.chain_id == 31337
    # --once stops the chain it started
    try:
        connect(proc.stdout.split()[1], timeout=1)
        reachable = True
    except Exception:
        reachable = False
    assert not reachable
