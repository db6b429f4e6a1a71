"""What-if failures: is the committee still live, and how many more whole domains may fail.

``redundancy.scores.fail_domains`` says whether the committee survives. Beyond that, with offline
stake ``O`` of total ``S`` (the total does not shrink: failed members still count toward the
two-thirds quorum), a dimension tolerates ``k - 1`` further whole-domain failures, ``k`` the least
number of its surviving domains (largest first) with ``3 * (O + w1 + ... + wk) >= S``. That is
the core's Nakamoto coefficient of the surviving domains against the threshold ``S - 3 * O``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redundancy.domains import Dimension
from redundancy.scores import DIMENSIONS, Member, domain_stakes, fail_domains, nakamoto


@dataclass(frozen=True)
class WhatIf:
    offline: int
    total: int
    live: bool
    failed_members: tuple[str, ...]
    remaining: dict[Dimension, int | None]  # None: consensus already halted

    @property
    def score(self) -> int | None:
        values = [v for v in self.remaining.values() if v is not None]
        return min(values) if self.live and values else None

    @property
    def weakest(self) -> Dimension | None:
        score = self.score
        if score is None:
            return None
        return next(d for d in DIMENSIONS if self.remaining[d] == score)


def what_if(members: Sequence[Member], failed: Sequence[tuple[Dimension, bytes]]) -> WhatIf:
    offline, total, live = fail_domains(members, failed)
    failed_set = set(failed)
    down = [m for m in members if any((d, m.domains[d]) in failed_set for d in DIMENSIONS)]
    up = [m for m in members if m not in down]
    remaining: dict[Dimension, int | None] = {}
    for d in DIMENSIONS:
        threshold = total - 3 * offline
        if not live or threshold <= 0:
            remaining[d] = None
            continue
        online = sorted(domain_stakes(up, d).values(), reverse=True)
        remaining[d] = nakamoto(online, threshold) - 1
    return WhatIf(offline, total, live, tuple(m.address for m in down), remaining)
