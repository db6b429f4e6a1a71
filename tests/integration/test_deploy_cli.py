"""`scripts/deploy.py` against a real anvil, and its one-line errors."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from eth_account import Account

from devnet.http import rpc_call
from devnet.localchain import LocalChain
from devnet.ports import free_port
from devnet.toolchain import node_bin
from redundancy.chain import connect
from redundancy.deployment import Deployment
from redundancy.keystore import write_keystore
from redundancy.registry import RegistryClient

DEPLOY = [sys.executable, str(Path(__file__).resolve().parents[2] / "scripts" / "deploy.py")]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DEPLOY, *args], capture_output=True, text=True, timeout=120, env=env)


def run_keystore(rpc_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Deploy with the keystore ``tmp_path/k.json`` and its password file ``tmp_path/pw``."""
    keystore, password = str(tmp_path / "k.json"), str(tmp_path / "pw")
    return run("--rpc-url", rpc_url, "--keystore", keystore, "--password-file", password, *args)


def test_deploy_writes_deployment_file(anvil_chain: LocalChain, tmp_path: Path) -> None:
    out = tmp_path / "deployment.json"
    proc = run("--rpc-url", anvil_chain.rpc_url, "--dev-account", "0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    dep = Deployment.read(out)
    assert dep.chain_id == 31337
    registry = RegistryClient(connect(anvil_chain.rpc_url), dep.registry)
    assert registry.owner() == dep.deployer
    assert "0x" + registry.domain_separator().hex() == dep.domain_separator
    assert dep.artifacts["RedundancyRegistry"]["compiler"].startswith("solc 0.8.28")


def test_deploy_with_keystore(anvil_chain: LocalChain, tmp_path: Path) -> None:
    key = anvil_chain.dev_keys[7]
    write_keystore(tmp_path / "k.json", key, "correct horse", iterations=2)
    (tmp_path / "pw").write_text("correct horse\n")
    (tmp_path / "pw").chmod(0o600)
    proc = run_keystore(anvil_chain.rpc_url, tmp_path, "--out", str(tmp_path / "d.json"))
    assert proc.returncode == 0, proc.stderr
    assert Deployment.read(tmp_path / "d.json").deployer == Account.from_key(key).address
    assert key[2:] not in proc.stdout + proc.stderr


def test_unreachable_rpc_is_one_line_error(tmp_path: Path) -> None:
    proc = run(
        "--rpc-url",
        f"http://127.0.0.1:{free_port()}",
        "--dev-account",
        "0",
        "--out",
        str(tmp_path / "d.json"),
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.count("\n") == 1
        and "unreachable" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    assert not (tmp_path / "d.json").exists()


def test_unfunded_key_is_one_line_error(anvil_chain: LocalChain, tmp_path: Path) -> None:
    empty = Account.create()
    write_keystore(tmp_path / "k.json", empty.key, "pw", iterations=2)
    (tmp_path / "pw").write_text("pw")
    (tmp_path / "pw").chmod(0o600)
    proc = run_keystore(anvil_chain.rpc_url, tmp_path, "--out", str(tmp_path / "d.json"))
    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 1 and "0 wei" in proc.stderr


def test_wrong_passphrase_and_open_keystore_are_refused(
    anvil_chain: LocalChain, tmp_path: Path
) -> None:
    write_keystore(tmp_path / "k.json", anvil_chain.dev_keys[8], "right", iterations=2)
    (tmp_path / "pw").write_text("wrong")
    (tmp_path / "pw").chmod(0o600)
    proc = run_keystore(anvil_chain.rpc_url, tmp_path)
    assert (proc.returncode, proc.stderr.strip()) == (
        4,
        f"redundancy-deploy: error: wrong passphrase for keystore {tmp_path / 'k.json'}",
    )
    (tmp_path / "k.json").chmod(0o644)
    (tmp_path / "pw").write_text("right")
    (tmp_path / "pw").chmod(0o600)
    proc = run_keystore(anvil_chain.rpc_url, tmp_path)
    assert proc.returncode == 4 and "mode 0644" in proc.stderr


def test_a_dev_account_on_a_ganache_without_deterministic_keys_says_how_to_fix_it(
    tmp_path: Path,
) -> None:
    port = free_port()
    ganache = subprocess.Popen(
        [str(node_bin("ganache")), "--server.host", "127.0.0.1", "--server.port", str(port),
         "--logging.quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        rpc = f"http://127.0.0.1:{port}"
        wait_answering(rpc)
        proc = run("--rpc-url", rpc, "--dev-account", "0", "--out", str(tmp_path / "d.json"))
    finally:
        ganache.terminate()
        ganache.wait(timeout=30)
    assert proc.returncode == 4, proc.stderr  # the key chosen, not the chain, is the problem
    assert proc.stderr.count("\n") == 1 and "has 0 wei on this ganache chain" in proc.stderr
    assert "--wallet.deterministic (-d)" in proc.stderr
    assert not (tmp_path / "d.json").exists()


def wait_answering(rpc: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            rpc_call(rpc, "eth_chainId", timeout=1.0)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
