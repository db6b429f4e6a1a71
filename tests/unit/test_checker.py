"""The campaign's checker on small histories: a clean one passes, and each kind of violation
planted in a copy of it is found and named."""

from __future__ import annotations

import copy

import pytest

from devnet.checker import RunRecord, Window, check, replay
from devnet.flow import order_flow
from devnet.history import Op, canonical

FLOW = canonical(order_flow(400, 5))
ORDER = next(i for i, (_, _, retriable) in enumerate(FLOW) if retriable)
"""The first message with a client order id."""


def key(gateway: str, counter: int) -> str:
    return f"/venue/log/{gateway}/{counter:020d}"


def op(i: int, gateway: str, result: str, rev: int = 0, pos: int = 0, status: int = 200) -> Op:
    _, line, retriable = FLOW[i]
    t = float(i)
    return Op(i, 0, gateway, gateway, line, retriable, t, t + 0.01, result, status, rev, pos)


@pytest.fixture
def clean() -> RunRecord:
    """40 messages, 4 per chunk, alternating gateways; every one acknowledged."""
    log, ops = [], []
    for c in range(10):
        gateway = ("fra1", "ams1")[c % 2]
        rev = 100 + c
        lines = [FLOW[i][1] for i in range(4 * c, 4 * c + 4)]
        log.append((key(gateway, c + 1), rev, lines))
        ops += [op(4 * c + k, gateway, "ok", rev, k) for k in range(4)]
    roots, final, seq, _ = replay(log, 2)
    nodes = {n: {"applied_chunk": 10, "hash": final, "seq": seq} for n in ("fra1", "ams1")}
    return RunRecord(1, 0, [], ["fra1", "ams1", "lon1"], 2, ops, log, {"fra1": roots}, nodes, [])


def test_a_clean_history_passes(clean: RunRecord) -> None:
    verdict = check(clean)
    assert verdict.ok, verdict.problems()
    assert (verdict.acked, verdict.chunks, verdict.unknown) == (40, 10, 0)


def test_a_dropped_acknowledged_order_is_lost(clean: RunRecord) -> None:
    bad = copy.deepcopy(clean)
    k, rev, lines = bad.log[3]
    bad.log[3] = (k, rev, lines[:2] + lines[3:])  # the ack said (103, 2): now another line
    verdict = check(bad)
    assert not verdict.ok
    assert any("message 14 acked by ams1 at (103, 2)" in x for x in verdict.lost), verdict.lost


def test_a_duplicated_order_is_found(clean: RunRecord) -> None:
    bad = copy.deepcopy(clean)
    bad.log.append((key("fra1", 11), 200, [clean.log[0][2][1]]))  # message 1 logged again
    verdict = check(bad)
    assert not verdict.ok
    assert any("message 1 logged 2x by gateway fra1" in x for x in verdict.duplicates)


def test_an_order_refused_for_good_that_was_logged_is_a_lie(clean: RunRecord) -> None:
    bad = copy.deepcopy(clean)
    bad.ops.append(op(ORDER, "lon1", "fail", status=503))  # lon1 said "never committed" ...
    bad.log.append((key("lon1", 1), 300, [FLOW[ORDER][1]]))  # ... yet logged it
    verdict = check(bad)
    assert any("logged 1x by gateway lon1" in x for x in verdict.lies), verdict.lies


def test_an_unknown_outcome_may_land_once_but_nothing_unsent_may(clean: RunRecord) -> None:
    rec = copy.deepcopy(clean)
    rec.ops.append(op(ORDER, "lon1", "unknown", status=504))  # an order also tried at lon1
    rec.log.append((key("lon1", 1), 300, [FLOW[ORDER][1]]))  # and that attempt landed
    roots, final, seq, _ = replay(rec.log, 2)
    rec.roots = {"fra1": roots}
    rec.nodes = {"fra1": {"applied_chunk": 11, "hash": final, "seq": seq}}
    verdict = check(rec)
    assert verdict.ok, verdict.problems()  # the engine rejected the copy: it took effect once
    assert verdict.unknown == 1
    rec.log.append((key("lon1", 2), 301, ['{"account":"ghost","amount":1,"type":"deposit"}']))
    assert any("ghost" in x for x in check(rec).phantoms)
    rec.log[-1] = (key("lon1", 2), 301, [FLOW[0][1]])  # a listing, no id: logged twice
    assert any("no client order id" in x for x in check(rec).duplicates)


def test_nodes_must_agree_with_the_log_at_every_boundary(clean: RunRecord) -> None:
    bad = copy.deepcopy(clean)
    bad.roots["ams1"] = {**clean.roots["fra1"], 6: "00" * 32}
    bad.nodes["ams1"] = {**clean.nodes["ams1"], "applied_chunk": 9}
    problems = check(bad).nodes
    assert any("node ams1 published root 0000" in p and "chunk 6" in p for p in problems)
    assert any("node ams1 ended at chunk 9" in p for p in problems)


def test_an_ack_from_a_gateway_cut_off_from_a_quorum_is_split_brain(clean: RunRecord) -> None:
    bad = copy.deepcopy(clean)
    bad.windows = [Window("partition-site", 10.0, 20.0, ["ams1"])]
    problems = check(bad).split_brain
    # ams1 acked messages 12-15 (chunk 3) and 20-23 (chunk 5) at t = 12.0 ... 15.01 etc.
    assert problems and all("gateway ams1" in p for p in problems)
    assert {p.split("message ")[1].split(" ")[0] for p in problems} == {
        str(i) for i in (12, 13, 14, 15)
    }
