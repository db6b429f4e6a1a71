"""Watches the chain: polls the latest block in the background, so that answering from the cache
never waits on the RPC, and connects the contract clients once the chain answers."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time

from eth_utils import to_checksum_address

from api.metrics import ApiMetrics
from api.reader import ChainReader, Head
from redundancy.chain import one_line, web3_for
from redundancy.deployment import Deployment
from redundancy.errors import ChainUnreachableError

log = logging.getLogger("api.chain")


class ChainWatcher:
    """The latest block and whether the chain is usable; ``poll`` runs every ``interval`` s."""

    def __init__(
        self,
        rpc_url: str,
        deployment: Deployment,
        metrics: ApiMetrics,
        interval: float = 0.25,
        rpc_timeout: float = 5.0,
    ) -> None:
        self.rpc_url = rpc_url
        self.deployment = deployment
        self.metrics = metrics
        self.interval = interval
        self.w3 = web3_for(rpc_url, rpc_timeout)
        self._head: Head | None = None
        self._last_head: Head | None = None
        self._error: str | None = "the chain has not been polled yet"
        self._polled_at = 0.0
        self._reader: ChainReader | None = None
        self._connect_lock = threading.Lock()

    # ------------------------------------------------------------ state

    @property
    def head(self) -> Head:
        """The latest block, or ChainUnreachableError if the last poll failed."""
        head = self._head
        if head is None:
            raise ChainUnreachableError(self.rpc_url, self._error or "unknown")
        return head

    @property
    def reader(self) -> ChainReader:
        reader = self._reader
        if reader is None:
            raise ChainUnreachableError(self.rpc_url, self._error or "not connected")
        return reader

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def last_head(self) -> Head | None:
        """The head of the last successful poll, even while the chain is unavailable."""
        return self._last_head

    def poll_age(self) -> float:
        return time.monotonic() - self._polled_at if self._polled_at else float("inf")

    # ------------------------------------------------------------ polling

    def poll(self) -> Head | None:
        """Fetch the latest block (blocking; the background task runs it in a thread)."""
        try:
            if self._reader is None:
                self._connect()
            block = self.w3.eth.get_block("latest")
            head = Head(int(block["number"]), block["hash"].to_0x_hex(), int(block["timestamp"]))
        except ChainUnreachableError as exc:
            self._failed(exc.reason)
            return None
        except Exception as exc:  # requests', web3's and the socket's errors differ by version
            self._failed(one_line(exc))
            return None
        self._head = self._last_head = head
        self._error = None
        self._polled_at = time.monotonic()
        self.metrics.polls.labels("ok").inc()
        self.metrics.block.set(head.number)
        self.metrics.reachable.set(1)
        return head

    def _failed(self, reason: str) -> None:
        if self._error != reason:
            log.warning("chain at %s unavailable: %s", self.rpc_url, reason)
        self._head = None
        self._error = reason
        self._polled_at = time.monotonic()
        self.metrics.polls.labels("error").inc()
        self.metrics.reachable.set(0)
        return None

    def _connect(self) -> None:
        """Check the chain is the deployment's and build the clients (once)."""
        with self._connect_lock:
            if self._reader is not None:
                return
            chain_id = int(self.w3.eth.chain_id)
            if chain_id != self.deployment.chain_id:
                raise ChainUnreachableError(
                    self.rpc_url,
                    f"the RPC serves chain {chain_id}, the deployment file is for chain "
                    f"{self.deployment.chain_id}",
                )
            registry = to_checksum_address(self.deployment.registry)
            if not self.w3.eth.get_code(registry):
                raise ChainUnreachableError(
                    self.rpc_url, f"no contract at the registry address {registry}"
                )
            self._reader = ChainReader(self.w3, self.deployment)
            gc.freeze()  # the clients live as long as the process: keep them out of full GCs
            log.info("connected to chain %d at %s", chain_id, self.rpc_url)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    async def run(self) -> None:
        """Poll forever (cancelled at shutdown)."""
        while True:
            await asyncio.to_thread(self.poll)
            await asyncio.sleep(self.interval)
