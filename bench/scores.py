"""Gas of the score views and the selection transaction; off-chain proof verification rate.

    python bench/scores.py [--quick | --physical]

Gas runs on a real anvil (block gas limit 30M, so a view that needs more fails). Views are
measured with eth_estimateGas on the call; selection is a real transaction. Verification rate:
``redundancy.proofcheck.verify_proof`` over many proofs on one core, median of 5 runs, with and
without the device (Ed25519) checks.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from devnet.localchain import start_chain
from devnet.world import FacilitySpec, ValidatorSpec, World, build
from redundancy.chain import connect
from redundancy.geodesy import distance_lower_bound_m
from redundancy.proofcheck import CertificateStore, ProofContext, verify_proof
from redundancy.registry import DEFAULT_POLICY, RegistryClient
from redundancy.scores import Member
from redundancy.selection import DiversityPolicy
from redundancy.selector import SelectorClient, member_abi

GOAL_VIEW_1000 = 30_000_000
GOAL_SELECT_100 = 5_000_000
GOAL_SELECT_100_PHYSICAL = 6_000_000
GOAL_VERIFY = 20_000
#: The physical rules measured: 100 km proven apart, a 50 ms budget to the leader's quorum.
PHYSICAL = {"min_separation_m": 100_000, "max_leader_rtt_micros": 50_000}
LANDMARKS = 8


def synthetic_members(n: int) -> list[Member]:
    """n validators over n/10 facilities, grids shared by 3 facilities, 5 hardware models."""
    out = []
    for i in range(n):
        f = i // 10
        domains = (
            keccak(text=f"f{f}"),
            keccak(text=f"metro{f // 2}"),
            keccak(text=f"country{f // 4}"),
            keccak(text=f"grid{f // 3}"),
            keccak(text=f"as{f % 7}"),
            keccak(text=f"prov{f % 5}"),
            keccak(text=f"hw{i % 5}"),
        )
        out.append(
            Member(Account.from_key(keccak(text=f"m{i}")).address, (i % 17 + 1) * 10**18, domains)
        )
    return out


def facilities_for(count: int) -> list[FacilitySpec]:
    return [
        FacilitySpec(
            f"site{i}",
            f"grid{i // 3}",
            f"metro{i // 2}",
            f"c{i // 4}",
            (i * 1_000_000) % 80_000_000,
            (i * 3_000_000) % 170_000_000,
            f"as{i % 7}",
            f"prov{i % 5}",
        )
        for i in range(count)
    ]


def validators_for(n: int, facilities: list[FacilitySpec]) -> list[ValidatorSpec]:
    models = [("dell", "r650", "2.19"), ("hpe", "dl380", "u46"), ("smc", "x13", "1.2")]
    return [
        ValidatorSpec(
            f"b{i}", facilities[i % len(facilities)].name, (i % 13 + 1) * 10**18, models[i % 3]
        )
        for i in range(n)
    ]


@contextmanager
def contracts() -> Iterator[tuple[Web3, LocalAccount, RegistryClient, SelectorClient]]:
    """A fresh anvil with 30M-gas blocks, the registry, and a selector for committees of 100."""
    with start_chain("anvil", extra_args=("--gas-limit", "30000000")) as chain:
        w3 = connect(chain.rpc_url)
        owner: LocalAccount = Account.from_key(chain.dev_keys[0])
        registry, _ = RegistryClient.deploy(w3, owner, DEFAULT_POLICY)
        selector, _ = SelectorClient.deploy(
            w3, owner, registry.address, DiversityPolicy(committee_size=100)
        )
        yield w3, owner, registry, selector


def _estimate(fn: object) -> int | str:
    try:
        return int(fn.estimate_gas({"gas": 30_000_000}))  # type: ignore[attr-defined]
    except Exception as exc:  # a view beyond the 30M cap cannot be estimated
        return f"over 30M ({type(exc).__name__})"


def _rtt_for(a: FacilitySpec, b: FacilitySpec) -> int:
    """An honest RTT between two sites: their distance at 200 km/ms, plus 10% and 0.2 ms."""
    metres = distance_lower_bound_m(
        (a.latitude_e6, a.longitude_e6), (b.latitude_e6, b.longitude_e6)
    )
    return max(10, metres * 11 // 1_000 + 200)


def measure_world(
    world: World, selector: SelectorClient, owner: LocalAccount, facilities: list[FacilitySpec]
) -> None:
    """The physical facts: every third site (up to LANDMARKS) is a landmark; every other site
    measures two-sided RTTs with its nearest landmark (a disc), and the leader's site with every
    site."""
    ds = world.registry.domain_separator()
    landmarks = facilities[::3][:LANDMARKS]
    for spec in landmarks:
        selector.set_landmark(spec.facility_id, spec.latitude_e6, spec.longitude_e6, owner)
    pairs = {
        (spec.name, min(landmarks, key=lambda lm: _rtt_for(spec, lm)).name)
        for spec in facilities
        if spec not in landmarks
    }
    leader = selector.preview_selection().members[0].facility
    lead = next(f for f in facilities if f.facility_id == leader)
    pairs |= {(lead.name, f.name) for f in facilities if f.name != lead.name}
    by_name = {f.name: f for f in facilities}
    for a, b in sorted(pairs):
        rtt = _rtt_for(by_name[a], by_name[b])
        for m, sig in world.round_trip(by_name[a], by_name[b], rtt):
            selector.report_latency(ds, m, sig, sender=owner)


def layout(
    n: int, per_facility: int, select: bool, physical: bool = False
) -> list[tuple[str, str, int | str]]:
    """Gas of the registry-reading views (and selection) for n validators, per_facility a site;
    with ``physical``, the re-selection again under both physical rules."""
    where = f"{n} in {max(1, n // per_facility)} sites"
    rows: list[tuple[str, str, int | str]] = []
    with contracts() as (w3, owner, registry, selector):
        facilities = facilities_for(max(1, n // per_facility))
        world = build(w3, registry, owner, facilities, validators_for(n, facilities))
        rows.append(
            (
                "eligibleCandidates view",
                where,
                _estimate(selector.contract.functions.eligibleCandidates()),
            )
        )
        rows.append(
            (
                "previewSelection view",
                where,
                _estimate(selector.contract.functions.previewSelection()),
            )
        )
        if not select:
            return rows
        # the selector keeps two committees (current and previous), in slots reserved at
        # deployment: the first and second selections write new members into them, the third
        # (the committee unchanged) rewrites the first's values, a steady-state re-selection
        for phase in ("first selection", "second selection", "re-selection"):
            w3.provider.make_request("evm_increaseTime", [3_600])  # type: ignore[arg-type]
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            world.refresh(owner)
            receipt = selector.select_committee(sender=owner)
            rows.append(
                (
                    f"selectCommittee tx, {phase} (committee {min(n, 100)})",
                    where,
                    int(receipt["gasUsed"]),
                )
            )
        rows.append(
            ("currentScores view", where, _estimate(selector.contract.functions.currentScores()))
        )
        if physical:
            measure_world(world, selector, owner, facilities)
            budget = PHYSICAL["max_leader_rtt_micros"]
            for label, policy in (
                ("latency budget", DiversityPolicy(100, max_leader_rtt_micros=budget)),
                (
                    "both physical rules",
                    DiversityPolicy(
                        100,
                        min_separation_m=PHYSICAL["min_separation_m"],
                        max_leader_rtt_micros=budget,
                    ),
                ),
            ):
                selector.set_diversity_policy(policy, owner)
                w3.provider.make_request("evm_increaseTime", [3_600])  # type: ignore[arg-type]
                w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
                world.refresh(owner)
                receipt = selector.select_committee(sender=owner)
                size = len(selector.current_committee().members)
                rows.append(
                    (
                        f"selectCommittee tx, re-selection, {label} (committee {size})",
                        where,
                        int(receipt["gasUsed"]),
                    )
                )
    return rows


#: Eight landmark sites, each at least 300 km from the others and within 30 ms of Frankfurt.
EUROPE = (
    ("fra", 50_110_922, 8_682_127),
    ("lon", 51_507_351, -127_758),
    ("par", 48_856_614, 2_352_222),
    ("mad", 40_416_775, -3_703_790),
    ("mil", 45_464_204, 9_189_982),
    ("vie", 48_208_174, 16_373_819),
    ("cph", 55_676_097, 12_568_337),
    ("waw", 52_229_676, 21_012_229),
)


def physical_committee_of_100() -> list[tuple[str, str, int | str]]:
    """Selection of a full committee of 100 under both physical rules: 100 validators in eight
    landmark sites (their positions are facts, so landmark discs of radius 0 prove every
    separation), every site's two-sided RTT to every other measured; 100 km apart, 50 ms to the
    leader's site. First, second and steady-state re-selection, as in the rows above."""
    facilities = [
        FacilitySpec(name, f"grid-{name}", name, name, lat, lon, f"as-{name}", f"prov-{name}")
        for name, lat, lon in EUROPE
    ]
    where = f"100 in {len(facilities)} landmark sites"
    with contracts() as (w3, owner, registry, selector):
        world = build(w3, registry, owner, facilities, validators_for(100, facilities))
        ds = registry.domain_separator()
        for spec in facilities:
            selector.set_landmark(spec.facility_id, spec.latitude_e6, spec.longitude_e6, owner)
        for i, a in enumerate(facilities):
            for b in facilities[i + 1 :]:
                for m, sig in world.round_trip(a, b, _rtt_for(a, b)):
                    selector.report_latency(ds, m, sig, sender=owner)
        selector.set_diversity_policy(
            DiversityPolicy(
                100,
                min_separation_m=PHYSICAL["min_separation_m"],
                max_leader_rtt_micros=PHYSICAL["max_leader_rtt_micros"],
            ),
            owner,
        )
        rows: list[tuple[str, str, int | str]] = []
        # as above: first, second (the other committee buffer), then a steady-state re-selection
        for phase in ("first selection", "second selection", "re-selection"):
            w3.provider.make_request("evm_increaseTime", [3_600])  # type: ignore[arg-type]
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            world.refresh(owner)
            receipt = selector.select_committee(sender=owner)
            size = len(selector.current_committee().members)
            rows.append(
                (
                    f"selectCommittee tx, {phase}, both physical rules (committee {size})",
                    where,
                    int(receipt["gasUsed"]),
                )
            )
    return rows


