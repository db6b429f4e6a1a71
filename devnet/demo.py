"""A local devnet: a real anvil, the contracts deployed, one attestor process per example site
(``attestor run --config examples/<site>.toml``), a committee selected under a real diversity
policy, the venue (etcd member, validator node and gateway per committee site) committing
settlement batches, and the REST API and dashboard.

    redundancy-devnet [--sites fra1,ams1,dal1,lon1,sin1] [--port 8545] [--state-dir .devnet]
                      [--api-port 8000] [--no-api] [--no-venue] [--once] [--json FILE]

The default world: four honest sites in distinct metros, countries, grids, networks, providers
and hardware (fra1, ams1, dal1, lon1), fra1 also a landmark (the owner fixes its position), and
one dishonest site, sin1, that claims Singapore while its signed round trips with fra1 place it
next to Frankfurt. The selector flags sin1 from those round trips alone, the policy (at most one
member per domain, at least four distinct domains in every dimension, tolerance at least 1)
selects the four honest sites: class active-active, redundancy score 1. ``--sites
fra1,ams1,dal1`` is the old three-site world (no policy: tolerance 0, active-passive).

Writes ``<state-dir>/deployment.json`` and the sites' keys, outboxes and logs under
``<state-dir>/sites/``; the venue's log is ``<state-dir>/venue.log``, the API's
``<state-dir>/api.log``. On a terminal it shows a step list with spinners, then a live status
panel; otherwise one plain line per step and per status change. Keys are made with a cheap KDF
and funded from anvil's public development accounts: local use only.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from attestor.latency import SignedLatency
from devnet.apiserver import ApiProcess, launch_api, pick_port, wait_api
from devnet.attestors import (
    SiteProcess,
    fund,
    landed_count,
    start_sites,
    status_table,
    stop_sites,
    wait_fresh,
)
from devnet.errors import DevnetError
from devnet.examples import (
    LANDMARK_SITE,
    SITE_NAMES,
    ExampleSite,
    example_site,
)
from devnet.localchain import ChainKind, LocalChain, attach_chain, dev_keys, start_chain
from devnet.ports import free_port
from devnet.progress import ProgressView, SiteRow, Status
from devnet.signals import run_until_signalled
from devnet.venue import SUBMITTER_ACCOUNTS, VENUE_FILE
from redundancy.attestation_verifier import Verifier
from redundancy.chain import connect
from redundancy.cli.verify_scores import table
from redundancy.deployment import Deployment, deploy
from redundancy.domains import facility_id
from redundancy.errors import ContractRevertError, RedundancyError
from redundancy.evidence import parse_document
from redundancy.geodesy import distance_lower_bound_m, rtt_distance_bound_m
from redundancy.ledger import SettlementClient
from redundancy.registry import RegistryClient
from redundancy.scores import DIMENSIONS
from redundancy.selection import DimensionRule, DiversityPolicy
from redundancy.selector import SelectorClient

FIRST_ROUND_TIMEOUT = 180.0
#: How long the API may take to answer once the committee is set up (it starts early).
API_TIMEOUT = 120.0
VENUE_TIMEOUT = 240.0
STATUS_EVERY = 2.0
#: How long to wait for every attestor to hold a signed round trip with each of its peers.
LATENCY_TIMEOUT = 60.0

#: The sites the demo runs by default (every example: four honest, one dishonest).
DEFAULT_SITES = SITE_NAMES
#: The example site that attests with a software TPM (swtpm, installed by the bootstrap): its
#: evidence is quoted by the TPM and its hardware domain is the firmware measured into PCR 0.
DEFAULT_TPM_SITES = ("fra1",)
#: anvil development accounts (anvil runs with ``ANVIL_ACCOUNTS``) that stake a validator on
#: each example site's node (public keys: local use only); the nodes themselves are named in the
#: sites' configs (accounts 7 to 11).
VALIDATOR_ACCOUNTS = {"fra1": 4, "ams1": 5, "dal1": 6, "lon1": 12, "sin1": 13}
ANVIL_ACCOUNTS = 20
#: What the demo starts each chain with: enough public development accounts for every role.
CHAIN_ARGS: dict[ChainKind, tuple[str, ...]] = {
    # mixed mining: a block every second, and each transaction mined as it arrives, so the
    # demo's sequential set-up transactions do not wait a block each (on ganache they do)
    "anvil": ("--accounts", str(ANVIL_ACCOUNTS), "--mixed-mining"),
    "ganache": ("--wallet.totalAccounts", str(ANVIL_ACCOUNTS), "--wallet.defaultBalance", "10000"),
}
VALIDATOR_STAKE = 25 * 10**18
NODE_TIMEOUT = 60.0
#: the most an attestor's /latency answer may be (one signed measurement per peer)
MAX_LATENCY_DOCUMENT = 256 * 1024
#: Honest sites needed before the demo sets a real diversity policy (with fewer, none can hold).
POLICY_MIN_SITES = 4


def diversity_policy(sites: int) -> DiversityPolicy:
    """The demo's policy for a world of ``sites`` candidate sites: at most one member per domain
    in every dimension, at least four distinct domains in each, no domain above a third of the
    stake, and tolerance at least 1 (losing any one domain of any dimension leaves consensus
    live)."""
    rule = DimensionRule(max_members=1, min_distinct=POLICY_MIN_SITES, max_share_bps=3_333)
    return DiversityPolicy(
        committee_size=sites, min_tolerance=1, rules=tuple(rule for _ in DIMENSIONS)
    )


@dataclass
class Devnet:
    """The chain the devnet started and the contracts it deployed there."""

    chain: LocalChain
    w3: Web3
    owner: LocalAccount
    deployment: Deployment
    deployment_file: Path
    registry: RegistryClient

    @property
    def selector(self) -> SelectorClient:
        return SelectorClient(self.w3, self.deployment.selector, self.owner)

    @property
    def ledger(self) -> SettlementClient:
        return SettlementClient(self.w3, self.deployment.settlement)


def deploy_contracts(chain: LocalChain, state_dir: Path) -> Devnet:
    """Deploy the contracts with anvil's first development account; write the deployment file."""
    w3 = connect(chain.rpc_url)
    owner = Account.from_key(chain.dev_keys[0])
    deployment = deploy(w3, owner)
    deployment_file = state_dir / "deployment.json"
    deployment.write(deployment_file)
    registry = RegistryClient(w3, deployment.registry, owner)
    return Devnet(chain, w3, owner, deployment, deployment_file, registry)


