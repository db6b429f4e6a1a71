"""The outbox: sequences assigned at signing and never reused, states final, bound to a key."""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path

import pytest

from attestor.errors import OutboxError, OutboxUnwritableError
from attestor.outbox import EXPIRED, PENDING, PUBLISHED, REJECTED, Outbox
from redundancy.domains import Kind, facility_id
from redundancy.eip712 import Signer
from redundancy.proofs import SignedProof, make_proof

SIGNER = Signer(bytes.fromhex("11" * 32))
DOMAIN = bytes.fromhex("22" * 32)
FID = facility_id("fra1")


def _proof(kind: Kind, issued_at: int, sequence: int, lifetime: int = 60) -> SignedProof:
    return make_proof(
        SIGNER,
        DOMAIN,
        facility_id=FID,
        kind=kind,
        evidence=b'{"n":%d}' % issued_at,
        issued_at=issued_at,
        expires_at=issued_at + lifetime,
        sequence=sequence,
    )


def _open(path: Path, domain: bytes = DOMAIN, attestor: str = SIGNER.address) -> Outbox:
    return Outbox(path / "outbox.sqlite", attestor=attestor, domain_separator=domain)


def _append(box: Outbox, *kinds: Kind, at: int = 1000) -> list[SignedProof]:
    return box.append([partial(_proof, k, at) for k in kinds])


def test_sequences_start_at_one_and_continue_after_reopening(tmp_path: Path) -> None:
    box = _open(tmp_path)
    first = _append(box, Kind.POWER, Kind.HEALTH)
    assert [p.attestation.sequence for p in first] == [1, 2]
    box.close()
    box = _open(tmp_path)
    assert [p.attestation.sequence for p in _append(box, Kind.HEALTH)] == [3]
    assert [e.sequence for e in box.pending()] == [1, 2, 3]
    assert box.pending()[0].proof == first[0]  # stored and read back bit for bit


def test_floor_from_the_chain_is_never_reused(tmp_path: Path) -> None:
    box = _open(tmp_path)
    box.raise_floor(41)
    box.raise_floor(7)  # lower: ignored
    assert _append(box, Kind.POWER)[0].attestation.sequence == 42


def test_a_failing_signature_stores_nothing_and_consumes_no_sequence(tmp_path: Path) -> None:
    box = _open(tmp_path)

    def broken(sequence: int) -> SignedProof:
        raise RuntimeError("signer unavailable")

    with pytest.raises(RuntimeError):
        box.append([partial(_proof, Kind.POWER, 1000), broken])
    assert box.entries() == []
    assert _append(box, Kind.POWER)[0].attestation.sequence == 1


def test_builder_must_sign_the_sequence_it_was_given(tmp_path: Path) -> None:
    box = _open(tmp_path)
    with pytest.raises(OutboxError):
        box.append([lambda _seq: _proof(Kind.POWER, 1000, 99)])


def test_states_are_final(tmp_path: Path) -> None:
    box = _open(tmp_path)
    _append(box, Kind.POWER, Kind.HEALTH, Kind.NETWORK)
    box.mark_sent([1, 2], block=10)
    assert box.mark_published([(1, b"\x01" * 32, 11)]) == 1
    assert box.finish(2, EXPIRED, "would expire before landing")
    assert box.finish(3, REJECTED, "RegistryFacilityInactive")
    assert box.mark_published([(2, b"\x02" * 32, 12)]) == 0  # expired stays expired
    assert not box.finish(1, REJECTED, "late")
    one, two, three = box.entries()
    assert (one.state, one.tx_hash, one.block_number, one.sent_block) == (
        PUBLISHED,
        b"\x01" * 32,
        11,
        10,
    )
    assert (two.state, two.reason, two.attempts) == (EXPIRED, "would expire before landing", 1)
    assert (three.state, three.attempts) == (REJECTED, 0)
    assert box.depth() == 0
    assert box.last_sequence(PUBLISHED) == 1
    with pytest.raises(ValueError):
        box.finish(3, PENDING, "no")


def test_newer_and_last_live_look_only_at_live_proofs(tmp_path: Path) -> None:
    box = _open(tmp_path)
    _append(box, Kind.HEALTH, at=1000)
    _append(box, Kind.HEALTH, at=1010)
    first, second = box.entries()
    assert box.has_newer(first) and not box.has_newer(second)
    assert box.last_live(Kind.HEALTH, FID) == second
    box.finish(2, REJECTED, "x")
    assert not box.has_newer(first)
    assert box.last_live(Kind.HEALTH, FID) == first
    assert box.last_live(Kind.POWER, FID) is None


def test_outbox_of_another_key_is_refused(tmp_path: Path) -> None:
    _open(tmp_path).close()
    with pytest.raises(OutboxError, match="belongs to attestor"):
        _open(tmp_path, attestor="0x" + "33" * 20)


