"""Hypothesis strategies for evidence documents anyone can put on chain.

Evidence is calldata: any bytes. These make the ones that break parsers and serialisers:
random bytes; JSON of random shapes with huge numbers, floats (NaN and infinities too), unicode
(lone surrogates among it, escaped or raw), and invalid UTF-8; JSON nested up to ~200 levels;
numbers past what Python parses (4,300 digits) or a float holds; documents at and past the
64 KiB bound; JSON with a byte changed; and device-signed envelopes (canonical, signed by the
facility's real device key, so every deeper check runs) whose fields are hostile.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

from redundancy.devicecert import sign_envelope
from redundancy.errors import EvidenceError
from redundancy.evidence import MAX_DOCUMENT_BYTES, parse_document
from tests.adversarial.mutations import Draw

#: Text with every code point, lone surrogates included (Hypothesis leaves them out unless
#: asked), and runs of the characters parsers trip on.
hostile_text = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
    st.text(st.sampled_from('"\\\x00\u2028\u202e\ufeff\ud800\udfff\U0010ffff[{'), max_size=20),
    st.text(
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from(["", " ", "ercot", "FRA1", "\ud800", "a\udc00b", "0x" + "ff" * 32]),
)
huge_ints = st.one_of(
    st.integers(),
    st.integers(-(2**256), 2**256),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**12, 10**18, 2**255, -1, 0]),
)
floats = st.floats(allow_nan=True, allow_infinity=True)
leaves = st.one_of(st.none(), st.booleans(), huge_ints, floats, hostile_text)
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(hostile_text, inner, max_size=5)
    ),
    max_leaves=30,
)


def nest(value: Any, shape: list[bool]) -> Any:
    """``value`` wrapped once per entry of ``shape``: in a list (True) or an object (False)."""
    for in_list in shape:
        value = [value] if in_list else {"k": value}
    return value


def to_json(value: Any, ascii_only: bool) -> bytes:
    """JSON text of ``value`` (NaN and infinities as JavaScript writes them); with raw
    non-ASCII text, a lone surrogate becomes bytes that are not UTF-8."""
    return json.dumps(value, ensure_ascii=ascii_only, allow_nan=True).encode(
        "utf-8", "surrogatepass"
    )


canonical_leaves = st.one_of(
    st.none(),
    st.booleans(),
    huge_ints,
    st.text(st.characters(codec="utf-8"), max_size=40),
)
#: What canonical JSON (and so a device signature) can hold: no floats, no lone surrogates.
canonical_values = st.recursive(
    canonical_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=12), inner, max_size=4),
    ),
    max_leaves=20,
)


@st.composite
def envelopes(draw: Draw, facility: str, device_key: Ed25519PrivateKey, cert: str) -> bytes:
    """A device-signed envelope (canonical, really signed) with hostile fields."""
    doc: dict[str, Any] = {
        "v": draw(st.one_of(st.just(1), canonical_leaves)),
        "kind": draw(st.one_of(st.sampled_from(["power", "hardware"]), canonical_leaves)),
        "facility": draw(st.one_of(st.just(facility), canonical_leaves)),
        "observedAt": draw(
            st.one_of(
                st.integers(0, 2**40),
                huge_ints,
                st.sampled_from([10**12, 253402300800, -62135596801, -(2**63)]),
                canonical_values,
            )
        ),
        "body": draw(canonical_values),
    }
    if draw(st.booleans()):
        doc[draw(st.text(max_size=8))] = draw(canonical_values)
    try:
        return sign_envelope(doc, device_key, draw(st.one_of(st.just(cert), st.text(max_size=70))))
    except UnicodeEncodeError:  # a key outside UTF-8 after all: sign what can be signed
        return sign_envelope({"v": 1, "body": None}, device_key, cert)


#: The keys the API reads names from (a domain's value, a facility's name, a node's hardware).
NAME_KEYS = [
    "grid",
    "metro",
    "country",
    "asns",
    "provider",
    "facility",
    "vendor",
    "model",
    "firmware",
]


@st.composite
def evidence(draw: Draw, facility: str, device_key: Ed25519PrivateKey, cert: str) -> bytes:
    """Hostile evidence bytes of every shape (see the module doc)."""
    shape = draw(
        st.sampled_from(
            [
                "bytes",
                "json",
                "names",
                "deep",
                "numbers",
                "size",
                "flipped",
                "envelope",
                "envelope+",
            ]
        )
    )
    if shape == "names":  # the shape honest evidence has, with hostile values
        names = draw(st.dictionaries(st.sampled_from(NAME_KEYS), hostile_text | json_values))
        doc = {"v": 1, "kind": "power", "facility": facility, "body": names}
        return to_json(draw(st.sampled_from([doc, names])), draw(st.booleans()))
    if shape == "bytes":
        return bytes(draw(st.binary(max_size=512)))
    if shape == "json":
        return to_json(draw(json_values), draw(st.booleans()))
    if shape == "deep":
        depth = draw(st.integers(1, 220))
        value = nest(
            draw(json_values), draw(st.lists(st.booleans(), min_size=depth, max_size=depth))
        )
        return to_json(value, draw(st.booleans()))
    if shape == "numbers":
        digits = draw(st.integers(1, 6_000))
        text = draw(
            st.sampled_from(
                [
                    "1" * digits,
                    "-" + "9" * digits,
                    f"1e{digits}",
                    f"-1e-{digits}",
                    f"0.{'1' * digits}",
                    "NaN",
                    "-Infinity",
                    "1E400",
                ]
            )
        )
        wrap: str = draw(
            st.sampled_from(["{}", '{{"observedAt":{}}}', "[{}]", '{{"body":{{"x":{}}}}}'])
        )
        return wrap.format(text).encode()
    if shape == "size":
        filler = MAX_DOCUMENT_BYTES - 12 + int(draw(st.integers(-2, 4)))
        return b'{"body":"' + b"a" * filler + b'"}'
    if shape == "flipped":
        raw = bytearray(to_json(draw(json_values), draw(st.booleans())))
        if raw:
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] = draw(st.integers(0, 255))
        return bytes(raw)
    signed = bytes(draw(envelopes(facility, device_key, cert)))
    if shape == "envelope+":  # signed, then a byte changed: the signature no longer holds
        i = draw(st.integers(0, len(signed) - 1))
        signed = signed[:i] + bytes([signed[i] ^ draw(st.integers(1, 255))]) + signed[i + 1 :]
    return signed


def strings_in(raw: bytes) -> list[str]:
    """The strings of a document (to assert a hostile name), or none if it does not parse."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return []
    out: list[str] = []
    stack = [value]
    while stack and len(out) < 64:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
    return out


def holds_unencodable_text(raw: bytes) -> bool:
    """Whether evidence parses (within the bounds chain content is read with) into a document
    holding text UTF-8 cannot encode: a lone surrogate, written as a JSON escape."""
    try:
        doc = parse_document(raw)
    except EvidenceError:
        return False
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
