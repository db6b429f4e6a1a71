"""Start a real local chain (anvil, or ganache) on a free loopback port, and stop it.

Used by the devnet, the test fixtures and the benchmarks. Both chains use their well-known
deterministic development accounts, which are public: never send real value to them.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from devnet.errors import ToolchainError
from devnet.http import rpc_call
from devnet.ports import free_port
from devnet.toolchain import node_bin
from redundancy.devkeys import ChainKind, dev_keys

__all__ = ["ChainKind", "LocalChain", "dev_keys", "start_chain"]


@dataclass
class LocalChain:
    """A running local chain process."""

    kind: ChainKind
    host: str
    port: int
    process: subprocess.Popen[bytes]
    chain_id: int
    dev_keys: list[str] = field(default_factory=list)

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Terminate the chain and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LocalChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_chain(
    kind: ChainKind = "anvil",
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    chain_id: int | None = None,
    block_time: int | None = None,
    state_dir: Path | None = None,
    extra_args: tuple[str, ...] = (),
    startup_timeout: float = 30.0,
) -> LocalChain:
    """Start anvil or ganache on loopback and wait until it answers JSON-RPC.

    ``state_dir`` (anvil only) keeps the chain state across restarts, for fault tests that stop
    and restart the chain.
    """
    port = port or free_port(host)
    if kind == "anvil":
        chain_id = chain_id or 31337
        cmd = [
            str(node_bin("anvil")),
            "--host",
            host,
            "--port",
            str(port),
            "--chain-id",
            str(chain_id),
            "--silent",
        ]
        if block_time:
            cmd += ["--block-time", str(block_time)]
        if state_dir is not None:
            cmd += ["--state", str(state_dir / "anvil-state.json")]
    else:
        chain_id = chain_id or 1337
        cmd = [
            str(node_bin("ganache")),
            "--server.host",
            host,
            "--server.port",
            str(port),
            "--wallet.deterministic",
            "--chain.chainId",
            str(chain_id),
            "--logging.quiet",
        ]
        if block_time:
            cmd += ["--miner.blockTime", str(block_time)]
    cmd += list(extra_args)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    chain = LocalChain(kind, host, port, proc, chain_id, dev_keys(kind))
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise ToolchainError(
                f"{kind} exited at start-up (code {proc.returncode}): {err[-500:]}"
            )
        try:
            rpc_call(chain.rpc_url, "eth_chainId", timeout=1.0)
            return chain
        except OSError:
            time.sleep(0.1)
    chain.stop()
    raise ToolchainError(f"{kind} did not answer on {chain.rpc_url} within {startup_timeout:.0f} s")
