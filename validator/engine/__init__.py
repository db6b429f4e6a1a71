"""The deterministic state machine: ``Engine.apply(message) -> Result``, one input at a time.

Pure: no clock, no randomness, no I/O. Nothing here imports ``validator.node``.

Two builds of the same sources: the pure-Python reference, and the modules compiled by mypyc
when the package was installed (``setup.py``). ``validator.native`` chooses one (environment
variable ``VALIDATOR_ENGINE``); the compiled modules live in ``_compiled/`` and are found first
only when chosen. ``IMPLEMENTATION`` says which one runs.
"""

from validator.native import compiled_engine_dir

_compiled = compiled_engine_dir()
if _compiled is not None:
    __path__.insert(0, _compiled)

from validator.engine.machine import Engine  # noqa: E402 - after the search path is set

IMPLEMENTATION = "pure" if _compiled is None else "compiled"
"""``"compiled"`` (mypyc) or ``"pure"`` (the Python reference)."""

__all__ = ["IMPLEMENTATION", "Engine"]