def gas_table(quick: bool) -> list[tuple[str, str, int | str]]:
    rows: list[tuple[str, str, int | str]] = []
    with contracts() as (w3, owner, registry, selector):
        # setting the committee size reserves both committee buffers' slots (up to 256
        # members): the deployment pays what the first selections would otherwise pay
        for size in (3, 100):
            _, receipt = SelectorClient.deploy(
                w3, owner, registry.address, DiversityPolicy(committee_size=size)
            )
            rows.append(
                (f"selector deployment (committee size {size})", "-", int(receipt["gasUsed"]))
            )
        for n in (100, 1000):
            ms = [member_abi(m) for m in synthetic_members(n)]
            rows.append(
                (
                    "scoresOf view (given set, pure)",
                    f"{n}",
                    _estimate(selector.reference.functions.scoresOf(ms)),
                )
            )
    configs = (
        [(50, 4, True, False), (100, 4, True, True)]
        if quick
        else [
            (50, 4, True, False),
            (100, 4, True, True),
            (200, 4, True, False),
            (100, 1, True, False),
            (1000, 10, False, False),
        ]
    )
    for n, per, select, physical in configs:
        rows += layout(n, per, select, physical)
    return rows + physical_committee_of_100()


def verification_rate(n: int = 2_000, runs: int = 5) -> tuple[float, float]:
    """Proofs verified per second on one core: (signature and chain checks, plus device checks)."""
    with start_chain("anvil") as chain:
        w3 = connect(chain.rpc_url)
        owner = Account.from_key(chain.dev_keys[0])
        registry, _ = RegistryClient.deploy(w3, owner, DEFAULT_POLICY)
        spec = facilities_for(30)[0]
        world = build(w3, registry, owner, [spec], [])
        proofs = [p for _ in range(n // 5) for p in world.facility_proofs(spec)]
        info = registry.facility(spec.facility_id)
        store = CertificateStore(lambda h: (registry.find_certificate(h) or (b"", b""))[1] or None)
        ds = registry.domain_separator()
        ctx = ProofContext(
            ds,
            ds,
            info.attestor,
            True,
            world.now(),
            DEFAULT_POLICY,
            0,
            True,
            info.ca_fingerprint,
            store,
        )
        warm = verify_proof(proofs[0], ctx)  # also warms the certificate cache
        assert all(c.ok for c in warm), [c for c in warm if not c.ok]
        rates = []
        for device in (False, True):
            samples = []
            for _ in range(runs):
                t = time.perf_counter()
                for p in proofs:
                    verify_proof(p, ctx, device=device)
                samples.append(len(proofs) / (time.perf_counter() - t))
            rates.append(statistics.median(samples))
    return rates[0], rates[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 50 and 100 only")
    parser.add_argument(
        "--physical", action="store_true", help="only the committee of 100 under both rules"
    )
    args = parser.parse_args()
    print(f"{'measure':72} {'validators':>18} {'gas':>14}")
    table = physical_committee_of_100() if args.physical else gas_table(args.quick)
    for label, where, gas in table:
        print(f"{label:72} {where:>18} {gas if isinstance(gas, str) else f'{gas:,}':>14}")
    if args.physical:
        print(f"goal: <= {GOAL_SELECT_100_PHYSICAL:,} gas")
        return 0
    fast, full = verification_rate()
    print(
        f"\nverify_proof on one core (median of 5 x 2,000 proofs): {fast:,.0f}/s signature+chain "
        "checks, "
        f"{full:,.0f}/s with device certificate and Ed25519 evidence signature"
    )
    print(
        "goals: scores for 1,000 validators in a 30M-gas call; "
        f"selection of 100 <= {GOAL_SELECT_100:,} gas "
        f"(<= {GOAL_SELECT_100_PHYSICAL:,} with both physical rules); "
        f">= {GOAL_VERIFY:,} proofs/s per core. Anchor: the generic eth-account path ~3,000/s."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
