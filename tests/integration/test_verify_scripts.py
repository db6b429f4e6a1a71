"""verify_attestation.py and verify_scores.py against a real deployment, and their bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import BlockIdentifier

from devnet.localchain import LocalChain
from devnet.ports import free_port
from devnet.world import FacilitySpec, ValidatorSpec, World, build
from redundancy import score_verifier
from redundancy.attestation_verifier import Verifier
from redundancy.deployment import Deployment, deploy
from redundancy.devicecert import to_der
from redundancy.domains import Kind
from redundancy.registry import FacilityInfo, RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import SelectorClient

ROOT = Path(__file__).resolve().parents[2]
SITES = [
    FacilitySpec("zrh1", "swissgrid", "zurich", "ch", 47_376_887, 8_541_694, "as559", "green"),
    FacilitySpec("mil1", "terna", "milan", "it", 45_464_204, 9_189_982, "as12874", "aruba"),
    FacilitySpec("vie1", "apg", "vienna", "at", 48_208_176, 16_373_819, "as1120", "interxion"),
]
VALIDATORS = [ValidatorSpec(f"v-{s.name}", s.name, (3 - i) * 10**18) for i, s in enumerate(SITES)]


@dataclass
class Setup:
    path: Path
    deployment: Deployment
    world: World
    selector: SelectorClient
    rpc: str


@pytest.fixture
def setup(
    w3: Web3, owner: LocalAccount, anvil_chain: LocalChain, tmp_path: Path
) -> Iterator[Setup]:
    dep = deploy(w3, owner)
    path = tmp_path / "deployment.json"
    dep.write(path)
    registry = RegistryClient(w3, dep.registry, owner)
    world = build(w3, registry, owner, SITES, VALIDATORS)
    selector = SelectorClient(w3, dep.selector, owner)
    selector.set_diversity_policy(DiversityPolicy(3), sender=owner)
    selector.select_committee(sender=owner)
    yield Setup(path, dep, world, selector, anvil_chain.rpc_url)


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def verify(script: str, setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    """``script`` against the test deployment: ``--deployment`` and ``--rpc-url``, then ``args``."""
    return run(script, "--deployment", str(setup.path), "--rpc-url", setup.rpc, *args)


def submission_tx(setup: Setup, relayer: LocalAccount, *, forged: bool = False) -> str:
    w = setup.world
    proofs = w.facility_proofs(SITES[0], [Kind.POWER, Kind.HEALTH])
    if forged:  # signed by another site's attestor: the registry skips it
        proofs.append(
            w.facility_proofs(SITES[1], [Kind.NETWORK])[0].__class__(
                w.facility_proofs(SITES[0], [Kind.NETWORK])[0].attestation,
                proofs[0].evidence,
                SITES[1]
                .signer()
                .sign(
                    w.registry.domain_separator(),
                    w.facility_proofs(SITES[0], [Kind.NETWORK])[0].attestation,
                ),
            )
        )
    result = w.registry.submit_attestations(proofs, sender=relayer)
    return str(result.receipt["transactionHash"].to_0x_hex())


def test_verify_attestation_passes_every_check_of_a_batch(
    setup: Setup, relayer: LocalAccount
) -> None:
    tx = submission_tx(setup, relayer)
    proc = verify("verify_attestation.py", setup, "--tx", tx, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and len(report["proofs"]) == 2
    ids = {c["id"] for c in report["proofs"][0]["checks"]}
    assert {
        "attestation.attestor",
        "attestation.evidence_hash",
        "attestation.sequence",
        "certificate.ca.pinned",
        "certificate.device.issued_by_ca",
        "evidence.device_signature",
    } <= ids


def test_verify_attestation_by_facility_name(setup: Setup) -> None:
    proc = verify("verify_attestation.py", setup, "--facility", "mil1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mil1" not in proc.stderr and proc.stdout.strip().endswith("proofs passed every check")
    assert "FAIL" not in proc.stdout


def test_rejected_proof_reports_all_its_failures(setup: Setup, relayer: LocalAccount) -> None:
    tx = submission_tx(setup, relayer, forged=True)
    proc = verify("verify_attestation.py", setup, "--tx", tx, "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    bad = report["proofs"][2]
    failed = {c["id"] for c in bad["checks"] if not c["ok"]}
    assert failed == {"attestation.attestor", "attestation.accepted", "attestation.evidence_hash"}
    assert [p["ok"] for p in report["proofs"]] == [True, True, False]


def test_bad_input_gets_one_line_and_a_distinct_exit_code(
    setup: Setup, relayer: LocalAccount, w3: Web3, owner: LocalAccount, tmp_path: Path
) -> None:
    dep, rpc = str(setup.path), setup.rpc
    transfer = w3.eth.send_transaction({"from": owner.address, "to": relayer.address, "value": 1})
    stake_tx = setup.world.registry.increase_stake(1, sender=VALIDATORS[0].account())
    garbage = w3.eth.send_transaction(
        {
            "from": owner.address,
            "to": setup.deployment.registry,
            "data": "0x31a5aac3" + "00" * 7,
            "gas": 100_000,
        }
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"chain_id": 31337}')
    cases = [
        (["--tx", "0x" + "ab" * 32], 3, "not found"),
        (["--tx", "0x1234"], 3, "not a transaction hash"),
        (["--tx", transfer.to_0x_hex()], 4, "not the registry"),
        (["--tx", stake_tx["transactionHash"].to_0x_hex()], 4, "registry.increaseStake"),
        (["--tx", garbage.to_0x_hex()], 5, "calldata does not decode"),
        (["--facility", "nowhere"], 7, "no accepted proofs"),
    ]
    for args, code, words in cases:
        proc = verify("verify_attestation.py", setup, *args)
        assert (proc.returncode, proc.stderr.count("\n")) == (code, 1), (args, proc.stderr)
        assert words in proc.stderr and "Traceback" not in proc.stderr
    proc = run(
        "verify_attestation.py", "--deployment", str(broken), "--rpc-url", rpc, "--facility", "zrh1"
    )
    assert proc.returncode == 6 and "lacks field(s)" in proc.stderr
    proc = run(
        "verify_attestation.py",
        "--deployment",
        dep,
        "--rpc-url",
        f"http://127.0.0.1:{free_port()}",
        "--facility",
        "zrh1",
    )
    assert proc.returncode == 2 and "unreachable" in proc.stderr
    proc = run("verify_scores.py", "--deployment", str(broken), "--rpc-url", rpc)
    assert proc.returncode == 6 and proc.stderr.count("\n") == 1


def test_verify_scores_matches_the_contracts(setup: Setup) -> None:
    proc = verify("verify_scores.py", setup)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout
    for dim in ("facility", "metro", "country", "power", "network", "provider", "hardware"):
        assert f"\n{dim} " in proc.stdout
    report = json.loads(verify("verify_scores.py", setup, "--json").stdout)
    assert report["ok"] and report["class"] == "active_passive"
    assert {c["what"].split(" (")[0] for c in report["comparisons"]} >= {
        "committee scores",
        "selection preview",
        "configuration class active_passive",
    }


def test_verify_scores_detects_a_state_the_contract_disagrees_with(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, w3: Web3
) -> None:
    real = score_verifier.rebuild

    def misstate_a_stake(events: object) -> object:
        state = real(events)  # type: ignore[arg-type]
        state.validators[VALIDATORS[2].account().address].stake += 1
        return state

    monkeypatch.setattr(score_verifier, "rebuild", misstate_a_stake)
    report = score_verifier.compare(
        setup.world.registry,
        setup.selector,
        setup.deployment.deploy_block,
        int(w3.eth.block_number),
    )
    failed = {c.what.split(" (")[0] for c in report.comparisons if not c.ok}
    assert "eligible validators" in failed


def test_verify_scores_explains_a_flag_and_checks_landmark_discs(
    setup: Setup, relayer: LocalAccount
) -> None:
    """zrh1 is a landmark; vie1 claims Vienna, but its two-sided RTT with Zurich (0.5 ms) puts it
    within 50 km of Zurich: flagged on-chain, and the script says why from events alone."""
    world, selector, owner = setup.world, setup.selector, setup.world.registry.default_sender
    zrh, vie = SITES[0], SITES[2]
    selector.set_landmark(zrh.facility_id, zrh.latitude_e6, zrh.longitude_e6, sender=owner)
    ds = world.registry.domain_separator()
    for m, sig in world.round_trip(vie, zrh, 500):
        selector.report_latency_and_flag(ds, m, sig, sender=relayer)
    assert selector.is_geography_flagged(vie.facility_id)
    proc = verify("verify_scores.py", setup)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [line] = [x for x in proc.stdout.splitlines() if "geography flagged=True" in x]
    assert line.strip().startswith("ok")
    assert f"0x{vie.facility_id.hex()[:12]}" in line
    assert "claims (48.2082, 16.3738)" in line
    assert "two-sided RTT of 0.50 ms with landmark" in line and "within 50 km" in line
    assert "the claim is at least 59" in line  # Zurich-Vienna: 594 km
    discs = [x for x in proc.stdout.splitlines() if "landmark discs" in x]
    assert len(discs) == 2 and all(x.strip().startswith("ok") for x in discs)


def test_a_batch_is_verified_with_one_read_of_each_facility(
    setup: Setup, relayer: LocalAccount
) -> None:
    """A 250-proof submission cost the API 1.7 s per /verify: every proof read its facility
    from the chain again. Each facility of a submission is read once, and every proof still gets
    its own checks against it."""
    w = setup.world
    kinds = [Kind.POWER, Kind.HEALTH, Kind.NETWORK, Kind.PROVIDER]
    proofs = w.facility_proofs(SITES[0], kinds) + w.facility_proofs(SITES[1], kinds)
    tx = w.registry.submit_attestations(proofs, sender=relayer).receipt["transactionHash"]
    verifier = Verifier(w.registry.w3, setup.deployment)
    reads: list[bytes] = []
    read = verifier.registry.facility

    def counted(fid: bytes, block: BlockIdentifier = "latest") -> FacilityInfo:
        reads.append(fid)
        return read(fid, block)

    verifier.registry.facility = counted  # type: ignore[method-assign,assignment]
    reports = verifier.verify_tx(tx.to_0x_hex())
    assert len(reports) == 8 and all(r.ok for r in reports), [r.as_dict() for r in reports]
    assert sorted(reads) == sorted([SITES[0].facility_id, SITES[1].facility_id])
    attestor_checks = [c for r in reports for c in r.checks if c.id == "attestation.attestor"]
    assert len(attestor_checks) == 8 and all(c.ok for c in attestor_checks)


def test_a_verification_at_a_block_counts_only_certificates_published_by_then(
    setup: Setup, relayer: LocalAccount, owner: LocalAccount
) -> None:
    """Found by review: the API's /verify answer, computed and labelled for one block, looked
    certificates up to the latest block, so a device certificate published after it counted. A
    verifier at a block sees the certificates published by then."""
    w, w3 = setup.world, setup.world.registry.w3
    spec = FacilitySpec("bts1", "seps", "bratislava", "sk", 48_148_598, 17_107_748, "as2607", "dc")
    w.enrol(spec, owner, publish_device=False)
    receipt = w.registry.submit_attestations(
        w.facility_proofs(spec, [Kind.POWER]), sender=relayer
    ).receipt
    tx = receipt["transactionHash"].to_0x_hex()
    before = int(receipt["blockNumber"])
    w.registry.publish_certificate(
        spec.facility_id, to_der(w.device_certs[spec.name]), sender=owner
    )

    def checks(at_block: int | None) -> dict[str, bool]:
        (report,) = Verifier(w3, setup.deployment, at_block=at_block).verify_tx(tx)
        return {c.id: c.ok for c in report.checks}

    assert checks(before)["certificate.device.published"] is False
    for later in (w3.eth.block_number, None):
        found = checks(later)
        assert "certificate.device.published" not in found
        assert found["certificate.device.issued_by_ca"] and found["evidence.device_signature"]
