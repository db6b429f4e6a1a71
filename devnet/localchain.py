"""Start a real local chain (anvil, or ganache) on a free loopback port, and stop it.

Used by the devnet, the test fixtures and the benchmarks. Both chains use their well-known
deterministic development accounts, which are public: never send real value to them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account

from devnet.errors import ToolchainError
from devnet.http import rpc_call
from devnet.ports import free_port
from devnet.toolchain import anvil_binary, node_bin
from redundancy.devkeys import ChainKind, dev_keys

__all__ = ["ChainKind", "LocalChain", "attach_chain", "dev_keys", "start_chain"]

#: The chain ids of the local development chains whose accounts are public keys.
LOCAL_CHAIN_KINDS: dict[int, ChainKind] = {31337: "anvil", 1337: "ganache"}


@dataclass
class LocalChain:
    """A running local chain: a process started here, or (``process`` None) one already
    running that ``attach_chain`` found."""

    kind: ChainKind
    host: str
    port: int
    process: subprocess.Popen[bytes] | None
    chain_id: int
    dev_keys: list[str] = field(default_factory=list)
    url: str | None = None  # an attached chain's URL as given
    cache_dir: Path | None = None
    """Where a started anvil persists the historical states it no longer keeps in memory;
    removed at ``stop``. (Left to itself, anvil puts them under ``~/.foundry/anvil/tmp`` and
    never removes them, not even on SIGTERM: several GB per long adversarial run.)"""

    @property
    def rpc_url(self) -> str:
        return self.url or f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        """Whether the chain still answers (a started one: whether its process runs)."""
        if self.process is not None:
            return self.process.poll() is None
        try:
            rpc_call(self.rpc_url, "eth_chainId", timeout=2.0)
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Terminate the chain and wait for it, then remove its state cache (an attached chain
        is left running)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.cache_dir is not None and (self.process is None or self.process.poll() is not None):
            shutil.rmtree(self.cache_dir, ignore_errors=True)

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
            str(anvil_binary()),
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
        cache_dir = Path(tempfile.mkdtemp(prefix="anvil-states-"))
        cmd += ["--cache-path", str(cache_dir)]
    else:
        cache_dir = None
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
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except BaseException:
        if cache_dir is not None:
            shutil.rmtree(cache_dir, ignore_errors=True)
        raise
    chain = LocalChain(kind, host, port, proc, chain_id, dev_keys(kind), cache_dir=cache_dir)
    try:
        _wait_until_it_answers(chain, startup_timeout)
    except BaseException:
        chain.stop()  # a start-up interrupted (Ctrl-C) or refused leaves no process nor directory
        raise
    return chain


def _wait_until_it_answers(chain: LocalChain, startup_timeout: float) -> None:
    proc, kind = chain.process, chain.kind
    assert proc is not None
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise ToolchainError(
                f"{kind} exited at start-up (code {proc.returncode}): {err[-500:]}"
            )
        try:
            rpc_call(chain.rpc_url, "eth_chainId", timeout=1.0)
            return
        except OSError:
            time.sleep(0.1)
    raise ToolchainError(f"{kind} did not answer on {chain.rpc_url} within {startup_timeout:.0f} s")


def attach_chain(rpc_url: str, accounts: int = 10) -> LocalChain:
    """A local development chain already running at ``rpc_url`` (anvil, chain id 31337, or
    ganache started with ``-d``, chain id 1337), whose development account 0 holds funds.
    Raises ToolchainError naming what is wrong."""
    try:
        chain_id = int(str(rpc_call(rpc_url, "eth_chainId", timeout=5.0)), 16)
    except OSError as exc:
        raise ToolchainError(f"no chain answers at {rpc_url}: {exc}") from None
    kind = LOCAL_CHAIN_KINDS.get(chain_id)
    if kind is None:
        raise ToolchainError(
            f"{rpc_url} is chain {chain_id}: the demo needs a local development chain whose "
            "accounts are public keys (anvil, chain id 31337, or ganache -d, chain id 1337)"
        )
    keys = dev_keys(kind, accounts)
    first = Account.from_key(keys[0]).address
    balance = int(str(rpc_call(rpc_url, "eth_getBalance", [first, "latest"], timeout=5.0)), 16)
    if balance == 0:
        hint = (
            "start ganache with --wallet.deterministic (-d)"
            if kind == "ganache"
            else "start anvil with its default accounts"
        )
        raise ToolchainError(
            f"development account 0 ({first}) has 0 wei on the {kind} chain at {rpc_url}: {hint}"
        )
    return LocalChain(kind, "", 0, None, chain_id, keys, url=rpc_url)
