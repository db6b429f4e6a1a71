"""The same bytecode and client work on ganache 7.9 (pre-Cancun; the compiler targets paris)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account

from devnet.localchain import LocalChain, start_chain
from redundancy.chain import connect
from redundancy.domains import Dimension, Kind, domain_id, facility_id
from redundancy.eip712 import Signer
from redundancy.errors import ContractRevertError
from redundancy.proofs import make_proof
from redundancy.registry import RegistryClient

pytestmark = pytest.mark.ganache


@pytest.fixture(scope="module")
def ganache() -> Iterator[LocalChain]:
    with start_chain("ganache") as chain:
        yield chain


def test_registry_accepts_and_refuses_proofs_on_ganache(ganache: LocalChain) -> None:
    w3 = connect(ganache.rpc_url)
    owner = Account.from_key(ganache.dev_keys[0])
    registry, _ = RegistryClient.deploy(w3, owner)
    signer = Signer(bytes.fromhex(ganache.dev_keys[1][2:]))
    fid = facility_id("sin1")
    registry.register_facility(fid, signer.address)
    t = int(w3.eth.get_block("latest")["timestamp"])
    proof = make_proof(
        signer,
        registry.domain_separator(),
        facility_id=fid,
        kind=Kind.POWER,
        evidence=b'{"grid":"sg"}',
        issued_at=t,
        expires_at=t + 600,
        sequence=1,
        domain_id=domain_id(Dimension.POWER, "sg-grid"),
    )
    result = registry.submit_attestations([proof])
    assert result.accepted == [(fid, 1)]
    with pytest.raises(ContractRevertError) as caught:
        registry.submit_attestation(proof)
    assert caught.value.error_name == "RegistrySequenceNotIncreasing"
    assert registry.facility(fid).domains[Dimension.POWER] == domain_id(Dimension.POWER, "sg-grid")
