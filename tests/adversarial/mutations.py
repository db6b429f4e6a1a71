"""What every mutation suite shares: bit flips, a value that surely differs, and matching a
decoded custom error against the one an oracle predicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from redundancy.errors import ContractRevertError

#: ``data.draw`` of ``st.data()``, or the ``draw`` of a composite strategy.
Draw = Callable[..., Any]
#: A predicted refusal: the custom error's name and the arguments to check (by name).
Refusal = tuple[str, dict[str, Any]]

#: secp256k1's group order, and the largest s OpenZeppelin's ECDSA takes (EIP-2).
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_ORDER = ORDER // 2


def flip_bit(value: Any, bit: int) -> Any:
    """``value`` (an int or bytes) with one bit flipped (bit 0: the lowest of an int, the
    highest of the first byte)."""
    if isinstance(value, int):
        return value ^ (1 << bit)
    out = bytearray(value)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


def bit_width(value: Any, int_bits: int = 256) -> int:
    return int_bits if isinstance(value, int) else 8 * len(value)


def differs(new: Any, old: Any) -> Any:
    """``new``, or if it equals ``old`` the nearest value that does not: a mutation must
    mutate, and filtering on ``old`` would make Hypothesis's choices depend on the chain."""
    if new != old:
        return new
    if isinstance(new, int):
        return new ^ 1
    return new[:-1] + bytes([new[-1] ^ 1]) if new else b"\x00"


def matches(err: ContractRevertError, expected: Refusal) -> bool:
    """Whether ``err`` is the predicted custom error with the predicted arguments."""
    name, args = expected
    return err.error_name == name and all(err.args_by_name.get(k) == v for k, v in args.items())


def nonzero32() -> st.SearchStrategy[bytes]:
    """32 bytes, never all zero (a filter would mostly retry: Hypothesis favours zeros)."""
    return st.integers(1, 2**256 - 1).map(lambda v: v.to_bytes(32, "big"))
