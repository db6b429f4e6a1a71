"""The attestor's link to its registry: connects on first use (the daemon starts, and signs,
while the chain is down), checks once that the chain agrees with the settings, and publishes
the CA and device certificates if they are not yet on-chain.

The checks are fatal (``RegistrationError``): publishing would be wasted or wrong if the
facility is not registered to this key, pins another CA, or the registry's freshness policy
forbids the configured lifetimes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3

from attestor.errors import RegistrationError
from attestor.keys import DeviceIdentity
from attestor.settings import Settings
from redundancy.chain import connect, web3_for
from redundancy.domains import Kind
from redundancy.jsonlog import log_event
from redundancy.registry import FreshnessPolicy, RegistryClient

log = logging.getLogger("attestor.chain")

#: Seconds the heartbeat waits for the chain head before reporting it unknown.
HEAD_TIMEOUT = 2.0
#: how long a peer's attestor and CA fingerprint read from the registry are trusted
PEER_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Target:
    """Which registry on which chain, and the first block worth scanning for events."""

    rpc_url: str
    chain_id: int
    registry: str
    from_block: int
    timeout: float
    receipt_timeout: float
    max_fee_per_gas: int | None = None


def lifetimes(settings: Settings) -> dict[Kind, tuple[str, int]]:
    """The lifetime the settings give each kind's proofs, with the field that sets it."""
    out = {
        Kind.HEALTH: ("health.heartbeat_interval", 2 * settings.health.heartbeat_interval),
        Kind.POWER: ("power.lifetime", settings.power.lifetime),
        Kind.GEOGRAPHY: ("geography.lifetime", settings.geography.lifetime),
        Kind.NETWORK: ("network.lifetime", settings.network.lifetime),
        Kind.PROVIDER: ("provider.lifetime", settings.provider.lifetime),
    }
    if settings.hardware.nodes:
        out[Kind.HARDWARE] = ("hardware.lifetime", settings.hardware.lifetime)
    return out


def check_policy(policy: FreshnessPolicy, settings: Settings) -> list[str]:
    """Every configured lifetime the registry would refuse (one message per field)."""
    problems = []
    for kind, (field, lifetime) in lifetimes(settings).items():
        allowed = policy.max_lifetime[int(kind)]
        if lifetime <= allowed:
            continue
        if kind == Kind.HEALTH:
            problems.append(
                f"{field} = {settings.health.heartbeat_interval} s gives heartbeats a "
                f"{lifetime} s lifetime (two intervals); the registry allows at most {allowed} s: "
                f"use {allowed // 2} or less"
            )
        else:
            problems.append(f"{field} = {lifetime} s exceeds the registry's {allowed} s")
    return problems


