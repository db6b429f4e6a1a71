"""The README's demo: a devnet that deploys, starts one attestor process per example site,
shows their proofs landing, relays the RTTs the attestors measured (flagging the dishonest
site), selects an active-active committee under a real policy, runs the venue to its first
settlement batch, and serves the API and dashboard; Ctrl-C stops everything."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import sync_playwright

from attestor.keys import CA_KEY, DEVICE_KEY, KEYSTORE
from devnet.examples import SITE_NAMES
from devnet.http import get_json
from devnet.ports import free_port
from redundancy.chain import connect
from redundancy.deployment import Deployment
from redundancy.devkeys import dev_keys
from redundancy.keystore import load_account
from tests.integration.api.test_dashboard_browser import ARTIFACTS, FLAGS, chromium


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes whose arguments or environment name ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline or text in environ:
            found.append(f"{proc.name}: {cmdline}")
    return found


def dashboard(base: str) -> dict[str, object]:
    """The demo's dashboard in a real headless Chromium: what it shows, and a screenshot kept
    in ``artifacts-out/dashboard-demo.png`` (a CI artifact)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base + "/")
            page.wait_for_selector("body[data-ready=true]", timeout=60_000)
            shown = {
                "score": page.inner_text("#score"),
                "class": page.inner_text("#class"),
                "flagged": page.locator(".site[data-name=sin1] circle.ring").count(),
                "rows": page.locator("#facilities tbody tr").count(),
                "venue": page.inner_text("#venue"),
            }
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard-demo.png"), full_page=True)
        finally:
            browser.close()
    return shown


