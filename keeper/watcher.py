"""The keeper's loop: read the selector at every new block, decide (``redundancy.reselection``),
and send ``selectNextCommittee`` when a selection is due, with a gas bound.

Many keepers may watch one selector. Each guards its selection with the epoch it saw, so the
first to land wins and every other is refused at gas estimation (``SelectorEpochAdvanced`` or
``SelectorEpochTooYoung``: nothing is sent) or, if already in flight in the same block, reverts
for a few thousand gas; either way the keeper logs that it lost the race and goes on. An RPC
endpoint that stops answering only delays it: one log line when it goes, one when it is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import Web3Exception

from redundancy.errors import ChainError, ChainUnreachableError, ContractRevertError
from redundancy.jsonlog import log_event
from redundancy.reselection import Decision, Observation, Reason, decide
from redundancy.selector import SelectorClient

log = logging.getLogger("keeper")

#: Refusals that mean another selection landed first, or the epoch is not yet old enough.
NOT_NOW = ("SelectorEpochAdvanced", "SelectorEpochTooYoung")


@dataclass(frozen=True)
class GasBound:
    """A selection's gas limit: the estimate times ``margin``, never above ``max_gas``."""

    max_gas: int
    margin: float = 1.25

    def limit(self, estimate: int) -> int | None:
        """The gas limit to send with, or None if the estimate is already above the bound."""
        if estimate > self.max_gas:
            return None
        return min(int(estimate * self.margin), self.max_gas)