def test_new_registry_deployment_retires_pending_proofs(tmp_path: Path) -> None:
    box = _open(tmp_path)
    _append(box, Kind.POWER, Kind.HEALTH)
    box.mark_published([(1, b"\x01" * 32, 5)])
    box.close()
    box = _open(tmp_path, domain=bytes.fromhex("44" * 32))
    assert box.retired == 1
    assert [(e.state, e.reason) for e in box.entries()] == [
        (PUBLISHED, None),
        (REJECTED, "signed for another registry deployment"),
    ]
    assert _append(box, Kind.POWER)[0].attestation.sequence == 3


def test_prune_keeps_the_floor(tmp_path: Path) -> None:
    box = _open(tmp_path)
    _append(box, Kind.POWER, Kind.HEALTH)
    box.mark_published([(1, b"\x01" * 32, 5), (2, b"\x02" * 32, 5)])
    assert box.prune(older_than=float("inf")) == 2
    assert box.entries() == []
    assert _append(box, Kind.POWER)[0].attestation.sequence == 3


def test_concurrent_signers_get_distinct_contiguous_sequences(tmp_path: Path) -> None:
    box = _open(tmp_path)
    got: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            seq = _append(box, Kind.HEALTH)[0].attestation.sequence
            with lock:
                got.append(seq)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 101))


def test_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    _open(tmp_path).close()
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_resend_keeps_the_block_of_the_first_send(tmp_path: Path) -> None:
    """The first transaction may land after all: the search for it must start at the first
    send, or a landed proof is taken for a skipped one and renewed for nothing."""
    box = _open(tmp_path)
    _append(box, Kind.POWER, Kind.HEALTH)
    box.mark_sent([1], block=10)
    box.mark_sent([1, 2], block=25)
    one, two = box.entries()
    assert (one.sent_block, one.attempts) == (10, 2)
    assert (two.sent_block, two.attempts) == (25, 1)


def test_a_write_the_storage_refuses_stores_nothing_and_uses_no_sequence(tmp_path: Path) -> None:
    """SQLite's own page limit stands in for a full disk here (the fault test fills a real
    file system): the round is refused whole, and the next one continues the sequence."""
    box = _open(tmp_path)
    _append(box, Kind.POWER)
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count = {pages}")
    big = [partial(_proof, Kind.HEALTH, 1000 + i) for i in range(200)]
    with pytest.raises(OutboxUnwritableError, match="cannot be written: database or disk is full"):
        box.append(big)
    assert [e.sequence for e in box.entries()] == [1] and box.last_sequence() == 1
    box._db.execute("PRAGMA max_page_count = 1073741823")
    assert [p.attestation.sequence for p in _append(box, Kind.NETWORK)] == [2]


def test_get_returns_the_stored_entry_or_none(tmp_path: Path) -> None:
    box = _open(tmp_path)
    stored = _append(box, Kind.POWER, Kind.HEALTH)
    entry = box.get(2)
    assert entry is not None and entry.sequence == 2 and entry.proof == stored[1]
    assert entry.state == PENDING
    assert box.get(3) is None and box.get(0) is None


def test_oldest_pending_signed_at_follows_the_pending_rows_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = _open(tmp_path)
    assert box.oldest_pending_signed_at() is None
    clock = iter([1_000.5, 2_000.25])
    monkeypatch.setattr("attestor.outbox.time.time", lambda: next(clock))
    _append(box, Kind.POWER)  # signed at 1000.5
    _append(box, Kind.HEALTH)  # signed at 2000.25
    assert box.oldest_pending_signed_at() == 1_000.5
    monkeypatch.setattr("attestor.outbox.time.time", lambda: 3_000.0)
    assert box.finish(1, REJECTED, "test")
    assert box.oldest_pending_signed_at() == 2_000.25
    box.mark_published([(2, b"\x01" * 32, 9)])
    assert box.oldest_pending_signed_at() is None


def test_pending_takes_a_limit_and_depth_counts_pending_rows(tmp_path: Path) -> None:
    box = _open(tmp_path)
    _append(box, Kind.POWER, Kind.HEALTH, Kind.NETWORK)
    assert [e.sequence for e in box.pending(limit=2)] == [1, 2]
    assert box.depth() == 3
    box.finish(1, EXPIRED, "test")
    assert box.depth() == 2 and [e.sequence for e in box.pending(limit=1)] == [2]


