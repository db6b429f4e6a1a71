"""Peer latency measured from both ends of one signed exchange, over UDP on loopback or between
sites.

One exchange is three datagrams (and a fourth after a burst of them)::

    challenger -> responder  {"v": 3, "type": "rtt.challenge", "from": "fra1", "nonce": nA,
                              "pad": "000..."}        # padded to CHALLENGE_BYTES
    responder -> challenger  {"v": 3, "type": "rtt.response", "nonce": nA, "responderNonce": nB,
                              "facility": "ams1", "deviceCert": "<sha256>",
                              "emulatedDelayMicros": 3600,            # only when emulating
                              "signature": ..., "certificate": ...,
                              "caCertificate": ...}   # both DER, base64
    challenger -> responder  {"v": 3, "type": "rtt.confirm", "from": "fra1", "nonce": nA,
                              "responderNonce": nB, "emulatedDelayMicros": 3600}
    challenger -> responder  {"v": 3, "type": "rtt.kept", "from": "fra1", "nonce": nA,
                              "responderNonce": nB,
                              "measurement": {...}}   # its own signed report of the one kept

The challenger times challenge -> response, the responder times response -> confirm: neither can
answer before it has seen the other's fresh nonce, so each round trip bounds the distance, and
each end holds a round trip it measured itself. A site can add delay, never remove it (light in
fibre: about 200 km per ms one way). The responder signs its answer with its device key (so the
challenger's evidence shows who answered), and each end signs what it measured as an EIP-712
``LatencyMeasurement`` with its attestor key: the RTT, when, the exchange id (keccak256 of both
nonces) and a recent block (``anchor``), which limits how long the measurement can be relayed.
The selector takes the larger of the two ends' fresh reports as the pair's bound, so one lying
end can neither shrink it nor make itself look closer.

The challenger samples a few exchanges and keeps the fastest, signs its measurement of it and
sends that to the responder (``rtt.kept``). The responder signs its own measurement of that
exchange, and only that one, once the challenger's signature recovers to the attestor the
registry holds for the facility the challenger named, and it signs the **larger** of its own
round trip and the challenger's: a site (or anyone the allow-list lets through) cannot have a
responder measure and sign a round trip under another facility's name, and an attacker on the
path next to the responder, who can confirm early and so shorten the responder's own clock,
cannot shorten what it signs below the challenger's figure. For local runs, where every peer
is on loopback, each end may hold its datagram for twice a configured one-way delay per peer,
and says so.

Every datagram from a peer is hostile input: parsed with ``parse_document`` (bounded size and
depth), every field type-checked; a challenge answered only if it is at least as long as the
answer (no amplification towards a spoofed source) and names one of the responder's configured
peers; confirmations accepted only from the address the response went to, for that exchange
and within ``PENDING_SECONDS`` (the responder keeps nothing per challenge: its nonce carries the
send time and a keyed MAC over the exchange, the challenger's name and address, which the
confirmation returns, so no flood, spoofed or not, can push out another peer's exchange),
confirmed exchanges kept per (peer, address) for at most ``MAX_SENDERS`` senders (a full table
gives up an entry of the source host that holds the most: a confirmation needs the responder's
nonce, which only the real address receives), a ``rtt.kept`` taken once and only for an
exchange timed here, and a datagram that makes the handling fail logged and dropped (the
responder thread never dies of one). The attestor-key checks and signing run on a worker
thread, so a slow registry read never delays the timing of another exchange.

The challenger, given the CA fingerprint the registry pins for the peer (the daemon always
gives it), counts an answer only under a device certificate that CA issued: no one but the peer
can answer in its place, so the challenger's figure is never shorter than the true round trip,
and neither, by the rule above, is the responder's.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import os
import queue
import socket
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID

from attestor.errors import LatencyError
from attestor.keys import DeviceIdentity
from attestor.settings import PeerSettings
from redundancy.devicecert import device_name, issued_by, sha256_hex
from redundancy.domains import facility_id
from redundancy.eip712 import Signature, recover_address
from redundancy.errors import EvidenceError
from redundancy.evidence import canonical_json, parse_document
from redundancy.jsonlog import log_event
from redundancy.proofs import LatencyMeasurement, exchange_id

log = logging.getLogger("attestor.latency")

MAX_DATAGRAM = 2048
MAX_DEPTH = 3
MAX_IN_FLIGHT = 64
#: how long after its answer left a responder still takes the confirmation of an exchange
PENDING_SECONDS = 10.0
#: confirmed exchanges a responder remembers per challenger, to sign the one the challenger kept
KEPT_CANDIDATES = 16
#: how long after its confirmation a responder still signs an exchange the challenger kept
BURST_SECONDS = 30.0
#: what a challenger pads its challenge to (the most a datagram carries unfragmented over a
#: 1,500-byte MTU); an answer longer than the challenge it answers is never sent, so a spoofed
#: source gains no amplification
CHALLENGE_BYTES = 1472
#: "kept" messages waiting for the worker that checks and signs them
MAX_KEPT_QUEUE = 64
#: how many times a challenger sends its ``rtt.kept`` (UDP may lose one)
KEPT_SENDS = 2
#: refused ``rtt.kept`` messages after which an exchange takes no more (the registry read that
#: checks one may fail once)
MAX_KEPT_REFUSALS = 2
#: how long a cached anchor may stand in for one the chain no longer gives
ANCHOR_MAX_AGE = 60.0
PROTOCOL = 3

Anchor = tuple[int, bytes]


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
    nonce: str,
    responder_nonce: str,
    facility: str,
    device_cert: str,
    emulated_delay_us: int | None,
) -> bytes:
    """The bytes a responder's device key signs (and a verifier rebuilds from evidence)."""
    doc: dict[str, Any] = {
        "v": PROTOCOL,
        "type": "rtt.response",
        "nonce": nonce,
        "responderNonce": responder_nonce,
        "facility": facility,
        "deviceCert": device_cert,
    }
    if emulated_delay_us:
        doc["emulatedDelayMicros"] = emulated_delay_us
    return canonical_json(doc)


