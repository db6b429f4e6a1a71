"""TPM-quoted evidence against real software TPMs (swtpm, started by the fixtures): the attestor's
backend quotes envelopes, the core verifier accepts them, and every kind of forgery is refused
with its own check id (forged or replayed quotes, an AK not certified for the pinned EK chain, a
PCR digest that does not match, stale or unknown nonces, a hardware domain PCR 0 does not name).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from attestor.tpm import TpmIdentity, _run
from devnet.swtpm import AK_HANDLE, Manufacturer, ProvisionedTpm, firmware_measurement
from redundancy.devicecert import fingerprint, sha256_hex, to_der
from redundancy.domains import hardware_domain
from redundancy.evidence import canonical_json
from redundancy.tpmquote import (
    QUOTE_FIELD,
    TpmContext,
    issue_ak_cert,
    quote_data,
    tpm_hardware_domain,
    verify_tpm_envelope,
)

NOW = 0  # set by ``clock`` once the fixtures have made the manufacturer CA and the TPMs
BLOCKS: dict[int, tuple[bytes, int]] = {}
OLD_BLOCK = 7


@pytest.fixture(scope="module", autouse=True)
def clock(soft_tpms: dict[str, ProvisionedTpm]) -> None:
    """The test's "now": after the certificates the fixtures made exist (not at import: in a
    whole-suite run the module is imported long before its fixtures run)."""
    global NOW
    NOW = int(time.time()) + 120
    BLOCKS[100] = (hashlib.sha256(b"block 100").digest(), NOW - 30)
    BLOCKS[OLD_BLOCK] = (hashlib.sha256(b"block 7").digest(), NOW - 3600)


def identity(p: ProvisionedTpm, block: int = 100) -> TpmIdentity:
    return TpmIdentity(
        p.tpm.tcti,
        AK_HANDLE,
        p.ak_cert,
        p.ek_cert,
        p.ca_chain,
        lambda: (block, BLOCKS[block][0]),
    )


def store(tpms: dict[str, ProvisionedTpm]) -> dict[bytes, x509.Certificate]:
    certs = {}
    for p in tpms.values():
        for cert in (p.ak_cert, p.ek_cert, *p.ca_chain):
            certs[fingerprint(cert)] = cert
    return certs


def document(kind: str = "hardware", site: str = "fra1") -> dict[str, Any]:
    body = {"vendor": "dell", "model": "r650", "firmware": "2.19.1"}
    return {"v": 1, "kind": kind, "facility": site, "observedAt": NOW - 5, "body": body}


def context(
    certs: dict[bytes, x509.Certificate],
    pins: set[bytes],
    doc: dict[str, Any],
    domain: bytes | None = None,
) -> TpmContext:
    pcr0 = bytes.fromhex(doc["tpm"]["pcrs"]["0"])
    return TpmContext(
        certificates=certs.get,
        manufacturer_cas=pins,
        block=BLOCKS.get,
        issued_at=NOW,
        kind=doc["kind"],
        domain_id=domain if domain is not None else tpm_hardware_domain(pcr0),
    )


def failed(results: list[Any]) -> set[str]:
    return {r.id for r in results if not r.ok}


@pytest.fixture(scope="module")
def certs(soft_tpms: dict[str, ProvisionedTpm]) -> dict[bytes, x509.Certificate]:
    return store(soft_tpms)


@pytest.fixture(scope="module")
def pins(tpm_manufacturer: Manufacturer) -> set[bytes]:
    return {tpm_manufacturer.root_fingerprint}


@pytest.fixture(scope="module")
def honest(soft_tpms: dict[str, ProvisionedTpm]) -> dict[str, Any]:
    return json.loads(identity(soft_tpms["fra1"]).quote_envelope(document()))


def test_a_quoted_envelope_passes_every_check(
    honest: dict[str, Any], certs: dict[bytes, x509.Certificate], pins: set[bytes]
) -> None:
    results = verify_tpm_envelope(honest, context(certs, pins, honest))
    assert [r for r in results if not r.ok] == []
    assert {r.id for r in results} == {
        "tpm.envelope", "tpm.ca.pinned", "tpm.ek.chain", "tpm.ak.certified", "tpm.quote.form",
        "tpm.quote.signature", "tpm.quote.evidence", "tpm.quote.pcrs", "tpm.nonce.fresh",
        "tpm.hardware_domain",
    }  # fmt: skip


def test_same_firmware_image_same_hardware_domain_whatever_the_config_says(
    soft_tpms: dict[str, ProvisionedTpm],
) -> None:
    """fra1 and ams1 measured the same firmware image into PCR 0 and configure different
    firmware strings; lon1 runs another image. The domain follows the measurement."""
    domains = {}
    for site, claimed in (("fra1", "2.19.1"), ("ams1", "9.9.9-custom"), ("lon1", "2.19.1")):
        doc = document(site=site)
        doc["body"]["firmware"] = claimed
        env = json.loads(identity(soft_tpms[site]).quote_envelope(doc))
        domains[site] = tpm_hardware_domain(bytes.fromhex(env["tpm"]["pcrs"]["0"]))
    assert domains["fra1"] == domains["ams1"]
    assert domains["lon1"] != domains["fra1"]
    # and the configuration alone would have said the opposite
    assert hardware_domain("dell", "r650", "2.19.1") != hardware_domain("dell", "r650", "9.9.9")
    # PCR 0 is the simulated firmware measurement extended once from zero
    expected = hashlib.sha256(bytes(32) + firmware_measurement("acme-uefi-2.19.1")).digest()
    assert soft_tpms["fra1"].tpm.pcr(0) == expected


def forged_pcr_quote(p: ProvisionedTpm, doc: dict[str, Any], fake_pcr0: bytes) -> dict[str, Any]:
    """A real TPM's quote over an envelope that claims PCR 0 holds ``fake_pcr0``: the quoted
    digest is the TPM's real one."""
    ident = identity(p)
    unsigned = {
        **doc,
        "identity": "tpm",
        "nonce": {"block": 100, "hash": BLOCKS[100][0].hex()},
        "tpm": {**ident._tpm_facts(), "pcrs": {"0": fake_pcr0.hex()}},
    }
    work = p.tpm.directory
    _run(
        p.tpm.tcti, "tpm2_quote", "-c", AK_HANDLE, "-l", "sha256:0", "-q",
        quote_data(unsigned).hex(), "-g", "sha256", "-m", "f.attest", "-s", "f.sig", cwd=work,
    )  # fmt: skip
    quote = {"attest": (work / "f.attest").read_bytes().hex(), "signature": ""}
    quote["signature"] = (work / "f.sig").read_bytes().hex()
    return {**unsigned, QUOTE_FIELD: quote}


