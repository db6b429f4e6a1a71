"""Peer latency by signed challenge-response, over UDP on loopback or between sites.

The challenger sends a fresh random nonce::

    {"v": 1, "type": "rtt.challenge", "nonce": "<32 bytes hex>", "from": "fra1"}

and the responder answers with its device key's Ed25519 signature over the canonical JSON of::

    {"v": 1, "type": "rtt.response", "nonce": ..., "facility": "ams1", "deviceCert": "<sha256>",
     "emulatedDelayMicros": 3600}        # only when the responder emulates distance

sending that document plus ``signature`` and ``certificate`` (its device certificate, DER hex).
It cannot answer before it has seen the nonce, so the round trip bounds the distance: a site can
add delay, never remove it (light in fibre: about 200 km per ms one way). For local runs, where
every peer is on loopback, the responder may hold its answer for twice a configured one-way delay
per challenger; it then says so in the signed answer, and the challenger records it.

The challenger keeps the fastest of several samples; its measurement goes into the geography
evidence, which its own device key signs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from attestor.errors import LatencyError
from attestor.keys import DeviceIdentity
from attestor.settings import PeerSettings
from redundancy.devicecert import sha256_hex
from redundancy.evidence import canonical_json
from redundancy.jsonlog import log_event

log = logging.getLogger("attestor.latency")

MAX_DATAGRAM = 2048
MAX_IN_FLIGHT = 64


def split_endpoint(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def allowed_sources(allow: list[str] | None, peers: list[PeerSettings]) -> set[str] | None:
    """The IP addresses a responder answers: ``allow`` (``"*"``: anyone), else the peers'."""
    hosts = [split_endpoint(p.address)[0] for p in peers] if allow is None else allow
    if "*" in hosts:
        return None
    out = set()
    for host in hosts:
        try:
            out.add(socket.gethostbyname(host))
        except OSError:
            log_event(log, "latency.unresolved", logging.WARNING, host=host)
    return out


def response_payload(
    nonce: str, facility: str, device_cert: str, emulated_delay_us: int | None
) -> bytes:
    """The bytes a responder signs (and a verifier reconstructs from an evidence entry)."""
    doc: dict[str, Any] = {
        "v": 1,
        "type": "rtt.response",
        "nonce": nonce,
        "facility": facility,
        "deviceCert": device_cert,
    }
    if emulated_delay_us:
        doc["emulatedDelayMicros"] = emulated_delay_us
    return canonical_json(doc)


@dataclass(frozen=True)
class Measurement:
    """The fastest signed round trip to one peer."""

    peer: str
    nonce: str
    rtt_micros: int
    samples: int
    signature: str
    device_cert: str
    emulated_delay_us: int | None

    def evidence_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "peer": self.peer,
            "nonce": self.nonce,
            "rttMicros": self.rtt_micros,
            "samples": self.samples,
            "responderSignature": self.signature,
            "responderDeviceCert": self.device_cert,
        }
        if self.emulated_delay_us:
            entry["emulatedDelayMicros"] = self.emulated_delay_us
        return entry


# -------------------------------------------------------------------------- responder


class LatencyResponder:
    """Answers challenges on a UDP socket in a background thread."""

    def __init__(
        self,
        listen: str,
        facility: str,
        identity: DeviceIdentity,
        emulated_delay_us: dict[str, int] | None = None,
        allowed_sources: set[str] | None = None,
    ) -> None:
        self.facility = facility
        self.allowed = allowed_sources  # None: answer anyone
        self.identity = identity
        self.emulated = dict(emulated_delay_us or {})
        self._cert_hex = identity.cert_der.hex()
        self._cert_sha = identity.cert_sha256
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(split_endpoint(listen))
        self._slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="latency-responder", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> LatencyResponder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if not self._thread.is_alive():
            self._sock.close()
            return
        # an empty datagram ends the blocking receive
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"", self.address)
        self._thread.join(timeout=5)
        self._sock.close()

    def answer(self, datagram: bytes) -> tuple[bytes, float] | None:
        """The signed answer to a challenge and how long to hold it (None: not a challenge)."""
        try:
            msg = json.loads(datagram)
            nonce, challenger = msg["nonce"], msg["from"]
            if msg.get("type") != "rtt.challenge" or not isinstance(challenger, str):
                return None
            if not isinstance(nonce, str) or len(bytes.fromhex(nonce)) != 32:
                return None
        except (ValueError, KeyError, TypeError):
            return None
        delay = self.emulated.get(challenger) or None
        payload = response_payload(nonce, self.facility, self._cert_sha, delay)
        reply = json.loads(payload)
        reply["signature"] = self.identity.key.sign(payload).hex()
        reply["certificate"] = self._cert_hex
        return json.dumps(reply, separators=(",", ":")).encode(), 2 * (delay or 0) / 1e6

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, peer = self._sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                return
            if self.allowed is not None and peer[0] not in self.allowed:
                continue
            answered = self.answer(datagram)
            if answered is None:
                continue
            reply, hold = answered
            if hold <= 0:
                self._send(reply, peer)
            elif self._slots.acquire(blocking=False):
                threading.Timer(hold, self._send_held, (reply, peer)).start()

    def _send_held(self, reply: bytes, peer: Any) -> None:
        try:
            self._send(reply, peer)
        finally:
            self._slots.release()

    def _send(self, reply: bytes, peer: Any) -> None:
        try:
            self._sock.sendto(reply, peer)
        except OSError as exc:
            log_event(log, "latency.reply_failed", logging.DEBUG, error=str(exc))


