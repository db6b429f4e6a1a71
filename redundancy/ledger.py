"""The typed client of the SettlementLedger contract, and batch signing for committee nodes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.types import BlockIdentifier, TxReceipt

from redundancy.chain import ContractClient
from redundancy.eip712 import DOMAIN_TYPEHASH, Signature, Signer, recover_address
from redundancy.hashing import keccak256

CONTRACT_NAME = "SettlementLedger"
BATCH_TYPE = (
    "SettlementBatch(uint64 epoch,uint64 firstSequence,uint64 lastSequence,bytes32 stateRoot)"
)
BATCH_TYPEHASH = keccak256(BATCH_TYPE.encode())


@dataclass(frozen=True, slots=True)
class Batch:
    """Inputs first_sequence..last_sequence of the replicated log, and the state root after them."""

    epoch: int
    first_sequence: int
    last_sequence: int
    state_root: bytes

    def as_abi(self) -> tuple[int, int, int, bytes]:
        return (self.epoch, self.first_sequence, self.last_sequence, self.state_root)


def ledger_domain_separator(chain_id: int, ledger: str) -> bytes:
    return keccak256(
        DOMAIN_TYPEHASH
        + keccak256(b"SettlementLedger")
        + keccak256(b"1")
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(ledger.removeprefix("0x"))
    )


def batch_digest(domain_sep: bytes, b: Batch) -> bytes:
    struct = keccak256(
        BATCH_TYPEHASH
        + b.epoch.to_bytes(32, "big")
        + b.first_sequence.to_bytes(32, "big")
        + b.last_sequence.to_bytes(32, "big")
        + b.state_root
    )
    return keccak256(b"\x19\x01" + domain_sep + struct)


def sign_batch(node: Signer, domain_sep: bytes, b: Batch) -> Signature:
    """A committee node's signature over a batch."""
    return node.sign_hash(batch_digest(domain_sep, b))


def sorted_for_submission(
    domain_sep: bytes, b: Batch, signatures: Sequence[Signature]
) -> list[Signature]:
    """Signatures ordered by recovered signer address, as the ledger requires."""
    digest = batch_digest(domain_sep, b)
    return sorted(signatures, key=lambda s: recover_address(digest, s) or b"")


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """One ``BatchCommitted`` event: a batch the ledger accepted, who signed it, with what stake."""

    batch: Batch
    signers: list[str]
    signed_stake: int
    total_stake: int
    tx: str
    block: int


class SettlementClient(ContractClient):
    """Reads and writes one deployed SettlementLedger."""

    CONTRACT_NAME = CONTRACT_NAME

    def __init__(self, w3: Web3, address: str, default_sender: LocalAccount | None = None) -> None:
        super().__init__(w3, address, default_sender)
        self.domain_separator = ledger_domain_separator(int(w3.eth.chain_id), self.address)

    @classmethod
    def deploy(
        cls, w3: Web3, deployer: LocalAccount, selector: str
    ) -> tuple[SettlementClient, TxReceipt]:
        return cls._deploy(w3, deployer, to_checksum_address(selector))

    def commit_batch(
        self, batch: Batch, signatures: Sequence[Signature], sender: LocalAccount | None = None
    ) -> TxReceipt:
        """Submit a batch with node signatures (sorted here by signer, as the ledger requires)."""
        ordered = sorted_for_submission(self.domain_separator, batch, signatures)
        fn = self.contract.functions.commitBatch(batch.as_abi(), [(s.v, s.r, s.s) for s in ordered])
        return self.tx.send(fn, self._sender(sender))

    def last_committed(self, block: BlockIdentifier = "latest") -> tuple[int, bytes, int]:
        """(last committed sequence, its state root, number of batches)."""
        seq, root, count = self.tx.call(
            lambda: self.contract.functions.lastCommitted().call(block_identifier=block)
        )
        return int(seq), bytes(root), int(count)

    def committed_batches(
        self, from_block: int = 0, to_block: BlockIdentifier = "latest"
    ) -> list[CommittedBatch]:
        """``BatchCommitted`` events in a block range, in chain order."""
        logs = self.contract.events.BatchCommitted().get_logs(
            from_block=from_block, to_block=to_block
        )
        return [
            CommittedBatch(
                Batch(
                    int(log["args"]["epoch"]),
                    int(log["args"]["firstSequence"]),
                    int(log["args"]["lastSequence"]),
                    bytes(log["args"]["stateRoot"]),
                ),
                [str(a) for a in log["args"]["signers"]],
                int(log["args"]["signedStake"]),
                int(log["args"]["totalStake"]),
                log["transactionHash"].to_0x_hex(),
                int(log["blockNumber"]),
            )
            for log in logs
        ]