class Keeper:
    """Watches one selector and re-selects its committee when the rule says so."""

    def __init__(
        self,
        w3: Web3,
        selector: SelectorClient,
        account: LocalAccount,
        gas: GasBound,
        *,
        poll_interval: float = 0.5,
        retry_interval: float = 2.0,
        delay_blocks: int = 0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.w3 = w3
        self.selector = selector
        self.account = account
        self.gas = gas
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval
        self.delay_blocks = delay_blocks
        self.sleep = sleep
        self.stopped = False
        self.selections = 0
        self._seen_block = -1
        self._due_since: int | None = None
        self._last: tuple[Reason, int, tuple[str, ...]] | None = None
        self._unreachable = False

    # ------------------------------------------------------------------ reading

    def observe(self, block: int) -> Observation:
        """Everything the decision needs, read at one block."""
        s = self.selector
        committee = s.current_committee(block)
        eligible = frozenset(m.address for m in s.eligible_candidates(block))
        preview = s.preview_selection(block)
        score = s.current_scores(block).score if committee.epoch else -1
        policy = s.geography_policy(block)
        timestamp = int(self.w3.eth.get_block(block)["timestamp"])
        emergency_open = committee.epoch == 0 or s.first_ineligible_member(block) is not None
        return Observation(
            block,
            timestamp,
            committee.epoch,
            committee.started_at,
            tuple(committee.members),
            eligible,
            preview,
            score,
            policy.min_epoch_seconds,
            emergency_open,
        )

    # ------------------------------------------------------------------ one step

    def step(self) -> None:
        """Look at the head once: if it is a new block, decide and act. A block is done only
        once that step returns: if it raises (the chain unreachable mid-way, a fee spike), the
        same block is stepped again at the next try, not only once another block comes (on a
        chain that makes blocks only for transactions, that may be never)."""
        head = int(self.w3.eth.block_number)
        if head == self._seen_block:
            return
        self._step_at(head)
        self._seen_block = head

    def _step_at(self, head: int) -> None:
        seen = self.observe(head)
        decision = decide(seen)
        self._report(seen, decision)
        if not decision.due(seen.timestamp):
            self._due_since = None
            return
        if self._due_since is None:
            self._due_since = head
        if head - self._due_since < self.delay_blocks:
            return
        self._select(seen, decision)

    def _report(self, seen: Observation, decision: Decision) -> None:
        """Log the decision when it changes (not every block)."""
        key = (decision.reason, seen.epoch, decision.ineligible)
        if key == self._last:
            return
        self._last = key
        level = logging.WARNING if decision.reason == Reason.UNMET else logging.INFO
        log_event(
            log,
            "keeper.decision",
            level,
            reason=str(decision.reason),
            epoch=seen.epoch,
            block=seen.block,
            ineligible=list(decision.ineligible),
            current_score=seen.current_score,
            preview_score=decision.preview_score,
            ready_at=decision.ready_at,
            preview_failure=seen.preview.failure.name.lower(),
        )

    def _select(self, seen: Observation, decision: Decision) -> None:
        fn = self.selector.select_next_committee_call(seen.epoch)
        started = time.monotonic()
        try:
            estimate = int(
                self.selector.tx.call(lambda: fn.estimate_gas({"from": self.account.address}))
            )
        except ContractRevertError as exc:
            self._refused(seen, exc, sent=False)
            return
        limit = self.gas.limit(estimate)
        if limit is None:
            log_event(
                log,
                "keeper.gas_over_bound",
                logging.ERROR,
                epoch=seen.epoch,
                estimate=estimate,
                max_gas=self.gas.max_gas,
            )
            return
        log_event(
            log,
            "keeper.selecting",
            reason=str(decision.reason),
            epoch=seen.epoch,
            block=seen.block,
            ineligible=list(decision.ineligible),
            gas_limit=limit,
        )
        try:
            receipt = self.selector.select_next_committee(seen.epoch, self.account, gas=limit)
        except ContractRevertError as exc:
            self._refused(seen, exc, sent=True)
            return
        self.selections += 1
        events = self.selector.events_in(receipt, "CommitteeSelected")
        emergency = self.selector.events_in(receipt, "EmergencySelection")
        log_event(
            log,
            "keeper.selected",
            epoch=int(events[0]["epoch"]) if events else None,
            members=list(events[0]["members"]) if events else [],
            score=int(events[0]["score"]) if events else None,
            emergency=bool(emergency),
            tx=receipt["transactionHash"].to_0x_hex(),
            block=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            seconds=round(time.monotonic() - started, 3),
        )

    def _refused(self, seen: Observation, exc: ContractRevertError, *, sent: bool) -> None:
        """A selection refused at estimation (nothing sent) or reverted when mined."""
        now = self.selector.current_committee().epoch
        if exc.error_name in NOT_NOW or now != seen.epoch:
            log_event(
                log,
                "keeper.lost_race",
                seen_epoch=seen.epoch,
                epoch=now,
                error=exc.error_name,
                reverted_on_chain=sent,
            )
            return
        log_event(
            log,
            "keeper.select_refused",
            logging.WARNING,
            epoch=seen.epoch,
            error=str(exc),
            reverted_on_chain=sent,
        )

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        """Step until stopped; an unreachable endpoint delays, nothing else stops the loop."""
        while not self.stopped:
            try:
                self.step()
            except (ChainUnreachableError, OSError) as exc:
                self._outage(exc)
                continue
            # ValueError, TypeError: web3's formatters on a reply that is JSON but not what the
            # call returns ({"result": "zz"}): a bad endpoint, not a reason to stop the loop
            except (ChainError, Web3Exception, ValueError, TypeError) as exc:
                log_event(log, "keeper.chain_error", logging.WARNING, error=str(exc)[:300])
                self.sleep(self.retry_interval)
                continue
            if self._unreachable:
                self._unreachable = False
                log_event(log, "chain.reachable", block=self._seen_block)
            self.sleep(self.poll_interval)

    def _outage(self, exc: Exception) -> None:
        if not self._unreachable:
            self._unreachable = True
            reason = exc.reason if isinstance(exc, ChainUnreachableError) else str(exc)[:200]
            log_event(
                log,
                "chain.unreachable",
                logging.WARNING,
                reason=reason,
                retry_every=self.retry_interval,
            )
        self.sleep(self.retry_interval)