def fund_demo_accounts(devnet: Devnet) -> None:
    """Top up, from the owner, the public development accounts the demo uses beyond the first:
    the validators' operators (their stake and gas) and the venue's submitters (gas). anvil
    started by the demo funds all of them itself; ganache, or a chain started elsewhere with
    fewer accounts, does not."""
    keys = dev_keys("anvil", ANVIL_ACCOUNTS)
    needs = {Account.from_key(keys[i]).address: VALIDATOR_STAKE + 5 * 10**18
             for i in VALIDATOR_ACCOUNTS.values()}  # fmt: skip
    for i in SUBMITTER_ACCOUNTS:
        needs.setdefault(Account.from_key(keys[i]).address, 5 * 10**18)
    w3 = devnet.w3
    for address, need in needs.items():
        balance = int(w3.eth.get_balance(address))
        if balance < need:
            fund(w3, devnet.owner, [address], need - balance)


def stop_attestors(sites: list[SiteProcess], view: ProgressView) -> None:
    codes = stop_sites(sites)
    view.note(f"attestors stopped (exit codes {', '.join(map(str, codes))})")


def stake_validators(devnet: Devnet, sites: list[ExampleSite]) -> None:
    """Stake a validator on each site's attested node (once its attestor has attested it)."""
    # the node key signs the binding that lets the operator register on it (the example nodes'
    # addresses are development accounts, so their keys are known here)
    keys = dev_keys("anvil", ANVIL_ACCOUNTS)
    node_keys = {a.address.lower(): a for a in map(Account.from_key, keys)}
    for site in sites:
        node = site.node.address
        deadline = time.monotonic() + NODE_TIMEOUT
        while devnet.registry.node_info(node).facility_id != site.facility.facility_id:
            if time.monotonic() > deadline:
                raise DevnetError(
                    f"{site.name}'s attestor did not attest node {node} in {NODE_TIMEOUT:.0f} s"
                )
            time.sleep(0.5)
        operator = Account.from_key(
            dev_keys("anvil", ANVIL_ACCOUNTS)[VALIDATOR_ACCOUNTS[site.name]]
        )
        devnet.registry.register_validator(
            site.facility.facility_id, node_keys[node.lower()], VALIDATOR_STAKE, sender=operator
        )


