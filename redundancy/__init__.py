"""Core shared by attestor, validator and api: EIP-712, domain ids, contract client, scores."""

import contextlib as _contextlib
import sys as _sys

# py_ecc (imported by web3 and eth-account) raises the interpreter's recursion limit to 100,000
# when it is first imported. C parsers (json, msgspec) recurse once per nesting level within
# that limit, so past a few tens of thousands of levels they overflow the C stack: 100 KB of
# "[" from a peer, a client or an RPC endpoint killed the process with SIGSEGV instead of
# raising RecursionError. Import it here, first, and put the limit back: every process that
# uses this package then fails such input with an exception it can refuse.
_limit = _sys.getrecursionlimit()
with _contextlib.suppress(ImportError):  # a dependency of eth-account, always installed
    import py_ecc  # noqa: F401  (for its side effect, undone below)
_sys.setrecursionlimit(_limit if _limit < 100_000 else 1_000)  # py_ecc may have come first
del _limit, _contextlib

__version__ = "0.1.0"
