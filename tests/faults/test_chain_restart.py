"""The local chain keeps its state across a stop and restart (what the outage tests rely on)."""

from __future__ import annotations

from pathlib import Path

from devnet.localchain import LocalChain, start_chain
from redundancy.chain import connect
from redundancy.devicecert import sha256_hex
from tests.attestor_sites import Deployed


def test_restarted_anvil_keeps_contracts_storage_and_events(
    chain: LocalChain, chain_state: Path, deployed: Deployed
) -> None:
    registry = deployed.registry
    registry.register_facility(b"\x01" * 32, deployed.owner.address)
    registry.publish_certificate(b"\x01" * 32, b"certificate")
    head = deployed.w3.eth.block_number
    chain.stop()
    with start_chain("anvil", port=chain.port, state_dir=chain_state) as again:
        w3 = connect(again.rpc_url)
        assert w3.eth.block_number == head
        from redundancy.registry import RegistryClient

        restored = RegistryClient(w3, registry.address, deployed.owner)
        assert restored.facility_ids() == [b"\x01" * 32]
        found = restored.find_certificate(bytes.fromhex(sha256_hex(b"certificate")))
        assert found == (b"\x01" * 32, b"certificate")
