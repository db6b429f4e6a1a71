"""One fixed EIP-712 vector, checked by the Python encoder, eth-account's generic encoder and the
contract itself; and the packed submission form, unpacked by the contract."""

from __future__ import annotations

from eth_account.messages import encode_typed_data
from eth_utils import keccak

from redundancy.domains import Kind
from redundancy.eip712 import (
    ATTESTATION_FIELDS,
    DOMAIN_NAME,
    DOMAIN_VERSION,
    Attestation,
    Signature,
    Signer,
    attestation_digest,
    domain_separator,
)
from redundancy.proofs import SignedProof
from redundancy.registry import RegistryClient

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


def _eth_account_digest(chain_id: int, registry: str) -> bytes:
    signable = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Attestation": ATTESTATION_FIELDS,
            },
            "primaryType": "Attestation",
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": chain_id,
                "verifyingContract": registry,
            },
            "message": VECTOR.as_message(),
        }
    )
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def test_python_digest_equals_eth_account_and_contract(registry: RegistryClient) -> None:
    chain_id = registry.w3.eth.chain_id
    ours = attestation_digest(domain_separator(chain_id, registry.address), VECTOR)
    assert ours == _eth_account_digest(chain_id, registry.address)
    contract = registry.contract.functions.attestationDigest(VECTOR.as_tuple()).call()
    assert ours == bytes(contract)


def test_registry_describes_its_domain_per_eip5267(registry: RegistryClient) -> None:
    """eip712Domain() names exactly the domain Python signs under, and its separator."""
    chain_id = registry.w3.eth.chain_id
    fields, name, version, chain, contract, salt, extensions = (
        registry.contract.functions.eip712Domain().call()
    )
    assert (fields, name, version, chain, contract, salt, extensions) == (
        b"\x0f",
        DOMAIN_NAME,
        DOMAIN_VERSION,
        chain_id,
        registry.address,
        bytes(32),
        [],
    )
    assert registry.domain_separator() == domain_separator(chain_id, registry.address)


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
