"""Gas of the other signature-checking calls: SettlementLedger.commitBatch and
CommitteeSelector.reportLatency, one end's signed RTT measurement, in each of its paths, and
flagContradiction, which records what a contradicted pair proves (the registry's proofs are in
gas_registry.py).

Runs against a real anvil started here, on a world of four facilities with one validator each
(stakes 30/30/20/10, so three signatures are the smallest quorum) and a fifth without one
(Madrid). Gas is deterministic up to the zero bytes of the calldata (timestamps vary), so each
row also gives the execution gas: the total less the intrinsic 21,000 and the calldata's 4/16
gas per zero/non-zero byte.

    python bench/gas_signed_calls.py [--json] [--breakdown]

A report that announces a contradiction is followed by the flagContradiction that records it
(its own row, named after the report's path). ``--breakdown`` (anvil started with
``--steps-tracing``) also splits each reportLatency and flagContradiction row's
execution gas by where it goes: storage writes, cold and warm storage reads, calls (the
registry's geoPair, the ecrecover precompile), logs, and the rest (arithmetic, hashing, ABI):
profile before tuning.
"""

from __future__ import annotations

import argparse
import json
import sys

from eth_account import Account
from web3 import Web3
from web3.types import TxReceipt

from devnet.localchain import start_chain
from devnet.world import FacilitySpec, ValidatorSpec, build
from redundancy.batches import Batch
from redundancy.chain import connect
from redundancy.eip712 import Signer
from redundancy.ledger import SettlementClient
from redundancy.registry import RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import GeographyPolicy, SelectorClient

ETH = 10**18
LATENCY_GOAL = 80_000
SITES = [
    FacilitySpec("fra9", "amprion", "frankfurt", "de", 50_110_922, 8_682_127, "as3320", "eqx"),
    FacilitySpec("ams9", "tennet", "amsterdam", "nl", 52_367_573, 4_904_139, "as1136", "dr"),
    FacilitySpec("lon9", "nationalgrid", "london", "gb", 51_507_351, -127_758, "as5400", "tc"),
    FacilitySpec("par9", "rte", "paris", "fr", 48_856_613, 2_352_222, "as3215", "ix"),
    FacilitySpec("mad9", "ree", "madrid", "es", 40_416_775, -3_703_790, "as3352", "in"),
]
VALIDATORS = [
    ValidatorSpec(f"gv{i}", s.name, stake * ETH)
    for i, (s, stake) in enumerate(zip(SITES[:4], (30, 30, 20, 10), strict=True))
]


def row(w3: Web3, label: str, receipt: TxReceipt) -> dict[str, object]:
    """One case: total gas, calldata gas, and execution gas (total less intrinsic and calldata)."""
    data = bytes(w3.eth.get_transaction(receipt["transactionHash"])["input"])
    zeros = data.count(0)
    calldata = 4 * zeros + 16 * (len(data) - zeros)
    gas = int(receipt["gasUsed"])
    return {"case": label, "gas": gas, "calldata": calldata, "execution": gas - 21_000 - calldata}


#: --breakdown's columns, in order
PARTS = ("sstore", "sload", "calls", "logs", "other")


def breakdown(w3: Web3, receipt: TxReceipt) -> dict[str, int]:
    """The transaction's execution gas by part, from anvil's step trace: SSTORE and SLOAD at the
    selector's depth (cold surcharges included), every call it makes (whole, callee included:
    the registry's geoPair, the ecrecover precompile), LOGn, and the rest (arithmetic: the
    distance bounds' Taylor series; hashing; ABI). The parts add up to the gas the geography
    extension's code used; the execution gas also holds the selector's dispatch to it (about
    3,400)."""
    reply = w3.provider.make_request(
        "debug_traceTransaction",  # type: ignore[arg-type]
        [receipt["transactionHash"].to_0x_hex(), {"disableStorage": True, "disableMemory": True}],
    )
    steps = reply["result"]["structLogs"]
    if not steps:
        raise SystemExit("no step trace: anvil must run with --steps-tracing")
    parts = dict.fromkeys(PARTS, 0)
    body = min(step["depth"] for step in steps if step["op"] == "DELEGATECALL") + 1
    for i, step in enumerate(steps):
        if step["depth"] != body:
            continue
        op, cost = step["op"], int(step["gasCost"])
        if op in ("CALL", "STATICCALL", "DELEGATECALL"):
            after = next((s for s in steps[i + 1 :] if s["depth"] == body), None)
            cost = int(step["gas"]) - int(after["gas"]) if after else cost
            parts["calls"] += cost
        elif op == "SSTORE":
            parts["sstore"] += cost
        elif op == "SLOAD":
            parts["sload"] += cost
        elif op.startswith("LOG"):
            parts["logs"] += cost
        else:
            parts["other"] += cost
    return parts


