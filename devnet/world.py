"""Populate a local development chain: facilities attested, validators staked on attested nodes.

For tests, benchmarks and the demo only. Attestor, validator and node keys are derived from
public names (``keccak("attestor:fra1")``), so they protect nothing; validators are funded with
``anvil_setBalance``. Real sites run an attestor daemon with their own keystores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from redundancy.devicecert import (
    device_name,
    fingerprint,
    issue_device_cert,
    make_ca,
    sha256_hex,
    sign_envelope,
    to_der,
)
from redundancy.domains import Dimension, Kind, domain_id, facility_id, hardware_domain
from redundancy.eip712 import Signature, Signer
from redundancy.proofs import (
    LatencyMeasurement,
    SignedProof,
    make_proof,
    subject_for_node,
)
from redundancy.registry import RegistryClient

BATCH = 40
#: What each validator holds beyond its stake, for gas and later stake increases.
FUNDING = 1_000 * 10**18


def _derived(name: str) -> LocalAccount:
    account: LocalAccount = Account.from_key(keccak(text=name))
    return account


@dataclass(frozen=True)
class FacilitySpec:
    """A facility and the facts its attestor would prove."""

    name: str
    grid: str
    metro: str
    country: str
    latitude_e6: int
    longitude_e6: int
    asn: str
    provider: str

    @property
    def facility_id(self) -> bytes:
        return facility_id(self.name)

    def signer(self) -> Signer:
        return Signer(keccak(text=f"attestor:{self.name}"))

    def device_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(keccak(text=f"device:{self.name}"))

    def ca_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(keccak(text=f"ca:{self.name}"))


@dataclass(frozen=True)
class ValidatorSpec:
    """A validator: where its node runs, its stake and its node's hardware."""

    name: str
    facility: str
    stake: int
    hardware: tuple[str, str, str] = ("dell", "poweredge r650", "2.19.1")

    def account(self) -> LocalAccount:
        return _derived(f"validator:{self.name}")

    def node(self) -> LocalAccount:
        return _derived(f"node:{self.name}")


