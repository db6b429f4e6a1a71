"""The adversarial profile (how many cases each class runs) and the count of cases that ran.

The CI profile is small enough for the default test run; ``ADVERSARIAL_EXAMPLES=10000`` runs at
least that many cases in every class (each class's tests share it out so the class reaches it).
The counts are printed at the end of the run by this folder's ``conftest.py``.
"""

from __future__ import annotations

import math
import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings

#: The adversarial classes, in the order the summary prints them.
CLASSES = ("proofs", "batches", "access", "selection", "api", "geography")
#: Cases per class in the default (CI) run: about two minutes for the folder on two cores.
CI_EXAMPLES = {
    "proofs": 100,
    "batches": 88,
    "access": 104,
    "selection": 240,
    "api": 30,
    "geography": 42,
}
ENV = "ADVERSARIAL_EXAMPLES"
#: Seconds a case may take at most, on average, before the test's timeout stops it.
SECONDS_PER_CASE = 3.0

COUNTS: Counter[str] = Counter()


def examples(cls: str, share: float = 1.0) -> int:
    """How many cases a test of class ``cls`` runs: its ``share`` of the class's total."""
    given = os.environ.get(ENV, "").strip()
    total = int(given) if given else CI_EXAMPLES[cls]
    return max(1, math.ceil(total * share))


def profile(cls: str, share: float = 1.0) -> settings:
    """Hypothesis settings for a test of class ``cls`` (a decorator). No deadline: a case
    waits for anvil and the API, whose speed depends on the machine's load."""
    return settings(
        max_examples=examples(cls, share),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


def timeout(cls: str, share: float = 1.0) -> pytest.MarkDecorator:
    """A pytest timeout that grows with the profile (the default 300 s suits the CI run)."""
    return pytest.mark.timeout(max(300, int(examples(cls, share) * SECONDS_PER_CASE)))


def count(cls: str) -> None:
    """Record one case of class ``cls`` that ran to the end with every assertion holding."""
    if cls not in CLASSES:
        raise KeyError(cls)
    COUNTS[cls] += 1


def summary() -> str:
    return "adversarial cases: " + ", ".join(f"{c} {COUNTS[c]}" for c in CLASSES)
