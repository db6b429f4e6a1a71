"""Canonical evidence JSON."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redundancy.errors import EvidenceError
from redundancy.evidence import _check, _plain, canonical_json, evidence_hash


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
