"""Signed challenge-response on loopback: the responder signs the fresh nonce, the challenger
verifies it, measures the round trip, and records emulated delay as such."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from attestor.errors import LatencyError
from attestor.keys import CA_CERT, DEVICE_CERT, DEVICE_KEY, DeviceIdentity, init_site
from attestor.keys import load_device_identity as load_identity
from attestor.latency import LatencyResponder, measure_peer, response_payload, verify_response
from attestor.settings import PeerSettings
from devnet.ports import free_udp_port

SECRET = "pw"


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> DeviceIdentity:
    d: Path = tmp_path_factory.mktemp("ams1")
    init_site("ams1", d, SECRET, kdf_iterations=16)
    return load_identity(d / DEVICE_KEY, d / DEVICE_CERT, d / CA_CERT, SECRET)


@pytest.fixture
def responder(identity: DeviceIdentity) -> Iterator[LatencyResponder]:
    r = LatencyResponder("127.0.0.1:0", "ams1", identity, {"fra1": 3000}).start()
    yield r
    r.stop()


def _peer(r: LatencyResponder) -> PeerSettings:
    host, port = r.address
    return PeerSettings(facility="ams1", address=f"{host}:{port}")


def test_measurement_is_signed_by_the_responder_over_the_nonce(
    responder: LatencyResponder, identity: DeviceIdentity
) -> None:
    m = measure_peer(_peer(responder), "dal1", samples=3, timeout=1.0)
    assert m.peer == "ams1" and m.samples == 3 and m.emulated_delay_us is None
    assert m.device_cert == identity.cert_sha256
    key = identity.cert.public_key()
    assert isinstance(key, Ed25519PublicKey)
    # anyone can re-check the entry from the evidence alone
    key.verify(bytes.fromhex(m.signature), response_payload(m.nonce, "ams1", m.device_cert, None))
    entry = m.evidence_entry()
    assert set(entry) == {
        "peer",
        "nonce",
        "rttMicros",
        "samples",
        "responderSignature",
        "responderDeviceCert",
    }
    assert 0 < entry["rttMicros"] < 1_000_000


def test_emulated_delay_is_added_by_the_responder_and_recorded(
    responder: LatencyResponder, identity: DeviceIdentity
) -> None:
    m = measure_peer(_peer(responder), "fra1", samples=2, timeout=1.0)
    assert m.emulated_delay_us == 3000
    assert m.rtt_micros >= 2 * 3000
    assert m.evidence_entry()["emulatedDelayMicros"] == 3000
    key = identity.cert.public_key()
    assert isinstance(key, Ed25519PublicKey)
    key.verify(bytes.fromhex(m.signature), response_payload(m.nonce, "ams1", m.device_cert, 3000))


def test_nonces_are_fresh(responder: LatencyResponder) -> None:
    a = measure_peer(_peer(responder), "dal1", samples=1)
    b = measure_peer(_peer(responder), "dal1", samples=1)
    assert a.nonce != b.nonce and len(bytes.fromhex(a.nonce)) == 32


def test_a_wrong_or_forged_answer_is_refused(responder: LatencyResponder) -> None:
    nonce = "aa" * 32
    answered = responder.answer(
        json.dumps({"nonce": nonce, "from": "x", "type": "rtt.challenge"}).encode()
    )
    assert answered is not None
    reply = json.loads(answered[0])
    verify_response(reply, nonce, "ams1")
    with pytest.raises(LatencyError, match="not for this challenge"):
        verify_response(reply, "bb" * 32, "ams1")
    with pytest.raises(LatencyError, match="names facility"):
        verify_response(reply, nonce, "fra1")
    with pytest.raises(LatencyError, match="does not verify"):
        verify_response({**reply, "emulatedDelayMicros": 5}, nonce, "ams1")
    with pytest.raises(LatencyError, match="deviceCert does not match"):
        verify_response({**reply, "deviceCert": "00" * 32}, nonce, "ams1")
    with pytest.raises(LatencyError, match="malformed"):
        verify_response({**reply, "certificate": "zz"}, nonce, "ams1")


def test_responder_ignores_what_is_not_a_challenge(responder: LatencyResponder) -> None:
    for junk in (b"", b"null", b"[1]", b'{"nonce": "ab", "from": "x", "type": "rtt.challenge"}'):
        assert responder.answer(junk) is None
    # and keeps answering afterwards
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"garbage", responder.address)
    assert measure_peer(_peer(responder), "dal1", samples=1).samples == 1


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
    from attestor.latency import allowed_sources

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
