"""Hostile chain content fed to every API endpoint and to the verify command.

A small deployment (two facilities, two validators, a committee, a latency report, a settlement
batch, a landmark) serves the API in-process. Each case puts one hostile transaction on chain
(``hostile_evidence``: random bytes, JSON of any shape up to ~200 levels, huge numbers, floats,
unicode with lone surrogates, invalid UTF-8, documents at the 64 KiB bound, device-signed
envelopes with hostile fields), in one of five forms: a proof the facility's attestor key signs
(accepted: as a stolen key could), a proof the registry skips in a batch, a batch mixing both,
a ``submitAttestation`` that reverts on chain (mined without an estimate), and calldata that does
not decode. Then every GET endpoint that can show it must answer below 500 with JSON (200 where
the content is a well-formed submission), and ``redundancy-verify-attestation --tx`` must exit
0 or 1 with valid JSON for a submission (5, one line, for calldata that does not decode), never
a traceback or a signal. The last test starts a real uvicorn process on the chain now holding
every case, which must start, index it all and answer every endpoint below 500.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from hypothesis import event, given
from hypothesis import strategies as st
from web3 import Web3

from api.app import create_app
from devnet.localchain import LocalChain
from devnet.world import FacilitySpec, ValidatorSpec, World, build
from redundancy.batches import Batch
from redundancy.deployment import deploy
from redundancy.devicecert import sha256_hex, to_der
from redundancy.domains import KIND_DIMENSIONS, Kind, domain_id, hardware_domain
from redundancy.eip712 import Signer
from redundancy.ledger import SettlementClient
from redundancy.proofs import SignedProof, make_proof, subject_for_node
from redundancy.registry import DEFAULT_POLICY, FreshnessPolicy, RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import SelectorClient
from tests.adversarial import tally
from tests.adversarial.hostile_evidence import evidence, holds_unencodable_text, strings_in
from tests.adversarial.mutations import Draw, nonzero32
from tests.adversarial.rawtx import calldata, mine, send_unestimated
from tests.integration.api.conftest import api_settings, serving, wait_synced

ETH = 10**18
SITES = [
    FacilitySpec("hx1", "grid-a", "metro-a", "aa", 50_110_000, 8_680_000, "as64500", "prov-a"),
    FacilitySpec("hx2", "grid-b", "metro-b", "bb", 52_370_000, 4_890_000, "as64501", "prov-b"),
]
VALIDATORS = [ValidatorSpec("hv1", "hx1", 3 * ETH), ValidatorSpec("hv2", "hx2", 2 * ETH)]
#: Health proofs last a day here: the suite's long profile runs for hours.
POLICY = FreshnessPolicy((86_400,) * 5 + (86_400,), 60, DEFAULT_POLICY.required_kinds)
IDS = {s.facility_id for s in SITES}
FORMS = ["accepted", "skipped", "mixed batch", "reverted single", "undecodable calldata"]
VERIFY = Path(sys.executable).parent / "redundancy-verify-attestation"
DRIVER = Path(__file__).with_name("verify_driver.py")


@dataclass
class Recorded:
    """A hostile transaction a case made: its hash, form and how many proofs it carries."""

    tx: str
    form: str
    proofs: int
    facility: bytes


@dataclass
class Bench:
    w3: Web3
    chain: LocalChain
    world: World
    registry: RegistryClient
    relayer: LocalAccount
    deployment: Path
    client: TestClient
    verifier: subprocess.Popen[str]
    recorded: list[Recorded] = field(default_factory=list)

    def verify(self, *args: str) -> dict[str, Any]:
        """One run of the verify command's main (see verify_driver.py)."""
        argv = ["--deployment", str(self.deployment), "--rpc-url", self.chain.rpc_url, *args]
        assert self.verifier.stdin is not None and self.verifier.stdout is not None
        self.verifier.stdin.write(json.dumps(argv) + "\n")
        self.verifier.stdin.flush()
        line = self.verifier.stdout.readline()
        assert line, f"the verify command died (exit {self.verifier.wait(10)})"
        answer: dict[str, Any] = json.loads(line)
        return answer


