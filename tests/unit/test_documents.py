"""Bounded parsing of hostile JSON (evidence from calldata, peers' datagrams)."""

from __future__ import annotations

import json
import time

import pytest

from redundancy.errors import EvidenceError
from redundancy.evidence import (
    MAX_DOCUMENT_BYTES,
    MAX_DOCUMENT_DEPTH,
    nesting_depth,
    parse_document,
)


def nested(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


def test_honest_documents_parse() -> None:
    doc = {"v": 1, "kind": "power", "body": {"grid": "ercot", "feeds": [1, 2]}, "f": 1.5}
    assert parse_document(json.dumps(doc).encode()) == doc


def test_the_deepest_allowed_document_parses_and_one_more_level_is_refused() -> None:
    assert parse_document(nested(MAX_DOCUMENT_DEPTH)) is not None
    with pytest.raises(EvidenceError, match=f"deeper than {MAX_DOCUMENT_DEPTH} levels"):
        parse_document(nested(MAX_DOCUMENT_DEPTH + 1))
    objects = ('{"a":' * (MAX_DOCUMENT_DEPTH + 1) + "1" + "}" * (MAX_DOCUMENT_DEPTH + 1)).encode()
    with pytest.raises(EvidenceError, match="deeper than"):
        parse_document(objects)


def test_a_document_that_would_crash_the_parser_is_refused_quickly() -> None:
    """The attack on the API: 200 KB of nested arrays, refused before json.loads recurses."""
    bomb = nested(100_000)
    with pytest.raises(EvidenceError, match="bytes, more than"):
        parse_document(bomb)
    just_small_enough = nested((MAX_DOCUMENT_BYTES - 1) // 2)
    started = time.perf_counter()
    with pytest.raises(EvidenceError, match="deeper than"):
        parse_document(just_small_enough)
    assert time.perf_counter() - started < 1.0  # one linear pass, not a parse


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"note": "[" * 500 + '\\"[{' * 100, "x": [[1]]}).encode()
    assert nesting_depth(text, MAX_DOCUMENT_DEPTH) == 3
    assert parse_document(text)["x"] == [[1]]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [(b"\xff\xfe", "not UTF-8"), (b"{not json", "not JSON"), (b"", "not JSON")],
)
def test_malformed_documents_name_the_problem(raw: bytes, problem: str) -> None:
    with pytest.raises(EvidenceError, match=problem):
        parse_document(raw)