@dataclass
class World:
    """What was built: the registry, the facilities and validators, and sequence counters."""

    w3: Web3
    registry: RegistryClient
    facilities: dict[str, FacilitySpec] = field(default_factory=dict)
    validators: dict[str, ValidatorSpec] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    device_certs: dict[str, x509.Certificate] = field(default_factory=dict)
    #: the last measuredAt signed per direction (measurement, peer), so each is newer
    measured: dict[tuple[str, str], int] = field(default_factory=dict)
    #: health bodies by facility name, in place of the minimal default (evidence version 2)
    health_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)

    def enrol(self, spec: FacilitySpec, owner: LocalAccount, publish_device: bool = True) -> None:
        """Register the facility with its CA pinned, and publish its CA and device certificates
        (the device's only with ``publish_device``: a test may publish it later).

        The certificates are valid from the chain's clock (which the world's evidence is stamped
        with), not the wall clock: a test chain's clock may run ahead of or behind this machine's.
        """
        start = dt.datetime.fromtimestamp(self.now(), dt.UTC)
        ca = make_ca(spec.name, spec.ca_key(), now=start)
        device = issue_device_cert(
            ca, spec.ca_key(), spec.device_key().public_key(), device_name(spec.name), now=start
        )
        self.registry.register_facility(
            spec.facility_id, spec.signer().address, fingerprint(ca), sender=owner
        )
        self.registry.publish_certificate(spec.facility_id, to_der(ca), sender=owner)
        if publish_device:
            self.registry.publish_certificate(spec.facility_id, to_der(device), sender=owner)
        self.facilities[spec.name] = spec
        self.device_certs[spec.name] = device

    def evidence(
        self, spec: FacilitySpec, kind: Kind, now: int, body: object, version: int = 1
    ) -> bytes:
        """A device-signed evidence envelope (format ``version``: 2 for health bodies with
        ``degraded``)."""
        doc = {
            "v": version,
            "kind": kind.name.lower(),
            "facility": spec.name,
            "observedAt": now,
            "body": body,
        }
        return sign_envelope(
            doc, spec.device_key(), sha256_hex(to_der(self.device_certs[spec.name]))
        )

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def _next(self, name: str) -> int:
        self.sequences[name] = self.sequences.get(name, 0) + 1
        return self.sequences[name]

    def facility_proofs(
        self,
        spec: FacilitySpec,
        kinds: Iterable[Kind] | None = None,
        coordinates: tuple[int, int] | None = None,
    ) -> list[SignedProof]:
        """Signed proofs of the given facility-level kinds (default: all five)."""
        now = self.now()
        policy = self.registry.freshness_policy()
        lat, lon = coordinates or (spec.latitude_e6, spec.longitude_e6)
        facts = {
            Kind.POWER: (domain_id(Dimension.POWER, spec.grid), bytes(32), {"grid": spec.grid}),
            Kind.GEOGRAPHY: (
                domain_id(Dimension.METRO, spec.metro),
                domain_id(Dimension.COUNTRY, spec.country),
                {"metro": spec.metro, "country": spec.country},
            ),
            Kind.NETWORK: (domain_id(Dimension.NETWORK, spec.asn), bytes(32), {"asns": [spec.asn]}),
            Kind.PROVIDER: (
                domain_id(Dimension.PROVIDER, spec.provider),
                bytes(32),
                {"provider": spec.provider},
            ),
            Kind.HEALTH: (
                bytes(32),
                bytes(32),
                self.health_bodies.get(spec.name, {"load1Milli": 100}),
            ),
        }
        signer, ds = spec.signer(), self.registry.domain_separator()
        out = []
        for kind in kinds or facts:
            d1, d2, body = facts[kind]
            geo = kind == Kind.GEOGRAPHY
            version = 2 if kind == Kind.HEALTH and spec.name in self.health_bodies else 1
            evidence = self.evidence(spec, kind, now, body, version)
            out.append(
                make_proof(
                    signer,
                    ds,
                    facility_id=spec.facility_id,
                    kind=kind,
                    evidence=evidence,
                    issued_at=now,
                    expires_at=now + policy.max_lifetime[kind],
                    sequence=self._next(spec.name),
                    domain_id=d1,
                    secondary_domain_id=d2,
                    latitude_e6=lat if geo else 0,
                    longitude_e6=lon if geo else 0,
                )
            )
        return out

    def hardware_proof(self, v: ValidatorSpec) -> SignedProof:
        spec = self.facilities[v.facility]
        now = self.now()
        vendor, model, firmware = v.hardware
        evidence = self.evidence(
            spec, Kind.HARDWARE, now, {"vendor": vendor, "model": model, "firmware": firmware}
        )
        return make_proof(
            spec.signer(),
            self.registry.domain_separator(),
            facility_id=spec.facility_id,
            kind=Kind.HARDWARE,
            evidence=evidence,
            issued_at=now,
            expires_at=now + self.registry.freshness_policy().max_lifetime[Kind.HARDWARE],
            sequence=self._next(spec.name),
            subject=subject_for_node(v.node().address),
            domain_id=hardware_domain(vendor, model, firmware),
        )

    def submit(self, proofs: Sequence[SignedProof], relayer: LocalAccount) -> None:
        """Submit in batches; raises if any proof is rejected (a builder bug, not an outcome)."""
        for i in range(0, len(proofs), BATCH):
            result = self.registry.submit_attestations(proofs[i : i + BATCH], sender=relayer)
            if result.rejected:
                raise RuntimeError(f"devworld proofs rejected: {result.rejected}")

    def anchor(self) -> tuple[int, bytes]:
        """The block a measurement made now binds: the one before the head (a call or gas
        estimate runs at the head's number, where the head's own hash is not yet readable)."""
        head = int(self.w3.eth.block_number)
        block = self.w3.eth.get_block(max(head - 1, 0))
        return int(block["number"]), bytes(block["hash"])

    def latency(
        self,
        spec: FacilitySpec,
        peer: FacilitySpec,
        rtt_us: int,
        exchange: bytes | None = None,
    ) -> tuple[LatencyMeasurement, Signature]:
        """One end's signed measurement: ``spec``'s attestor measured ``rtt_us`` to ``peer``,
        now (later than its last to that peer), anchored at the latest block."""
        now = self.now()
        key = (spec.name, peer.name)
        at = self.measured[key] = max(now, self.measured.get(key, 0) + 1)
        number, block_hash = self.anchor()
        exchange = exchange or keccak(text=f"exchange:{spec.name}:{peer.name}:{at}")
        m = LatencyMeasurement(
            spec.facility_id, peer.facility_id, rtt_us, at, number, block_hash, exchange
        )
        return m, spec.signer().sign(self.registry.domain_separator(), m)

    def round_trip(
        self, a: FacilitySpec, b: FacilitySpec, rtt_us: int, rtt_back_us: int | None = None
    ) -> list[tuple[LatencyMeasurement, Signature]]:
        """Both ends' signed measurements of one exchange: ``a`` measured ``rtt_us``, ``b``
        measured ``rtt_back_us`` (default: the same)."""
        number, _ = self.anchor()
        exchange = keccak(text=f"exchange:{a.name}:{b.name}:{number}:{self.now()}")
        back = rtt_us if rtt_back_us is None else rtt_back_us
        return [self.latency(a, b, rtt_us, exchange), self.latency(b, a, back, exchange)]

    def refresh(self, relayer: LocalAccount, kinds: Iterable[Kind] = (Kind.HEALTH,)) -> None:
        """Re-attest every facility (default: a heartbeat), e.g. after moving the clock."""
        kinds = list(kinds)
        self.submit(
            [p for spec in self.facilities.values() for p in self.facility_proofs(spec, kinds)],
            relayer,
        )


def build(
    w3: Web3,
    registry: RegistryClient,
    owner: LocalAccount,
    facilities: Sequence[FacilitySpec],
    validators: Sequence[ValidatorSpec] = (),
) -> World:
    """Register and attest facilities, attest validator nodes, fund and register validators."""
    world = World(w3, registry)
    for spec in facilities:
        world.enrol(spec, owner)
    proofs = [p for spec in facilities for p in world.facility_proofs(spec)]
    proofs += [world.hardware_proof(v) for v in validators]
    world.submit(proofs, owner)
    for v in validators:
        acct = v.account()
        w3.provider.make_request("anvil_setBalance", [acct.address, hex(v.stake + FUNDING)])  # type: ignore[arg-type]
        registry.register_validator(
            world.facilities[v.facility].facility_id, v.node(), v.stake, sender=acct
        )
        world.validators[v.name] = v
    return world
