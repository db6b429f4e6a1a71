"""An incremental index of the registry's, selector's and settlement ledger's events, read once and
extended block by block (in ranges of at most ``LOG_RANGE`` blocks): accepted proofs (with their
position in the submission, from calldata), RTT measurements (one per end of each exchange),
geography flags, landmarks, committed settlement batches, and the domain names
the evidence documents disclose.

A reorg or an ``evm_revert`` (the tip the index stopped at is no longer on the chain) starts the
index again from the deployment block.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from web3 import Web3

from api.condition import HealthCondition, health_condition
from api.names import NameBook
from redundancy.attestation_verifier import Verifier
from redundancy.batches import Batch
from redundancy.chain import LOG_RANGE
from redundancy.domains import Kind
from redundancy.errors import VerificationError
from redundancy.events import Event, contract_events
from redundancy.ledger import CommittedBatch, SettlementClient
from redundancy.proofs import Attestation, SignedProof
from redundancy.registry import AcceptedProof, RegistryClient
from redundancy.selector import SelectorClient

#: How many recent tips (block number -> hash) are kept to tell an old head from a reorg.
TIPS_KEPT = 256


@dataclass(frozen=True, slots=True)
class ProofRecord(AcceptedProof):
    """An accepted proof: its AttestationAccepted event, and what its calldata says."""

    index: int | None = None  # position in the submission (None if the calldata did not decode)
    attestation: Attestation | None = None  # from calldata (evidence not kept: see names)
    condition: HealthCondition | None = None  # health proofs: what the evidence says


@dataclass(frozen=True, slots=True)
class LatencyRecord:
    """One end's accepted RTT measurement (LatencyReported)."""

    block: int
    log_index: int
    tx: str
    facility_id: bytes
    peer_facility_id: bytes
    rtt_micros: int
    measured_at: int
    exchange_id: bytes


@dataclass(frozen=True, slots=True)
class DiscRecord:
    """A disc a two-sided measurement with a landmark proves: the pair's bound (derived from
    both ends' LatencyReported, as the selector derives it from the pair's word)."""

    block: int
    facility_id: bytes
    landmark_id: bytes
    rtt_micros: int
    valid_until: int


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A settlement batch the ledger accepted (BatchCommitted), and where it was emitted."""

    log_index: int
    committed: CommittedBatch

    @property
    def position(self) -> tuple[int, int]:
        """(block, log index): the event's place in chain order."""
        return (self.committed.block, self.log_index)


@dataclass
class _Log:
    """Everything indexed so far; replaced (not cleared) on a reset, so views stay valid."""

    proofs: list[ProofRecord] = field(default_factory=list)
    latencies: list[LatencyRecord] = field(default_factory=list)
    batches: list[BatchRecord] = field(default_factory=list)
    landmark_events: list[Event] = field(default_factory=list)
    #: GeographyFlagged and GeographyFlagCleared, in chain order
    flag_events: list[Event] = field(default_factory=list)
    names: NameBook = field(default_factory=NameBook)
    tips: dict[int, str] = field(default_factory=dict)
    tip: int = -1


@dataclass(frozen=True)
class IndexView:
    """The index as of one block: records with ``block <= number``."""

    number: int
    proofs: list[ProofRecord]
    latencies: list[LatencyRecord]
    landmarks: dict[bytes, tuple[int, int]]
    names: NameBook
    batches: list[BatchRecord] = field(default_factory=list)
    #: facility -> what its standing flag record names (against), as of the block
    flags: dict[bytes, bytes] = field(default_factory=dict)
    #: landmark -> when its position was last fixed
    landmark_set_at: dict[bytes, int] = field(default_factory=dict)


