"""Exponential backoff with a cap and jitter, for retrying an unreachable chain."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays of initial, 2x, 4x ... up to ``cap`` seconds, each varied by +-``jitter`` so that
    many attestors do not retry in step; ``reset`` after a success."""

    def __init__(
        self,
        initial: float,
        cap: float,
        jitter: float = 0.2,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial <= cap:
            raise ValueError("backoff needs 0 < initial <= cap")
        self.initial = initial
        self.cap = cap
        self.jitter = jitter
        self.rand = rand
        self.failures = 0

    def next(self) -> float:
        """The delay before the next attempt (and count one more failure)."""
        base = min(self.cap, self.initial * float(2 ** min(self.failures, 62)))
        self.failures += 1
        spread = 1 - self.jitter + 2 * self.jitter * self.rand()
        return min(self.cap, base * spread)

    def reset(self) -> None:
        self.failures = 0
