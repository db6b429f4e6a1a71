"""The durable outbox: every signed proof is written here before anything tries to publish it.

SQLite in WAL mode, one row per proof, keyed by its sequence. A proof's sequence is assigned
inside the same write transaction that stores it, as one more than the highest sequence ever
used here or seen on-chain (the *floor*), so a restart, a crash or a lost database never reuses
a sequence the chain has accepted and never skips one that was signed.

States::

    pending ──► published   (accepted on-chain; tx hash and block kept)
       │
       ├──────► expired     (too close to expiry to send; a fresh proof replaces it)
       └──────► rejected    (the registry refused it; the reason is kept)

A row never leaves a final state. ``synchronous = full`` (the default) makes every commit
durable against power loss; ``normal`` only against a crashed or killed process.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from attestor.errors import OutboxError, OutboxUnwritableError
from redundancy.domains import Kind
from redundancy.eip712 import Signature
from redundancy.evidence import evidence_hash
from redundancy.proofs import Attestation, SignedProof

PENDING, PUBLISHED, EXPIRED, REJECTED = "pending", "published", "expired", "rejected"
LIVE = (PENDING, PUBLISHED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS proofs (
    sequence INTEGER PRIMARY KEY,
    kind INTEGER NOT NULL,
    subject BLOB NOT NULL,
    facility_id BLOB NOT NULL,
    domain_id BLOB NOT NULL,
    secondary_domain_id BLOB NOT NULL,
    latitude_e6 INTEGER NOT NULL,
    longitude_e6 INTEGER NOT NULL,
    evidence BLOB NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    signature BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'published', 'expired', 'rejected')),
    signed_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_block INTEGER,
    tx_hash BLOB,
    block_number INTEGER,
    finished_at REAL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS proofs_pending ON proofs (sequence) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS proofs_by_kind ON proofs (kind, subject, sequence);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLUMNS = (
    "sequence, kind, subject, facility_id, domain_id, secondary_domain_id, latitude_e6, "
    "longitude_e6, evidence, issued_at, expires_at, signature, state, attempts, sent_block, "
    "tx_hash, block_number, reason"
)


@dataclass(frozen=True)
class Entry:
    """One outbox row."""

    proof: SignedProof
    state: str
    attempts: int = 0
    sent_block: int | None = None
    tx_hash: bytes | None = None
    block_number: int | None = None
    reason: str | None = None

    @property
    def sequence(self) -> int:
        return self.proof.attestation.sequence

    @property
    def kind(self) -> Kind:
        return self.proof.attestation.kind

    @property
    def subject(self) -> bytes:
        return self.proof.attestation.subject

    @property
    def expires_at(self) -> int:
        return self.proof.attestation.expires_at


def _entry(row: sqlite3.Row) -> Entry:
    att = Attestation(
        facility_id=row["facility_id"],
        kind=Kind(row["kind"]),
        subject=row["subject"],
        domain_id=row["domain_id"],
        secondary_domain_id=row["secondary_domain_id"],
        latitude_e6=row["latitude_e6"],
        longitude_e6=row["longitude_e6"],
        evidence_hash=evidence_hash(row["evidence"]),
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        sequence=row["sequence"],
    )
    proof = SignedProof(att, row["evidence"], Signature.from_bytes(row["signature"]))
    return Entry(
        proof,
        row["state"],
        row["attempts"],
        row["sent_block"],
        row["tx_hash"],
        row["block_number"],
        row["reason"],
    )


class Outbox:
    """The signed proofs of one attestor key under one registry deployment."""

    def __init__(
        self,
        path: Path,
        *,
        attestor: str,
        domain_separator: bytes,
        synchronous: str = "full",
    ) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            mode = "FULL" if synchronous == "full" else "NORMAL"
            self._db.execute(f"PRAGMA synchronous={mode}")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
        except (sqlite3.OperationalError, OSError) as exc:  # read-only, full, not a directory
            raise OutboxUnwritableError(
                f"outbox {path} cannot be opened for writing: {exc}"
            ) from None
        self.retired = self._bind(attestor, domain_separator.hex())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is stored, or none. A failure of the storage
        (disk full, read-only file system, I/O error) rolls it back and raises
        OutboxUnwritableError."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._rollback()
                    raise
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # full, read-only, I/O error, locked
                self._rollback()
                message = f"outbox {self.path} cannot be written: {exc}"
                raise OutboxUnwritableError(message) from None

    def _rollback(self) -> None:
        """Undo an open transaction (SQLite may already have, after a failed COMMIT)."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def _set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _bind(self, attestor: str, domain: str) -> int:
        """Tie the database to one attestor key; retire pending proofs signed for another
        registry deployment. Returns how many were retired."""
        with self._write() as db:
            owner = self._meta("attestor")
            if owner is not None and owner.lower() != attestor.lower():
                raise OutboxError(
                    f"outbox {self.path} belongs to attestor {owner}, not {attestor}; "
                    "give this key its own data_dir"
                )
            self._set_meta(db, "attestor", attestor)
            retired = 0
            previous = self._meta("domain_separator")
            if previous is not None and previous != domain:
                retired = db.execute(
                    "UPDATE proofs SET state = 'rejected', finished_at = ?, "
                    "reason = 'signed for another registry deployment' WHERE state = 'pending'",
                    (time.time(),),
                ).rowcount
            self._set_meta(db, "domain_separator", domain)
        return retired

    # ------------------------------------------------------------------- signing

    def _next_sequence(self, db: sqlite3.Connection) -> int:
        top = db.execute("SELECT max(sequence) FROM proofs").fetchone()[0] or 0
        return max(int(top), int(self._meta("floor") or 0)) + 1

    def append(self, builders: Sequence[Callable[[int], SignedProof]]) -> list[SignedProof]:
        """Sign and store proofs in one transaction: each builder gets its sequence."""
        out: list[SignedProof] = []
        with self._write() as db:
            sequence = self._next_sequence(db)
            now = time.time()
            for build in builders:
                proof = build(sequence)
                a = proof.attestation
                if a.sequence != sequence:
                    raise OutboxError(f"builder signed sequence {a.sequence}, not {sequence}")
                db.execute(
                    "INSERT INTO proofs (sequence, kind, subject, facility_id, domain_id, "
                    "secondary_domain_id, latitude_e6, longitude_e6, evidence, issued_at, "
                    "expires_at, signature, state, signed_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                    (
                        sequence,
                        int(a.kind),
                        a.subject,
                        a.facility_id,
                        a.domain_id,
                        a.secondary_domain_id,
                        a.latitude_e6,
                        a.longitude_e6,
                        proof.evidence,
                        a.issued_at,
                        a.expires_at,
                        proof.signature.to_bytes(),
                        now,
                    ),
                )
                out.append(proof)
                sequence += 1
        return out

    def raise_floor(self, sequence: int) -> None:
        """Never assign ``sequence`` or below again (the chain has accepted up to it)."""
        with self._write() as db:
            if sequence > int(self._meta("floor") or 0):
                self._set_meta(db, "floor", str(sequence))

    # ------------------------------------------------------------------- reading

    def _select(self, where: str, params: tuple[object, ...] = ()) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM proofs {where}", params).fetchall()
        return [_entry(r) for r in rows]

    def pending(self, limit: int | None = None) -> list[Entry]:
        """Pending proofs in sequence order."""
        suffix = "" if limit is None else f" LIMIT {int(limit)}"
        return self._select("WHERE state = 'pending' ORDER BY sequence" + suffix)

    def get(self, sequence: int) -> Entry | None:
        found = self._select("WHERE sequence = ?", (sequence,))
        return found[0] if found else None

    def entries(self) -> list[Entry]:
        """Every row, in sequence order."""
        return self._select("ORDER BY sequence")

    def depth(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM proofs WHERE state = 'pending'")
            return int(row.fetchone()[0])

    def oldest_pending_signed_at(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT min(signed_at) FROM proofs WHERE state = 'pending'")
            value = row.fetchone()[0]
        return None if value is None else float(value)

    def last_sequence(self, state: str | None = None) -> int:
        """The highest sequence stored (in ``state``, if given), or 0."""
        with self._lock:
            if state is None:
                row = self._db.execute("SELECT max(sequence) FROM proofs").fetchone()
            else:
                row = self._db.execute(
                    "SELECT max(sequence) FROM proofs WHERE state = ?", (state,)
                ).fetchone()
        return int(row[0] or 0)

    def last_live(self, kind: Kind, subject: bytes) -> Entry | None:
        """The newest live (pending or published) proof of this kind and subject, if any."""
        found = self._select(
            "WHERE kind = ? AND subject = ? AND state IN ('pending', 'published') "
            "ORDER BY sequence DESC LIMIT 1",
            (int(kind), subject),
        )
        return found[0] if found else None

    def has_newer(self, entry: Entry) -> bool:
        """Whether a later live proof of the same kind and subject exists."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM proofs WHERE kind = ? AND subject = ? AND sequence > ? "
                "AND state IN ('pending', 'published') LIMIT 1",
                (int(entry.kind), entry.subject, entry.sequence),
            ).fetchone()
        return row is not None

    # ------------------------------------------------------------------ updating

    def mark_sent(self, sequences: Sequence[int], block: int) -> None:
        """Record that these pending proofs are about to be sent at chain head ``block``."""
        with self._write() as db:
            db.executemany(
                "UPDATE proofs SET attempts = attempts + 1, sent_block = coalesce(sent_block, ?) "
                "WHERE sequence = ? AND state = 'pending'",
                [(block, s) for s in sequences],
            )

    def mark_published(self, items: Sequence[tuple[int, bytes, int]]) -> int:
        """Mark (sequence, tx hash, block) published; returns how many were pending."""
        now = time.time()
        with self._write() as db:
            return sum(
                db.execute(
                    "UPDATE proofs SET state = 'published', tx_hash = ?, block_number = ?, "
                    "finished_at = ? WHERE sequence = ? AND state = 'pending'",
                    (tx, block, now, sequence),
                ).rowcount
                for sequence, tx, block in items
            )

    def finish(self, sequence: int, state: str, reason: str) -> bool:
        """Move a pending proof to ``expired`` or ``rejected`` with a reason."""
        if state not in (EXPIRED, REJECTED):
            raise ValueError(f"cannot finish a proof as {state!r}")
        with self._write() as db:
            changed = db.execute(
                "UPDATE proofs SET state = ?, reason = ?, finished_at = ? "
                "WHERE sequence = ? AND state = 'pending'",
                (state, reason, time.time(), sequence),
            ).rowcount
        return bool(changed)

    def prune(self, older_than: float) -> int:
        """Delete finished rows signed before ``older_than`` (unix time); the highest sequence
        is kept as the floor, so it is never assigned again."""
        with self._write() as db:
            top = db.execute("SELECT max(sequence) FROM proofs").fetchone()[0] or 0
            if int(top) > int(self._meta("floor") or 0):
                self._set_meta(db, "floor", str(top))
            return int(
                db.execute(
                    "DELETE FROM proofs WHERE state != 'pending' AND signed_at < ?",
                    (older_than,),
                ).rowcount
            )