@dataclass(frozen=True)
class Relayed:
    """What relaying the attestors' signed measurements did."""

    accepted: int
    already_held: int
    refused: list[str]


def fetch_signed_latencies(latency_url: str) -> list[SignedLatency]:
    """An attestor's ``/latency``: the signed measurements it holds (parsed within bounds: its
    answer is hostile input). RedundancyError subclasses if unreachable or malformed."""
    try:
        reply = requests.get(latency_url, timeout=5)
        reply.raise_for_status()
    except requests.RequestException as exc:
        raise DevnetError(f"{latency_url}: {exc}") from None
    doc = parse_document(reply.content, max_bytes=MAX_LATENCY_DOCUMENT)
    if not isinstance(doc, dict) or not isinstance(doc.get("measurements"), list):
        raise DevnetError(f"{latency_url}: not a list of measurements")
    return [SignedLatency.from_json(entry) for entry in doc["measurements"]]


def relay_signed_latencies(
    selector: SelectorClient, domain_separator: bytes, latency_urls: list[str], sender: LocalAccount
) -> Relayed:
    """Relay every signed measurement the attestors hold to the selector, as anyone may: each
    end's own, signed by its own attestor key. A report that completes a contradicted pair is
    followed at once by the flag it proves (flagContradiction). One the selector already holds
    (the same or a newer report of that direction) is counted, not an error; any other refusal
    is named."""
    accepted, held, refused = 0, 0, []
    for url in latency_urls:
        for signed in fetch_signed_latencies(url):
            try:
                selector.report_latency_and_flag(
                    domain_separator, signed.measurement, signed.signature, sender=sender
                )
                accepted += 1
            except ContractRevertError as exc:
                if exc.error_name == "SelectorMeasurementReplayed":
                    held += 1
                else:
                    refused.append(str(exc))
    return Relayed(accepted, held, refused)


def latency_url(site: SiteProcess) -> str:
    return site.metrics_url.removesuffix("/metrics") + "/latency"


def wait_round_trips(sites: list[SiteProcess], timeout: float) -> bool:
    """Wait until every attestor holds a signed round trip with each of its peers in this world
    (both ends of every pair); False on timeout."""
    names = {s.name for s in sites}
    wanted = {
        s.name: {facility_id(p) for p in example_site(s.name).peers if p in names} for s in sites
    }
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            held = {
                s.name: {m.measurement.peer_facility_id for m in fetch_signed_latencies(url)}
                for s in sites
                if (url := latency_url(s))
            }
        except RedundancyError:
            held = {}
        if held and all(wanted[n] <= held[n] for n in wanted):
            return True
        time.sleep(1.0)
    return False


def set_landmark(devnet: Devnet, names: Sequence[str]) -> None:
    """Fix the landmark site's true position, if it runs in this world."""
    if LANDMARK_SITE in names:
        lm = example_site(LANDMARK_SITE).facility
        devnet.selector.set_landmark(lm.facility_id, lm.latitude_e6, lm.longitude_e6)