# ------------------------------------------------------------------------- challenger


def verify_response(reply: dict[str, Any], nonce: str, peer: str) -> tuple[str, int | None]:
    """Check a response; returns (signature hex, emulated delay). Raises LatencyError."""
    if reply.get("type") != "rtt.response" or reply.get("nonce") != nonce:
        raise LatencyError(f"{peer}: response is not for this challenge")
    if reply.get("facility") != peer:
        raise LatencyError(f"{peer}: response names facility {reply.get('facility')!r}")
    try:
        der = bytes.fromhex(reply["certificate"])
        cert = x509.load_der_x509_certificate(der)
        signature = bytes.fromhex(reply["signature"])
    except (KeyError, ValueError, TypeError) as exc:
        raise LatencyError(f"{peer}: malformed response ({exc})") from None
    if sha256_hex(der) != reply.get("deviceCert"):
        raise LatencyError(f"{peer}: deviceCert does not match the certificate sent")
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise LatencyError(f"{peer}: device key is not Ed25519")
    emulated = reply.get("emulatedDelayMicros")
    if emulated is not None and (not isinstance(emulated, int) or emulated <= 0):
        raise LatencyError(f"{peer}: emulatedDelayMicros is not a positive integer")
    try:
        key.verify(signature, response_payload(nonce, peer, reply["deviceCert"], emulated))
    except InvalidSignature:
        raise LatencyError(f"{peer}: signature does not verify") from None
    return signature.hex(), emulated


def measure_peer(
    peer: PeerSettings,
    challenger: str,
    samples: int = 5,
    timeout: float = 1.0,
    nonce_source: Callable[[int], bytes] = os.urandom,
) -> Measurement:
    """Challenge a peer ``samples`` times; the fastest verified answer. Raises TimeoutError if
    the peer does not answer in time, ConnectionRefusedError if nothing listens there, and
    LatencyError if it answers wrongly."""
    best: tuple[int, str, str, int | None] | None = None
    host, port = split_endpoint(peer.address)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        for _ in range(samples):
            nonce = nonce_source(32).hex()
            challenge = canonical_json(
                {"v": 1, "type": "rtt.challenge", "nonce": nonce, "from": challenger}
            )
            started = time.perf_counter_ns()
            sock.send(challenge)
            reply = _await_reply(sock, nonce, started + int(timeout * 1e9))
            rtt = (time.perf_counter_ns() - started) // 1000
            signature, emulated = verify_response(reply, nonce, peer.facility)
            cert_sha = str(reply["deviceCert"])
            if best is None or rtt < best[0]:
                best = (rtt, nonce, signature, emulated)
    assert best is not None
    rtt, nonce, signature, emulated = best
    return Measurement(peer.facility, nonce, rtt, samples, signature, cert_sha, emulated)


def _await_reply(sock: socket.socket, nonce: str, deadline_ns: int) -> dict[str, Any]:
    """The reply carrying ``nonce`` (late answers to earlier challenges are skipped)."""
    while True:
        remaining = (deadline_ns - time.perf_counter_ns()) / 1e9
        if remaining <= 0:
            raise TimeoutError("no answer in time")
        sock.settimeout(remaining)
        data = sock.recv(MAX_DATAGRAM)  # ConnectionRefusedError if nothing listens
        try:
            reply = json.loads(data)
        except ValueError:
            continue
        if isinstance(reply, dict) and reply.get("nonce") == nonce:
            return reply
