"""Gas per site proof in RedundancyRegistry: single submission and batches of 10 and 50.

Runs against a real anvil (started here, with step tracing), and splits each transaction's gas
into intrinsic, calldata, signature recovery, storage, events, hashing and the rest, from the
opcode trace. Gas is deterministic, so one run of each case is the figure (no median needed).

    python bench/gas_registry.py [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account

from devnet.http import rpc_call
from devnet.localchain import start_chain
from redundancy.chain import connect
from redundancy.devicecert import issue_device_cert, make_ca, sha256_hex, sign_envelope, to_der
from redundancy.domains import Dimension, Kind, domain_id, facility_id
from redundancy.eip712 import Signer
from redundancy.proofs import SignedProof, make_proof
from redundancy.registry import RegistryClient

GOAL_SINGLE = 70_000
GOAL_BATCH50 = 20_000
EAS_ANCHOR = "EAS: 209,000-344,000 per attest; ~301,000 per attestation in multiAttest (224 B data)"
ECRECOVER_GAS = 3_000 + 100  # precompile fee + warm call


def realistic_evidence() -> bytes:
    """A power evidence envelope as an attestor publishes it, signed by a device key."""
    ca_key = Ed25519PrivateKey.generate()
    ca = make_ca("fra1", ca_key)
    device_key = Ed25519PrivateKey.generate()
    device = issue_device_cert(ca, ca_key, device_key.public_key(), "fra1 attestor")
    body = {
        "grid": "entso-e/de-amprion",
        "feeds": 2,
        "generator": True,
        "ups": {"present": True, "status": "OL", "runtimeSeconds": 1_800},
    }
    doc = {"v": 1, "kind": "power", "facility": "fra1", "observedAt": 1_795_000_000, "body": body}
    return sign_envelope(doc, device_key, sha256_hex(to_der(device)))


def breakdown(rpc_url: str, w3: object, tx_hash: str, gas_used: int) -> dict[str, int]:
    """Split a transaction's gas by where it went, from anvil's geth-style opcode trace."""
    tx = w3.eth.get_transaction(tx_hash)  # type: ignore[attr-defined]
    data = bytes(tx["input"])
    zeros = data.count(0)
    nonzeros = len(data) - zeros
    calldata = 4 * zeros + 16 * nonzeros
    floor = 21_000 + 10 * (zeros + 4 * nonzeros)  # EIP-7623 calldata floor (Prague)
    trace = rpc_call(
        rpc_url,
        "debug_traceTransaction",
        [tx_hash, {"disableStorage": True, "disableStack": True}],
        timeout=60,
    )
    cats: collections.Counter[str] = collections.Counter()
    ecrecovers = 0
    for step in trace["structLogs"]:  # type: ignore[index]
        op, cost = step["op"], int(step["gasCost"])
        if op in ("SSTORE", "SLOAD"):
            cats["storage"] += cost
        elif op.startswith("LOG"):
            cats["events"] += cost
        elif op == "KECCAK256":
            cats["hashing"] += cost
        elif op == "STATICCALL":
            ecrecovers += 1  # the only static call the registry makes is to ecrecover
        else:
            cats["other"] += cost
    recovery = ecrecovers * ECRECOVER_GAS
    traced_execution = sum(cats.values()) + recovery
    # A tx pays max(standard, floor); where the floor binds, the difference is a surcharge.
    surcharge = (
        max(0, gas_used - (21_000 + calldata + traced_execution)) if gas_used == floor else 0
    )
    execution = gas_used - 21_000 - calldata - surcharge
    out = {
        "total": gas_used,
        "intrinsic": 21_000,
        "calldata": calldata,
        "calldata_floor_eip7623": floor,
        "floor_surcharge": surcharge,
        "signature_recovery": recovery,
        "storage": cats["storage"],
        "events": cats["events"],
        "hashing": cats["hashing"],
    }
    out["other"] = (
        execution - out["signature_recovery"] - out["storage"] - out["events"] - out["hashing"]
    )
    return out


def run(evidence: bytes) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with start_chain("anvil", extra_args=("--steps-tracing",)) as chain:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        registry, _ = RegistryClient.deploy(w3, owner)
        signer = Signer(bytes.fromhex(chain.dev_keys[1][2:]))
        fid = facility_id("bench-site")
        registry.register_facility(fid, signer.address)
        ds = registry.domain_separator()
        power = domain_id(Dimension.POWER, "entso-e/de-amprion")
        seq = 0

        def proofs(n: int) -> list[SignedProof]:
            nonlocal seq
            now = int(w3.eth.get_block("latest")["timestamp"])
            out = []
            for _ in range(n):
                seq += 1
                out.append(
                    make_proof(
                        signer,
                        ds,
                        facility_id=fid,
                        kind=Kind.POWER,
                        evidence=evidence,
                        issued_at=now,
                        expires_at=now + 3_600 + seq,
                        sequence=seq,
                        domain_id=power,
                    )
                )
            return out

        cases = [
            ("single, facility's first proof", 1, True),
            ("single, refresh", 1, True),
            ("batch of 10", 10, False),
            ("batch of 50", 50, False),
        ]
        for label, n, single in cases:
            batch = proofs(n)
            result = (
                registry.submit_attestation(batch[0])
                if single
                else registry.submit_attestations(batch)
            )
            assert len(result.accepted) == n and not result.rejected, result.rejected
            tx_hash = result.receipt["transactionHash"].to_0x_hex()
            parts = breakdown(chain.rpc_url, w3, tx_hash, result.gas_used)
            rows.append(
                {
                    "case": label,
                    "proofs": n,
                    "evidence_bytes": len(evidence),
                    "per_proof": result.gas_used // n,
                    **{k: v // n for k, v in parts.items()},
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args(argv)
    rows = run(b"e" * 224) + run(realistic_evidence())
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    cols = [
        "per_proof",
        "intrinsic",
        "calldata",
        "calldata_floor_eip7623",
        "floor_surcharge",
        "signature_recovery",
        "storage",
        "events",
        "hashing",
        "other",
    ]
    print("gas per proof (each column divided by the proofs in the transaction)")
    heads = [
        "per proof",
        "intrinsic",
        "calldata",
        "7623 floor",
        "surcharge",
        "ecrecover",
        "storage",
        "events",
        "keccak",
        "other",
    ]
    print(f"{'case':34} {'evid':>5} " + " ".join(f"{h:>10}" for h in heads))
    for r in rows:
        print(f"{r['case']:34} {r['evidence_bytes']:>5} " + " ".join(f"{r[c]:>10}" for c in cols))
    single = next(r for r in rows if r["case"] == "single, refresh" and r["evidence_bytes"] == 224)
    batch = next(r for r in rows if r["case"] == "batch of 50" and r["evidence_bytes"] == 224)
    print(
        f"\ngoal: single <= {GOAL_SINGLE:,} -> {single['per_proof']:,} "
        f"({'met' if single['per_proof'] <= GOAL_SINGLE else 'NOT met'}); "
        f"batch of 50 <= {GOAL_BATCH50:,}/proof -> {batch['per_proof']:,} "
        f"({'met' if batch['per_proof'] <= GOAL_BATCH50 else 'NOT met'})   [224-byte evidence]"
    )
    print(f"anchor: {EAS_ANCHOR}")
    print(
        "calldata_floor_eip7623 is the per-proof share of the Prague minimum a tx pays for its "
        "calldata; a tx pays max(standard, floor)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