_HEX = frozenset("0123456789abcdefABCDEF")


def _nonce(value: object) -> str | None:
    """A 32-byte nonce in hex (64 hex digits, nothing else), lower-cased; else None."""
    if not isinstance(value, str) or len(value) != 64 or not _HEX.issuperset(value):
        return None
    return value.lower()


def _message(datagram: bytes) -> dict[str, Any] | None:
    """A peer's datagram as a JSON object of our protocol, else None (never raises)."""
    try:
        msg = parse_document(datagram, max_bytes=MAX_DATAGRAM, max_depth=MAX_DEPTH)
    except EvidenceError:
        return None
    if not isinstance(msg, dict) or msg.get("v") != PROTOCOL:
        return None
    return msg


def _delay(value: object) -> int | None:
    """An emulated one-way delay: a positive int below a second, None if absent; raises
    ValueError if present and malformed."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 1_000_000:
        raise ValueError("emulatedDelayMicros is not a positive integer below 1,000,000")
    return value


# ----------------------------------------------------------------------- on-chain signing


@dataclass(frozen=True)
class SignedLatency:
    """One end's EIP-712 signed measurement, as the selector's ``reportLatency`` takes it."""

    measurement: LatencyMeasurement
    signature: Signature

    def to_json(self) -> dict[str, Any]:
        m = self.measurement
        return {
            "facilityId": "0x" + m.facility_id.hex(),
            "peerFacilityId": "0x" + m.peer_facility_id.hex(),
            "rttMicros": m.rtt_micros,
            "measuredAt": m.measured_at,
            "anchorBlock": m.anchor_block,
            "anchorHash": "0x" + m.anchor_hash.hex(),
            "exchangeId": "0x" + m.exchange_id.hex(),
            "signature": "0x" + self.signature.to_bytes().hex(),
        }

    @classmethod
    def from_json(cls, doc: object) -> SignedLatency:
        """Parse one entry of an attestor's ``/latency``; LatencyError if malformed."""
        try:
            if not isinstance(doc, dict):
                raise TypeError("not an object")

            def word(key: str) -> bytes:
                raw = bytes.fromhex(str(doc[key]).removeprefix("0x"))
                if len(raw) != 32:
                    raise ValueError(f"{key} is not 32 bytes")
                return raw

            def number(key: str, bits: int) -> int:
                value = doc[key]
                if not isinstance(value, int) or isinstance(value, bool):
                    raise TypeError(f"{key} is not an integer")
                if not 0 <= value < 1 << bits:
                    raise ValueError(f"{key} is out of range")
                return value

            m = LatencyMeasurement(
                word("facilityId"),
                word("peerFacilityId"),
                number("rttMicros", 32),
                number("measuredAt", 40),
                number("anchorBlock", 64),
                word("anchorHash"),
                word("exchangeId"),
            )
            sig = Signature.from_bytes(bytes.fromhex(str(doc["signature"]).removeprefix("0x")))
        except (KeyError, TypeError, ValueError) as exc:
            raise LatencyError(f"malformed signed latency measurement ({exc})") from None
        return cls(m, sig)


