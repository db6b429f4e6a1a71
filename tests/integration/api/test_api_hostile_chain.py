"""Hostile chain content: evidence anyone can put in calldata never crashes or 500s the API.

Against a real uvicorn process (a crash must show as a crash, not take the test runner with it)
on a chain holding, among honest proofs:

- a 200 KB evidence document of nested arrays, once *accepted* (its facility's attestor key
  signed it: a stolen key can) and once rejected in a batch whose transaction succeeded: before
  the bounded parser, the first killed the API at every start (its name index parses accepted
  evidence) and either killed it on ``GET /attestations/<tx>/0`` (SIGSEGV in a worker thread);
- evidence 300 levels deep (past what pydantic can serialise), evidence with a float (which
  canonical JSON refuses), and a device-signed envelope observed in the year 33658 (past what
  ``datetime`` can hold): each answered 500.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.examples import example_facilities
from devnet.localchain import LocalChain
from devnet.world import World, build
from redundancy.deployment import deploy
from redundancy.devicecert import sha256_hex, sign_envelope, to_der
from redundancy.domains import Dimension, Kind, domain_id
from redundancy.eip712 import Signer
from redundancy.evidence import MAX_DOCUMENT_BYTES, MAX_DOCUMENT_DEPTH
from redundancy.proofs import SignedProof, make_proof
from redundancy.registry import RegistryClient
from tests.integration.api.conftest import LiveServer, serving

BOMB = ("[" * 100_000 + "]" * 100_000).encode()
DEEP = json.dumps({"v": 1, "body": json.loads("[" * 300 + "]" * 300)}).encode()
FLOAT = b'{"body":{"load1":0.75},"kind":"power","observedAt":1,"v":1}'


@dataclass
class Hostile:
    server: LiveServer
    accepted_bomb: str
    rejected_bomb: str
    deep: str
    float_: str
    far_future: str


def _proof(world: World, evidence: bytes, signer: Signer | None = None) -> SignedProof:
    """A power proof asserting a grid no earlier proof named, so the API's name index reads
    its evidence to learn the grid's name."""
    spec = next(iter(world.facilities.values()))
    now = world.now()
    return make_proof(
        signer or spec.signer(),
        world.registry.domain_separator(),
        facility_id=spec.facility_id,
        kind=Kind.POWER,
        evidence=evidence,
        issued_at=now,
        expires_at=now + 3600,
        sequence=world.sequences[spec.name] + 1 if signer is None else 1,
        domain_id=domain_id(Dimension.POWER, f"grid of {len(evidence)} bytes"),
    )


def _submit(world: World, proof: SignedProof, relayer: LocalAccount, *, accepted: bool) -> str:
    result = world.registry.submit_attestations([proof], sender=relayer)
    assert not result.reverted and bool(result.accepted) == accepted, result.rejected
    if accepted:
        spec = next(iter(world.facilities.values()))
        world.sequences[spec.name] += 1
    return result.receipt["transactionHash"].to_0x_hex()


@pytest.fixture(scope="module")
def hostile(
    w3: Web3,
    owner: LocalAccount,
    relayer: LocalAccount,
    anvil_chain: LocalChain,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Hostile]:
    folder = tmp_path_factory.mktemp("hostile")
    dep = deploy(w3, owner)
    dep.write(folder / "deployment.json")
    registry = RegistryClient(w3, dep.registry, owner)
    world = build(w3, registry, owner, example_facilities()[:1])
    spec = next(iter(world.facilities.values()))
    device_cert = sha256_hex(to_der(world.device_certs[spec.name]))
    far_future = sign_envelope(
        {"v": 1, "kind": "power", "facility": spec.name, "observedAt": 10**12, "body": {}},
        spec.device_key(),
        device_cert,
    )
    outsider = Signer(bytes(32 * [7]))
    txs = Hostile(
        server=None,  # type: ignore[arg-type]  # started below, once the chain holds it all
        accepted_bomb=_submit(world, _proof(world, BOMB), relayer, accepted=True),
        rejected_bomb=_submit(world, _proof(world, BOMB, outsider), relayer, accepted=False),
        deep=_submit(world, _proof(world, DEEP), relayer, accepted=True),
        float_=_submit(world, _proof(world, FLOAT), relayer, accepted=True),
        far_future=_submit(world, _proof(world, far_future), relayer, accepted=True),
    )
    args = ["--deployment", str(folder / "deployment.json"), "--rpc-url", anvil_chain.rpc_url]
    with serving(folder / "api.log", *args, "--block-poll-ms", "50") as server:
        txs.server = server
        yield txs