def test_prune_deletes_only_finished_rows_and_never_lowers_or_loses_the_floor(
    tmp_path: Path,
) -> None:
    box = _open(tmp_path)
    assert box.prune(older_than=1e12) == 0  # empty: nothing to delete, no floor invented
    _append(box, Kind.POWER, Kind.HEALTH)
    box.finish(1, REJECTED, "test")
    assert box.prune(older_than=1e12) == 1  # the pending one stays
    assert [e.sequence for e in box.entries()] == [2]
    box.finish(2, EXPIRED, "test")
    assert box.prune(older_than=1e12) == 1 and box.entries() == []
    assert _append(box, Kind.POWER)[0].attestation.sequence == 3  # 1 and 2 never again
    box.raise_floor(50)
    box.finish(3, REJECTED, "test")
    box.prune(older_than=1e12)  # the highest row (3) is below the floor: the floor stays 50
    assert _append(box, Kind.POWER)[0].attestation.sequence == 51


def test_a_fresh_outbox_starts_at_one_and_a_floor_of_one_is_kept(tmp_path: Path) -> None:
    first = _open(tmp_path / "a")
    assert _append(first, Kind.POWER)[0].attestation.sequence == 1
    box = _open(tmp_path / "b")
    box.raise_floor(1)
    assert _append(box, Kind.POWER)[0].attestation.sequence == 2
    single = _open(tmp_path / "c")
    _append(single, Kind.POWER)
    single.finish(1, REJECTED, "test")
    single.prune(older_than=1e12)
    assert _append(single, Kind.POWER)[0].attestation.sequence == 2


def test_an_empty_outbox_has_sequence_zero_and_finish_names_a_bad_state(tmp_path: Path) -> None:
    box = _open(tmp_path)
    assert box.last_sequence() == 0 and box.last_sequence(PENDING) == 0
    with pytest.raises(ValueError, match=r"^cannot finish a proof as 'published'$"):
        box.finish(1, PUBLISHED, "test")


def _synchronous(box: Outbox) -> int:
    return int(box._db.execute("PRAGMA synchronous").fetchone()[0])


def test_commits_are_durable_against_power_loss_unless_normal_is_asked(tmp_path: Path) -> None:
    assert _synchronous(_open(tmp_path)) == 2  # FULL, the default
    full = Outbox(tmp_path / "f.sqlite", attestor=SIGNER.address, domain_separator=DOMAIN,
                  synchronous="full")  # fmt: skip
    assert _synchronous(full) == 2
    normal = Outbox(tmp_path / "n.sqlite", attestor=SIGNER.address, domain_separator=DOMAIN,
                    synchronous="normal")  # fmt: skip
    assert _synchronous(normal) == 1  # NORMAL


def test_the_outbox_directory_is_created_with_its_parents(tmp_path: Path) -> None:
    box = _open(tmp_path / "a" / "b")
    assert _append(box, Kind.POWER)[0].attestation.sequence == 1
    assert (tmp_path / "a" / "b" / "outbox.sqlite").exists()


def test_an_outbox_that_cannot_be_created_names_its_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    path = tmp_path / "file" / "outbox.sqlite"
    with pytest.raises(OutboxUnwritableError) as caught:
        Outbox(path, attestor=SIGNER.address, domain_separator=DOMAIN)
    assert str(caught.value).startswith(f"outbox {path} cannot be opened for writing: ")


def test_the_refusal_of_another_key_names_the_file_both_keys_and_the_remedy(
    tmp_path: Path,
) -> None:
    _open(tmp_path).close()
    other = "0x" + "33" * 20
    with pytest.raises(OutboxError) as caught:
        _open(tmp_path, attestor=other)
    assert str(caught.value) == (
        f"outbox {tmp_path / 'outbox.sqlite'} belongs to attestor {SIGNER.address}, "
        f"not {other}; give this key its own data_dir"
    )


def test_the_key_check_ignores_letter_case_and_nothing_is_retired_on_reopening(
    tmp_path: Path,
) -> None:
    box = _open(tmp_path)
    assert box.retired == 0
    _append(box, Kind.POWER)
    box.close()
    box = _open(tmp_path, attestor=SIGNER.address.lower())
    assert box.retired == 0 and box.depth() == 1


def test_a_builder_signing_another_sequence_is_named(tmp_path: Path) -> None:
    box = _open(tmp_path)
    with pytest.raises(OutboxError) as caught:
        box.append([lambda _seq: _proof(Kind.POWER, 1000, 99)])
    assert str(caught.value) == "builder signed sequence 99, not 1"


def test_a_failed_write_names_the_outbox_file(tmp_path: Path) -> None:
    box = _open(tmp_path)
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(OutboxUnwritableError) as caught:
        box.append([partial(_proof, Kind.HEALTH, 1000 + i) for i in range(200)])
    assert str(caught.value).startswith(f"outbox {tmp_path / 'outbox.sqlite'} cannot be written")


def test_a_published_row_records_when_it_finished(tmp_path: Path) -> None:
    box = _open(tmp_path)
    _append(box, Kind.POWER)
    before = time.time()
    box.mark_published([(1, b"\x01" * 32, 5)])
    (finished,) = box._db.execute("SELECT finished_at FROM proofs").fetchone()
    assert before <= finished <= time.time()