def relay_rtts(devnet: Devnet, sites: list[SiteProcess]) -> Relayed:
    """Put the RTTs the attestors measured on-chain: each site serves, at ``/latency``, the
    EIP-712 measurements both ends of its exchanges signed with their own attestor keys; the
    devnet relays them (it holds no site's key)."""
    return relay_signed_latencies(
        devnet.selector,
        devnet.registry.domain_separator(),
        [latency_url(site) for site in sites],
        devnet.owner,
    )


def flag_explanation(devnet: Devnet, site: ExampleSite) -> str | None:
    """Why a site is flagged, in physical terms, from the chain; None if it is not."""
    flag = devnet.selector.geography_flag(site.facility.facility_id)
    if flag is None or not flag.holds:
        return None
    names: dict[bytes, str] = {facility_id(n): n for n in SITE_NAMES}
    against = names.get(flag.against, "0x" + flag.against.hex()[:12])
    landmark = devnet.selector.landmark(flag.against)
    claim = (site.facility.latitude_e6, site.facility.longitude_e6)
    if landmark is not None:
        where, lower = f"landmark {against}", distance_lower_bound_m(claim, landmark.position)
    else:
        peer = example_site(against).facility if against in SITE_NAMES else None
        where = f"peer {against}"
        lower = distance_lower_bound_m(claim, (peer.latitude_e6, peer.longitude_e6)) if peer else 0
    reach = rtt_distance_bound_m(flag.rtt_micros)
    return (
        f"{site.name} FLAGGED: it claims {site.facility.metro} ({site.facility.country}), but its "
        f"two-sided round trip with {where} is {flag.rtt_micros / 1000:.1f} ms, so it lies within "
        f"{reach / 1000:,.0f} km of {against}, while its claim is at least {lower / 1000:,.0f} km "
        f"away: not eligible, left out of the committee"
    )


def start_venue(
    deployment_file: Path, rpc_url: str, state_dir: Path, sites: list[str], once: bool
) -> tuple[subprocess.Popen[bytes], Path]:
    """The venue (etcd member, node and gateway per committee site, an order flow, settlement
    batches), run by its own command: the core never imports it. Its output goes to a log."""
    script = Path(sys.executable).parent / "validator-venue"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "devnet.venue"]
    command += [
        "--deployment",
        str(deployment_file),
        "--rpc-url",
        rpc_url,
        "--state-dir",
        str(state_dir / "venue"),
        "--sites",
        ",".join(sites),
    ]
    if once:
        command.append("--once")
    log = state_dir / "venue.log"
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT), log


def stop_venue(venue: subprocess.Popen[bytes]) -> None:
    if venue.poll() is None:
        venue.terminate()
        venue.wait(timeout=30)


ACK_LINE = re.compile(r"venue: (\d+) orders acknowledged")


def orders_acknowledged(venue_log: Path) -> int:
    """Orders the venue's gateways acknowledged, from its log (0 before it says)."""
    try:
        found = ACK_LINE.findall(venue_log.read_text(errors="replace"))
    except OSError:
        return 0
    return int(found[-1]) if found else 0


def wait_first_batch(
    devnet: Devnet, venue: subprocess.Popen[bytes], venue_log: Path, timeout: float
) -> int:
    """Wait for the committee's first settlement batch on-chain; the batches committed so far."""
    deadline = time.monotonic() + timeout
    while (count := devnet.ledger.last_committed()[2]) == 0:
        if venue.poll() is not None and devnet.ledger.last_committed()[2] == 0:
            tail = "\n".join(venue_log.read_text(errors="replace").splitlines()[-8:])
            raise DevnetError(f"the venue exited with {venue.returncode}; its log ends:\n{tail}")
        if time.monotonic() > deadline:
            raise DevnetError(f"no settlement batch committed within {timeout:.0f} s")
        time.sleep(0.5)
    return count


