"""The typed client of the RedundancyRegistry contract (web3 v8)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import BlockIdentifier, TxReceipt

from redundancy.chain import ContractClient
from redundancy.domains import Dimension, Kind
from redundancy.eip712 import Signer
from redundancy.errors import (
    MalformedCalldataError,
    NotASubmissionError,
    UnknownTransactionError,
)
from redundancy.proofs import SignedBinding, SignedProof, ValidatorBinding

CONTRACT_NAME = "RedundancyRegistry"
SUBMIT_FUNCTIONS = ("submitAttestation", "submitAttestations")
#: How long a validator binding signed by ``sign_binding`` stays usable by default (seconds).
BINDING_LIFETIME = 3600
_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class FreshnessPolicy:
    """Maximum proof lifetime per kind (seconds), allowed clock skew, required facility kinds,
    and the kinds accepted only from a facility bound to a TPM identity (``setTpmIdentity``)."""

    max_lifetime: tuple[int, int, int, int, int, int]
    max_future_skew: int
    required_kinds: frozenset[Kind]
    require_tpm: frozenset[Kind] = frozenset()

    def as_abi(self) -> tuple[list[int], int, int, int]:
        return (
            list(self.max_lifetime),
            self.max_future_skew,
            _kind_mask(self.required_kinds),
            _kind_mask(self.require_tpm),
        )

    @classmethod
    def from_abi(cls, values: Sequence[Any]) -> FreshnessPolicy:
        lifetimes, skew, mask, tpm_mask = values
        return cls(
            tuple(int(x) for x in lifetimes),  # type: ignore[arg-type]
            int(skew),
            frozenset(k for k in Kind if mask >> int(k) & 1),
            frozenset(k for k in Kind if tpm_mask >> int(k) & 1),
        )


def _kind_mask(kinds: frozenset[Kind]) -> int:
    mask = 0
    for kind in kinds:
        mask |= 1 << int(kind)
    return mask


#: A sensible default: hardware, power, provider and network proofs last a day, geography a week,
#: health heartbeats two minutes (a site that stops beating is stale within two 60 s intervals).
DEFAULT_POLICY = FreshnessPolicy(
    max_lifetime=(86_400, 86_400, 7 * 86_400, 86_400, 86_400, 120),
    max_future_skew=60,
    required_kinds=frozenset(
        {Kind.POWER, Kind.GEOGRAPHY, Kind.NETWORK, Kind.PROVIDER, Kind.HEALTH}
    ),
)


@dataclass(frozen=True)
class FacilityInfo:
    """A facility as the registry stores it."""

    facility_id: bytes
    attestor: str
    active: bool
    latitude_e6: int
    longitude_e6: int
    ca_fingerprint: bytes
    domains: dict[Dimension, bytes]
    valid_until: dict[Kind, int]
    #: sha256 of the TPM AK certificate the facility bound its proofs to (zero: file identity)
    tpm_ak_certificate: bytes = bytes(32)

    @property
    def registered(self) -> bool:
        return int(self.attestor, 16) != 0


@dataclass(frozen=True)
class FacilityStatus:
    """Whether a facility is stale at the queried block, and why."""

    registered: bool
    active: bool
    stale: bool
    missing_kinds: frozenset[Kind]
    expired_kinds: frozenset[Kind]

    def reasons(self) -> list[str]:
        """Human-readable reasons for staleness (empty when fresh)."""
        out = []
        if not self.registered:
            out.append("not registered")
        elif not self.active:
            out.append("deactivated")
        out += [f"no {k.name.lower()} proof" for k in sorted(self.missing_kinds)]
        out += [f"{k.name.lower()} proof expired" for k in sorted(self.expired_kinds)]
        return out


@dataclass(frozen=True)
class ValidatorInfo:
    address: str
    facility_id: bytes
    node: str
    stake: int
    #: when it registered: its stake has been bonded without a break since (0 if unknown)
    bonded_at: int = 0
    #: which registration that was (1, 2, ... across the registry; 0 if unknown)
    bond_seq: int = 0


@dataclass(frozen=True)
class NodeInfo:
    node: str
    facility_id: bytes
    hardware_domain_id: bytes
    valid_until: int


@dataclass(frozen=True)
class SubmitResult:
    """What a batch submission did: which proofs were accepted, which skipped and why."""

    receipt: TxReceipt
    accepted: list[tuple[bytes, int]] = field(default_factory=list)  # (facility id, sequence)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (index in batch, error name)

    @property
    def gas_used(self) -> int:
        return int(self.receipt["gasUsed"])

    @property
    def reverted(self) -> bool:
        return int(self.receipt["status"]) != 1


@dataclass(frozen=True)
class Submission:
    """A proof submission transaction, decoded from its calldata: the domain separator it
    declared and its proofs in order (a ValueError stands for a proof whose fields are
    malformed)."""

    tx: str
    declared_domain: bytes
    proofs: list[SignedProof | ValueError]


@dataclass(frozen=True, slots=True)
class AcceptedProof:
    """One ``AttestationAccepted`` event: a proof the registry took, and where."""

    facility_id: bytes
    attestor: str
    sequence: int
    kind: Kind
    subject: bytes
    valid_until: int
    block: int
    log_index: int
    tx: str

    @classmethod
    def from_event(cls, args: Mapping[str, Any], block: int, log_index: int, tx: str) -> Self:
        """From the event's decoded arguments and where it was emitted."""
        return cls(
            bytes(args["facilityId"]),
            str(args["attestor"]),
            int(args["sequence"]),
            Kind(int(args["kind"])),
            bytes(args["subject"]),
            int(args["validUntil"]),
            block,
            log_index,
            tx,
        )

    @property
    def position(self) -> tuple[int, int]:
        """(block, log index): the event's place in chain order."""
        return (self.block, self.log_index)


