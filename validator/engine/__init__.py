"""The deterministic state machine: ``Engine.apply(message) -> Result``, one input at a time.

Pure: no clock, no randomness, no I/O. Nothing here imports ``validator.node``.
"""

from validator.engine.machine import Engine

__all__ = ["Engine"]
