"""Settlement batches: the struct committee nodes sign under the SettlementLedger's EIP-712
domain (``node.sign(domain_separator, batch)``), and the signer order the ledger takes
signatures in.

Pure (no chain access), so a node signs and checks batches with this module alone; the ledger's
typed chain client is ``redundancy.ledger``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redundancy.eip712 import Signature, TypedStruct, domain_separator, recover_address, struct_type

#: The SettlementLedger's EIP-712 domain.
LEDGER_DOMAIN_NAME = "SettlementLedger"
LEDGER_DOMAIN_VERSION = "1"

SETTLEMENT_BATCH = struct_type(
    "SettlementBatch",
    [
        ("epoch", "uint64"),
        ("firstSequence", "uint64"),
        ("lastSequence", "uint64"),
        ("stateRoot", "bytes32"),
    ],
)


@dataclass(frozen=True, slots=True)
class Batch(TypedStruct):
    """Inputs first_sequence..last_sequence of the replicated log, and the state root after them."""

    STRUCT = SETTLEMENT_BATCH

    epoch: int
    first_sequence: int
    last_sequence: int
    state_root: bytes


def ledger_domain_separator(chain_id: int, ledger: str) -> bytes:
    """The ledger's EIP-712 domain separator on a chain."""
    return domain_separator(LEDGER_DOMAIN_NAME, LEDGER_DOMAIN_VERSION, chain_id, ledger)


def sorted_for_submission(
    domain_sep: bytes, b: Batch, signatures: Sequence[Signature]
) -> list[Signature]:
    """Signatures ordered by recovered signer address, as the ledger requires."""
    digest = b.digest(domain_sep)
    return sorted(signatures, key=lambda s: recover_address(digest, s) or b"")