@dataclass(frozen=True, slots=True)
class PublishedCertificate:
    """One ``CertificatePublished`` event."""

    facility_id: bytes
    sha256_hash: bytes
    der: bytes
    block: int


def _mask(mask: int) -> frozenset[Kind]:
    return frozenset(k for k in Kind if mask >> int(k) & 1)


class RegistryClient(ContractClient):
    """Reads and writes one deployed RedundancyRegistry."""

    CONTRACT_NAME = CONTRACT_NAME

    def __init__(self, w3: Web3, address: str, default_sender: LocalAccount | None = None) -> None:
        super().__init__(w3, address, default_sender)
        self._domain_separator: bytes | None = None

    # ------------------------------------------------------------- deployment

    @classmethod
    def deploy(
        cls, w3: Web3, deployer: LocalAccount, policy: FreshnessPolicy = DEFAULT_POLICY
    ) -> tuple[RegistryClient, TxReceipt]:
        """Deploy a new registry; returns the client and the deployment receipt."""
        return cls._deploy(w3, deployer, policy.as_abi())

    # ------------------------------------------------------------------ views

    def domain_separator(self) -> bytes:
        """The EIP-712 domain separator (cached: it only changes with the chain id)."""
        if self._domain_separator is None:
            self._domain_separator = bytes(
                self.tx.call(self.contract.functions.domainSeparator().call)
            )
        return self._domain_separator

    def owner(self) -> str:
        return str(self.tx.call(self.contract.functions.owner().call))

    def pending_owner(self) -> str:
        return str(self.tx.call(self.contract.functions.pendingOwner().call))

    def freshness_policy(self, block: BlockIdentifier = "latest") -> FreshnessPolicy:
        raw = self.tx.call(
            lambda: self.contract.functions.freshnessPolicy().call(block_identifier=block)
        )
        return FreshnessPolicy.from_abi(raw)

    def facility(self, facility_id: bytes, block: BlockIdentifier = "latest") -> FacilityInfo:
        raw = self.tx.call(
            lambda: self.contract.functions.facility(facility_id).call(block_identifier=block)
        )
        attestor, active, lat, lon, ca, domains, valid_until, tpm_ak = raw
        return FacilityInfo(
            facility_id=facility_id,
            attestor=str(attestor),
            active=bool(active),
            latitude_e6=int(lat),
            longitude_e6=int(lon),
            ca_fingerprint=bytes(ca),
            domains={Dimension(i): bytes(d) for i, d in enumerate(domains)},
            valid_until={Kind(i): int(t) for i, t in enumerate(valid_until)},
            tpm_ak_certificate=bytes(tpm_ak),
        )

    def facility_status(
        self, facility_id: bytes, block: BlockIdentifier = "latest"
    ) -> FacilityStatus:
        fn = self.contract.functions.facilityStatus(facility_id)
        registered, active, stale, missing, expired = self.tx.call(
            lambda: fn.call(block_identifier=block)
        )
        return FacilityStatus(
            bool(registered), bool(active), bool(stale), _mask(missing), _mask(expired)
        )

    def facility_ids(self, block: BlockIdentifier = "latest") -> list[bytes]:
        fn = self.contract.functions.facilityIds()
        return [bytes(x) for x in self.tx.call(lambda: fn.call(block_identifier=block))]

    def last_sequence(self, attestor: str, block: BlockIdentifier = "latest") -> int:
        fn = self.contract.functions.lastSequence(to_checksum_address(attestor))
        return int(self.tx.call(lambda: fn.call(block_identifier=block)))

    def attestor_facility(self, attestor: str) -> bytes:
        fn = self.contract.functions.attestorFacility(to_checksum_address(attestor))
        return bytes(self.tx.call(fn.call))

    def node_info(self, node: str, block: BlockIdentifier = "latest") -> NodeInfo:
        fn = self.contract.functions.nodeInfo(to_checksum_address(node))
        facility_id, hw, until = self.tx.call(lambda: fn.call(block_identifier=block))
        return NodeInfo(to_checksum_address(node), bytes(facility_id), bytes(hw), int(until))

    def validator_info(self, validator: str, block: BlockIdentifier = "latest") -> ValidatorInfo:
        fn = self.contract.functions.validatorInfo(to_checksum_address(validator))
        facility_id, node, stake, bonded_at, bond_seq = self.tx.call(
            lambda: fn.call(block_identifier=block)
        )
        return ValidatorInfo(
            to_checksum_address(validator),
            bytes(facility_id),
            str(node),
            int(stake),
            int(bonded_at),
            int(bond_seq),
        )

    def bond_count(self, block: BlockIdentifier = "latest") -> int:
        """How many validator registrations there have been (the last one's ``bond_seq``)."""
        fn = self.contract.functions.bondCount()
        return int(self.tx.call(lambda: fn.call(block_identifier=block)))

    def validator_addresses(self, block: BlockIdentifier = "latest") -> list[str]:
        fn = self.contract.functions.validatorAddresses()
        return [str(a) for a in self.tx.call(lambda: fn.call(block_identifier=block))]

    def node_binding_nonce(self, node: str, block: BlockIdentifier = "latest") -> int:
        """The nonce the node's next validator binding must carry."""
        fn = self.contract.functions.nodeBindingNonce(to_checksum_address(node))
        return int(self.tx.call(lambda: fn.call(block_identifier=block)))

    def binding_digest(self, binding: ValidatorBinding) -> bytes:
        """The contract's digest of a validator binding (what the node key signs)."""
        fn = self.contract.functions.validatorBindingDigest(binding.as_tuple())
        return bytes(self.tx.call(fn.call))

    def sign_binding(
        self,
        node: LocalAccount,
        validator: str,
        facility_id: bytes,
        deadline: int | None = None,
    ) -> SignedBinding:
        """The node key's signature letting ``validator`` register on it at ``facility_id``,
        with the node's current binding nonce; usable until ``deadline`` (default: the latest
        block's timestamp plus ``BINDING_LIFETIME``). Run where the node key lives; the
        validator account then registers with it."""
        if deadline is None:
            deadline = int(self.w3.eth.get_block("latest")["timestamp"]) + BINDING_LIFETIME
        binding = ValidatorBinding(
            to_checksum_address(validator),
            to_checksum_address(node.address),
            facility_id,
            self.node_binding_nonce(node.address),
            deadline,
        )
        signature = Signer(bytes(node.key)).sign(self.domain_separator(), binding)
        return SignedBinding(binding, signature)

    def attestation_digest(self, proof: SignedProof) -> bytes:
        fn = self.contract.functions.attestationDigest(proof.attestation.as_tuple())
        return bytes(self.tx.call(fn.call))

    # ----------------------------------------------------------- transactions

    def register_facility(
        self,
        facility_id: bytes,
        attestor: str,
        ca_fingerprint: bytes = bytes(32),
        sender: LocalAccount | None = None,
    ) -> TxReceipt:
        fn = self.contract.functions.registerFacility(
            facility_id, to_checksum_address(attestor), ca_fingerprint
        )
        return self.tx.send(fn, self._sender(sender))

    def rotate_attestor(
        self, facility_id: bytes, new_attestor: str, sender: LocalAccount | None = None
    ) -> TxReceipt:
        fn = self.contract.functions.rotateAttestor(facility_id, to_checksum_address(new_attestor))
        return self.tx.send(fn, self._sender(sender))

    def set_ca_fingerprint(
        self, facility_id: bytes, ca_fingerprint: bytes, sender: LocalAccount | None = None
    ) -> TxReceipt:
        fn = self.contract.functions.setCaFingerprint(facility_id, ca_fingerprint)
        return self.tx.send(fn, self._sender(sender))

    def set_tpm_manufacturer_ca(
        self,
        facility_id: bytes,
        fingerprint: bytes,
        accepted: bool = True,
        sender: LocalAccount | None = None,
    ) -> TxReceipt:
        """Pin (or unpin) a TPM manufacturer root CA for a facility, or policy-wide with a
        zero facility id (owner only)."""
        fn = self.contract.functions.setTpmManufacturerCa(facility_id, fingerprint, accepted)
        return self.tx.send(fn, self._sender(sender))

    def set_tpm_identity(
        self, facility_id: bytes, ak_certificate: bytes, sender: LocalAccount | None = None
    ) -> TxReceipt:
        """Bind a facility's proofs to a TPM AK (sha256 of its certificate), or unbind with
        zero bytes (owner or the facility's attestor)."""
        fn = self.contract.functions.setTpmIdentity(facility_id, ak_certificate)
        return self.tx.send(fn, self._sender(sender))

    def tpm_manufacturer_ca_accepted(
        self, facility_id: bytes, fingerprint: bytes, block: BlockIdentifier = "latest"
    ) -> bool:
        """Whether the registry pins this manufacturer root for the facility (or for all)."""
        fn = self.contract.functions.tpmManufacturerCaAccepted(facility_id, fingerprint)
        return bool(self.tx.call(lambda: fn.call(block_identifier=block)))

    def publish_certificate(
        self, facility_id: bytes, certificate_der: bytes, sender: LocalAccount | None = None
    ) -> TxReceipt:
        """Publish a CA or device certificate for a facility (owner or its attestor)."""
        fn = self.contract.functions.publishCertificate(facility_id, certificate_der)
        return self.tx.send(fn, self._sender(sender))

    def find_certificate(
        self, sha256_hash: bytes, from_block: int = 0, to_block: BlockIdentifier = "latest"
    ) -> tuple[bytes, bytes] | None:
        """The (facility id, DER) of the certificate published with this sha256, if any."""
        found = self.published_certificates(from_block, to_block, sha256_hash=sha256_hash)
        return (found[-1].facility_id, found[-1].der) if found else None

    def published_certificates(
        self,
        from_block: int = 0,
        to_block: BlockIdentifier = "latest",
        *,
        sha256_hash: bytes | None = None,
        facility_id: bytes | None = None,
    ) -> list[PublishedCertificate]:
        """``CertificatePublished`` events in a block range, optionally of one certificate or one
        facility."""
        logs = self.event_logs(
            "CertificatePublished",
            from_block,
            to_block,
            sha256Hash=sha256_hash,
            facilityId=facility_id,
        )
        return [
            PublishedCertificate(
                bytes(log["args"]["facilityId"]),
                bytes(log["args"]["sha256Hash"]),
                bytes(log["args"]["certificate"]),
                int(log["blockNumber"]),
            )
            for log in logs
        ]

    def accepted_proofs(
        self,
        from_block: int = 0,
        to_block: BlockIdentifier = "latest",
        *,
        attestor: str | None = None,
        facility_id: bytes | None = None,
    ) -> list[AcceptedProof]:
        """``AttestationAccepted`` events in a block range, in chain order, optionally of one
        attestor or one facility."""
        logs = self.event_logs(
            "AttestationAccepted",
            from_block,
            to_block,
            attestor=None if attestor is None else to_checksum_address(attestor),
            facilityId=facility_id,
        )
        return [
            AcceptedProof.from_event(
                log["args"],
                int(log["blockNumber"]),
                int(log["logIndex"]),
                log["transactionHash"].to_0x_hex(),
            )
            for log in logs
        ]

    def read_submission(self, tx_hash: str) -> Submission:
        """Decode a proof submission from its transaction's calldata.

        Raises UnknownTransactionError (not a hash, or not on this chain), NotASubmissionError
        (another contract or function) or MalformedCalldataError (arguments do not decode).
        """
        if not _TX_HASH.match(tx_hash):
            raise UnknownTransactionError(tx_hash, "is not a transaction hash (0x + 64 hex digits)")
        try:
            tx = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            raise UnknownTransactionError(tx_hash, "was not found on this chain") from None
        to = tx.get("to")
        if to is None or to.lower() != self.address.lower():
            raise NotASubmissionError(tx_hash, f"calls {to}, not the registry {self.address}")
        try:
            fn, params = self.contract.decode_function_input(bytes(tx["input"]))
        except Exception as exc:  # eth-abi raises several decoding errors
            raise MalformedCalldataError(tx_hash, type(exc).__name__) from None
        if fn.fn_name not in SUBMIT_FUNCTIONS:
            raise NotASubmissionError(tx_hash, f"calls registry.{fn.fn_name}, not a submission")
        raw = [params["proof"]] if fn.fn_name == "submitAttestation" else list(params["proofs"])
        proofs: list[SignedProof | ValueError] = []
        for item in raw:
            try:
                proofs.append(SignedProof.from_abi(item))
            except ValueError as exc:
                proofs.append(exc)
        return Submission(tx_hash, bytes(params["domainSeparator"]), proofs)

    def outcome(self, receipt: TxReceipt) -> SubmitResult:
        """What a submission's receipt says of each proof: accepted (facility id, sequence)
        and rejected (index in the submission, custom error name)."""
        result = SubmitResult(receipt)
        for a in self.events_in(receipt, "AttestationAccepted"):
            result.accepted.append((bytes(a["facilityId"]), int(a["sequence"])))
        for a in self.events_in(receipt, "AttestationRejected"):
            result.rejected.append((int(a["index"]), self.errors.name_of(bytes(a["reason"]))))
        return result

    def deactivate_facility(
        self, facility_id: bytes, sender: LocalAccount | None = None
    ) -> TxReceipt:
        return self.tx.send(
            self.contract.functions.deactivateFacility(facility_id), self._sender(sender)
        )

    def reactivate_facility(
        self, facility_id: bytes, sender: LocalAccount | None = None
    ) -> TxReceipt:
        return self.tx.send(
            self.contract.functions.reactivateFacility(facility_id), self._sender(sender)
        )

    def set_freshness_policy(
        self, policy: FreshnessPolicy, sender: LocalAccount | None = None
    ) -> TxReceipt:
        fn = self.contract.functions.setFreshnessPolicy(policy.as_abi())
        return self.tx.send(fn, self._sender(sender))

    def transfer_ownership(self, new_owner: str, sender: LocalAccount | None = None) -> TxReceipt:
        fn = self.contract.functions.transferOwnership(to_checksum_address(new_owner))
        return self.tx.send(fn, self._sender(sender))

    def accept_ownership(self, sender: LocalAccount | None = None) -> TxReceipt:
        return self.tx.send(self.contract.functions.acceptOwnership(), self._sender(sender))

    def register_validator(
        self,
        facility_id: bytes,
        node: LocalAccount | SignedBinding,
        stake: int,
        sender: LocalAccount | None = None,
    ) -> TxReceipt:
        """Register ``sender`` as a validator on a node at ``facility_id`` with ``stake``.
        ``node`` is the binding the node's key signed for ``sender`` (see ``sign_binding``;
        the contract refuses it unless it names this sender and facility), or the node's key
        itself, which then signs one here."""
        account = self._sender(sender)
        if isinstance(node, SignedBinding):
            signed = node
        else:
            signed = self.sign_binding(node, account.address, facility_id)
        b, sig = signed.binding, signed.signature
        fn = self.contract.functions.registerValidator(
            facility_id, to_checksum_address(b.node), b.deadline, sig.r, sig.y_parity_and_s()
        )
        return self.tx.send(fn, account, value=stake)

    def increase_stake(self, amount: int, sender: LocalAccount | None = None) -> TxReceipt:
        return self.tx.send(
            self.contract.functions.increaseStake(), self._sender(sender), value=amount
        )

    def deregister_validator(self, sender: LocalAccount | None = None) -> TxReceipt:
        return self.tx.send(self.contract.functions.deregisterValidator(), self._sender(sender))

    def submit_attestation(
        self,
        proof: SignedProof,
        sender: LocalAccount | None = None,
        domain_separator: bytes | None = None,
    ) -> SubmitResult:
        """Submit one proof; raises ContractRevertError with the specific error if refused."""
        ds = domain_separator or self.domain_separator()
        fn = self.contract.functions.submitAttestation(ds, proof.as_abi())
        return self.outcome(self.tx.send(fn, self._sender(sender)))

    def submit_attestations(
        self,
        proofs: Sequence[SignedProof],
        sender: LocalAccount | None = None,
        domain_separator: bytes | None = None,
        gas: int | None = None,
    ) -> SubmitResult:
        """Submit a batch; bad proofs are skipped and reported in ``SubmitResult.rejected``.

        ``gas`` replaces the estimate. Give one when proofs may fare differently at inclusion
        than in the estimate, which runs at the latest block's timestamp: a proof skipped there
        as from-the-future but accepted when mined makes the estimate too low (out of gas).
        """
        ds = domain_separator or self.domain_separator()
        fn = self.contract.functions.submitAttestations(ds, [p.as_abi() for p in proofs])
        return self.outcome(self.tx.send(fn, self._sender(sender), gas=gas))