def run(trace: bool = False) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with start_chain("anvil", extra_args=("--steps-tracing",) if trace else ()) as chain:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        relayer = Account.from_key(chain.dev_keys[5])
        registry, _ = RegistryClient.deploy(w3, owner)
        world = build(w3, registry, owner, SITES, VALIDATORS)
        selector, _ = SelectorClient.deploy(
            w3, owner, registry.address, DiversityPolicy(4), GeographyPolicy(20_000)
        )
        ledger, _ = SettlementClient.deploy(w3, owner, selector.address)
        selector.select_committee(sender=owner)
        epoch = selector.current_committee().epoch
        nodes = [Signer(bytes(world.validators[v.name].node().key)) for v in VALIDATORS]

        def commit(label: str, batch: Batch, which: list[int]) -> None:
            sigs = [nodes[i].sign(ledger.domain_separator, batch) for i in which]
            rows.append(row(w3, label, ledger.commit_batch(batch, sigs, sender=relayer)))

        root = bytes.fromhex("ab" * 32)
        commit("commitBatch, first batch, 3 of 4 sigs", Batch(epoch, 1, 100, root), [0, 1, 3])
        commit("commitBatch, next batch, 3 of 4 sigs", Batch(epoch, 101, 200, root), [0, 1, 3])
        commit("commitBatch, next batch, 4 of 4 sigs", Batch(epoch, 201, 300, root), [0, 1, 2, 3])

        ds = registry.domain_separator()
        fra, ams, lon, par, mad = (world.facilities[s.name] for s in SITES)

        def traced(label: str, receipt: TxReceipt) -> None:
            rows.append(row(w3, label, receipt))
            if trace:
                rows[-1].update(breakdown(w3, receipt))

        def latency(
            label: str, a: FacilitySpec, b: FacilitySpec, rtt: int, flag: bool = True
        ) -> None:
            m, sig = world.latency(a, b, rtt)
            receipt = selector.report_latency(ds, m, sig, sender=relayer)
            traced(f"reportLatency, {label}", receipt)
            for x, y in selector.contradictions_in(receipt) if flag else []:
                traced(f"flagContradiction, {label}", selector.flag_contradiction(x, y, relayer))

        # site pairs: the first report of a direction stores from zero; later ones refresh
        latency("first of a pair (stores)", fra, ams, 5_000)
        latency("completes the pair", ams, fra, 5_100)
        latency("refresh, pair consistent", fra, ams, 5_050)
        latency("refresh, one end lowers (bound holds)", ams, fra, 100)
        latency("refresh, both low (flags both)", fra, ams, 100)
        latency("refresh, consistent again (clears both flags)", ams, fra, 5_000)
        # a landmark pair proves a disc (its own word: nothing more is stored)
        selector.set_landmark(lon.facility_id, lon.latitude_e6, lon.longitude_e6, sender=owner)
        latency("landmark: first of a pair", par, lon, 3_500)
        latency("landmark: first disc", lon, par, 3_600)
        latency("landmark: refresh, disc changes", par, lon, 3_700)
        # contradictions where discs decide who is flagged (Paris holds a disc around London)
        latency("first of a pair (stores)", par, fra, 100)
        latency("contradiction: own disc exonerates", fra, par, 100)
        latency("landmark: first of a pair", mad, lon, 1_000)
        latency("landmark: claim outside the disc", lon, mad, 1_000)
        # Amsterdam's disc refutes its claim; left unflagged, so that the pair's contradiction
        # flags Amsterdam alone (a landmark flag standing would be kept instead)
        latency("landmark: first of a pair", ams, lon, 1_000)
        latency("landmark: claim outside the disc", lon, ams, 1_000, flag=False)
        latency("first of a pair (stores)", ams, par, 100)
        latency("contradiction: one refuted by own disc", par, ams, 100)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    parser.add_argument(
        "--breakdown", action="store_true", help="split reportLatency's execution gas by part"
    )
    args = parser.parse_args(argv)
    rows = run(trace=args.breakdown)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    extra = [p for p in PARTS if args.breakdown]
    print(
        f"{'case':54} {'gas':>9} {'calldata':>9} {'execution':>9}"
        + "".join(f" {p:>8}" for p in extra)
    )
    for r in rows:
        print(
            f"{r['case']:54} {r['gas']:>9,} {r['calldata']:>9,} {r['execution']:>9,}"
            + "".join(f" {int(str(r[p])):>8,}" if p in r else f" {'':>8}" for p in extra)
        )
    reports = [r for r in rows if str(r["case"]).startswith("reportLatency")]
    over = [r for r in reports if int(str(r["gas"])) > LATENCY_GOAL]
    flags = [r for r in rows if str(r["case"]).startswith("flagContradiction")]
    print(
        f"goal: reportLatency <= {LATENCY_GOAL:,} gas. Met in {len(reports) - len(over)} of "
        f"{len(reports)} paths"
        + "".join(f"\n  over: {r['case']} {r['gas']:,}" for r in over)
        + "\nflagContradiction (no goal; paid by whoever records a contradiction): "
        + ", ".join(f"{int(str(r['gas'])):,}" for r in flags)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