def site_status(devnet: Devnet, world: list[ExampleSite], sites: list[SiteProcess]) -> Status:
    """The status panel's contents, read from the chain now."""
    members = set(devnet.selector.current_committee().members)
    by_node: dict[str, str] = {}
    for m in members:
        info = devnet.registry.validator_info(m)
        by_node[info.node] = m
    status = Status(block=int(devnet.w3.eth.block_number))
    for site, proc in zip(world, sites, strict=True):
        fid = site.facility.facility_id
        flagged = devnet.selector.is_geography_flagged(fid)
        stale = devnet.registry.facility_status(fid).stale
        state = "flagged" if flagged else "stale" if stale else "fresh"
        alive = proc.process.poll() is None
        status.sites.append(
            SiteRow(
                site.name,
                state,
                landed_count(devnet.registry, proc.attestor),
                site.node.address in by_node,
                "" if alive else f"attestor exited {proc.process.returncode}",
            )
        )
    committee = devnet.selector.current_committee()
    if committee.epoch:
        scores = devnet.selector.current_scores()
        klass = devnet.selector.current_class().name.lower().replace("_", "-")
        status.committee = f"epoch {committee.epoch}, {len(committee.members)} members"
        status.score = f"{klass}, score {scores.score}"
    status.batches = devnet.ledger.last_committed()[2]
    return status


@dataclass
class Outcome:
    """What the run showed, for the summary and ``--json``."""

    rpc_url: str = ""
    deployment_file: str = ""
    api: str | None = None
    committee: list[str] | None = None
    epoch: int = 0
    klass: str = ""
    score: int | None = None
    weakest: str = ""
    tolerance: dict[str, int] | None = None
    flagged: dict[str, str] | None = None
    orders: int = 0
    batches: int = 0
    last_sequence: int = 0
    tpm: dict[str, dict[str, Any]] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "rpcUrl": self.rpc_url,
            "deployment": self.deployment_file,
            "api": self.api,
            "committee": {"epoch": self.epoch, "sites": self.committee or []},
            "class": self.klass,
            "score": self.score,
            "weakest": self.weakest,
            "tolerance": self.tolerance or {},
            "flagged": self.flagged or {},
            "ordersAcknowledged": self.orders,
            "batchesCommitted": self.batches,
            "lastSequence": self.last_sequence,
            "tpmSites": self.tpm or {},
        }


def set_up_committee(
    devnet: Devnet, world: list[ExampleSite], sites: list[SiteProcess], view: ProgressView
) -> Outcome:
    """Once every site is fresh: validators staked, the landmark set and the round trips
    relayed (flagging a dishonest site), the policy set, the committee selected."""
    out = Outcome()
    names = [s.name for s in world]
    with view.step("validators") as step:
        stake_validators(devnet, world)
        step.done(f"{len(world)} validators staked, {VALIDATOR_STAKE // 10**18} ETH each")
    with view.step("geography") as step:
        complete = wait_round_trips(sites, LATENCY_TIMEOUT)
        relayed = relay_rtts(devnet, sites)
        flagged = {s.name: why for s in world if (why := flag_explanation(devnet, s))}
        out.flagged = flagged
        landmark = f"landmark {LANDMARK_SITE}, " if LANDMARK_SITE in names else ""
        step.done(
            f"{landmark}relayed {relayed.accepted} signed round trips on-chain"
            f"{'' if complete else ' (some pairs not measured in time)'}; "
            f"flagged: {', '.join(flagged) or 'none'}"
        )
    for problem in relayed.refused:
        view.note(f"  refused: {problem}")
    with view.step("committee") as step:
        honest = [s for s in world if s.name not in flagged]
        if len(honest) >= POLICY_MIN_SITES:
            devnet.selector.set_diversity_policy(diversity_policy(len(world)))
            policy = (
                "policy: one member per domain, >= 4 distinct domains per dimension, tolerance >= 1"
            )
        else:
            policy = "no diversity policy (fewer than four honest sites)"
        devnet.selector.select_committee()
        committee = devnet.selector.current_committee()
        scores = devnet.selector.current_scores()
        klass = devnet.selector.current_class().name.lower().replace("_", "-")
        by_node = {devnet.registry.validator_info(m).node: m for m in committee.members}
        out.committee = [s.name for s in world if s.node.address in by_node]
        out.epoch, out.klass, out.score = committee.epoch, klass, scores.score
        out.weakest = scores.weakest.name.lower()
        out.tolerance = {d.dimension.name.lower(): d.tolerance for d in scores.dimensions}
        step.done(
            f"epoch {committee.epoch}: {', '.join(out.committee)}; class {klass}, "
            f"redundancy score {scores.score} ({policy})"
        )
    view.block(table(scores, klass.replace("-", "_")))
    for why in flagged.values():
        view.note(why)
    return out


