"""Canonical evidence JSON."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redundancy.errors import EvidenceError
from redundancy.evidence import (
    MAX_DOCUMENT_BYTES,
    MAX_DOCUMENT_DEPTH,
    _check,
    _plain,
    canonical_json,
    evidence_hash,
    nesting_depth,
    parse_document,
)


def test_canonical_json_sorts_keys_and_strips_space() -> None:
    assert (
        canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}})
        == '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()
    )


def test_canonical_json_is_stable_across_key_order() -> None:
    one = canonical_json({"x": 1, "y": [True, None]})
    two = canonical_json({"y": [True, None], "x": 1})
    assert one == two and evidence_hash(one) == evidence_hash(two)


def test_floats_are_refused_with_their_path() -> None:
    with pytest.raises(EvidenceError, match=r"\$\.ups\.load is a float"):
        canonical_json({"ups": {"load": 0.5}})


def test_non_string_keys_and_odd_types_are_refused() -> None:
    with pytest.raises(EvidenceError, match="not a string"):
        canonical_json({1: "x"})
    with pytest.raises(EvidenceError, match="unsupported type bytes"):
        canonical_json({"raw": b"x"})


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_json_values)
def test_fast_path_agrees_with_the_checked_path(document: object) -> None:
    try:
        _check(document, "$")
        checked_ok = True
    except EvidenceError:
        checked_ok = False
    if _plain(document):
        assert checked_ok
    try:
        canonical_json(document)
        assert checked_ok
    except EvidenceError:
        assert not checked_ok


def test_paths_name_list_indices_and_nested_keys() -> None:
    with pytest.raises(EvidenceError, match=r"^evidence field \$\.a\[1\]\.b is a float \(0\.5\)"):
        canonical_json({"a": [1, {"b": 0.5}]})
    with pytest.raises(EvidenceError, match=r"^evidence key 1 at \$\.x is not a string$"):
        canonical_json({"x": {1: "y"}})
    with pytest.raises(EvidenceError, match=r"^evidence field \$\[0\] has unsupported type set$"):
        canonical_json([set()])


def test_tuples_bools_and_none_are_plain_json() -> None:
    assert _plain((1, "a", True, None)) and not _plain((1, 0.5))
    assert not _plain({1: "x"}) and not _plain(b"x")
    assert canonical_json((True, None, [1])) == b"[true,null,[1]]"


# -- bounded parsing of hostile documents


@pytest.mark.parametrize(
    ("raw", "limit", "depth"),
    [
        (b"[[],[[]]]", 3, 3),
        (b'["[[[[", {"a": "]]]]"}]', 2, 2),  # brackets inside strings do not count
        (b'["\\"[[[[[[", {"a": []}]', 3, 3),  # nor after an escaped quote inside a string
        (b'["\\\\", [[]]]', 2, 3),  # an escaped backslash ends the escape: the string ends
    ],
)
def test_nesting_depth_counts_only_structural_brackets(raw: bytes, limit: int, depth: int) -> None:
    """More brackets than ``limit`` (so the scan runs, not the count's shortcut)."""
    assert raw.count(b"[") + raw.count(b"{") > limit
    assert nesting_depth(raw, limit) == depth


def test_nesting_depth_stops_counting_past_the_limit() -> None:
    deep = b"[" * 50 + b"]" * 50
    assert nesting_depth(deep, 5) == 6
    assert nesting_depth(b"[[[]]]", 3) == 3
    assert nesting_depth(b"[[[]]][[]]", 3) == 3  # few brackets: the count bounds the depth
    assert nesting_depth(b"[]" * 4, 3) == 1


def test_parse_document_accepts_exactly_its_bounds() -> None:
    at_size = b'"' + b"a" * 98 + b'"'
    assert parse_document(at_size, max_bytes=100) == "a" * 98
    with pytest.raises(EvidenceError, match=r"^document is 101 bytes, more than the 100 allowed$"):
        parse_document(at_size + b" ", max_bytes=100)
    assert parse_document(b"[[[1]]]", max_depth=3) == [[[1]]]
    with pytest.raises(EvidenceError, match=r"^document nests deeper than 2 levels$"):
        parse_document(b"[[[1]]]", max_depth=2)
    assert MAX_DOCUMENT_BYTES == 64 * 1024 and MAX_DOCUMENT_DEPTH == 32
    assert parse_document(b"[" * 32 + b"]" * 32) is not None
    with pytest.raises(EvidenceError, match="deeper than 32"):
        parse_document(b"[" * 33 + b"]" * 33)
    with pytest.raises(EvidenceError, match="65537 bytes"):
        parse_document(b" " * (64 * 1024) + b"1")


def test_parse_document_names_what_is_wrong() -> None:
    with pytest.raises(EvidenceError, match=r"^document is not UTF-8$"):
        parse_document(b'"\xff"')
    with pytest.raises(EvidenceError, match=r"^document is not JSON: Expecting value"):
        parse_document(b"[,]")


def test_objects_count_toward_the_depth_like_arrays() -> None:
    nested_objects = b'{"a":{"b":{"c":1}}}'
    assert nesting_depth(nested_objects, 2) == 3
    with pytest.raises(EvidenceError, match="deeper than 2"):
        parse_document(nested_objects, max_depth=2)
    mixed = b'[{"a":[{"b":1}]}]'
    assert nesting_depth(mixed, 3) == 4
    assert parse_document(mixed, max_depth=4) == [{"a": [{"b": 1}]}]