class RegistryLink:
    """Lazily connected registry client for one attestor."""

    def __init__(
        self,
        target: Target,
        settings: Settings,
        account: LocalAccount,
        identity: DeviceIdentity,
        facility_id: bytes,
        domain_separator: bytes,
    ) -> None:
        self.target = target
        self.settings = settings
        self.account = account
        self.identity = identity
        self.extra_certificates: list[bytes] = []  # a TPM's chain, AK and EK (attestor.tpm)
        self.tpm_ak_certificate: bytes | None = None  # sha256 of the TPM's AK certificate
        self.facility_id = facility_id
        self.domain_separator = domain_separator
        self._client: RegistryClient | None = None
        self._peers: dict[bytes, tuple[tuple[str, bytes] | None, float]] = {}
        self._verified = False
        self._certificates_published = False
        self._head_w3: Web3 | None = None

    @property
    def address(self) -> str:
        return str(self.account.address)

    def chain_head(self) -> int | None:
        """The chain's latest block number, or None if it does not answer within
        ``HEAD_TIMEOUT`` seconds (for the health heartbeat: never raises)."""
        if self._head_w3 is None:
            self._head_w3 = web3_for(self.target.rpc_url, timeout=HEAD_TIMEOUT)
        try:
            return int(self._head_w3.eth.block_number)
        except Exception:  # any transport or node error: the heartbeat reports "unknown"
            return None

    def anchor(self) -> tuple[int, bytes] | None:
        """The block an RTT measurement made now binds: the one before the head (a relayer's
        gas estimate runs at the head's number, where the head's own hash is not yet readable).
        None if the chain does not answer within ``HEAD_TIMEOUT`` seconds."""
        if self._head_w3 is None:
            self._head_w3 = web3_for(self.target.rpc_url, timeout=HEAD_TIMEOUT)
        try:
            head = int(self._head_w3.eth.block_number)
            block = self._head_w3.eth.get_block(max(head - 1, 0))
            return int(block["number"]), bytes(block["hash"])
        except Exception:  # any transport or node error: no anchor, no signed measurement
            return None

    def attestor_of(self, facility_id: bytes) -> str | None:
        """The attestor address the registry holds for a facility (a peer's, to check the
        signature on its ``rtt.kept``); None if not registered or the chain does not answer."""
        found = self._peer(facility_id)
        return None if found is None else found[0]

    def ca_fingerprint_of(self, facility_id: bytes) -> bytes | None:
        """The CA fingerprint the registry pins for a facility (a peer's, whose answers to
        this site's challenges must come under that CA); None as for ``attestor_of``."""
        found = self._peer(facility_id)
        return None if found is None else found[1]

    def _peer(self, facility_id: bytes) -> tuple[str, bytes] | None:
        """(attestor, CA fingerprint) of a registered facility, read with ``HEAD_TIMEOUT``
        and cached for ``PEER_CACHE_SECONDS`` (a key or CA rotation reaches peers within
        that); None if it is not registered or the chain does not answer."""
        now = time.monotonic()
        cached = self._peers.get(facility_id)
        if cached is not None and now - cached[1] < PEER_CACHE_SECONDS:
            return cached[0]
        if self._head_w3 is None:
            self._head_w3 = web3_for(self.target.rpc_url, timeout=HEAD_TIMEOUT)
        try:
            info = RegistryClient(self._head_w3, self.target.registry).facility(facility_id)
        except Exception:  # any transport or node error: unknown for now
            return None
        found = (info.attestor, info.ca_fingerprint) if info.registered else None
        self._peers[facility_id] = (found, now)
        return found

    def client(self) -> RegistryClient:
        """A checked client; raises ChainUnreachableError (retry later) or RegistrationError."""
        if self._client is None:
            w3 = connect(self.target.rpc_url, timeout=self.target.timeout)
            client = RegistryClient(w3, self.target.registry, self.account)
            client.tx.receipt_timeout = self.target.receipt_timeout
            client.tx.max_fee_per_gas = self.target.max_fee_per_gas
            self._client = client
        if not self._verified:
            self.verify(self._client)
            self._verified = True
        if not self._certificates_published:
            self.publish_certificates(self._client)
            self.bind_tpm_identity(self._client)
            self._certificates_published = True
        return self._client

    def verify(self, client: RegistryClient) -> None:
        """Check the chain agrees with the settings; RegistrationError naming what differs."""
        name = self.settings.facility
        chain_id = int(client.w3.eth.chain_id)
        if chain_id != self.target.chain_id:
            raise RegistrationError(
                f"{self.target.rpc_url} is chain {chain_id}, but the settings name chain "
                f"{self.target.chain_id}"
            )
        if client.domain_separator() != self.domain_separator:
            raise RegistrationError(
                f"the registry at {self.target.registry} has another EIP-712 domain than the "
                "one proofs are signed for: is chain.registry right?"
            )
        info = client.facility(self.facility_id)
        fingerprint = self.identity.ca_fingerprint.hex()
        if not info.registered:
            raise RegistrationError(
                f"facility {name} (id 0x{self.facility_id.hex()}) is not registered in registry "
                f"{self.target.registry}; its owner must register it with attestor "
                f"{self.address} and CA fingerprint 0x{fingerprint}"
            )
        if to_checksum_address(info.attestor) != self.address:
            raise RegistrationError(
                f"facility {name} is registered to attestor {info.attestor}, not to this key "
                f"{self.address}"
            )
        if info.ca_fingerprint != self.identity.ca_fingerprint:
            raise RegistrationError(
                f"facility {name} pins CA fingerprint 0x{info.ca_fingerprint.hex()}, but keys "
                f"hold CA 0x{fingerprint}"
            )
        if self.tpm_ak_certificate is None and info.tpm_ak_certificate != bytes(32):
            raise RegistrationError(
                f"facility {name} is bound to TPM AK certificate 0x{info.tpm_ak_certificate.hex()}"
                ' but this attestor signs with a file key: set [identity] backend = "tpm", or '
                "have the owner unbind it (setTpmIdentity with zero)"
            )
        if not info.active:
            log_event(log, "facility.inactive", logging.WARNING, facility=name)
        policy = client.freshness_policy()
        problems = check_policy(policy, self.settings)
        if self.tpm_ak_certificate is None and policy.require_tpm:
            kinds = ", ".join(sorted(k.name.lower() for k in policy.require_tpm))
            problems.append(
                f"the registry accepts {kinds} proofs only from a TPM-bound facility, but this "
                'attestor signs with a file key: set [identity] backend = "tpm"'
            )
        if problems:
            raise RegistrationError("; ".join(problems))
        log_event(
            log,
            "chain.verified",
            facility=name,
            registry=self.target.registry,
            chain_id=chain_id,
            attestor=self.address,
        )

    def publish_certificates(self, client: RegistryClient) -> None:
        """Publish the CA and device certificates unless already on-chain."""
        certificates = [("ca", self.identity.ca_der), ("device", self.identity.cert_der)]
        certificates += [("tpm", der) for der in self.extra_certificates]
        for what, der in certificates:
            digest = hashlib.sha256(der).digest()
            if client.find_certificate(digest, from_block=self.target.from_block) is not None:
                continue
            receipt = client.publish_certificate(self.facility_id, der, sender=self.account)
            log_event(
                log,
                "certificate.published",
                certificate=what,
                sha256=digest.hex(),
                tx=receipt["transactionHash"].to_0x_hex(),
            )

    def bind_tpm_identity(self, client: RegistryClient) -> None:
        """With a TPM, bind the facility's proofs to its AK unless already bound to it."""
        if self.tpm_ak_certificate is None:
            return
        if client.facility(self.facility_id).tpm_ak_certificate == self.tpm_ak_certificate:
            return
        receipt = client.set_tpm_identity(
            self.facility_id, self.tpm_ak_certificate, sender=self.account
        )
        log_event(
            log,
            "tpm.identity.bound",
            ak_certificate=self.tpm_ak_certificate.hex(),
            tx=receipt["transactionHash"].to_0x_hex(),
        )

    def accepted(self, from_block: int) -> dict[int, tuple[bytes, int]]:
        """sequence -> (tx hash, block) of this attestor's accepted proofs since a block."""
        events = self.client().accepted_proofs(
            max(from_block, self.target.from_block), attestor=self.address
        )
        return {e.sequence: (bytes.fromhex(e.tx[2:]), e.block) for e in events}

    def transactions_in_flight(self) -> int:
        """How many of this account's transactions are sent but not yet mined."""
        eth = self.client().w3.eth
        me = self.account.address
        return int(eth.get_transaction_count(me, "pending")) - int(
            eth.get_transaction_count(me, "latest")
        )
