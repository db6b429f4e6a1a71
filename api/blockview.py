"""Everything the views read at one block, each fetched once and shared by every response of
that block (worker threads may ask concurrently: a lock makes each value computed once)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from api.eventindex import IndexView
from api.reader import ChainReader, Head
from redundancy.attestation_verifier import Verifier
from redundancy.registry import FacilityInfo, FacilityStatus, FreshnessPolicy, NodeInfo
from redundancy.registry import ValidatorInfo as RegistryValidator
from redundancy.scores import ConfigurationClass, Member, Scores
from redundancy.selection import DiversityPolicy
from redundancy.selector import Committee, GeoFlag, GeographyPolicy

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FacilityRecord:
    info: FacilityInfo
    status: FacilityStatus
    flag: GeoFlag | None  # the flag record, whether or not it holds

    @property
    def flagged(self) -> bool:
        """The facility's geography is flagged: its flag record holds for its current claim."""
        return self.flag is not None and self.flag.holds


@dataclass(frozen=True, slots=True)
class ValidatorRecord:
    info: RegistryValidator
    node: NodeInfo


class _Flight:
    """One value being computed: its waiters block on ``done``."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_MISSING: Any = object()


class BlockView:
    def __init__(self, reader: ChainReader, head: Head) -> None:
        self.reader = reader
        self.head = head
        self.block = head.number
        self._memo: dict[str, Any] = {}
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()

    def once(self, key: str, fn: Callable[[], T]) -> T:
        """``fn()``, computed once per key at this block: a caller asking while another thread
        computes the same key waits for it (and computes it itself if that one failed); other
        keys are computed meanwhile. The lock guards only the bookkeeping, never a chain call:
        held across them, every miss at a block waited for every other (a stream of requests
        for unknown transactions, one RPC each, held up every endpoint). Keys depend on one
        another without cycles, so two computations never wait for each other."""
        while True:
            value = self._memo.get(key, _MISSING)
            if value is not _MISSING:
                return cast(T, value)
            with self._lock:
                value = self._memo.get(key, _MISSING)
                if value is not _MISSING:
                    return cast(T, value)
                flight = self._flights.get(key)
                mine = flight is None
                if flight is None:
                    flight = self._flights[key] = _Flight()
            if not mine:
                flight.done.wait()
                continue  # computed (read it from the memo), or failed (try it ourselves)
            try:
                computed = fn()
            except BaseException:
                with self._lock:
                    del self._flights[key]
                flight.done.set()
                raise
            with self._lock:
                self._memo[key] = computed  # before the waiters wake: they read it here
                del self._flights[key]
            flight.done.set()
            return computed

    # ------------------------------------------------------------- events

    def index(self) -> IndexView:
        return self.once("index", lambda: self.reader.events.view(self.block, self.head.hash))

    # ----------------------------------------------------------- registry

    def freshness_policy(self) -> FreshnessPolicy:
        return self.once("freshness", lambda: self.reader.registry.freshness_policy(self.block))

    def facilities(self) -> dict[bytes, FacilityRecord]:
        """Every registered facility, in registration order."""
        return self.once("facilities", self._facilities)

    def _facilities(self) -> dict[bytes, FacilityRecord]:
        registry, selector, block = self.reader.registry, self.reader.selector, self.block
        ids = registry.facility_ids(block)

        def one(fid: bytes) -> FacilityRecord:
            return FacilityRecord(
                registry.facility(fid, block),
                registry.facility_status(fid, block),
                selector.geography_flag(fid, block),
            )

        return dict(zip(ids, self.reader.map(one, ids), strict=True))

    def validators(self) -> dict[str, ValidatorRecord]:
        return self.once("validators", self._validators)

    def _validators(self) -> dict[str, ValidatorRecord]:
        registry, block = self.reader.registry, self.block
        addresses = registry.validator_addresses(block)

        def one(address: str) -> ValidatorRecord:
            info = registry.validator_info(address, block)
            return ValidatorRecord(info, registry.node_info(info.node, block))

        return dict(zip(addresses, self.reader.map(one, addresses), strict=True))

    # ----------------------------------------------------------- selector

    def genesis_bonds(self) -> int:
        return self.once("genesis", lambda: self.reader.selector.genesis_bonds(self.block))

    def benched_until(self) -> dict[str, int]:
        """Validator (lower case) -> until when it is benched, for every registered validator."""
        return self.once("benched", self._benched_until)

    def _benched_until(self) -> dict[str, int]:
        addresses = list(self.validators())
        until = self.reader.selector.benched_until(addresses, self.block) if addresses else []
        return {a.lower(): t for a, t in zip(addresses, until, strict=True)}

    def geography_policy(self) -> GeographyPolicy:
        return self.once("geo", lambda: self.reader.selector.geography_policy(self.block))

    def diversity_policy(self) -> DiversityPolicy:
        return self.once("div", lambda: self.reader.selector.diversity_policy(self.block))

    def eligible(self) -> list[Member]:
        return self.once("eligible", lambda: self.reader.selector.eligible_candidates(self.block))

    def committee(self) -> Committee:
        return self.once("committee", lambda: self.reader.selector.current_committee(self.block))

    def committee_members(self) -> list[Member]:
        return self.once("members", lambda: self.reader.selector.committee_members(self.block))

    def scores(self) -> Scores:
        return self.once("scores", lambda: self.reader.selector.current_scores(self.block))

    def configuration_class(self) -> ConfigurationClass:
        return self.once("class", lambda: self.reader.selector.current_class(self.block))

    # -------------------------------------------------------- verification

    def verifier(self) -> Verifier:
        """A verifier per block: its certificate cache may remember a certificate as missing."""
        return self.once(
            "verifier",
            lambda: Verifier(self.reader.w3, self.reader.deployment, at_block=self.block),
        )
