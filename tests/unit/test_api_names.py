"""Names shown for domain and facility ids come from evidence and always hash to the id."""

from __future__ import annotations

from api.names import NameBook
from redundancy.domains import Dimension, Kind, domain_id, facility_id, hardware_domain
from redundancy.eip712 import Signer
from redundancy.evidence import canonical_json
from redundancy.proofs import SignedProof, make_proof
from redundancy.tpmquote import tpm_hardware_domain

SIGNER = Signer(b"\x02" * 32)


def proof(kind: Kind, evidence: dict[str, object], d1: bytes, d2: bytes = bytes(32)) -> SignedProof:
    return make_proof(
        SIGNER,
        b"\x00" * 32,
        facility_id=facility_id("fra1"),
        kind=kind,
        evidence=canonical_json(evidence),
        issued_at=1,
        expires_at=2,
        sequence=1,
        domain_id=d1,
        secondary_domain_id=d2,
    )


def test_names_are_learned_from_the_evidence_body() -> None:
    book = NameBook()
    body = {"facility": "fra1", "body": {"metro": "Frankfurt", "country": "de"}}
    metro, country = domain_id(Dimension.METRO, "frankfurt"), domain_id(Dimension.COUNTRY, "de")
    book.learn(proof(Kind.GEOGRAPHY, body, metro, country))
    assert book.facility(facility_id("fra1")) == "fra1"
    assert (book.domain(metro), book.domain(country)) == ("frankfurt", "de")


def test_hardware_names_come_from_vendor_model_firmware() -> None:
    book = NameBook()
    hw = hardware_domain("Dell", "PowerEdge R650", "2.19.1")
    book.learn(
        proof(
            Kind.HARDWARE, {"vendor": "Dell", "model": "PowerEdge R650", "firmware": "2.19.1"}, hw
        )
    )
    assert book.domain(hw) == "dell/poweredge r650/2.19.1"


def test_a_name_that_does_not_hash_to_the_id_is_not_shown() -> None:
    book = NameBook()
    book.learn(
        proof(
            Kind.POWER, {"facility": "ams1", "grid": "ercot"}, domain_id(Dimension.POWER, "caiso")
        )
    )
    assert book.facility(facility_id("fra1")) is None
    assert book.domain(domain_id(Dimension.POWER, "caiso")) is None


def test_evidence_that_is_not_json_is_ignored() -> None:
    book = NameBook()
    p = proof(Kind.POWER, {}, domain_id(Dimension.POWER, "ercot"))
    book.learn(SignedProof(p.attestation, b"\xff\xfe", p.signature))
    assert book.domain(domain_id(Dimension.POWER, "ercot")) is None


def test_text_that_is_not_unicode_is_skipped_and_the_rest_still_named() -> None:
    """JSON escapes let evidence hold a lone surrogate, which no name can hash: learning such a
    document raised UnicodeEncodeError, and the API's index (and every endpoint) with it."""
    book = NameBook()
    grid = domain_id(Dimension.POWER, "ercot")
    raw = (
        b'{"facility":"\\ud800","body":{"grid":"\\udc00x","alt":"ercot",'
        b'"vendor":"\\ud800","model":"m","firmware":"f"}}'
    )
    for kind, d1 in ((Kind.POWER, grid), (Kind.HARDWARE, hardware_domain("a", "m", "f"))):
        book.learn(
            make_proof(
                SIGNER,
                bytes(32),
                facility_id=facility_id("fra1"),
                kind=kind,
                evidence=raw,
                issued_at=1,
                expires_at=2,
                sequence=1,
                domain_id=d1,
            )
        )
    assert book.domain(grid) == "ercot"
    assert book.facility(facility_id("fra1")) is None


def test_a_tpm_hardware_domain_is_named_by_the_quoted_pcr0_not_the_claimed_firmware() -> None:
    pcr0 = "ab" * 32
    measured = tpm_hardware_domain(bytes.fromhex(pcr0))
    claimed = {"vendor": "dell", "model": "r650", "firmware": "2.19.1"}
    evidence = {"facility": "fra1", "body": claimed, "tpm": {"pcrs": {"0": pcr0}}}
    book = NameBook()
    book.learn(proof(Kind.HARDWARE, evidence, measured))
    assert book.domain(measured) == f"tpm-pcr0:{pcr0}"
    assert book.domain(hardware_domain("dell", "r650", "2.19.1")) is None
