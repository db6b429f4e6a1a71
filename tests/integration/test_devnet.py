"""The README's demo: a devnet that deploys, starts one attestor process per example site,
shows their proofs landing, selects a committee from the attested sites, relays the RTTs the
attestors measured, and serves the API and dashboard."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from attestor.keys import CA_KEY, DEVICE_KEY, KEYSTORE
from devnet.http import get_json
from redundancy.chain import connect
from redundancy.deployment import Deployment
from redundancy.devkeys import dev_keys
from redundancy.keystore import load_account


def test_devnet_once_runs_an_attestor_per_site_and_their_proofs_land(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "devnet.demo", "--once", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "started 3 attestors" in proc.stdout
    # one example site attests with a software TPM: its quoted proofs land like the others'
    assert "fra1 attests with a software TPM" in proc.stdout
    fra1_log = (tmp_path / "sites" / "fra1" / "attestor.log").read_text()
    assert fra1_log.count('"certificate":"tpm"') == 4  # root, issuing CA, EK, AK published
    rows = [
        line.split() for line in proc.stdout.splitlines() if line[:4] in ("fra1", "ams1", "dal1")
    ]
    assert [(r[0], r[2], r[-1]) for r in rows] == [
        ("fra1", "false", "-"),
        ("ams1", "false", "-"),
        ("dal1", "false", "-"),
    ]
    # every facility-level kind plus the node's hardware proof landed from each attestor
    assert all(int(r[3]) >= 6 for r in rows), proc.stdout
    assert len({r[1] for r in rows}) == 3  # each site has its own attestor key
    assert "attestors stopped (exit codes 0, 0, 0)" in proc.stdout
    # a committee is selected from the attested sites and its scores are printed
    assert "committee of epoch 1: 3 validators" in proc.stdout
    for dim in ("facility", "metro", "country", "power", "network", "provider", "hardware"):
        assert f"\n{dim} " in proc.stdout
    # three equal sites: losing one takes exactly 1/3 offline, which halts BFT consensus (T = 0);
    # the other two could still form a compliant committee, so the class is active-passive
    assert "redundancy score 0 (weakest: facility), class active_passive" in proc.stdout
    assert "redundancy-verify-scores --deployment" in proc.stdout
    for site in ("fra1", "ams1", "dal1"):
        log = (tmp_path / "sites" / site / "attestor.log").read_text()
        assert '"event":"daemon.stopped"' in log
    assert "relayed 6 measured RTTs on-chain" in proc.stdout
    # the venue: etcd member, node and gateway per site; orders acknowledged; a batch on-chain,
    # signed and submitted by the committee's node processes
    assert "venue: 600 orders acknowledged through all 3 gateways" in proc.stdout
    assert "settlement batch(es) committed on-chain by the committee's nodes" in proc.stdout
    urls = dict(
        line.split()[:2] for line in proc.stdout.splitlines() if line[:4] in ("API ", "dash")
    )
    assert urls["API"].startswith("http://127.0.0.1:") and urls["API"].endswith("/docs")
    assert urls["dashboard"] == urls["API"].removesuffix("docs")
    assert "Uvicorn running" in (tmp_path / "api.log").read_text()
    with pytest.raises(OSError):  # --once stops the API too
        get_json(urls["dashboard"] + "health", timeout=1)
    dep = Deployment.read(tmp_path / "deployment.json")
    assert dep.chain_id == 31337
    # --once stops the chain it started
    try:
        connect(proc.stdout.split()[1], timeout=1)
        reachable = True
    except Exception:
        reachable = False
    assert not reachable
    assert_no_secret_in_logs(tmp_path, proc.stdout + proc.stderr)


def secrets_of(state_dir: Path) -> dict[str, str]:
    """Every secret the devnet made, as text a log could contain: each site's passphrase, its
    attestor key, device key and CA key (hex and base64 of the raw key), and the development
    keys the venue's nodes sign with."""
    out: dict[str, str] = {}
    for keys in sorted(state_dir.glob("sites/*/keys")):
        site = keys.parent.name
        password = (keys / "password").read_text().splitlines()[0]
        out[f"{site} passphrase"] = password
        account = load_account(keys / KEYSTORE, password)
        out[f"{site} attestor key"] = bytes(account.key).hex()
        for name in (DEVICE_KEY, CA_KEY):
            if not (keys / name).exists():
                continue
            pem = serialization.load_pem_private_key((keys / name).read_bytes(), password.encode())
            raw = pem.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            out[f"{site} {name}"] = raw.hex()
            out[f"{site} {name} (base64)"] = base64.b64encode(raw).decode()
    for i, key in enumerate(dev_keys("anvil")):
        out[f"anvil development key {i}"] = key.removeprefix("0x")
    return out


def assert_no_secret_in_logs(state_dir: Path, console: str) -> None:
    """No log of the run (attestors, nodes, gateways, etcd, API, the console) holds a secret."""
    logs = {"console": console}
    logs |= {
        str(p.relative_to(state_dir)): p.read_text(errors="replace")
        for p in state_dir.rglob("*.log")
    }
    for part in ("attestor.log", "api.log", "-run.log", "-gateway.log"):  # every daemon's log
        assert any(name.endswith(part) for name in logs), (part, sorted(logs))
    secrets = secrets_of(state_dir)
    assert len(secrets) >= 3 * 3 + 10
    leaks = [
        (what, name)
        for what, secret in secrets.items()
        for name, text in logs.items()
        if secret.lower() in text.lower()
    ]
    assert leaks == []
