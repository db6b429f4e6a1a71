"""The campaign's goal lines, from run results: the safety verdict and both write-RTO bounds
(the issue's, which lies below raft's median detection time, and raft's own)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from devnet.campaign import RunResult, goals
from devnet.checker import Verdict
from devnet.distance import DelayMatrix


def _run(kind: str, unavailable: float, verdict: Verdict | None = None) -> RunResult:
    return RunResult(0, kind, "fra1", "", verdict or Verdict(), unavailable, 0.0, None, 1.0)


def _campaign() -> Any:
    matrix = DelayMatrix.of(("fra1", "ams1", "lon1"), 1.5)
    return SimpleNamespace(fabric=SimpleNamespace(matrix=matrix), election_ms=300)


def test_the_rto_is_judged_against_the_issue_bound_and_raft_own() -> None:
    campaign = _campaign()
    largest = max(campaign.fabric.matrix.quorum_rtt_us(s) for s in ("fra1", "ams1", "lon1"))
    raft = 0.6 + 2 * largest / 1e6
    outages = [0.33, 0.45, 0.49, 0.52, raft - 0.01, raft + 0.2]
    lines = goals([_run("partition-leader", x) for x in outages], campaign)
    issue = next(line for line in lines if line.startswith("write RTO over 6"))
    assert issue.endswith("NOT met")  # p99 (the worst of six) is past ET + 2 x RTT
    own = next(line for line in lines if line.startswith("write RTO against raft's own bound"))
    assert f"= {raft:.2f} s: 5 of 6 within" in own


def test_safety_is_met_only_over_200_runs_with_nothing_lost() -> None:
    campaign = _campaign()
    clean = [_run("pause-node", 0.02) for _ in range(200)]
    assert goals(clean, campaign)[0].endswith(": met")
    assert goals(clean[:199], campaign)[0].endswith(": not shown")
    lost = [*clean, _run("kill-site", 0.4, Verdict(lost=["order a/1"]))]
    assert goals(lost, campaign)[0].startswith("safety: 1 acknowledged orders lost")
    assert goals(lost, campaign)[0].endswith(": not shown")
    assert not any("write RTO" in line for line in goals(clean, campaign))
