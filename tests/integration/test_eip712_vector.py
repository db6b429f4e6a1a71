"""One fixed EIP-712 vector, checked by the Python encoder, eth-account's generic encoder and the
contract itself; and the packed submission form, unpacked by the contract."""

from __future__ import annotations

from eth_utils import keccak

from redundancy.domains import Kind
from redundancy.eip712 import Signature, Signer
from redundancy.proofs import (
    ATTESTATION,
    REGISTRY_DOMAIN_NAME,
    REGISTRY_DOMAIN_VERSION,
    VALIDATOR_BINDING,
    Attestation,
    SignedProof,
    ValidatorBinding,
    registry_domain_separator,
)
from redundancy.registry import RegistryClient
from tests.unit.test_eip712 import eth_account_digest

VECTOR = Attestation(
    facility_id=keccak(text="facility:fra1"),
    kind=Kind.GEOGRAPHY,
    subject=keccak(text="facility:fra1"),
    domain_id=keccak(text="metro:frankfurt"),
    secondary_domain_id=keccak(text="country:de"),
    latitude_e6=-33_868_820,
    longitude_e6=151_209_296,
    evidence_hash=keccak(b"{}"),
    issued_at=1_795_000_000,
    expires_at=1_795_003_600,
    sequence=42,
)


def test_python_digest_equals_eth_account_and_contract(registry: RegistryClient) -> None:
    chain_id = registry.w3.eth.chain_id
    ours = VECTOR.digest(registry_domain_separator(chain_id, registry.address))
    domain = (REGISTRY_DOMAIN_NAME, REGISTRY_DOMAIN_VERSION, chain_id, registry.address)
    assert ours == eth_account_digest(domain, ATTESTATION, VECTOR.as_tuple())
    contract = registry.contract.functions.attestationDigest(VECTOR.as_tuple()).call()
    assert ours == bytes(contract)


BINDING_VECTOR = ValidatorBinding(
    validator="0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    node="0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    facility_id=keccak(text="facility:fra1"),
    nonce=7,
    deadline=1_795_003_600,
)


def test_validator_binding_digest_equals_eth_account_and_contract(
    registry: RegistryClient,
) -> None:
    chain_id = registry.w3.eth.chain_id
    ours = BINDING_VECTOR.digest(registry_domain_separator(chain_id, registry.address))
    domain = (REGISTRY_DOMAIN_NAME, REGISTRY_DOMAIN_VERSION, chain_id, registry.address)
    assert ours == eth_account_digest(domain, VALIDATOR_BINDING, BINDING_VECTOR.as_tuple())
    assert ours == registry.binding_digest(BINDING_VECTOR)
    assert VALIDATOR_BINDING.typehash == bytes(
        registry.contract.functions.VALIDATOR_BINDING_TYPEHASH().call()
    )


def test_registry_describes_its_domain_per_eip5267(registry: RegistryClient) -> None:
    """eip712Domain() names exactly the domain Python signs under, and its separator."""
    chain_id = registry.w3.eth.chain_id
    fields, name, version, chain, contract, salt, extensions = (
        registry.contract.functions.eip712Domain().call()
    )
    assert (fields, name, version, chain, contract, salt, extensions) == (
        b"\x0f",
        REGISTRY_DOMAIN_NAME,
        REGISTRY_DOMAIN_VERSION,
        chain_id,
        registry.address,
        bytes(32),
        [],
    )
    assert registry.domain_separator() == registry_domain_separator(chain_id, registry.address)


def test_contract_unpacks_what_python_packs(registry: RegistryClient) -> None:
    signer = Signer(bytes.fromhex("01" * 32))
    proof = SignedProof(VECTOR, b"{}", signer.sign(registry.domain_separator(), VECTOR))
    unpacked = registry.contract.functions.unpackAttestation(proof.as_abi()).call()
    assert Attestation.from_tuple(unpacked) == VECTOR
    assert SignedProof.from_abi(proof.as_abi()) == proof


def test_compact_signature_round_trips() -> None:
    signer = Signer(bytes.fromhex("02" * 32))
    sig = signer.sign(bytes(32), VECTOR)
    assert Signature.from_compact(sig.r, sig.y_parity_and_s()) == sig
