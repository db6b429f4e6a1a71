"""Demo validators for the devnet: one staked validator per example site, the committee, and
RTT reports between the sites, so the API's scores and the dashboard have something to show.

Local use only: validator accounts are anvil's public development accounts 4-6, their nodes
accounts 7-9 (the node addresses ``examples/<site>.toml`` configures), and the sites' attestors
sign the hardware proofs and RTT reports with the keys the devnet gave them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from eth_account import Account
from eth_account.signers.local import LocalAccount

from redundancy.committee import SelectorClient
from redundancy.domains import Kind, hardware_domain
from redundancy.eip712 import LatencyMeasurement, Signer, latency_digest
from redundancy.evidence import canonical_json
from redundancy.proofs import make_proof, subject_for_node
from redundancy.registry import RegistryClient

STAKE = 32 * 10**18
HARDWARE = (("dell", "poweredge r650", "2.19.1"), ("hpe", "proliant dl380", "u46"))
#: Round trips a real network would show between the example sites, in microseconds.
RTTS = {("fra1", "ams1"): 7_400, ("ams1", "dal1"): 108_000, ("dal1", "fra1"): 113_000}


@dataclass(frozen=True)
class DemoSite:
    name: str
    facility_id: bytes
    signer: Signer


def stake_committee(
    registry: RegistryClient,
    selector: SelectorClient,
    sites: Sequence[DemoSite],
    dev_keys: Sequence[str],
    now: int,
) -> tuple[list[str], int]:
    """Attest a node per site, stake a validator on it, report the example RTTs, select a
    committee. Transactions from different accounts go out together (the devnet mines a block a
    second). Returns the validators' addresses and how many RTTs were reported."""
    proofs = []
    validators: list[tuple[DemoSite, LocalAccount, str]] = []
    lifetime = registry.freshness_policy().max_lifetime[Kind.HARDWARE]
    for i, site in enumerate(sites):
        node = Account.from_key(dev_keys[7 + i]).address
        vendor, model, firmware = HARDWARE[i % len(HARDWARE)]
        evidence = canonical_json(
            {
                "v": 1,
                "kind": "hardware",
                "facility": site.name,
                "observedAt": now,
                "body": {"node": node, "vendor": vendor, "model": model, "firmware": firmware},
            }
        )
        proofs.append(
            make_proof(
                site.signer,
                registry.domain_separator(),
                facility_id=site.facility_id,
                kind=Kind.HARDWARE,
                evidence=evidence,
                issued_at=now,
                expires_at=now + lifetime,
                sequence=registry.last_sequence(site.signer.address) + 1,
                subject=subject_for_node(node),
                domain_id=hardware_domain(vendor, model, firmware),
            )
        )
        validators.append((site, Account.from_key(dev_keys[4 + i]), node))
    registry.submit_attestations(proofs)
    sends: list[Callable[[], object]] = [
        partial(registry.register_validator, site.facility_id, node, STAKE, sender=account)
        for site, account, node in validators
    ]
    sends += _rtt_reports(registry, selector, sites, dev_keys, now)
    with ThreadPoolExecutor(len(sends)) as pool:
        list(pool.map(lambda send: send(), sends))
    selector.select_committee()
    return [account.address for _, account, _ in validators], len(sends) - len(validators)


def _rtt_reports(
    registry: RegistryClient,
    selector: SelectorClient,
    sites: Sequence[DemoSite],
    dev_keys: Sequence[str],
    now: int,
) -> list[Callable[[], object]]:
    """The example RTTs (each consistent with the sites' distance), each relayed by the
    measuring site's attestor account (accounts 1-3: one nonce sequence each)."""
    by_name = {s.name: (i, s) for i, s in enumerate(sites)}
    ds = registry.domain_separator()
    out: list[Callable[[], object]] = []
    for (a, b), rtt in RTTS.items():
        if a not in by_name or b not in by_name:
            continue
        i, site = by_name[a]
        m = LatencyMeasurement(site.facility_id, by_name[b][1].facility_id, rtt, now)
        sig = site.signer.sign_hash(latency_digest(ds, m))
        relayer: LocalAccount = Account.from_key(dev_keys[1 + i])
        out.append(partial(selector.report_latency, ds, m, sig, relayer))
    return out
