"""Two-sided signed exchanges on loopback: the responder signs both nonces, the challenger
verifies it and measures challenge -> response, the responder measures response -> confirm, and
each end signs an EIP-712 LatencyMeasurement of what it measured, for the same exchange (the
responder only once the challenger's attestor key said it kept that exchange)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from attestor.errors import LatencyError
from attestor.keys import CA_CERT, DEVICE_CERT, DEVICE_KEY, DeviceIdentity, init_site
from attestor.keys import load_device_identity as load_identity
from attestor.latency import (
    BURST_SECONDS,
    CHALLENGE_BYTES,
    MAX_SENDERS,
    PENDING_SECONDS,
    PROTOCOL,
    AnchorCache,
    KnownAttestors,
    LatencyBook,
    LatencyResponder,
    MeasurementSigner,
    SignedLatency,
    _Confirmed,
    _padded,
    allowed_sources,
    measure_peer,
    response_payload,
    verify_response,
)
from attestor.settings import PeerSettings
from devnet.ports import free_udp_port
from redundancy.devicecert import device_name, issue_device_cert, make_ca, sha256_hex, to_der
from redundancy.domains import facility_id
from redundancy.eip712 import Signer, recover_signer
from redundancy.evidence import canonical_json
from redundancy.proofs import exchange_id

SECRET = "pw"
DS = bytes(range(32))
ANCHOR = (812, bytes.fromhex("77" * 32))
FRA_KEY = Signer(b"\x01" * 32)
AMS_KEY = Signer(b"\x02" * 32)
DAL_KEY = Signer(b"\x03" * 32)
#: the registry, as the responder reads it: each facility's attestor
ATTESTORS = {facility_id(n): k.address for n, k in (("fra1", FRA_KEY), ("dal1", DAL_KEY))}


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
        check=KnownAttestors(DS, ATTESTORS.get),
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
    assert t.rtt_micros >= mine.rtt_micros  # the larger of the two ends' round trips
    assert recover_signer(t.digest(DS), theirs.signature) == AMS_KEY.address


def test_nonces_are_fresh(responder: LatencyResponder) -> None:
    a = measure_peer(_peer(responder), "dal1", samples=1)
    b = measure_peer(_peer(responder), "dal1", samples=1)
    assert a.nonce != b.nonce and a.responder_nonce != b.responder_nonce
    assert len(bytes.fromhex(a.nonce)) == 32


def _challenge(nonce: str, sender: str = "x") -> bytes:
    return _padded({"v": PROTOCOL, "type": "rtt.challenge", "nonce": nonce, "from": sender})


def _kept(
    nonce: str, mine: str, sender: str, key: Signer, peer: str = "ams1", rtt: int = 500
) -> bytes:
    """The challenger's ``rtt.kept``: its own measurement of the exchange, signed by ``key``."""
    theirs = signer_for(sender, key)(peer, rtt, nonce, mine)
    assert theirs is not None
    return canonical_json(
        {
            "v": PROTOCOL,
            "type": "rtt.kept",
            "from": sender,
            "nonce": nonce,
            "responderNonce": mine,
            "measurement": theirs.to_json(),
        }
    )


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


def _hostile(**fields: object) -> bytes:
    """A challenge of full length with these fields changed."""
    base = {"v": PROTOCOL, "type": "rtt.challenge", "nonce": "ab" * 32, "from": "x"}
    return _padded({**base, **fields})