@pytest.fixture(scope="module")
def bench(
    chain: LocalChain,
    w3: Web3,
    owner: LocalAccount,
    relayer: LocalAccount,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Bench]:
    folder = tmp_path_factory.mktemp("hostile-api")
    dep = deploy(w3, owner)
    path = folder / "deployment.json"
    dep.write(path)
    registry = RegistryClient(w3, dep.registry, owner)
    registry.set_freshness_policy(POLICY)
    world = build(w3, registry, owner, SITES, VALIDATORS)
    selector = SelectorClient(w3, dep.selector, owner)
    selector.set_diversity_policy(DiversityPolicy(10))
    selector.select_committee()
    selector.set_landmark(SITES[1].facility_id, SITES[1].latitude_e6, SITES[1].longitude_e6)
    ds = registry.domain_separator()
    selector.report_latency(ds, *world.latency(SITES[0], SITES[1], 4_000), sender=relayer)
    ledger = SettlementClient(w3, dep.settlement, owner)
    batch = Batch(1, 1, 10, bytes.fromhex("5e" * 32))
    nodes = [Signer(bytes(v.node().key)) for v in VALIDATORS]
    ledger.commit_batch(
        batch, [n.sign(ledger.domain_separator, batch) for n in nodes], sender=relayer
    )
    verifier = subprocess.Popen(
        [sys.executable, "-P", str(DRIVER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    app = create_app(api_settings(path, chain.rpc_url))
    try:
        with TestClient(app) as client:
            yield Bench(w3, chain, world, registry, relayer, path, client, verifier)
    finally:
        assert verifier.stdin is not None
        verifier.stdin.close()
        verifier.wait(30)


# ------------------------------------------------------------------------- hostile proofs

bytes32 = st.binary(min_size=32, max_size=32)


def _device(bench: Bench, spec: FacilitySpec) -> tuple[str, Any, str]:
    cert = sha256_hex(to_der(bench.world.device_certs[spec.name]))
    return spec.name, spec.device_key(), cert


def _named_domain(draw: Draw, dim: Any, doc: bytes) -> bytes:
    """The id of a string of the evidence (so the API learns it as the domain's name), or a
    fresh id (so the API searches the evidence for a name)."""
    names = [s for s in strings_in(doc) if s.strip()]
    if names and draw(st.booleans()):
        try:
            return domain_id(dim, draw(st.sampled_from(names)))
        except UnicodeEncodeError:  # a lone surrogate: no id can name it
            pass
    return bytes(draw(nonzero32()))


def accepted_proof(draw: Draw, bench: Bench, doc: bytes) -> SignedProof:
    """A proof the facility's attestor signs over ``doc``: the registry accepts it."""
    spec = draw(st.sampled_from(SITES))
    kind = draw(st.sampled_from(Kind))
    now = mine(bench.w3)
    dims = KIND_DIMENSIONS[kind]
    subject = None
    if kind == Kind.HARDWARE:
        # a node of this facility's own: no other facility holds it (drawn bare, two sites of
        # a long run would draw the same small number, and the second claim is refused with
        # RegistryNodeAtOtherFacility while the first one's hardware proof is fresh)
        n = draw(st.integers(0, 2**64 - 1))
        node = Web3.keccak(spec.facility_id + n.to_bytes(8, "big"))[12:]
        subject = subject_for_node("0x" + node.hex())
        strings = strings_in(doc)
        d1 = draw(nonzero32())
        if len(strings) >= 3 and draw(st.booleans()):
            # named by three strings of the evidence, as vendor/model/firmware
            with contextlib.suppress(UnicodeEncodeError, ValueError):
                d1 = hardware_domain(*strings[:3])
    else:
        d1 = _named_domain(draw, dims[0], doc) if dims else bytes(32)
    geo = kind == Kind.GEOGRAPHY
    edges = st.sampled_from([90_000_000, -90_000_000, 0, 1, -1])
    return make_proof(
        spec.signer(),
        bench.registry.domain_separator(),
        facility_id=spec.facility_id,
        kind=kind,
        evidence=doc,
        issued_at=now,
        expires_at=now + POLICY.max_lifetime[kind],
        sequence=bench.registry.last_sequence(spec.signer().address) + 1,
        subject=subject,
        domain_id=d1,
        secondary_domain_id=_named_domain(draw, dims[1], doc) if geo else bytes(32),
        latitude_e6=draw(edges | st.integers(-90_000_000, 90_000_000)) if geo else 0,
        longitude_e6=draw(edges.map(lambda v: 2 * v) | st.integers(-180_000_000, 180_000_000))
        if geo
        else 0,
    )


def skipped_proof(draw: Draw, bench: Bench, doc: bytes) -> tuple[Any, ...]:
    """A ``SignedAttestation`` tuple the registry refuses, carrying ``doc``: random fields, a
    packed word of any bits, a signature by nobody or by a stranger."""
    facility = draw(st.sampled_from([s.facility_id for s in SITES]) | bytes32)
    packed = draw(st.integers(0, 2**256 - 1) | st.integers(0, 2**216 - 1))
    ev_hash = draw(st.sampled_from([Web3.keccak(doc), bytes(32)]) | bytes32)
    r, vs = draw(bytes32), draw(bytes32)
    return (
        facility,
        draw(bytes32),
        draw(bytes32),
        draw(bytes32),
        bytes(ev_hash),
        packed,
        doc,
        r,
        vs,
    )


def undecodable(draw: Draw, bench: Bench, doc: bytes) -> bytes:
    functions = bench.registry.contract.functions
    ds = bench.registry.domain_separator()
    call = draw(
        st.sampled_from(
            [
                functions.submitAttestations(ds, []),
                functions.submitAttestation(ds, (bytes(32),) * 5 + (0, b"", bytes(32), bytes(32))),
            ]
        )
    )
    head = bytes.fromhex(calldata(call)[2:10])
    tail = draw(
        st.sampled_from([doc, doc[:31], b"\xff" * 64 + doc, (2**255).to_bytes(32, "big") * 3])
    )
    return head + bytes(tail)


# ------------------------------------------------------------------------ the endpoints


def get(bench: Bench, path: str) -> Any:
    """GET ``path``: the status must be below 500 and the body JSON; returns (status, body)."""
    response = bench.client.get(path)
    assert response.status_code < 500, (path, response.status_code, response.text[:500])
    return response.status_code, response.json()


def every_endpoint(bench: Bench, rec: Recorded, block: int) -> None:
    for path in (
        "/health",
        "/facilities",
        "/validators",
        "/scores",
        "/committee",
        "/latency",
        "/batches",
        f"/attestations?from_block={block}&limit=500",
        f"/attestations?facility=0x{rec.facility.hex()}&limit=500",
    ):
        status, body = get(bench, path)
        assert status == 200, (path, body)
    status, body = get(bench, f"/facilities/0x{rec.facility.hex()}")
    assert status == (200 if rec.facility in IDS else 404), body
    listed = get(bench, f"/attestations?from_block={block}&limit=500")[1]["items"]
    listed_here = [item for item in listed if item["tx"] == rec.tx]
    if rec.form == "accepted":
        assert len(listed_here) == 1, listed_here
    elif rec.form in ("skipped", "reverted single", "undecodable calldata"):
        assert listed_here == []
    for i in range(rec.proofs + 1):
        for suffix in ("", "/verify"):
            status, body = get(bench, f"/attestations/{rec.tx}/{i}{suffix}")
            if rec.form == "undecodable calldata":
                assert 400 <= status < 500, body
            elif i < rec.proofs:
                assert status == 200, body
            else:
                assert status == 404, body


def verify_command(bench: Bench, rec: Recorded) -> None:
    for args in (["--tx", rec.tx, "--json"], ["--tx", rec.tx]):
        done = bench.verify(*args)
        assert done["crash"] is None, done["crash"]
        assert "Traceback" not in done["stderr"], done["stderr"]
        if rec.form == "undecodable calldata":
            assert done["code"] == 5, done
            assert done["stdout"] == "" and len(done["stderr"].splitlines()) == 1, done
            continue
        assert done["code"] in (0, 1), done
        if "--json" in args:
            report = json.loads(done["stdout"])
            assert len(report["proofs"]) == rec.proofs
            assert report["ok"] == (done["code"] == 0)


@pytest.mark.parametrize("form", FORMS)
@tally.timeout("api", 1 / len(FORMS))
@tally.profile("api", 1 / len(FORMS))
@given(data=st.data())
def test_hostile_content_never_makes_an_endpoint_or_the_verify_command_fail(
    bench: Bench, form: str, data: st.DataObject
) -> None:
    registry, relayer = bench.registry, bench.relayer
    spec = data.draw(st.sampled_from(SITES), label="whose device key signs envelopes")
    doc = data.draw(evidence(*_device(bench, spec)), label="evidence")
    if form == "accepted":
        proof = accepted_proof(data.draw, bench, doc)
        result = registry.submit_attestations([proof], sender=relayer)
        assert result.accepted == [(proof.attestation.facility_id, proof.attestation.sequence)]
        receipt, n, facility = result.receipt, 1, proof.attestation.facility_id
    elif form in ("skipped", "mixed batch"):
        raws = [skipped_proof(data.draw, bench, doc)]
        if form == "mixed batch":
            good = accepted_proof(data.draw, bench, doc)
            raws.insert(data.draw(st.integers(0, 1)), good.as_abi())
        fn = registry.contract.functions.submitAttestations(registry.domain_separator(), raws)
        receipt = registry.tx.send(fn, relayer, gas=10_000_000)
        result = registry.outcome(receipt)
        assert len(result.rejected) == 1 and len(result.accepted) == len(raws) - 1
        n, facility = len(raws), bytes(raws[0][0])
    elif form == "reverted single":
        raw = skipped_proof(data.draw, bench, doc)
        fn = registry.contract.functions.submitAttestation(registry.domain_separator(), raw)
        receipt = send_unestimated(bench.w3, relayer, registry.address, calldata(fn))
        assert receipt["status"] == 0
        n, facility = 1, bytes(raw[0])
    else:
        garbage = undecodable(data.draw, bench, doc)
        receipt = send_unestimated(bench.w3, relayer, registry.address, garbage)
        assert receipt["status"] == 0
        n, facility = 1, SITES[0].facility_id
    rec = Recorded(receipt["transactionHash"].to_0x_hex(), form, n, facility)
    if form != "undecodable calldata" and holds_unencodable_text(doc):
        event("evidence holding a lone surrogate")
    assert wait_synced(bench.client, bench.w3) >= int(receipt["blockNumber"])
    every_endpoint(bench, rec, int(receipt["blockNumber"]))
    verify_command(bench, rec)
    bench.recorded.append(rec)
    event(form)
    tally.count("api")


def test_a_real_server_starts_on_the_hostile_chain_and_answers_every_endpoint(
    bench: Bench, tmp_path: Path
) -> None:
    """uvicorn, started after every case, indexes the chain holding all of them (names learned
    from accepted hostile evidence included) and answers for a sample of them and the last of
    each form; and the real command verifies the last accepted and undecodable ones."""
    assert bench.recorded, "no hostile transaction was made"
    args = ["--deployment", str(bench.deployment), "--rpc-url", bench.chain.rpc_url]
    with serving(tmp_path / "api.log", *args, "--block-poll-ms", "50") as server:
        paths = [
            "/health",
            "/facilities",
            "/validators",
            "/scores",
            "/committee",
            "/latency",
            "/batches",
            "/attestations?limit=500",
        ]
        last = {rec.form: rec for rec in bench.recorded}
        sample = bench.recorded[:: max(1, len(bench.recorded) // 50)] + list(last.values())
        for rec in sample:
            paths += [
                f"/attestations/{rec.tx}/{i}{s}" for i in range(rec.proofs) for s in ("", "/verify")
            ]
        for path in paths:
            response = requests.get(server.url + path, timeout=120)
            assert response.status_code < 500, (path, response.text[:500])
            response.json()
        assert server.process.poll() is None, server.log.read_text()[-3000:]
    for rec in (last[f] for f in ("accepted", "undecodable calldata") if f in last):
        done = subprocess.run(
            [str(VERIFY), *args, "--tx", rec.tx, "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "Traceback" not in done.stderr, done.stderr
        if rec.form == "undecodable calldata":
            assert done.returncode == 5 and len(done.stderr.splitlines()) == 1, done.stderr
        else:
            assert done.returncode in (0, 1), done.stderr
            assert len(json.loads(done.stdout)["proofs"]) == rec.proofs


LONE_SURROGATE = b'{"body":"\\ud800"}'  # 17 bytes of JSON: a string holding U+D800 alone


def _check(checks: list[dict[str, object]], cid: str) -> dict[str, object]:
    (found,) = (c for c in checks if c["id"] == cid)
    return found


def _skipped_with(bench: Bench, doc: bytes) -> str:
    """A proof no key signed (anyone can send one), carrying ``doc``, skipped in a batch."""
    raw = (SITES[0].facility_id, b"\x01" * 32, b"\x02" * 32, bytes(32), Web3.keccak(doc), 1)
    fn = bench.registry.contract.functions.submitAttestations(
        bench.registry.domain_separator(), [(*raw, doc, b"\x03" * 32, b"\x04" * 32)]
    )
    receipt = bench.registry.tx.send(fn, bench.relayer)
    assert bench.registry.outcome(receipt).rejected == [(0, "RegistryInvalidSubject")]
    wait_synced(bench.client, bench.w3)
    return str(receipt["transactionHash"].to_0x_hex())


def test_accepted_evidence_holding_a_lone_surrogate_is_indexed_and_shown_without_it(
    bench: Bench,
) -> None:
    """Found by this suite: such evidence, signed by an attestor and naming a new domain, made
    the API's name index raise on every request that read the index (/facilities, /attestations:
    500), and showing it failed to serialise (500)."""
    spec = SITES[0]
    now = mine(bench.w3)
    proof = make_proof(
        spec.signer(),
        bench.registry.domain_separator(),
        facility_id=spec.facility_id,
        kind=Kind.POWER,
        evidence=b'{"grid":"\\ud800","name":"grid-surrogate"}',
        issued_at=now,
        expires_at=now + 600,
        sequence=bench.registry.last_sequence(spec.signer().address) + 1,
        domain_id=domain_id(KIND_DIMENSIONS[Kind.POWER][0], "grid-surrogate"),
    )
    result = bench.registry.submit_attestations([proof], sender=bench.relayer)
    assert result.accepted
    tx = result.receipt["transactionHash"].to_0x_hex()
    wait_synced(bench.client, bench.w3)
    status, facilities = get(bench, "/facilities")
    assert status == 200
    assert "grid-surrogate" in json.dumps(facilities)  # the other string still names the grid
    status, shown = get(bench, f"/attestations/{tx}/0")
    assert status == 200 and shown["evidence"] is None
    assert "lone surrogate" in shown["evidence_problem"]


def test_verification_of_evidence_holding_a_lone_surrogate_answers_below_500(
    bench: Bench,
) -> None:
    tx = _skipped_with(bench, LONE_SURROGATE)
    assert get(bench, f"/attestations/{tx}/0")[0] == 200  # shown (evidence null, and why)
    status, body = get(bench, f"/attestations/{tx}/0/verify")
    assert status == 200 and not body["ok"]
    assert _check(body["checks"], "evidence.canonical") == {
        "id": "evidence.canonical",
        "ok": False,
        "detail": "not canonical: evidence holds text that is not Unicode (an escaped lone "
        "surrogate)",
    }


def test_verification_of_evidence_holding_a_lone_surrogate_exits_without_a_traceback(
    bench: Bench,
) -> None:
    tx = _skipped_with(bench, LONE_SURROGATE)
    done = bench.verify("--tx", tx, "--json")
    assert done["crash"] is None, done["crash"]
    assert done["code"] == 1 and done["stderr"] == ""
    (proof,) = json.loads(done["stdout"])["proofs"]
    assert not proof["ok"]
    assert "lone surrogate" in _check(proof["checks"], "evidence.canonical")["detail"]


def test_plain_text_verification_of_evidence_holding_a_lone_surrogate_says_why_it_fails(
    bench: Bench,
) -> None:
    tx = _skipped_with(bench, LONE_SURROGATE)
    done = bench.verify("--tx", tx)
    assert done["crash"] is None, done["crash"]
    assert done["code"] == 1 and done["stderr"] == ""
    lines = done["stdout"].splitlines()
    assert lines[0].startswith(f"FAIL proof 0 of {tx}: facility ")
    assert (
        "  FAIL evidence.canonical: not canonical: evidence holds text that is not Unicode "
        "(an escaped lone surrogate)"
    ) in lines
    assert lines[-1] == "0 of 1 proofs passed every check"