def verify_tpm_sites(devnet: Devnet, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Every accepted proof of each TPM site, through the independent verifier: how many, and
    which checks failed (none, when the TPM chain holds end to end)."""
    deployment = Deployment.read(devnet.deployment_file)
    verifier = Verifier(devnet.registry.w3, deployment)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        reports = verifier.verify_facility(facility_id(name))
        failed = sorted({c.id for r in reports for c in r.checks if not c.ok})
        quoted = sum(any(c.id == "tpm.quote.signature" for c in r.checks) for r in reports)
        results[name] = {"proofs": len(reports), "quoted": quoted, "ok": not failed,
                         "failed": failed}  # fmt: skip
    return results


def summary(out: Outcome, view: ProgressView, devnet: Devnet) -> None:
    """The closing lines: what the run showed, and how to check it."""
    seq = devnet.ledger.last_committed()[0]
    out.last_sequence = seq
    view.note("")
    view.note(
        f"summary: committee {', '.join(out.committee or []) or '-'} (epoch {out.epoch}), class "
        f"{out.klass or '-'}, redundancy score {out.score if out.score is not None else '-'}"
    )
    for name in out.flagged or {}:
        view.note(f"summary: {name} flagged for a claimed location its round trips contradict")
    if out.orders or out.batches:
        view.note(
            f"summary: {out.orders} orders acknowledged; {out.batches} settlement batches "
            f"committed on-chain by the committee's nodes (log sequences 1-{seq})"
        )
    args = f"--deployment {devnet.deployment_file} --rpc-url {devnet.chain.rpc_url}"
    view.note("verify it yourself, from the RPC and the deployment file alone:")
    view.note(f"  .venv/bin/redundancy-verify-scores {args}")
    view.note(f"  .venv/bin/redundancy-verify-attestation {args} --facility fra1")


def run(
    port: int,
    state_dir: Path,
    once: bool,
    api_port: int | None = 0,
    venue: bool = True,
    site_names: tuple[str, ...] = DEFAULT_SITES,
    json_path: Path | None = None,
    view: ProgressView | None = None,
    tpm_sites: tuple[str, ...] = DEFAULT_TPM_SITES,
    chain_kind: ChainKind = "anvil",
    rpc_url: str | None = None,
) -> int:
    """Start everything, show it, and keep it running (or, with ``once``, stop); stops what it
    started in reverse order on the way out: venue, API, attestors, chain. The ``tpm_sites``
    (those of them in the world) attest with a software TPM each. The chain is a new anvil or
    ganache (``chain_kind``), or the local development chain already at ``rpc_url``."""
    tpm_sites = tuple(n for n in tpm_sites if n in site_names)
    view = view or ProgressView()
    state_dir.mkdir(parents=True, exist_ok=True)
    world = [example_site(name) for name in site_names]
    out = Outcome()
    code = 0
    with ExitStack() as started:
        started.callback(view.close)
        with view.step("chain") as step:
            if rpc_url is not None:
                chain = attach_chain(rpc_url, ANVIL_ACCOUNTS)
                step.done(
                    f"{chain.kind} at {chain.rpc_url} (chain id {chain.chain_id}; left running)"
                )
            else:
                chain = start_chain(
                    chain_kind, port=port, block_time=1, extra_args=CHAIN_ARGS[chain_kind]
                )
                started.callback(chain.stop)
                blocks = "1 s blocks" + (
                    ", each transaction at once" if chain.kind == "anvil" else ""
                )
                step.done(f"{chain.kind} {chain.rpc_url} (chain id {chain.chain_id}, {blocks})")
        with view.step("contracts") as step:
            devnet = deploy_contracts(chain, state_dir)
            fund_demo_accounts(devnet)
            step.done(
                f"registry {devnet.deployment.registry}, deployment file {devnet.deployment_file}"
            )
        out.rpc_url, out.deployment_file = chain.rpc_url, str(devnet.deployment_file)
        api: ApiProcess | None = None
        if api_port is not None:  # started now, so it boots while the sites do
            log = state_dir / "api.log"
            api = launch_api(
                devnet.deployment_file,
                chain.rpc_url,
                pick_port(api_port),
                log,
                venue_file=state_dir / "venue" / VENUE_FILE,
            )
            started.callback(api.stop)
        with view.step("sites") as step:
            sites = start_sites(
                list(site_names),
                chain.rpc_url,
                devnet.registry,
                devnet.owner,
                devnet.deployment_file,
                state_dir,
                tpm_sites=tpm_sites,
                # the landmark is fixed before the first round trips: a pair with it proves a
                # disc only from reports measured since
                registered=lambda: set_landmark(devnet, site_names),
            )
            started.callback(stop_attestors, sites, view)
            on_tpm = f"; {', '.join(tpm_sites)} on a software TPM" if tpm_sites else ""
            step.done(
                f"started {len(sites)} attestors ({', '.join(site_names)}{on_tpm}; logs in "
                f"{state_dir / 'sites'}/<site>/attestor.log)"
            )
        with view.step("proofs landed") as step:
            fresh = wait_fresh(devnet.registry, sites, timeout=FIRST_ROUND_TIMEOUT)
            step.done("every site fresh" if fresh else "some sites still stale")
        view.block("\n".join(status_table(devnet.registry, sites)))
        if tpm_sites:
            with view.step("TPM proofs verified") as step:
                out.tpm = verify_tpm_sites(devnet, tpm_sites)
                step.done(
                    "; ".join(
                        f"{name}: {r['proofs']} proofs, "
                        + ("every check passed" if r["ok"] else f"FAILED {', '.join(r['failed'])}")
                        for name, r in out.tpm.items()
                    )
                    + " (TPM quote, AK and EK chain to the pinned manufacturer, nonce, PCR 0 "
                    "as the hardware domain)"
                )
        if fresh:
            tpm_results = out.tpm
            out = set_up_committee(devnet, world, sites, view)
            out.tpm = tpm_results
            out.rpc_url, out.deployment_file = chain.rpc_url, str(devnet.deployment_file)
        if api is not None:
            with view.step("API") as step:
                wait_api(api, API_TIMEOUT)
                out.api = api.url
                step.done(f"{api.url}/docs, dashboard {api.url}/")
            view.note(f"API              {api.url}/docs")
            view.note(f"dashboard        {api.url}/")
        venue_proc, venue_log = None, state_dir / "venue.log"
        if fresh and venue and out.committee:
            with view.step("venue") as step:
                venue_proc, venue_log = start_venue(
                    devnet.deployment_file, chain.rpc_url, state_dir, out.committee, once
                )
                started.callback(stop_venue, venue_proc)
                deadline = time.monotonic() + VENUE_TIMEOUT
                while (orders := orders_acknowledged(venue_log)) == 0:
                    if venue_proc.poll() is not None or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                out.orders = orders
                step.done(
                    f"etcd member, node and gateway at {', '.join(out.committee)}; "
                    f"{orders} orders acknowledged (log {venue_log})"
                )
            with view.step("first batch") as step:
                out.batches = wait_first_batch(devnet, venue_proc, venue_log, VENUE_TIMEOUT)
                step.done("a settlement batch committed on-chain by the committee's nodes")
        if once:
            if venue_proc is not None:
                try:
                    code = venue_proc.wait(timeout=VENUE_TIMEOUT)
                except subprocess.TimeoutExpired:
                    raise DevnetError(
                        f"the venue did not finish within {VENUE_TIMEOUT:.0f} s"
                    ) from None
            code = code or (0 if fresh else 1)
        else:
            view.note("Ctrl-C stops the venue, the API, the attestors and the chain.")
            next_status = 0.0

            def step_status() -> bool:
                nonlocal next_status
                if chain.process is not None and chain.process.poll() is not None:
                    return False
                if time.monotonic() >= next_status:
                    if chain.process is None and not chain.alive():
                        return False
                    next_status = time.monotonic() + STATUS_EVERY
                    status = site_status(devnet, world, sites)
                    status.orders = orders_acknowledged(venue_log)
                    status.live = venue_proc is None or venue_proc.poll() is None
                    view.show(status)
                return True

            run_until_signalled(step_status)
            view.close()
        out.orders = orders_acknowledged(venue_log) or out.orders
        out.batches = devnet.ledger.last_committed()[2]
        summary(out, view, devnet)
        if json_path is not None:
            json_path.write_text(json.dumps(out.as_json(), indent=2) + "\n")
    return code


def parse_sites(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in SITE_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown site(s) {', '.join(unknown) or '(none given)'}; examples: "
            f"{', '.join(SITE_NAMES)}"
        )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError("a site is named twice")
    return names


def parse_tpm_sites(text: str) -> tuple[str, ...]:
    return () if text.strip() in ("", "none") else parse_sites(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="redundancy-devnet", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sites",
        type=parse_sites,
        default=DEFAULT_SITES,
        help=f"comma-separated example sites (default: {','.join(DEFAULT_SITES)}; "
        f"the old three-site world: fra1,ams1,dal1)",
    )
    parser.add_argument(
        "--chain",
        choices=("anvil", "ganache"),
        default="anvil",
        help="the local chain to start (default: anvil)",
    )
    parser.add_argument(
        "--rpc-url",
        help="use the local development chain already running here instead (anvil, or ganache "
        "started with -d): its public development accounts pay for everything",
    )
    parser.add_argument("--port", type=int, default=0, help="chain port (default: a free one)")
    parser.add_argument("--state-dir", type=Path, default=Path(".devnet"), help="where files go")
    parser.add_argument("--once", action="store_true", help="stop after the first batch")
    parser.add_argument("--api-port", type=int, default=0, help="API port (default: 8000 if free)")
    parser.add_argument("--no-api", action="store_true", help="do not serve the API and dashboard")
    parser.add_argument(
        "--no-venue", action="store_true", help="do not start etcd, nodes, gateways"
    )
    parser.add_argument("--json", type=Path, help="also write the summary as JSON to this file")
    parser.add_argument(
        "--tpm-sites",
        type=parse_tpm_sites,
        default=DEFAULT_TPM_SITES,
        help=f"comma-separated sites that attest with a software TPM (swtpm; default: "
        f"{','.join(DEFAULT_TPM_SITES)}; 'none' for none)",
    )
    args = parser.parse_args(argv)
    try:
        api_port = None if args.no_api else args.api_port
        return run(
            args.port or free_port(),
            args.state_dir,
            args.once,
            api_port,
            not args.no_venue,
            args.sites,
            args.json,
            tpm_sites=args.tpm_sites,
            chain_kind=args.chain,
            rpc_url=args.rpc_url,
        )
    except RedundancyError as exc:
        print(f"redundancy-devnet: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