def get(hostile: Hostile, path: str) -> requests.Response:
    response = requests.get(hostile.server.url + path, timeout=60)
    assert hostile.server.process.poll() is None, hostile.server.log.read_text()[-3000:]
    return response


def test_the_api_starts_and_indexes_a_chain_holding_an_accepted_evidence_bomb(
    hostile: Hostile,
) -> None:
    assert get(hostile, "/health").status_code == 200
    facilities = get(hostile, "/facilities")
    assert facilities.status_code == 200 and facilities.json()["facilities"]
    listed = get(hostile, "/attestations?limit=500").json()["items"]
    assert hostile.accepted_bomb in {item["tx"] for item in listed}


@pytest.mark.parametrize("which", ["accepted_bomb", "rejected_bomb"])
def test_an_evidence_bomb_is_shown_unparsed_and_fails_verification(
    hostile: Hostile, which: str
) -> None:
    tx = getattr(hostile, which)
    shown = get(hostile, f"/attestations/{tx}/0")
    assert shown.status_code == 200
    body = shown.json()
    assert body["status"] == ("accepted" if which == "accepted_bomb" else "rejected")
    assert body["evidence"] is None
    assert f"more than the {MAX_DOCUMENT_BYTES} allowed" in body["evidence_problem"]
    verified = get(hostile, f"/attestations/{tx}/0/verify")
    assert verified.status_code == 200
    checks = {c["id"]: c for c in verified.json()["checks"]}
    assert not verified.json()["ok"] and not checks["evidence.json"]["ok"]
    assert "more than" in checks["evidence.json"]["detail"]


def test_evidence_nested_too_deep_for_the_serialiser_is_refused_with_the_reason(
    hostile: Hostile,
) -> None:
    shown = get(hostile, f"/attestations/{hostile.deep}/0")
    assert shown.status_code == 200
    assert shown.json()["evidence"] is None
    assert f"deeper than {MAX_DOCUMENT_DEPTH} levels" in shown.json()["evidence_problem"]
    verified = get(hostile, f"/attestations/{hostile.deep}/0/verify")
    assert verified.status_code == 200 and not verified.json()["ok"]


def test_a_float_in_evidence_is_shown_and_reported_not_canonical(hostile: Hostile) -> None:
    shown = get(hostile, f"/attestations/{hostile.float_}/0")
    assert shown.status_code == 200
    assert shown.json()["evidence"]["body"] == {"load1": 0.75}
    verified = get(hostile, f"/attestations/{hostile.float_}/0/verify")
    assert verified.status_code == 200
    checks = {c["id"]: c for c in verified.json()["checks"]}
    assert not checks["evidence.canonical"]["ok"]
    assert "float" in checks["evidence.canonical"]["detail"]


def test_an_observation_time_past_the_calendar_is_a_failed_check(hostile: Hostile) -> None:
    verified = get(hostile, f"/attestations/{hostile.far_future}/0/verify")
    assert verified.status_code == 200
    checks = {c["id"]: c for c in verified.json()["checks"]}
    assert checks["evidence.observed_at"] == {
        "id": "evidence.observed_at",
        "ok": False,
        "detail": f"observedAt {10**12} is out of range",
    }
    assert checks["evidence.device_signature"]["ok"]  # honestly signed, just absurd


def test_the_verify_command_reports_the_bomb_without_crashing(
    hostile: Hostile, anvil_chain: LocalChain
) -> None:
    deployment = hostile.server.log.parent / "deployment.json"
    command = Path(sys.executable).parent / "redundancy-verify-attestation"
    args = ["--deployment", str(deployment), "--rpc-url", anvil_chain.rpc_url]
    done = subprocess.run(
        [str(command), *args, "--tx", hostile.accepted_bomb, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    (proof,) = json.loads(done.stdout)["proofs"]
    failed = {c["id"] for c in proof["checks"] if not c["ok"]}
    assert failed == {"evidence.json"}