def run_demo(
    state_dir: Path, api_port: int
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """The default world until its first batch, its API read while it runs, then Ctrl-C."""
    json_path = state_dir / "summary.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devnet.demo",
            "--state-dir",
            str(state_dir),
            "--api-port",
            str(api_port),
            "--json",
            str(json_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    api: dict[str, Any] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "first batch" in line:
                break
        else:
            raise AssertionError("".join(lines) + (proc.stderr.read() if proc.stderr else ""))
        base = f"http://127.0.0.1:{api_port}"
        api["scores"] = get_json(base + "/scores", timeout=10)
        api["facilities"] = get_json(base + "/facilities", timeout=10)
        api["venue"] = get_json(base + "/venue", timeout=10)
        api["dashboard"] = dashboard(base)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + rest
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    api["summary"] = json.loads(json_path.read_text())
    return done, api


@pytest.mark.timeout(600)
def test_devnet_default_world_is_active_active_with_the_dishonest_site_flagged(
    tmp_path: Path,
) -> None:
    port = free_port()
    proc, api = run_demo(tmp_path, port)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "started 5 attestors (fra1, ams1, dal1, lon1, sin1" in out
    rows = [r for line in out.splitlines() if line[:4] in SITE_NAMES and (r := line.split())]
    rows = [r for r in rows if r[1].startswith("0x")]  # the status table's rows
    assert [r[0] for r in rows] == list(SITE_NAMES)
    assert [r[2] for r in rows] == ["false"] * 5
    # every facility-level kind plus the node's hardware proof landed from each attestor
    assert all(int(r[3]) >= 6 for r in rows), out
    assert len({r[1] for r in rows}) == 5  # each site has its own attestor key
    # fra1 attests with a software TPM: bound on-chain, and every proof verifies end to end
    assert "fra1 on a software TPM" in out
    assert [r[4] for r in rows] == ["tpm", "file", "file", "file", "file"]
    tpm = api["summary"]["tpmSites"]["fra1"]
    assert tpm["ok"] is True and tpm["failed"] == [], tpm
    assert tpm["quoted"] == tpm["proofs"] >= 6, tpm
    assert "fra1: " in out and "every check passed" in out
    # the API, while the demo runs: an active-active committee of the four honest sites
    scores = api["scores"]
    assert scores["configuration_class"] == "active_active" and scores["score"] >= 1, scores
    assert all(d["tolerance"] >= 1 for d in scores["dimensions"]), scores
    # the dashboard a user opens shows the same, and the dishonest site ringed on the map
    # the venue's nodes, asked by the API: one per committee site, all serving, one leads
    venue = api["venue"]
    assert venue["configured"] is True
    assert sorted(n["site"] for n in venue["nodes"]) == sorted(["fra1", "ams1", "dal1", "lon1"])
    assert all(n["reachable"] and n["serving"] for n in venue["nodes"]), venue
    assert [n["site"] for n in venue["nodes"] if n["etcd_leader"]] == [venue["leader"]], venue
    assert (venue["etcd_voting"], venue["etcd_learners"]) == (4, 0), venue
    shown = api["dashboard"]
    leader_shown = str(shown.pop("venue"))  # asked a moment later: leadership may have moved
    assert re.fullmatch(
        r"leader (fra1|ams1|dal1|lon1) · 4 of 4 nodes serving · etcd 4 voting", leader_shown
    )
    assert shown == {"score": "1", "class": "active-active", "flagged": 1, "rows": 5}
    facilities = {f["name"]: f for f in api["facilities"]["facilities"]}
    assert facilities["sin1"]["geography"]["flagged"] is True
    assert [n for n, f in facilities.items() if f["geography"]["flagged"]] == ["sin1"]
    assert {n: f["identity"]["backend"] for n, f in facilities.items()} == {
        "fra1": "tpm", "ams1": "file", "dal1": "file", "lon1": "file", "sin1": "file"
    }  # fmt: skip
    # what the console said
    assert "epoch 1: fra1, ams1, dal1, lon1; class active-active, redundancy score 1" in out
    assert "sin1 FLAGGED: it claims singapore (sg)" in out
    assert "with landmark fra1" in out
    for dim in ("facility", "metro", "country", "power", "network", "provider", "hardware"):
        assert f"\n{dim} " in out
    # the summary counts every batch committed by the end, and says so in JSON too
    summary = api["summary"]
    assert summary["class"] == "active-active" and summary["score"] >= 1
    assert summary["committee"]["sites"] == ["fra1", "ams1", "dal1", "lon1"]
    assert list(summary["flagged"]) == ["sin1"]
    assert summary["ordersAcknowledged"] == 600 and summary["batchesCommitted"] >= 1
    assert f"{summary['batchesCommitted']} settlement batches committed on-chain" in out
    assert "redundancy-verify-scores --deployment" in out
    assert "attestors stopped (exit codes 0, 0, 0, 0, 0)" in out
    for site in SITE_NAMES:
        log = (tmp_path / "sites" / site / "attestor.log").read_text()
        assert '"event":"daemon.stopped"' in log
    assert "Uvicorn running" in (tmp_path / "api.log").read_text()
    # Ctrl-C left nothing behind: no process names the state dir, the chain and API are gone
    assert processes_mentioning(str(tmp_path)) == []
    with pytest.raises(OSError):
        get_json(f"http://127.0.0.1:{port}/health", timeout=1)
    with pytest.raises(Exception):  # noqa: B017 - any failure to connect will do
        connect(summary["rpcUrl"], timeout=1)
    assert Deployment.read(tmp_path / "deployment.json").chain_id == 31337
    assert_no_secret_in_logs(tmp_path, out + proc.stderr)


@pytest.mark.slow  # opt-in (-m slow): the default world's test covers the demo in CI
def test_devnet_three_site_world_once_is_active_passive(tmp_path: Path) -> None:
    """The old world (three equal sites, no policy) is still there, and a second run on the
    same machine works while nothing of the first is left."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "devnet.demo",
            "--once",
            "--no-api",
            "--no-venue",
            "--sites",
            "fra1,ams1,dal1",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "started 3 attestors (fra1, ams1, dal1" in proc.stdout
    # three equal sites: losing one takes exactly 1/3 offline, which halts BFT consensus (T = 0)
    assert "class active-passive, redundancy score 0" in proc.stdout
    assert "flagged: none" in proc.stdout
    assert processes_mentioning(str(tmp_path)) == []


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


@pytest.mark.slow  # opt-in (-m slow): about three minutes; the anvil world runs in CI
@pytest.mark.timeout(900)
def test_devnet_on_ganache_runs_the_whole_default_world(tmp_path: Path) -> None:
    """``--chain ganache``: the same world, committee, flag, venue and first batch on ganache
    (the contracts are compiled for an EVM version both chains run)."""
    json_path = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "devnet.demo", "--chain", "ganache", "--once", "--no-api",
         "--state-dir", str(tmp_path / "state"), "--json", str(json_path)],
        capture_output=True,
        text=True,
        timeout=800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ganache http://127.0.0.1:" in proc.stdout and "(chain id 1337" in proc.stdout
    summary = json.loads(json_path.read_text())
    assert summary["class"] == "active-active" and summary["score"] >= 1
    assert summary["committee"]["sites"] == ["fra1", "ams1", "dal1", "lon1"]
    assert list(summary["flagged"]) == ["sin1"]
    assert summary["ordersAcknowledged"] == 600 and summary["batchesCommitted"] >= 1
    assert summary["tpmSites"]["fra1"]["ok"] is True
    assert processes_mentioning(str(tmp_path)) == []