class EventIndex:
    def __init__(
        self,
        w3: Web3,
        registry: RegistryClient,
        selector: SelectorClient,
        verifier: Verifier,
        settlement: SettlementClient | None = None,
    ) -> None:
        self.w3 = w3
        self.registry = registry
        self.selector = selector
        self.settlement = settlement
        self.verifier = verifier
        self.start_block = verifier.deployment.deploy_block
        self._log = _Log()
        self._lock = threading.Lock()

    def view(self, number: int, block_hash: str) -> IndexView:
        """The index up to block ``number`` (whose hash is ``block_hash``), extended if needed."""
        with self._lock:
            log = self._sync(number, block_hash)
        end = bisect.bisect_right(log.proofs, (number, 1 << 62), key=lambda p: p.position)
        lat_end = bisect.bisect_right(log.latencies, number, key=lambda r: r.block)
        batch_end = bisect.bisect_right(log.batches, number, key=lambda r: r.committed.block)
        landmarks: dict[bytes, tuple[int, int]] = {}
        landmark_set_at: dict[bytes, int] = {}
        for e in log.landmark_events:
            if e.block > number:
                break
            fid = bytes(e.args["facilityId"])
            if e.name == "LandmarkSet":
                landmarks[fid] = (int(e.args["latitudeE6"]), int(e.args["longitudeE6"]))
                landmark_set_at[fid] = int(e.args["setAt"])
            else:
                landmarks.pop(fid, None)
        flags: dict[bytes, bytes] = {}
        for e in log.flag_events:
            if e.block > number:
                break
            if e.name == "GeographyFlagged":
                flags[bytes(e.args["facilityId"])] = bytes(e.args["against"])
            else:
                flags.pop(bytes(e.args["facilityId"]), None)
        return IndexView(
            number,
            log.proofs[:end],
            log.latencies[:lat_end],
            landmarks,
            log.names,
            log.batches[:batch_end],
            flags,
            landmark_set_at,
        )

    # ----------------------------------------------------------------- sync

    def _sync(self, number: int, block_hash: str) -> _Log:
        log = self._log
        known = log.tips.get(number)
        if known == block_hash:
            return log
        if known is not None or not self._tip_canonical(log):
            log = self._log = _Log()  # reorg or revert: start again
        if number > log.tip:
            try:
                self._extend(log, number)
            except BaseException:
                self._log = _Log()  # half-added events: start again next time
                raise
        log.tips[number] = block_hash
        if len(log.tips) > TIPS_KEPT:
            for old in sorted(log.tips)[: len(log.tips) - TIPS_KEPT]:
                del log.tips[old]
        return log

    def _tip_canonical(self, log: _Log) -> bool:
        if log.tip < 0:
            return True
        try:
            block = self.w3.eth.get_block(log.tip)
        except Exception:  # BlockNotFound after a revert below the tip
            return False
        return block["hash"].to_0x_hex() == log.tips.get(log.tip)

    def _extend(self, log: _Log, number: int) -> None:
        clients = [self.registry, self.selector]
        if self.settlement is not None:
            clients.append(self.settlement)
        start = max(log.tip + 1, self.start_block)
        events = []
        for first in range(start, number + 1, LOG_RANGE):
            events += contract_events(clients, first, min(first + LOG_RANGE - 1, number))
        self._add(log, events)
        log.tip = number

    def _add(self, log: _Log, events: Iterable[Event]) -> None:
        decoded: dict[str, dict[tuple[bytes, int], tuple[int, SignedProof]]] = {}
        rejected: dict[str, set[int]] = {}  # tx -> positions of the proofs the chain refused
        events = list(events)
        for e in events:
            if e.name == "AttestationRejected":
                rejected.setdefault(e.tx_hash, set()).add(int(e.args["index"]))
        for e in events:
            a = e.args
            if e.name == "AttestationAccepted":
                if e.tx_hash not in decoded:
                    decoded[e.tx_hash] = self._decode(e.tx_hash, rejected.get(e.tx_hash, set()))
                record = ProofRecord.from_event(a, e.block, e.log_index, e.tx_hash)
                key = (record.facility_id, record.sequence)
                index, proof = decoded[e.tx_hash].get(key, (None, None))
                if proof is not None and (
                    proof.attestation.kind != record.kind
                    or proof.attestation.subject != record.subject
                    or proof.attestation.expires_at != record.valid_until
                ):
                    index, proof = None, None  # not the proof the event accepted
                if proof is not None:
                    log.names.learn(proof)
                    condition = None
                    if proof.attestation.kind == Kind.HEALTH:
                        condition = health_condition(proof.evidence)
                    record = replace(
                        record, index=index, attestation=proof.attestation, condition=condition
                    )
                log.proofs.append(record)
            elif e.name == "LatencyReported":
                log.latencies.append(
                    LatencyRecord(
                        e.block,
                        e.log_index,
                        e.tx_hash,
                        bytes(a["facilityId"]),
                        bytes(a["peerFacilityId"]),
                        int(a["rttMicros"]),
                        int(a["measuredAt"]),
                        bytes(a["exchangeId"]),
                    )
                )
            elif e.name in ("LandmarkSet", "LandmarkRemoved"):
                log.landmark_events.append(e)
            elif e.name in ("GeographyFlagged", "GeographyFlagCleared"):
                log.flag_events.append(e)
            elif e.name == "BatchCommitted":
                batch = Batch(
                    int(a["epoch"]),
                    int(a["firstSequence"]),
                    int(a["lastSequence"]),
                    bytes(a["stateRoot"]),
                )
                committed = CommittedBatch(
                    batch,
                    [str(x) for x in a["signers"]],
                    int(a["signedStake"]),
                    int(a["totalStake"]),
                    e.tx_hash,
                    e.block,
                )
                log.batches.append(BatchRecord(e.log_index, committed))

    def _decode(
        self, tx_hash: str, rejected: set[int]
    ) -> dict[tuple[bytes, int], tuple[int, SignedProof]]:
        """(facility, sequence) -> (position in the submission, proof), from the calldata,
        leaving out the positions the chain rejected: a forged copy of an accepted proof (same
        facility and sequence, other content, anyone's signature) may ride in the same
        submission, and must never be shown as the one accepted."""
        try:
            submission = self.registry.read_submission(tx_hash)
        except VerificationError:  # e.g. submitted through another contract: no direct calldata
            return {}
        out = {}
        for i, p in enumerate(submission.proofs):
            if isinstance(p, SignedProof) and i not in rejected:
                out[(p.attestation.facility_id, p.attestation.sequence)] = (i, p)
        return out