def flip(hex_text: str, rng: random.Random) -> str:
    raw = bytearray(bytes.fromhex(hex_text))
    i = rng.randrange(len(raw))
    raw[i] ^= 1 << rng.randrange(8)
    return raw.hex()


def test_randomized_mutations_are_each_refused_with_their_own_check(
    soft_tpms: dict[str, ProvisionedTpm],
    honest: dict[str, Any],
    certs: dict[bytes, x509.Certificate],
    pins: set[bytes],
) -> None:
    rng = random.Random(18)
    other = json.loads(identity(soft_tpms["ams1"]).quote_envelope(document(site="ams1")))
    stale = json.loads(identity(soft_tpms["fra1"], OLD_BLOCK).quote_envelope(document()))
    fake_pcr = forged_pcr_quote(soft_tpms["fra1"], document(), hashlib.sha256(b"x").digest())
    base = honest

    def bit_flip_attest(d: dict[str, Any]) -> None:
        d["quote"]["attest"] = flip(d["quote"]["attest"], rng)

    def bit_flip_signature(d: dict[str, Any]) -> None:
        d["quote"]["signature"] = flip(d["quote"]["signature"], rng)

    def replay_into_other_evidence(d: dict[str, Any]) -> None:
        d["body"]["firmware"] = f"{rng.randrange(10**6)}"

    def replay_other_sites_quote(d: dict[str, Any]) -> None:
        d["quote"] = copy.deepcopy(other["quote"])

    def ak_of_another_tpm(d: dict[str, Any]) -> None:
        d["tpm"]["akCert"] = other["tpm"]["akCert"]

    def ek_of_another_tpm(d: dict[str, Any]) -> None:
        d["tpm"]["ekCert"] = other["tpm"]["ekCert"]

    def unknown_nonce(d: dict[str, Any]) -> None:
        d["nonce"]["hash"] = flip(d["nonce"]["hash"], rng)

    def other_nonce_block(d: dict[str, Any]) -> None:
        d["nonce"]["block"] = rng.choice([OLD_BLOCK, 101, 10**9])

    def claimed_pcr(d: dict[str, Any]) -> None:
        d["tpm"]["pcrs"]["0"] = flip(d["tpm"]["pcrs"]["0"], rng)

    # (mutation, the check that must refuse it, the envelope it starts from, domain override)
    Mutation = tuple[Callable[[dict[str, Any]], None] | None, str, dict[str, Any], bytes | None]
    cases: list[Mutation] = [
        (bit_flip_attest, "tpm.quote.signature", base, None),
        (bit_flip_signature, "tpm.quote.signature", base, None),
        (replay_into_other_evidence, "tpm.quote.evidence", base, None),
        (replay_other_sites_quote, "tpm.quote.signature", base, None),
        (ak_of_another_tpm, "tpm.ak.certified", base, None),
        (ek_of_another_tpm, "tpm.ak.certified", base, None),
        (unknown_nonce, "tpm.nonce.fresh", base, None),
        (other_nonce_block, "tpm.nonce.fresh", base, None),
        (claimed_pcr, "tpm.quote.pcrs", base, None),
        (None, "tpm.nonce.fresh", stale, None),
        (None, "tpm.quote.pcrs", fake_pcr, None),
        (None, "tpm.hardware_domain", base, hardware_domain("dell", "r650", "2.19.1")),
    ]
    accepted, tried, refused_by = 0, 0, {}
    for i in range(600):
        mutate, expected, start, domain = cases[i % len(cases)]
        doc = copy.deepcopy(start)
        if mutate is not None:
            mutate(doc)
        # canonical re-encoding as the chain would hold it
        doc = json.loads(canonical_json(doc))
        ctx = context(certs, pins, start, domain)
        bad = failed(verify_tpm_envelope(doc, ctx))
        tried += 1
        if not bad:
            accepted += 1
        assert expected in bad, (mutate and mutate.__name__, expected, bad)
        refused_by.setdefault(expected, 0)
        refused_by[expected] += 1
    assert tried >= 500 and accepted == 0
    assert set(refused_by) == {
        "tpm.quote.signature", "tpm.quote.evidence", "tpm.ak.certified", "tpm.nonce.fresh",
        "tpm.quote.pcrs", "tpm.hardware_domain",
    }  # fmt: skip


