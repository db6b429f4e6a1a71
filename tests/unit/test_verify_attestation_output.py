"""redundancy-verify-attestation's output: text it writes may quote hostile chain content."""

from __future__ import annotations

import io

import pytest

from redundancy.attestation_verifier import ProofReport
from redundancy.cli.verify_attestation import emit, render
from redundancy.devicecert import canonical_check
from redundancy.errors import EvidenceError
from redundancy.evidence import canonical_json, parse_document
from redundancy.proofcheck import CheckResult


def _stream(encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding=encoding, newline="")


def _written(stream: io.TextIOWrapper) -> bytes:
    stream.flush()
    raw = stream.buffer
    assert isinstance(raw, io.BytesIO)
    return raw.getvalue()


def test_canonical_json_refuses_a_lone_surrogate_with_an_evidence_error() -> None:
    doc = parse_document(b'{"body":"\\ud800"}')
    with pytest.raises(EvidenceError, match="lone surrogate"):
        canonical_json(doc)


def test_the_canonical_check_of_evidence_holding_a_lone_surrogate_fails_and_says_why() -> None:
    evidence = b'{"body":"\\ud800"}'
    result = canonical_check(parse_document(evidence), evidence)
    assert result == CheckResult(
        "evidence.canonical",
        False,
        "not canonical: evidence holds text that is not Unicode (an escaped lone surrogate)",
    )


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-8", b"detail \\ud800 and \xc3\xa9\n"),
        ("ascii", b"detail \\ud800 and \\xe9\n"),
    ],
)
def test_emit_writes_what_the_stream_cannot_encode_as_an_escape(
    encoding: str, expected: bytes
) -> None:
    stream = _stream(encoding)
    emit("detail \ud800 and \xe9", stream)
    assert _written(stream) == expected


def test_render_names_each_failed_check_and_counts_the_proofs() -> None:
    report = ProofReport(
        "0xab",
        0,
        "0x01",
        "power",
        3,
        [CheckResult("evidence.canonical", False, "not canonical"), CheckResult("x.y", True)],
    )
    assert render([report]).splitlines() == [
        "FAIL proof 0 of 0xab: facility 0x01 power #3",
        "  FAIL evidence.canonical: not canonical",
        "  ok   x.y",
        "0 of 1 proofs passed every check",
    ]
