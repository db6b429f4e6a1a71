"""Two-sided signed exchanges on loopback: the responder signs both nonces, the challenger
verifies it and measures challenge -> response, the responder measures response -> confirm, and
each end signs an EIP-712 LatencyMeasurement of what it measured, for the same exchange."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from attestor.errors import LatencyError
from attestor.keys import CA_CERT, DEVICE_CERT, DEVICE_KEY, DeviceIdentity, init_site
from attestor.keys import load_device_identity as load_identity
from attestor.latency import (
    MAX_PENDING,
    AnchorCache,
    LatencyBook,
    LatencyResponder,
    MeasurementSigner,
    SignedLatency,
    allowed_sources,
    measure_peer,
    response_payload,
    verify_response,
)
from attestor.settings import PeerSettings
from devnet.ports import free_udp_port
from redundancy.domains import facility_id
from redundancy.eip712 import Signer, recover_signer
from redundancy.evidence import canonical_json
from redundancy.proofs import exchange_id

SECRET = "pw"
DS = bytes(range(32))
ANCHOR = (812, bytes.fromhex("77" * 32))
FRA_KEY = Signer(b"\x01" * 32)
AMS_KEY = Signer(b"\x02" * 32)


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> DeviceIdentity:
    d: Path = tmp_path_factory.mktemp("ams1")
    init_site("ams1", d, SECRET, kdf_iterations=16)
    return load_identity(d / DEVICE_KEY, d / DEVICE_CERT, d / CA_CERT, SECRET)


def signer_for(name: str, key: Signer) -> MeasurementSigner:
    return MeasurementSigner(name, lambda: ANCHOR, lambda m: key.sign(DS, m))


@pytest.fixture
def book() -> LatencyBook:
    return LatencyBook()


@pytest.fixture
def responder(identity: DeviceIdentity, book: LatencyBook) -> Iterator[LatencyResponder]:
    r = LatencyResponder(
        "127.0.0.1:0",
        "ams1",
        identity,
        {"fra1": 3000},
        signer=signer_for("ams1", AMS_KEY),
        book=book,
    ).start()
    yield r
    r.stop()


def _peer(r: LatencyResponder) -> PeerSettings:
    host, port = r.address
    return PeerSettings(facility="ams1", address=f"{host}:{port}")


def _wait(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_response_is_signed_by_the_responders_device_over_both_nonces(
    responder: LatencyResponder, identity: DeviceIdentity
) -> None:
    m = measure_peer(_peer(responder), "dal1", samples=3, timeout=1.0)
    assert m.peer == "ams1" and m.samples == 3 and m.emulated_delay_us is None
    assert m.device_cert == identity.cert_sha256 and m.nonce != m.responder_nonce
    key = identity.cert.public_key()
    assert isinstance(key, Ed25519PublicKey)
    # anyone can re-check the entry from the evidence alone
    payload = response_payload(m.nonce, m.responder_nonce, "ams1", m.device_cert, None)
    key.verify(bytes.fromhex(m.signature), payload)
    entry = m.evidence_entry()
    assert set(entry) == {
        "peer",
        "nonce",
        "responderNonce",
        "exchangeId",
        "rttMicros",
        "samples",
        "responderSignature",
        "responderDeviceCert",
    }
    assert (
        entry["exchangeId"]
        == "0x" + exchange_id(bytes.fromhex(m.nonce), bytes.fromhex(m.responder_nonce)).hex()
    )
    assert 0 < entry["rttMicros"] < 1_000_000
    assert m.signed is None  # no signer: nothing for the chain


def test_both_ends_measure_and_sign_the_same_exchange(
    responder: LatencyResponder, book: LatencyBook
) -> None:
    """The responder's clock runs from its answer to the confirmation, which the challenger
    holds for twice its emulated one-way delay: each end measured its own round trip."""
    m = measure_peer(
        _peer(responder),
        "fra1",
        samples=3,
        timeout=1.0,
        emulated_delay_us=2_000,
        signer=signer_for("fra1", FRA_KEY),
    )
    assert m.emulated_delay_us == 3000 and m.rtt_micros >= 2 * 3000
    assert m.signed is not None
    mine = m.signed.measurement
    assert (mine.facility_id, mine.peer_facility_id) == (facility_id("fra1"), facility_id("ams1"))
    assert (mine.rtt_micros, mine.anchor_block, mine.anchor_hash) == (m.rtt_micros, *ANCHOR)
    assert mine.exchange_id == m.exchange_id
    assert recover_signer(mine.digest(DS), m.signed.signature) == FRA_KEY.address

    def kept() -> bool:
        held = book.get("fra1")
        return held is not None and held.measurement.exchange_id == m.exchange_id

    _wait(kept)
    theirs = book.get("fra1")
    assert theirs is not None
    t = theirs.measurement
    assert (t.facility_id, t.peer_facility_id) == (facility_id("ams1"), facility_id("fra1"))
    assert t.exchange_id == mine.exchange_id  # the exchange the challenger kept
    assert t.rtt_micros >= 2 * 2_000  # the challenger held its confirmation
    assert recover_signer(t.digest(DS), theirs.signature) == AMS_KEY.address


def test_nonces_are_fresh(responder: LatencyResponder) -> None:
    a = measure_peer(_peer(responder), "dal1", samples=1)
    b = measure_peer(_peer(responder), "dal1", samples=1)
    assert a.nonce != b.nonce and a.responder_nonce != b.responder_nonce
    assert len(bytes.fromhex(a.nonce)) == 32


def _challenge(nonce: str, sender: str = "x") -> bytes:
    return canonical_json({"v": 2, "type": "rtt.challenge", "nonce": nonce, "from": sender})


def test_a_wrong_or_forged_answer_is_refused(responder: LatencyResponder) -> None:
    nonce = "aa" * 32
    answered = responder.answer(_challenge(nonce))
    assert answered is not None
    reply = json.loads(answered[0])
    verify_response(reply, nonce, "ams1")
    with pytest.raises(LatencyError, match="not for this challenge"):
        verify_response(reply, "bb" * 32, "ams1")
    with pytest.raises(LatencyError, match="names facility"):
        verify_response(reply, nonce, "fra1")
    with pytest.raises(LatencyError, match="does not verify"):
        verify_response({**reply, "emulatedDelayMicros": 5}, nonce, "ams1")
    with pytest.raises(LatencyError, match="does not verify"):
        verify_response({**reply, "responderNonce": "cc" * 32}, nonce, "ams1")
    with pytest.raises(LatencyError, match="responderNonce"):
        verify_response({**reply, "responderNonce": "short"}, nonce, "ams1")
    with pytest.raises(LatencyError, match="deviceCert does not match"):
        verify_response({**reply, "deviceCert": "00" * 32}, nonce, "ams1")
    with pytest.raises(LatencyError, match="malformed"):
        verify_response({**reply, "certificate": "zz"}, nonce, "ams1")
    with pytest.raises(LatencyError, match="malformed"):
        verify_response({**reply, "emulatedDelayMicros": True}, nonce, "ams1")


HOSTILE = [
    b"",
    b"null",
    b"[1]",
    b"\xff\xfe",
    b"[" * 5_000 + b"]" * 5_000,  # deeper than a datagram may nest
    b'{"v": 2, "type": "rtt.challenge", "nonce": "' + b"a" * 3_000 + b'", "from": "x"}',
    b'{"v": 2, "nonce": "ab", "from": "x", "type": "rtt.challenge"}',
    b'{"v": 1, "nonce": "' + b"ab" * 32 + b'", "from": "x", "type": "rtt.challenge"}',
    b'{"v": 2, "nonce": "' + b"ab" * 32 + b'", "from": 7, "type": "rtt.challenge"}',
    b'{"v": 2, "nonce": "' + b"zz" * 32 + b'", "from": "x", "type": "rtt.challenge"}',
]


@pytest.mark.parametrize("junk", HOSTILE)
def test_responder_ignores_what_is_not_a_challenge(
    responder: LatencyResponder, junk: bytes
) -> None:
    assert responder.answer(junk) is None
    assert responder.confirm(junk, ("127.0.0.1", 1), time.perf_counter_ns()) is None
    # and keeps answering after receiving it
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(junk[:2048], responder.address)
    assert measure_peer(_peer(responder), "dal1", samples=1).samples == 1


def test_a_confirmation_counts_only_from_the_address_answered_and_for_the_exchange(
    responder: LatencyResponder, book: LatencyBook
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(_challenge("ab" * 32, "fra1"), responder.address)
        reply = json.loads(s.recv(2048))
        mine = reply["responderNonce"]
        confirm = {"v": 2, "type": "rtt.confirm", "from": "fra1", "nonce": "ab" * 32}
        # from another address, with another responder nonce: ignored
        assert (
            responder.confirm(
                canonical_json({**confirm, "responderNonce": mine}), ("10.0.0.9", 1), 0
            )
            is None
        )
        assert (
            responder.confirm(
                canonical_json({**confirm, "responderNonce": "cd" * 32}), s.getsockname(), 0
            )
            is None
        )
        s.sendto(canonical_json({**confirm, "responderNonce": mine}), responder.address)
        _wait(lambda: book.get("fra1") is not None)
        signed = book.get("fra1")
        assert signed is not None
        assert signed.measurement.exchange_id == exchange_id(
            bytes.fromhex("ab" * 32), bytes.fromhex(mine)
        )
        # a second confirmation of the same exchange is not pending any more
        assert (
            responder.confirm(
                canonical_json({**confirm, "responderNonce": mine}), s.getsockname(), 0
            )
            is None
        )


def test_pending_exchanges_are_bounded(identity: DeviceIdentity) -> None:
    r = LatencyResponder("127.0.0.1:0", "ams1", identity)
    try:
        for i in range(MAX_PENDING + 50):
            r._remember("x", f"{i:064x}", "ab" * 32, ("127.0.0.1", 1))
        assert len(r._pending) == MAX_PENDING
        assert f"{0:064x}" not in r._pending and f"{MAX_PENDING + 49:064x}" in r._pending
    finally:
        r.stop()


def test_signed_measurements_round_trip_through_json_and_refuse_malformed() -> None:
    signer = signer_for("fra1", FRA_KEY)
    signed = signer("ams1", 5_000, "ab" * 32, "cd" * 32)
    assert signed is not None
    assert SignedLatency.from_json(json.loads(json.dumps(signed.to_json()))) == signed
    doc = signed.to_json()
    bad: object
    for bad in (
        [],
        {**doc, "rttMicros": -1},
        {**doc, "rttMicros": 2**32},
        {**doc, "rttMicros": True},
        {**doc, "anchorHash": "0x12"},
        {**doc, "signature": "0xzz"},
        {k: v for k, v in doc.items() if k != "exchangeId"},
    ):
        with pytest.raises(LatencyError, match="malformed signed latency"):
            SignedLatency.from_json(bad)


def test_without_an_anchor_nothing_is_signed_and_the_anchor_cache_keeps_the_last() -> None:
    unanchored = MeasurementSigner("fra1", lambda: None, lambda m: FRA_KEY.sign(DS, m))
    assert unanchored("ams1", 5, "ab" * 32, "cd" * 32) is None
    answers = iter([ANCHOR, None])
    ready = threading.Event()

    def fetch() -> tuple[int, bytes] | None:
        try:
            return next(answers)
        except StopIteration:
            ready.set()
            raise ConnectionError("chain down") from None

    cache = AnchorCache(fetch, every=0.01)
    assert cache() is None
    cache.start()
    try:
        assert ready.wait(2)
        assert cache() == ANCHOR  # a failed or empty fetch keeps the last anchor
    finally:
        cache.stop()


def test_silent_or_absent_peer_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        with pytest.raises(TimeoutError):
            measure_peer(PeerSettings(facility="x", address=f"127.0.0.1:{port}"), "y", 1, 0.2)
    with pytest.raises(OSError):  # refused or timed out, depending on the kernel
        measure_peer(
            PeerSettings(facility="x", address=f"127.0.0.1:{free_udp_port()}"), "y", 1, 0.2
        )


def test_responder_answers_only_allowed_hosts(identity: DeviceIdentity) -> None:
    peers = [PeerSettings(facility="fra1", address="localhost:7401")]
    assert allowed_sources(None, peers) == {"127.0.0.1"}
    assert allowed_sources(["*"], peers) is None
    assert allowed_sources(["10.0.0.9"], peers) == {"10.0.0.9"}
    closed = LatencyResponder("127.0.0.1:0", "ams1", identity, allowed_sources={"10.0.0.9"})
    closed.start()
    try:
        with pytest.raises(TimeoutError):
            measure_peer(_peer(closed), "fra1", samples=1, timeout=0.3)
    finally:
        closed.stop()