class MeasurementSigner:
    """Signs this site's measurements: its facility, a recent block from ``anchor`` (None while
    the chain is unknown: then nothing is signed), and the attestor key (``sign``)."""

    def __init__(
        self,
        facility: str,
        anchor: Callable[[], Anchor | None],
        sign: Callable[[LatencyMeasurement], Signature],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.facility_id = facility_id(facility)
        self.anchor = anchor
        self.sign = sign
        self.clock = clock

    def __call__(
        self, peer: str, rtt_micros: int, nonce: str, responder_nonce: str
    ) -> SignedLatency | None:
        anchor = self.anchor()
        if anchor is None:
            return None
        block, block_hash = anchor
        m = LatencyMeasurement(
            self.facility_id,
            facility_id(peer),
            rtt_micros,
            int(self.clock()),
            block,
            block_hash,
            exchange_id(bytes.fromhex(nonce), bytes.fromhex(responder_nonce)),
        )
        return SignedLatency(m, self.sign(m))


class KnownAttestors:
    """Checks a challenger's signed measurement: its signature must recover to the attestor
    ``lookup`` gives for the measuring facility's id (the registry's, in the daemon; None if
    unknown or unreachable: then nothing is accepted)."""

    def __init__(self, domain_separator: bytes, lookup: Callable[[bytes], str | None]) -> None:
        self.domain = domain_separator
        self.lookup = lookup

    def __call__(self, signed: SignedLatency) -> bool:
        expected = self.lookup(signed.measurement.facility_id)
        if not expected:
            return False
        found = recover_address(signed.measurement.digest(self.domain), signed.signature)
        return found is not None and found == bytes.fromhex(expected.removeprefix("0x"))


class LatencyBook:
    """The newest signed measurement this site holds per peer (as challenger or responder),
    for relaying; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_peer: dict[bytes, SignedLatency] = {}

    def put(self, signed: SignedLatency) -> None:
        with self._lock:
            self._by_peer[signed.measurement.peer_facility_id] = signed

    def get(self, peer: str) -> SignedLatency | None:
        with self._lock:
            return self._by_peer.get(facility_id(peer))

    def snapshot(self) -> list[SignedLatency]:
        with self._lock:
            return sorted(self._by_peer.values(), key=lambda s: s.measurement.peer_facility_id)


class AnchorCache:
    """The block measurements bind, refreshed in the background from ``fetch`` (which may block
    on the chain): reading it never waits for the network. None until the first fetch, and
    again once the last one that answered is older than ``max_age`` seconds (the chain gone:
    a measurement bound to an old block would only be refused on-chain)."""

    def __init__(
        self,
        fetch: Callable[[], Anchor | None],
        every: float = 4.0,
        max_age: float = ANCHOR_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch = fetch
        self.every = every
        self.max_age = max_age
        self.clock = clock
        self._value: Anchor | None = None
        self._fetched_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-anchor", daemon=True)

    def __call__(self) -> Anchor | None:
        if self._value is not None and self.clock() - self._fetched_at > self.max_age:
            return None
        return self._value

    def refresh(self) -> None:
        """Fetch once now (the background thread does this every ``every`` seconds)."""
        try:
            value = self.fetch()
        except Exception as exc:  # the chain may be down; keep the last anchor a while
            log_event(log, "latency.anchor_failed", logging.DEBUG, error=str(exc)[:200])
            return
        if value is not None:
            self._value, self._fetched_at = value, self.clock()

    def start(self) -> AnchorCache:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.every)


@dataclass(frozen=True)
class Measurement:
    """The fastest exchange with one peer, as the challenger measured it."""

    peer: str
    nonce: str
    responder_nonce: str
    rtt_micros: int
    samples: int
    signature: str
    device_cert: str
    emulated_delay_us: int | None
    signed: SignedLatency | None = None

    @property
    def exchange_id(self) -> bytes:
        return exchange_id(bytes.fromhex(self.nonce), bytes.fromhex(self.responder_nonce))

    def evidence_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "peer": self.peer,
            "nonce": self.nonce,
            "responderNonce": self.responder_nonce,
            "exchangeId": "0x" + self.exchange_id.hex(),
            "rttMicros": self.rtt_micros,
            "samples": self.samples,
            "responderSignature": self.signature,
            "responderDeviceCert": self.device_cert,
        }
        if self.emulated_delay_us:
            entry["emulatedDelayMicros"] = self.emulated_delay_us
        if self.signed is not None:
            entry["anchorBlock"] = self.signed.measurement.anchor_block
        return entry


# -------------------------------------------------------------------------- responder


@dataclass
class _Confirmed:
    nonce: str
    responder_nonce: str
    rtt_micros: int
    at: float
    signed: SignedLatency | None = None
    refusals: int = 0
    """``rtt.kept`` messages for this exchange whose measurement did not check out: after
    ``MAX_KEPT_REFUSALS`` no more are queued (a peer cannot keep the worker busy with its own)."""


ConfirmCheck = Callable[[SignedLatency], bool]
"""Whether a challenger's signed measurement is signed by its facility's attestor
(``KnownAttestors``)."""

#: (challenger name, its address): exchanges are kept per sender, so one peer's quick exchanges
#: in another's name cannot push that one's out before its ``rtt.kept`` arrives
_Sender = tuple[str, Any]
#: senders whose confirmed exchanges a responder remembers (when full, the least recent of the
#: source host holding the most is forgotten)
MAX_SENDERS = 64


def _host(address: Any) -> Any:
    """The source host of a datagram's address (its IP without the port)."""
    return address[0] if isinstance(address, tuple) and address else address


def _evict_from_heaviest(
    table: OrderedDict[Any, Any], hosts: Counter[Any], host_of: Callable[[Any, Any], Any]
) -> None:
    """Forget the oldest entry of the source host holding the most entries of ``table``
    (``hosts`` counts them): a host that floods a shared table only ever pushes out its own."""
    heaviest = max(hosts, key=hosts.__getitem__)
    for key, value in table.items():
        if host_of(key, value) == heaviest:
            del table[key]
            break
    hosts[heaviest] -= 1
    if not hosts[heaviest]:
        del hosts[heaviest]


class LatencyResponder:
    """Answers challenges on a UDP socket in a background thread, times each exchange from its
    own end when the challenger confirms it, and signs the one the challenger kept once the
    challenger's own signed measurement of it checks out (``check``; without one, nothing is
    signed): the larger of the two round trips."""

    def __init__(
        self,
        listen: str,
        facility: str,
        identity: DeviceIdentity,
        emulated_delay_us: dict[str, int] | None = None,
        allowed_sources: set[str] | None = None,
        signer: MeasurementSigner | None = None,
        book: LatencyBook | None = None,
        peers: Collection[str] | None = None,
        check: ConfirmCheck | None = None,
    ) -> None:
        self.facility = facility
        self.allowed = allowed_sources  # None: answer anyone
        self.peers = None if peers is None else frozenset(peers)  # None: any facility name
        self.identity = identity
        self.emulated = dict(emulated_delay_us or {})
        self.signer = signer
        self.check = check
        self.book = book if book is not None else LatencyBook()
        self._secret = os.urandom(32)
        """Keys the MAC in this responder's nonces (``_cookie``); never leaves the process."""
        self._cert_b64 = base64.b64encode(identity.cert_der).decode()
        self._ca_b64 = base64.b64encode(identity.ca_der).decode()
        self._cert_sha = identity.cert_sha256
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(split_endpoint(listen))
        self._slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._lock = threading.Lock()
        self._confirmed: OrderedDict[_Sender, list[_Confirmed]] = OrderedDict()
        self._confirmed_hosts: Counter[Any] = Counter()
        self._kept: queue.Queue[tuple[_Sender, _Confirmed, SignedLatency] | None] = queue.Queue(
            MAX_KEPT_QUEUE
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="latency-responder", daemon=True)
        self._worker = threading.Thread(target=self._sign_kept, name="latency-kept", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def alive(self) -> bool:
        """Both threads running (for the daemon's health)."""
        return self._thread.is_alive() and self._worker.is_alive()

    def start(self) -> LatencyResponder:
        self._thread.start()
        self._worker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._worker.is_alive():
            with contextlib.suppress(queue.Full):
                self._kept.put_nowait(None)
            self._worker.join(timeout=5)
        if not self._thread.is_alive():
            self._sock.close()
            return
        # an empty datagram ends the blocking receive
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"", self.address)
        self._thread.join(timeout=5)
        self._sock.close()

    def _challenger(self, value: object) -> str | None:
        """A challenger's facility name if this responder measures with it, else None."""
        if not isinstance(value, str) or not 0 < len(value) <= 64:
            return None
        if self.peers is not None:
            return value if value in self.peers else None
        try:
            facility_id(value)
        except ValueError:
            return None
        return value

    def _cookie(self, nonce: str, challenger: str, address: Any, send_ns: int) -> str:
        """This responder's nonce for an exchange: when its answer leaves (8 bytes of
        ``perf_counter_ns``) and a MAC, under a key only this process holds, over that time, the
        challenger's nonce, its facility name and its address. A confirmation returns it, so the
        responder keeps no state per challenge and still knows when its answer left, to whom,
        for which exchange; and the nonce is as unpredictable as a random one."""
        stamp = send_ns.to_bytes(8, "big")
        where = repr(tuple(address[:2]) if isinstance(address, tuple) else address).encode()
        mac = hmac.new(self._secret, stamp + bytes.fromhex(nonce), hashlib.sha256)
        mac.update(len(challenger).to_bytes(1, "big") + challenger.encode() + where)
        return (stamp + mac.digest()[:24]).hex()

    def _opened(
        self, mine: str, nonce: str, challenger: str, address: Any, now_ns: int
    ) -> int | None:
        """When the answer carrying ``mine`` left, if this responder minted ``mine`` for that
        exchange, challenger and address at most ``PENDING_SECONDS`` ago (None otherwise)."""
        send_ns = int.from_bytes(bytes.fromhex(mine[:16]), "big")
        if not hmac.compare_digest(self._cookie(nonce, challenger, address, send_ns), mine):
            return None
        if not send_ns <= now_ns <= send_ns + int(PENDING_SECONDS * 1e9):
            return None
        return send_ns

    def answer(
        self, datagram: bytes, source: Any = None
    ) -> tuple[bytes, float, str, str, str] | None:
        """The signed answer to a challenge from ``source``, how long to hold it, and the
        challenger, its nonce and ours (None: not a well-formed challenge, one too short to
        answer, or from a facility this responder does not measure with)."""
        msg = _message(datagram)
        if msg is None or msg.get("type") != "rtt.challenge":
            return None
        nonce, challenger = _nonce(msg.get("nonce")), self._challenger(msg.get("from"))
        if nonce is None or challenger is None:
            return None
        delay = self.emulated.get(challenger) or None
        hold = 2 * (delay or 0) / 1e6
        # the clock starts when the answer is to leave, after the hold if any; signing comes
        # after this, so the responder's figure is longer than the wire's by it, never shorter
        mine = self._cookie(nonce, challenger, source, time.perf_counter_ns() + int(hold * 1e9))
        payload = response_payload(nonce, mine, self.facility, self._cert_sha, delay)
        reply = parse_document(payload)
        reply["signature"] = self.identity.key.sign(payload).hex()
        reply["certificate"] = self._cert_b64
        reply["caCertificate"] = self._ca_b64
        answer = canonical_json(reply)
        if len(answer) > len(datagram):  # no amplification towards a spoofed source
            return None
        return answer, hold, challenger, nonce, mine

    def confirm(self, datagram: bytes, source: Any, received_ns: int) -> _Confirmed | None:
        """Time the exchange a confirmation closes (None: not one we are waiting for, or from
        another address than the one we answered). A ``rtt.kept`` for an exchange timed here
        goes to the worker that checks and signs it."""
        msg = _message(datagram)
        if msg is None or msg.get("type") not in ("rtt.confirm", "rtt.kept"):
            return None
        nonce, mine = _nonce(msg.get("nonce")), _nonce(msg.get("responderNonce"))
        if nonce is None or mine is None:
            return None
        if msg["type"] == "rtt.kept":
            self._queue_kept(msg, nonce, mine, source)
            return None
        challenger = self._challenger(msg.get("from"))
        if challenger is None:
            return None
        sent_ns = self._opened(mine, nonce, challenger, source, received_ns)
        if sent_ns is None:  # not our answer to this exchange and address, or too old
            return None
        rtt = max(1, (received_ns - sent_ns) // 1000)
        done = _Confirmed(nonce, mine, rtt, time.monotonic())
        sender = (challenger, source)
        with self._lock:
            if any(d.responder_nonce == mine for d in self._confirmed.get(sender, ())):
                return None  # confirmed already: a replay times nothing
            recent = self._confirmed.pop(sender, None)
            if recent is None:
                recent = []
                if len(self._confirmed) >= MAX_SENDERS:
                    _evict_from_heaviest(
                        self._confirmed, self._confirmed_hosts, lambda key, _: _host(key[1])
                    )
                self._confirmed_hosts[_host(source)] += 1
            recent.append(done)
            del recent[:-KEPT_CANDIDATES]
            self._confirmed[sender] = recent  # the most recent sender last
        return done

    def _queue_kept(self, msg: dict[str, Any], nonce: str, mine: str, source: Any) -> None:
        """Queue a kept exchange for the worker if it is one this end timed, from the address
        that confirmed it, not signed yet, and the message carries the challenger's own
        measurement of exactly that exchange (signature checked by the worker)."""
        challenger = self._challenger(msg.get("from"))
        if challenger is None:
            return
        with self._lock:
            found = next(
                (
                    d
                    for d in self._confirmed.get((challenger, source), [])
                    if (d.nonce, d.responder_nonce) == (nonce, mine)
                ),
                None,
            )
        if found is None or found.signed is not None:  # unknown, or already signed: a replay
            return
        if found.refusals >= MAX_KEPT_REFUSALS:
            return
        try:
            theirs = SignedLatency.from_json(msg.get("measurement"))
        except LatencyError:
            return
        m = theirs.measurement
        expected = (
            facility_id(challenger),
            facility_id(self.facility),
            exchange_id(bytes.fromhex(nonce), bytes.fromhex(mine)),
        )
        if (m.facility_id, m.peer_facility_id, m.exchange_id) != expected:
            return
        with contextlib.suppress(queue.Full):  # a flood of them: drop, never block the timing
            self._kept.put_nowait(((challenger, source), found, theirs))

    def _sign_kept(self) -> None:
        while (item := self._kept.get()) is not None:
            try:
                self.keep(*item)
            except Exception as exc:  # a hostile peer or a chain error: drop this one only
                log_event(log, "latency.kept_failed", logging.WARNING, error=str(exc)[:200])

    def keep(self, sender: _Sender, done: _Confirmed, theirs: SignedLatency) -> bool:
        """The challenger kept exchange ``done`` and sent its own signed measurement of it: if
        this end timed it within ``BURST_SECONDS`` and the challenger's attestor signed that,
        sign ours (once) with the larger of the two round trips and hold it for relaying. True
        if held."""
        if done.signed is not None or time.monotonic() - done.at > BURST_SECONDS:
            return False
        if self.check is None or self.signer is None:
            return False
        if not self.check(theirs):
            done.refusals += 1
            log_event(log, "latency.kept_refused", logging.WARNING, challenger=sender[0])
            return False
        rtt = max(done.rtt_micros, theirs.measurement.rtt_micros)
        done.signed = self.signer(sender[0], rtt, done.nonce, done.responder_nonce)
        if done.signed is None:
            return False
        self.book.put(done.signed)
        return True

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, peer = self._sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                return
            received = time.perf_counter_ns()
            try:
                self._handle(datagram, peer, received)
            except Exception as exc:  # one hostile datagram must not end the responder
                log_event(log, "latency.datagram_failed", logging.WARNING, error=str(exc)[:200])

    def _handle(self, datagram: bytes, peer: Any, received: int) -> None:
        if self.allowed is not None and peer[0] not in self.allowed:
            return
        if self.confirm(datagram, peer, received) is not None:
            return
        answered = self.answer(datagram, peer)
        if answered is None:
            return
        reply, hold, challenger, nonce, mine = answered
        if hold <= 0:
            self._send(reply, peer, challenger, nonce, mine)
        elif self._slots.acquire(blocking=False):
            timer = threading.Timer(hold, self._send_held, (reply, peer, challenger, nonce, mine))
            timer.daemon = True
            timer.start()

    def _send_held(self, reply: bytes, peer: Any, challenger: str, nonce: str, mine: str) -> None:
        try:
            self._send(reply, peer, challenger, nonce, mine)
        finally:
            self._slots.release()

    def _send(self, reply: bytes, peer: Any, challenger: str, nonce: str, mine: str) -> None:
        try:
            self._sock.sendto(reply, peer)
        except OSError as exc:
            log_event(log, "latency.reply_failed", logging.DEBUG, error=str(exc))


# ------------------------------------------------------------------------- challenger


def verify_response(
    reply: dict[str, Any], nonce: str, peer: str, pinned_ca: bytes | None = None
) -> tuple[str, str, int | None]:
    """Check a response; returns (signature hex, responder nonce, emulated delay). With
    ``pinned_ca`` (the sha256 fingerprint the registry pins for the peer's site CA), the
    response's device certificate must also be issued by the CA certificate it carries, and that
    CA be the pinned one: then only the peer itself can have answered. Raises LatencyError."""
    if reply.get("type") != "rtt.response" or reply.get("nonce") != nonce:
        raise LatencyError(f"{peer}: response is not for this challenge")
    if reply.get("facility") != peer:
        raise LatencyError(f"{peer}: response names facility {reply.get('facility')!r}")
    mine = _nonce(reply.get("responderNonce"))
    if mine is None or mine != reply.get("responderNonce"):
        raise LatencyError(f"{peer}: responderNonce is not 32 bytes of lower-case hex")
    try:
        der = base64.b64decode(reply["certificate"], validate=True)
        cert = x509.load_der_x509_certificate(der)
        signature = bytes.fromhex(reply["signature"])
        emulated = _delay(reply.get("emulatedDelayMicros"))
    except (KeyError, ValueError, TypeError, binascii.Error) as exc:
        raise LatencyError(f"{peer}: malformed response ({exc})") from None
    if sha256_hex(der) != reply.get("deviceCert"):
        raise LatencyError(f"{peer}: deviceCert does not match the certificate sent")
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:  # a key type no one can verify
        raise LatencyError(f"{peer}: unusable device key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise LatencyError(f"{peer}: device key is not Ed25519")
    try:
        key.verify(signature, response_payload(nonce, mine, peer, reply["deviceCert"], emulated))
    except InvalidSignature:
        raise LatencyError(f"{peer}: signature does not verify") from None
    if pinned_ca is not None:
        _check_issuer(reply, cert, peer, pinned_ca)
    return signature.hex(), mine, emulated


def _check_issuer(reply: dict[str, Any], cert: x509.Certificate, peer: str, pinned: bytes) -> None:
    """The response's device certificate is issued by its CA certificate, and that CA is the one
    the registry pins for ``peer``; LatencyError if not."""
    try:
        ca_der = base64.b64decode(reply["caCertificate"], validate=True)
        ca = x509.load_der_x509_certificate(ca_der)
    except (KeyError, ValueError, TypeError, binascii.Error) as exc:
        raise LatencyError(f"{peer}: malformed CA certificate ({exc})") from None
    if hashlib.sha256(ca_der).digest() != pinned:
        raise LatencyError(f"{peer}: answered under a CA the registry does not pin for it")
    try:
        issued = issued_by(cert, ca).ok
    except Exception:  # an unusable CA key type, say
        issued = False
    if not issued:
        raise LatencyError(f"{peer}: device certificate not issued by its pinned CA")
    # one operator CA may issue for several facilities: the certificate must be this one's
    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [device_name(peer)]:
        raise LatencyError(f"{peer}: device certificate is for {names}, not {peer}")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if is_ca:
        raise LatencyError(f"{peer}: answered with a CA certificate, not a device's")
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:  # a retired device
        raise LatencyError(f"{peer}: device certificate not valid now")


def measure_peer(
    peer: PeerSettings,
    challenger: str,
    samples: int = 5,
    timeout: float = 1.0,
    nonce_source: Callable[[int], bytes] = os.urandom,
    emulated_delay_us: int = 0,
    signer: MeasurementSigner | None = None,
    pinned_ca: bytes | None = None,
) -> Measurement:
    """Run ``samples`` exchanges with a peer and keep the fastest (telling the peer which, so it
    signs the same one); sign it if ``signer`` is given. ``emulated_delay_us``: the one-way delay
    this site emulates towards the peer (each confirmation is held twice that). Raises
    TimeoutError if the peer does not answer in time, ConnectionRefusedError if nothing listens
    there, and LatencyError if it answers wrongly."""
    best: tuple[int, str, str, str, int | None] | None = None
    cert_sha = ""
    host, port = split_endpoint(peer.address)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        for _ in range(samples):
            nonce = nonce_source(32).hex()
            rtt, mine, signature, emulated, cert_sha = _sample(
                sock, peer.facility, challenger, nonce, timeout, emulated_delay_us, pinned_ca
            )
            if best is None or rtt < best[0]:
                best = (rtt, nonce, mine, signature, emulated)
        assert best is not None
        rtt, nonce, mine, signature, emulated = best
        signed = signer(peer.facility, max(1, rtt), nonce, mine) if signer else None
        if signed is not None:  # tell the responder which one we kept, and what we measured
            kept = canonical_json(
                {
                    "v": PROTOCOL,
                    "type": "rtt.kept",
                    "from": challenger,
                    "nonce": nonce,
                    "responderNonce": mine,
                    "measurement": signed.to_json(),
                }
            )
            for _ in range(KEPT_SENDS):  # a datagram may be lost; the responder keeps one
                sock.send(kept)
    return Measurement(
        peer.facility, nonce, mine, rtt, samples, signature, cert_sha, emulated, signed
    )


def _sample(
    sock: socket.socket,
    peer: str,
    challenger: str,
    nonce: str,
    timeout: float,
    emulated_delay_us: int,
    pinned_ca: bytes | None,
) -> tuple[int, str, str, int | None, str]:
    """One exchange: (RTT in µs, responder nonce, its signature, its emulated delay, its device
    certificate's sha256). An answer that fails the checks is skipped (the peer's own may
    follow); with only such answers until the timeout, the last one's LatencyError."""
    challenge = _padded(
        {"v": PROTOCOL, "type": "rtt.challenge", "nonce": nonce, "from": challenger}
    )
    started = time.perf_counter_ns()
    sock.send(challenge)
    deadline = started + int(timeout * 1e9)
    refused: LatencyError | None = None
    while True:
        try:
            reply = _await_reply(sock, nonce, deadline)
        except TimeoutError:
            if refused is not None:  # only wrong answers came: say why
                raise refused from None
            raise
        rtt = (time.perf_counter_ns() - started) // 1000
        # confirm first, check after: the responder's clock runs until the confirmation
        # arrives, and a check in between would only lengthen its round trip
        mine = _nonce(reply.get("responderNonce"))
        if mine is None:
            refused = LatencyError(f"{peer}: responderNonce is not 32 bytes of hex")
            continue
        if emulated_delay_us:
            time.sleep(2 * emulated_delay_us / 1e6)
        confirm: dict[str, Any] = {
            "v": PROTOCOL,
            "type": "rtt.confirm",
            "from": challenger,
            "nonce": nonce,
            "responderNonce": mine,
        }
        if emulated_delay_us:
            confirm["emulatedDelayMicros"] = emulated_delay_us
        sock.send(canonical_json(confirm))
        try:
            signature, mine, emulated = verify_response(reply, nonce, peer, pinned_ca)
        except LatencyError as exc:
            refused = exc
            continue
        return rtt, mine, signature, emulated, str(reply["deviceCert"])


def _padded(doc: dict[str, Any]) -> bytes:
    """``doc`` with a ``pad`` of zeros making it ``CHALLENGE_BYTES`` long."""
    bare = len(canonical_json({**doc, "pad": ""}))
    return canonical_json({**doc, "pad": "0" * max(0, CHALLENGE_BYTES - bare)})


def _await_reply(sock: socket.socket, nonce: str, deadline_ns: int) -> dict[str, Any]:
    """The reply carrying ``nonce`` (late answers to earlier challenges are skipped)."""
    while True:
        remaining = (deadline_ns - time.perf_counter_ns()) / 1e9
        if remaining <= 0:
            raise TimeoutError("no answer in time")
        sock.settimeout(remaining)
        data = sock.recv(MAX_DATAGRAM)  # ConnectionRefusedError if nothing listens
        reply = _message(data)
        if reply is not None and reply.get("nonce") == nonce:
            return reply
