"""Publishing the outbox: oldest first, many proofs per transaction, idempotent by sequence.

One ``step`` does one of these, in this order:

1. wait, if a transaction of ours is still in flight (after a crash or a lost receipt);
2. settle proofs the chain already has: any pending proof at or below the registry's
   ``lastSequence`` was sent before; the attestor's ``AttestationAccepted`` events say whether
   it landed (published) or was skipped (rejected, and a fresh proof is requested);
3. retire pending proofs that would expire before landing, requesting fresh ones (an expired
   proof is re-issued, never sent to fail);
4. send up to ``batch_size`` pending proofs in one ``submitAttestations`` transaction and record
   what the receipt says of each.

Errors reaching the chain back off exponentially (capped, with jitter); the proofs wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from web3.exceptions import TimeExhausted, Web3Exception

from attestor.backoff import Backoff
from attestor.metrics import Metrics
from attestor.outbox import EXPIRED, REJECTED, Entry, Outbox
from attestor.registry_link import RegistryLink
from attestor.settings import PublisherSettings
from redundancy.domains import Kind
from redundancy.errors import (
    ChainError,
    ContractRevertError,
    FeeCapError,
    InsufficientFundsError,
)
from redundancy.jsonlog import log_event
from redundancy.proofs import SignedProof
from redundancy.registry import SubmitResult

log = logging.getLogger("attestor.publisher")

#: Refusals caused by the clocks (ours against the chain's): the facts are fine, a fresh proof
#: is requested. Every other refusal is final for that proof.
TIMING_ERRORS = frozenset({"RegistryAttestationExpired", "RegistryAttestationFromFuture"})
REPLAY_ERROR = "RegistrySequenceNotIncreasing"
#: Gas limit of a batch: an upper bound (an accepted proof that stores from zero costs about
#: 115,000 with its calldata), not an estimate, since an estimate runs at the latest block's
#: timestamp and a proof skipped there can be accepted when mined. Unused gas is not charged.
GAS_BASE, GAS_PER_PROOF, GAS_PER_EVIDENCE_BYTE = 60_000, 150_000, 64
TRANSIENT = (ChainError, OSError, TimeExhausted, Web3Exception)

Renew = Callable[[Kind, bytes], None]


def batch_gas(proofs: Sequence[SignedProof]) -> int:
    """The gas limit for one batch (see GAS_PER_PROOF)."""
    return GAS_BASE + sum(GAS_PER_PROOF + GAS_PER_EVIDENCE_BYTE * len(p.evidence) for p in proofs)


class Publisher:
    """Moves proofs from the outbox to the registry."""

    def __init__(
        self,
        outbox: Outbox,
        link: RegistryLink,
        settings: PublisherSettings,
        metrics: Metrics,
        renew: Renew,
        clock: Callable[[], float] = time.time,
        in_flight_timeout: float = 120.0,
    ) -> None:
        self.outbox = outbox
        self.link = link
        self.settings = settings
        self.metrics = metrics
        self.renew = renew
        self.clock = clock
        self.in_flight_timeout = in_flight_timeout
        self.backoff = Backoff(settings.backoff_initial, settings.backoff_max)
        self._maybe_in_flight = True  # a previous run may have died waiting for a receipt
        self._in_flight_since: float | None = None
        self._reachable: bool | None = None

    # ---------------------------------------------------------------- the step

    def step(self) -> float | None:
        """Do one unit of work. Returns seconds to wait before the next step: 0 for at once,
        None when the outbox is empty (wait to be woken). RegistrationError propagates."""
        pending = self.outbox.pending(limit=4 * self.settings.batch_size)
        if not pending:
            return None
        try:
            delay = self._step(pending)
        except ContractRevertError as exc:
            # a whole batch reverted: only a domain mismatch does that, and verify() rules it out
            self._failed(exc, "publish.reverted", logging.ERROR)
            return self.backoff.next()
        except InsufficientFundsError as exc:
            self._failed(exc, "publish.unfunded", logging.ERROR)
            return self.backoff.next()
        except FeeCapError as exc:  # the chain answered, asking more than the settings let it pay
            self._set_reachable(True)
            self._failed(exc, "publish.fee_capped", logging.WARNING)
            return self.backoff.next()
        except TRANSIENT as exc:
            self._unreachable(exc)
            return self.backoff.next()
        self._set_reachable(True)
        return delay

    def _step(self, pending: list[Entry]) -> float:
        link = self.link
        client = link.client()
        if self._maybe_in_flight and self._awaiting_in_flight():
            return 1.0
        last = client.last_sequence(link.address)
        self.outbox.raise_floor(last)
        settled = [e for e in pending if e.sequence <= last]
        if settled:
            self._settle(settled)
            return 0.0
        ready = self._retire_expiring(pending)
        if not ready:
            return 0.0
        batch = ready[: self.settings.batch_size]
        client.tx.check_fee_cap()  # FeeCapError before the batch counts as an attempt
        self.outbox.mark_sent([e.sequence for e in batch], int(client.w3.eth.block_number))
        self._maybe_in_flight = True
        log_event(
            log,
            "publish.batch",
            size=len(batch),
            first_sequence=batch[0].sequence,
            last_sequence=batch[-1].sequence,
        )
        self.metrics.publish_batches.inc()
        proofs = [e.proof for e in batch]
        result = client.submit_attestations(proofs, sender=link.account, gas=batch_gas(proofs))
        self._maybe_in_flight = False
        return self._record(batch, result)

    # ---------------------------------------------------------------- phases

    def _awaiting_in_flight(self) -> bool:
        """True while one of our transactions is still unmined (up to ``in_flight_timeout``)."""
        if self.link.transactions_in_flight() <= 0:
            self._maybe_in_flight = False
            self._in_flight_since = None
            return False
        now = self.clock()
        if self._in_flight_since is None:
            self._in_flight_since = now
            log_event(log, "publish.awaiting_in_flight")
        if now - self._in_flight_since > self.in_flight_timeout:
            log_event(log, "publish.in_flight_timeout", logging.WARNING)
            self._maybe_in_flight = False
            self._in_flight_since = None
            return False
        return True

    def _settle(self, settled: list[Entry]) -> None:
        """Resolve proofs at or below the chain's lastSequence from our accepted events."""
        from_block = min((e.sent_block for e in settled if e.sent_block is not None), default=0)
        accepted = self.link.accepted(from_block)
        found = [(e.sequence, *accepted[e.sequence]) for e in settled if e.sequence in accepted]
        self._published([e for e in settled if e.sequence in accepted], found)
        log_event(
            log,
            "publish.settled",
            first_sequence=settled[0].sequence,
            last_sequence=settled[-1].sequence,
            already_on_chain=len(found),
        )
        for e in settled:
            if e.sequence not in accepted:
                self._finish(e, REJECTED, "skipped: a later sequence landed first", renew=True)

    def _retire_expiring(self, pending: list[Entry]) -> list[Entry]:
        """Expire proofs too close to their end to land (within ``expiry_margin``, or a quarter
        of their lifetime if that is shorter); the rest, still in order."""
        now = self.clock()
        ready = []
        for e in pending:
            a = e.proof.attestation
            margin = min(self.settings.expiry_margin, (a.expires_at - a.issued_at) // 4)
            if e.expires_at <= now + margin:
                self._finish(e, EXPIRED, "would expire before landing", renew=True)
            else:
                ready.append(e)
        return ready

    def _record(self, batch: list[Entry], result: SubmitResult) -> float:
        """Apply a batch receipt; returns the delay before the next step."""
        receipt = result.receipt
        tx, block = bytes(receipt["transactionHash"]), int(receipt["blockNumber"])
        accepted = {seq for fid, seq in result.accepted if fid == self.link.facility_id}
        landed = [e for e in batch if e.sequence in accepted]
        self._published(landed, [(e.sequence, tx, block) for e in landed])
        timing = False
        for index, error in result.rejected:
            entry = batch[index]
            if error == REPLAY_ERROR:
                continue  # already on-chain or skipped: settled by the next step
            timing |= error in TIMING_ERRORS
            self._finish(entry, REJECTED, error, renew=error in TIMING_ERRORS)
        log_event(
            log,
            "publish.receipt",
            tx=receipt["transactionHash"].to_0x_hex(),
            block=block,
            accepted=len(landed),
            rejected=len(result.rejected),
            gas=result.gas_used,
        )
        if timing:  # our clock and the chain's disagree: do not retry in a tight loop
            return self.backoff.next()
        self.backoff.reset()
        return 0.0

    # --------------------------------------------------------------- bookkeeping

    def _published(self, entries: Sequence[Entry], rows: list[tuple[int, bytes, int]]) -> None:
        if not rows:
            return
        self.outbox.mark_published(rows)
        for e in entries:
            self.metrics.proofs_published.labels(kind=e.kind.name.lower()).inc()
        self.metrics.last_published_sequence.set(max(r[0] for r in rows))

    def _finish(self, entry: Entry, state: str, reason: str, *, renew: bool) -> None:
        if not self.outbox.finish(entry.sequence, state, reason):
            return
        kind = entry.kind.name.lower()
        self.metrics.proofs_failed.labels(reason=reason.split(":")[0]).inc()
        level = logging.WARNING if state == REJECTED else logging.INFO
        log_event(log, f"proof.{state}", level, sequence=entry.sequence, kind=kind, reason=reason)
        if renew and not self.outbox.has_newer(entry):
            self.renew(entry.kind, entry.subject)

    def _failed(self, exc: Exception, event: str, level: int) -> None:
        self.metrics.publish_errors.labels(error=type(exc).__name__).inc()
        log_event(log, event, level, error=str(exc), retry=self.backoff.failures + 1)

    def _unreachable(self, exc: Exception) -> None:
        self.metrics.publish_errors.labels(error=type(exc).__name__).inc()
        if self._reachable is not False:
            log_event(
                log,
                "chain.unreachable",
                logging.WARNING,
                error=f"{type(exc).__name__}: {str(exc)[:300]}",
                pending=self.outbox.depth(),
            )
        self._set_reachable(False)

    def _set_reachable(self, reachable: bool) -> None:
        if reachable and self._reachable is False:
            log_event(log, "chain.recovered", pending=self.outbox.depth())
        self._reachable = reachable
        self.metrics.chain_reachable.set(1 if reachable else 0)
