"""What the API reads the chain through: the shared contract clients, the verifier, the event
index, and the block every read of one response is pinned to."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from web3 import Web3

from api.eventindex import EventIndex
from redundancy.attestation_verifier import Verifier
from redundancy.deployment import Deployment
from redundancy.ledger import SettlementClient
from redundancy.registry import RegistryClient
from redundancy.selector import SelectorClient

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Head:
    """The block a response reflects: every view of one response is read at this block."""

    number: int
    hash: str
    timestamp: int


class ChainReader:
    """Read-only access to one deployment. Thread-safe: views run in worker threads."""

    def __init__(self, w3: Web3, deployment: Deployment, parallel_calls: int = 8) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.registry = RegistryClient(w3, deployment.registry)
        self.selector = SelectorClient(w3, deployment.selector)
        self.settlement = SettlementClient(w3, deployment.settlement)
        self.verifier = Verifier(w3, deployment)
        self.events = EventIndex(w3, self.registry, self.selector, self.verifier, self.settlement)
        self._pool = ThreadPoolExecutor(parallel_calls, thread_name_prefix="api-rpc")

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fn`` over ``items`` with the calls in flight together (one view call per item)."""
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