def test_an_unpinned_manufacturer_is_refused(
    honest: dict[str, Any], certs: dict[bytes, x509.Certificate]
) -> None:
    other_root = hashlib.sha256(b"another manufacturer").digest()
    bad = failed(verify_tpm_envelope(honest, context(certs, {other_root}, honest)))
    assert bad == {"tpm.ca.pinned"}


def test_an_ak_certified_by_another_ca_is_refused(
    soft_tpms: dict[str, ProvisionedTpm],
    honest: dict[str, Any],
    certs: dict[bytes, x509.Certificate],
    pins: set[bytes],
) -> None:
    """Someone with a CA of their own certifies the real AK for the real EK: the AK certificate
    is not issued by the EK's (pinned) issuing CA."""
    p = soft_tpms["fra1"]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swtpm-localca")])
    rogue_ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1))
        .not_valid_after(dt.datetime(2040, 1, 1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    forged = issue_ak_cert(rogue_ca, key, p.tpm.ak_public(), p.ek_cert, "fra1 AK")
    store_with = {**certs, fingerprint(forged): forged}
    doc = copy.deepcopy(honest)
    doc["tpm"]["akCert"] = sha256_hex(to_der(forged))
    bad = failed(verify_tpm_envelope(doc, context(store_with, pins, honest)))
    assert "tpm.ak.certified" in bad