HOSTILE = [
    b"",
    b"null",
    b"[1]",
    b"\xff\xfe",
    b"[" * 5_000 + b"]" * 5_000,  # deeper than a datagram may nest
    _hostile(nonce="a" * 1_000),
    _hostile(nonce="ab"),
    _hostile(v=2),
    _hostile(**{"from": 7}),
    _hostile(**{"from": " "}),  # not a facility name (it crashed the responder's signing)
    _hostile(**{"from": "x" * 65}),
    _hostile(nonce="zz" * 32),
    _hostile(nonce="ab" * 31 + "  "),  # 64 characters, 31 bytes: bytes.fromhex skips spaces
    canonical_json({"v": PROTOCOL, "type": "rtt.challenge", "nonce": "ab" * 32, "from": "x"}),
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
        confirm = {"v": PROTOCOL, "type": "rtt.confirm", "from": "fra1", "nonce": "ab" * 32}
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
        time.sleep(0.2)
        assert book.get("fra1") is None  # timed, but signed only once fra1 says it kept it
        s.sendto(_kept("ab" * 32, mine, "fra1", FRA_KEY), responder.address)
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


def _confirm(
    r: LatencyResponder, name: str, nonce: str, mine: str, source: object, at: int
) -> object:
    msg = {"v": PROTOCOL, "type": "rtt.confirm", "from": name, "nonce": nonce}
    return r.confirm(canonical_json({**msg, "responderNonce": mine}), source, at)


def test_a_confirmation_counts_only_for_the_exchange_name_and_address_its_nonce_was_minted_for(
    identity: DeviceIdentity,
) -> None:
    """The responder keeps nothing per challenge: its nonce carries when the answer left and a
    MAC over the exchange, the challenger's name and address (found by review: a table of
    pending exchanges, however it chose what to forget, could be flooded from a spoofed
    address until an honest peer's exchange was pushed out before its confirmation came)."""
    r = LatencyResponder("127.0.0.1:0", "ams1", identity)
    try:
        source, nonce, sent = ("198.18.0.1", 4000), "aa" * 32, 10**12
        mine = r._cookie(nonce, "fra1", source, sent)
        assert len(bytes.fromhex(mine)) == 32
        for name, n, where in (
            ("dal1", nonce, source),  # another name
            ("fra1", "bb" * 32, source),  # another exchange
            ("fra1", nonce, ("198.18.0.1", 4001)),  # another port
            ("fra1", nonce, ("198.18.0.2", 4000)),  # another host
        ):
            assert _confirm(r, name, n, mine, where, sent + 5_000_000) is None
        forged = mine[:16] + ("0" if mine[16] != "0" else "1") + mine[17:]  # one MAC bit off
        assert _confirm(r, "fra1", nonce, forged, source, sent + 5_000_000) is None
        later = r._cookie(nonce, "fra1", source, sent - 1)  # another send time: another MAC
        assert later != mine
        assert _confirm(r, "fra1", nonce, mine, source, sent - 1) is None  # before it left
        too_late = sent + int(PENDING_SECONDS * 1e9) + 1
        assert _confirm(r, "fra1", nonce, mine, source, too_late) is None
        done = _confirm(r, "fra1", nonce, mine, source, sent + 5_000_000)
        assert isinstance(done, _Confirmed) and done.rtt_micros == 5_000
        assert _confirm(r, "fra1", nonce, mine, source, sent + 9_000_000) is None  # a replay
        other = LatencyResponder("127.0.0.1:0", "ams1", identity)  # another key: another MAC
        try:
            assert other._cookie(nonce, "fra1", source, sent) != mine
        finally:
            other.stop()
    finally:
        r.stop()


def test_a_flood_of_challenges_leaves_nothing_behind(identity: DeviceIdentity) -> None:
    r = LatencyResponder("127.0.0.1:0", "ams1", identity)
    try:
        for i in range(2_000):
            answered = r.answer(_challenge(f"{i:064x}", "fra1"), ("198.18.0.1", 4000 + i))
            assert answered is not None
        assert not r._confirmed and not r._confirmed_hosts
        assert not [k for k, v in vars(r).items() if isinstance(v, dict | list) and len(v) > 8]
    finally:
        r.stop()


def test_a_host_confirming_from_many_ports_only_pushes_out_its_own_senders(
    identity: DeviceIdentity,
) -> None:
    """Before, confirmed exchanges were kept for the 64 most recent (name, address) senders:
    a peer confirming from 64 ports pushed out another peer's exchange before its rtt.kept."""
    r = LatencyResponder("127.0.0.1:0", "ams1", identity)

    def confirmed(name: str, nonce: str, source: tuple[str, int]) -> None:
        mine = r._cookie(nonce, name, source, 10**12)
        assert _confirm(r, name, nonce, mine, source, 10**12 + 1) is not None

    try:
        honest = ("fra1", ("198.18.0.1", 4000))
        confirmed("fra1", "aa" * 32, honest[1])
        for i in range(2 * MAX_SENDERS):
            confirmed("dal1", f"{i:064x}", ("198.18.0.9", 5000 + i))
        assert len(r._confirmed) == MAX_SENDERS
        assert honest in r._confirmed and r._confirmed[honest][-1].nonce == "aa" * 32
        assert ("dal1", ("198.18.0.9", 5000 + 2 * MAX_SENDERS - 1)) in r._confirmed
        assert r._confirmed_hosts == {"198.18.0.1": 1, "198.18.0.9": MAX_SENDERS - 1}
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


def test_a_site_cannot_have_a_responder_sign_a_round_trip_under_another_facilitys_name(
    responder: LatencyResponder, book: LatencyBook
) -> None:
    """dal1 challenges as "fra1" and confirms: before, the responder signed "ams1 measured this
    round trip with fra1" at once (dal1 near ams1, and a second liar near fra1 doing the same
    there, got both ends of the honest pair to sign a short round trip and the pair flagged).
    Now the exchange is signed only once fra1's own attestor key says it kept it."""
    m = measure_peer(
        _peer(responder), "fra1", samples=2, timeout=1.0, signer=signer_for("fra1", DAL_KEY)
    )
    assert m.signed is not None  # dal1 signed its own claim (with dal1's key: the chain refuses)
    time.sleep(0.3)
    assert book.get("fra1") is None
    honest = measure_peer(
        _peer(responder), "dal1", samples=2, timeout=1.0, signer=signer_for("dal1", DAL_KEY)
    )
    _wait(lambda: book.get("dal1") is not None)
    held = book.get("dal1")
    assert held is not None and held.measurement.exchange_id == honest.exchange_id


def test_a_kept_exchange_is_signed_once_when_fresh_for_this_pair_with_the_larger_round_trip(
    responder: LatencyResponder, book: LatencyBook
) -> None:
    """The responder signs the larger of its round trip and the challenger's signed one: an
    attacker next to the responder who confirms early shortens only the responder's clock."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(_challenge("ef" * 32, "fra1"), responder.address)
        mine = json.loads(s.recv(2048))["responderNonce"]
        confirm = {"v": PROTOCOL, "type": "rtt.confirm", "from": "fra1", "nonce": "ef" * 32}
        s.sendto(canonical_json({**confirm, "responderNonce": mine}), responder.address)
        sender = ("fra1", ("127.0.0.1", s.getsockname()[1]))
        _wait(lambda: bool(responder._confirmed.get(sender)))
        done = responder._confirmed[sender][-1]
        # its measurement of another pair, or of an exchange not timed here: never queued
        s.sendto(_kept("ef" * 32, mine, "fra1", FRA_KEY, peer="lon1"), responder.address)
        s.sendto(_kept("ab" * 32, mine, "fra1", FRA_KEY), responder.address)
        time.sleep(0.2)
        assert book.get("fra1") is None
    theirs = signer_for("fra1", FRA_KEY)("ams1", 900_000, "ef" * 32, mine)
    assert theirs is not None and done.rtt_micros < 900_000
    done.at -= BURST_SECONDS + 1
    assert not responder.keep(sender, done, theirs)  # too old
    done.at += BURST_SECONDS + 1
    forged = signer_for("fra1", DAL_KEY)("ams1", 900_000, "ef" * 32, mine)
    assert forged is not None and not responder.keep(sender, done, forged)  # not fra1's key
    assert book.get("fra1") is None
    assert responder.keep(sender, done, theirs)
    held = book.get("fra1")
    assert held is not None and held.measurement.rtt_micros == 900_000
    assert not responder.keep(sender, done, theirs)  # a replayed kept changes nothing


def test_a_challenge_is_answered_only_at_full_length_and_from_a_configured_peer(
    identity: DeviceIdentity,
) -> None:
    r = LatencyResponder("127.0.0.1:0", "ams1", identity, peers=["fra1"])
    try:
        nonce = "ab" * 32
        for name in ("dal1", "FRA1", "fra1 ", " "):
            assert r.answer(_challenge(nonce, name)) is None, name
        short = canonical_json(
            {"v": PROTOCOL, "type": "rtt.challenge", "nonce": nonce, "from": "fra1"}
        )
        assert r.answer(short) is None  # no amplification towards a spoofed source
        challenge = _challenge(nonce, "fra1")
        assert len(challenge) == CHALLENGE_BYTES
        answered = r.answer(challenge)
        assert answered is not None and len(answered[0]) <= len(challenge)
    finally:
        r.stop()


def test_the_responder_survives_a_datagram_its_handling_fails_on(
    responder: LatencyResponder, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = responder.confirm
    calls = []

    def failing(datagram: bytes, source: object, received_ns: int) -> object:
        calls.append(datagram)
        if len(calls) == 1:
            raise RuntimeError("a bug a hostile datagram found")
        return real(datagram, source, received_ns)

    monkeypatch.setattr(responder, "confirm", failing)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"{}", responder.address)
    _wait(lambda: len(calls) == 1)
    assert responder.alive
    assert measure_peer(_peer(responder), "dal1", samples=1).samples == 1


def test_a_response_whose_certificate_has_an_unknown_key_type_is_refused(
    responder: LatencyResponder,
) -> None:
    """Before, ``public_key()`` raised UnsupportedAlgorithm outside the checks, which the
    geography probe did not catch: one peer's answer stopped the whole daemon."""
    nonce = "aa" * 32
    answered = responder.answer(_challenge(nonce))
    assert answered is not None
    reply = json.loads(answered[0])
    der = bytearray(base64.b64decode(reply["certificate"]))
    ed25519 = bytes.fromhex("06032b6570")  # the OID 1.3.101.112, as issuer and subject key
    at = der.find(ed25519, der.find(ed25519) + 1)
    der[at : at + 5] = bytes.fromhex("06032b6575")  # 1.3.101.117: no such key type
    forged = {
        **reply,
        "certificate": base64.b64encode(bytes(der)).decode(),
        "deviceCert": sha256_hex(bytes(der)),
    }
    with pytest.raises(LatencyError, match="unusable device key"):
        verify_response(forged, nonce, "ams1")


def test_an_anchor_the_chain_no_longer_gives_expires() -> None:
    now = [100.0]
    answers = iter([ANCHOR, None, None])
    cache = AnchorCache(lambda: next(answers), max_age=60.0, clock=lambda: now[0])
    cache.refresh()
    assert cache() == ANCHOR
    now[0] += 30
    cache.refresh()  # nothing new: the last one stands a while
    assert cache() == ANCHOR
    now[0] += 31
    cache.refresh()
    assert cache() is None  # measurements bound to it would only be refused on-chain


def test_an_answer_counts_only_from_a_device_of_the_ca_the_registry_pins_for_the_peer(
    responder: LatencyResponder, identity: DeviceIdentity, tmp_path: Path
) -> None:
    """An impostor next to the challenger answering in ams1's name, with its own device key and
    CA: before, the challenger checked the signature against whatever certificate came with it,
    so its own round trip to "ams1" could be made as short as the impostor was near."""
    init_site("ams1", tmp_path, SECRET, kdf_iterations=16)  # another CA, same claimed name
    other = load_identity(tmp_path / DEVICE_KEY, tmp_path / DEVICE_CERT, tmp_path / CA_CERT, SECRET)
    impostor = LatencyResponder("127.0.0.1:0", "ams1", other).start()
    try:
        pinned = identity.ca_fingerprint
        assert measure_peer(_peer(responder), "dal1", samples=1, pinned_ca=pinned).samples == 1
        with pytest.raises(LatencyError, match="CA the registry does not pin"):
            measure_peer(_peer(impostor), "dal1", samples=1, pinned_ca=pinned)
        nonce = "aa" * 32
        answered = impostor.answer(_challenge(nonce))
        assert answered is not None
        reply = json.loads(answered[0])
        real_ca = base64.b64encode(identity.ca_der).decode()
        with pytest.raises(LatencyError, match="not issued by its pinned CA"):
            verify_response({**reply, "caCertificate": real_ca}, nonce, "ams1", pinned)
        with pytest.raises(LatencyError, match="malformed CA certificate"):
            verify_response({**reply, "caCertificate": "!"}, nonce, "ams1", pinned)
    finally:
        impostor.stop()


def test_an_answer_under_an_expired_device_certificate_of_the_pinned_ca_is_refused(
    tmp_path: Path,
) -> None:
    """A retired device of the peer (its certificate expired) no longer answers for it."""
    ca_key, device_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ca = make_ca("ams1", ca_key)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    expired = issue_device_cert(
        ca, ca_key, device_key.public_key(), device_name("ams1"), days=1, now=past
    )
    der, ca_der = to_der(expired), to_der(ca)
    nonce, mine = "aa" * 32, "bb" * 32
    payload = response_payload(nonce, mine, "ams1", sha256_hex(der), None)
    reply = {
        **json.loads(payload),
        "signature": device_key.sign(payload).hex(),
        "certificate": base64.b64encode(der).decode(),
        "caCertificate": base64.b64encode(ca_der).decode(),
    }
    pinned = hashlib.sha256(ca_der).digest()
    with pytest.raises(LatencyError, match="not valid now"):
        verify_response(reply, nonce, "ams1", pinned)
    verify_response(reply, nonce, "ams1")  # without the pin: only the signature is checked


def test_under_an_operator_ca_shared_by_facilities_only_the_peers_own_device_answers() -> None:
    """One operator CA may issue device certificates for several facilities: before, the device
    of any of them (or the CA certificate itself) could answer for the others, so an impostor
    holding a sibling's key near the challenger made its report short."""
    ca_key = Ed25519PrivateKey.generate()
    ca = make_ca("operator", ca_key)
    pinned = hashlib.sha256(to_der(ca)).digest()
    nonce, mine = "aa" * 32, "bb" * 32

    def answer(cert: x509.Certificate, key: Ed25519PrivateKey) -> dict[str, object]:
        der = to_der(cert)
        payload = response_payload(nonce, mine, "ams1", sha256_hex(der), None)
        return {
            **json.loads(payload),
            "signature": key.sign(payload).hex(),
            "certificate": base64.b64encode(der).decode(),
            "caCertificate": base64.b64encode(to_der(ca)).decode(),
        }

    own_key, sibling_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    own = issue_device_cert(ca, ca_key, own_key.public_key(), device_name("ams1"))
    sibling = issue_device_cert(ca, ca_key, sibling_key.public_key(), device_name("lon1"))
    verify_response(answer(own, own_key), nonce, "ams1", pinned)
    with pytest.raises(LatencyError, match="is for \\['lon1 attestor'\\], not ams1"):
        verify_response(answer(sibling, sibling_key), nonce, "ams1", pinned)
    with pytest.raises(LatencyError, match="not ams1"):
        verify_response(answer(ca, ca_key), nonce, "ams1", pinned)  # the CA itself


def test_an_impostors_answer_is_skipped_and_the_peers_own_that_follows_is_measured(
    responder: LatencyResponder, identity: DeviceIdentity, tmp_path: Path
) -> None:
    """Before, one answer that failed the checks (an impostor racing the peer) ended the whole
    burst with an error; now it is skipped and the peer's own answer, arriving after it, counts."""
    init_site("ams1", tmp_path, SECRET, kdf_iterations=16)  # the impostor: another CA
    other = load_identity(tmp_path / DEVICE_KEY, tmp_path / DEVICE_CERT, tmp_path / CA_CERT, SECRET)
    impostor = LatencyResponder("127.0.0.1:0", "ams1", other)
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(("127.0.0.1", 0))
    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    upstream.connect(responder.address)
    stop = threading.Event()

    def run() -> None:  # answers first as the impostor, then passes the peer's answer on
        relay.settimeout(0.05)
        upstream.settimeout(0.05)
        client = None
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                data, client = relay.recvfrom(2048)
                forged = impostor.answer(data)
                if forged is not None:
                    relay.sendto(forged[0], client)
                upstream.send(data)
            with contextlib.suppress(TimeoutError):
                answer = upstream.recv(2048)
                if client is not None:
                    relay.sendto(answer, client)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        host, port = relay.getsockname()
        m = measure_peer(
            PeerSettings(facility="ams1", address=f"{host}:{port}"),
            "dal1",
            samples=2,
            timeout=2.0,
            pinned_ca=identity.ca_fingerprint,
        )
        assert m.device_cert == identity.cert_sha256 and m.samples == 2
    finally:
        stop.set()
        thread.join(timeout=2)
        relay.close()
        upstream.close()
        impostor.stop()


def test_an_exchange_takes_no_more_kept_messages_after_two_refused(
    identity: DeviceIdentity,
) -> None:
    r = LatencyResponder(
        "127.0.0.1:0",
        "ams1",
        identity,
        signer=signer_for("ams1", AMS_KEY),
        check=KnownAttestors(DS, ATTESTORS.get),
    )  # not started: the calls below are the receive thread's
    try:
        source = ("127.0.0.1", 40_000)
        nonce = "ab" * 32
        mine = r._cookie(nonce, "fra1", source, 10**12 - 10**6)
        done = _confirm(r, "fra1", nonce, mine, source, 10**12)
        assert isinstance(done, _Confirmed)
        forged = signer_for("fra1", DAL_KEY)("ams1", 500, nonce, mine)
        assert forged is not None
        for _ in range(2):
            r.confirm(_kept(nonce, mine, "fra1", DAL_KEY), source, 0)
            assert r._kept.qsize() == 1
            item = r._kept.get_nowait()
            assert item is not None and not r.keep(*item)
        r.confirm(_kept(nonce, mine, "fra1", FRA_KEY), source, 0)
        assert r._kept.qsize() == 0 and done.refusals == 2
    finally:
        r.stop()
