"""The hedged request's decisions, with scripted attempts in place of etcd members.

What a real member does (refuse, hang, answer) is in ``tests/integration/test_etcd_grpc.py``
and the fault tests; a refusal from one member while another attempt is still out cannot be
staged there (every member of a test cluster judges a request alike; in production a learner
left in the endpoint list, a member with a lower ``--max-request-bytes`` or a proxy answering
403 can), so the combinations are scripted here against the client's own ``_hedge`` and judges.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from validator.node.errors import EtcdError, EtcdUnavailableError, WriteOutcomeUnknownError
from validator.node.etcd import EtcdClient
from validator.node.sequencer import FENCE, Sequencer

ENDPOINTS = ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"]
Attempt = Callable[[int, float], Coroutine[Any, Any, str]]


def judge(
    index: int, path: str, task: asyncio.Task[str], limit: float
) -> tuple[str | None, str, bool]:
    """Like the client's judges: "refuse" raises, "lost" may have reached, else an answer."""
    result = task.result()
    if result == "refuse":
        raise EtcdError(f"{path}: member {index} refused the request")
    if result == "lost":
        return None, f"member {index}: no answer", True
    return result, "", False


def script(by_member: dict[int, tuple[float, str]]) -> Attempt:
    """Member i answers what ``by_member[i]`` says after its delay ("hang": never)."""

    async def attempt(index: int, limit: float) -> str:
        delay, outcome = by_member[index]
        if outcome == "hang":
            await asyncio.sleep(3600)
        await asyncio.sleep(delay)
        return outcome

    return attempt


async def hedge(attempt: Attempt, deadline: float = 1.0) -> str:
    client = EtcdClient(ENDPOINTS)
    until = asyncio.get_running_loop().time() + deadline
    result: str = await client._hedge("kv/txn", attempt, judge, 0.05, until)
    return result


def test_a_refusal_does_not_end_the_request_while_an_earlier_attempt_may_still_answer() -> None:
    # member 0 is slow (a far leader) and commits; member 1 refuses at once (a learner)
    attempt = script({0: (0.3, "committed"), 1: (0.0, "refuse"), 2: (0.0, "refuse")})
    assert asyncio.run(hedge(attempt)) == "committed"


def test_a_refusal_beside_an_attempt_that_never_answers_is_not_a_refusal() -> None:
    # member 0 never answers (the proposal may sit in it and commit later): whatever the others
    # refused, the request may have been applied, so it must be settled, not reported refused
    attempt = script({0: (0.0, "hang"), 1: (0.0, "refuse"), 2: (0.0, "refuse")})
    with pytest.raises(EtcdUnavailableError) as caught:
        asyncio.run(hedge(attempt, deadline=0.5))
    assert caught.value.maybe_applied
    attempt = script({0: (0.0, "lost"), 1: (0.0, "refuse"), 2: (0.0, "refuse")})
    with pytest.raises(EtcdUnavailableError) as caught:
        asyncio.run(hedge(attempt, deadline=0.5))
    assert caught.value.maybe_applied


def test_a_refusal_with_nothing_else_out_is_final_and_immediate() -> None:
    attempt = script({0: (0.0, "refuse"), 1: (0.0, "refuse"), 2: (0.0, "refuse")})
    started = time.monotonic()
    with pytest.raises(EtcdError, match="member 0 refused") as caught:
        asyncio.run(hedge(attempt, deadline=5.0))
    assert not isinstance(caught.value, EtcdUnavailableError)
    assert time.monotonic() - started < 1.0


def test_waiting_at_the_attempt_cap_does_not_spin() -> None:
    # every member hangs: after 2 x 3 attempts no more are launched, and the wait for an
    # answer must sleep, not poll (it used to spin about 40,000 times a second)
    attempt = script({0: (0.0, "hang"), 1: (0.0, "hang"), 2: (0.0, "hang")})
    cpu = time.process_time()
    with pytest.raises(EtcdUnavailableError) as caught:
        asyncio.run(hedge(attempt, deadline=1.5))
    assert caught.value.maybe_applied
    used = time.process_time() - cpu
    assert used < 0.4, f"{used:.2f} s of CPU to wait 1.5 s"


def test_an_attempt_cancelled_here_may_have_reached_its_member() -> None:
    async def run() -> tuple[Any, str, bool]:
        client = EtcdClient(ENDPOINTS)
        task = asyncio.get_running_loop().create_task(asyncio.sleep(10))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return client._judge_grpc(0, "kv/txn", task, 1.0)  # type: ignore[arg-type]

    data, why, reached = asyncio.run(run())
    assert data is None and reached and "cancelled" in why


@pytest.mark.parametrize(
    "answer",
    [
        b'{"error":"raft: stopped","code":2,"message":"raft: stopped"}',  # removed, still up
        b'{"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"}',
    ],
)
def test_a_member_that_cannot_serve_is_skipped_not_a_refusal(answer: bytes) -> None:
    """Answers etcd's JSON gateway gave (HTTP 500): another member may well commit the request,
    so it moves on (one of these, from a member just removed from the cluster, used to end a
    write that a live member would have taken: seen in test_venue_membership)."""

    async def run() -> tuple[Any, str, bool]:
        client = EtcdClient(ENDPOINTS)
        task = asyncio.get_running_loop().create_task(_answer(500, answer))
        await task
        return client._judge(0, "kv/put", task, 1.0)

    data, why, reached = asyncio.run(run())
    assert data is None and reached
    assert answer.split(b'"')[3].decode() in why


async def _answer(status: int, body: bytes) -> tuple[int, bytes]:
    return status, body


class FenceRefused:
    """Stands in for the etcd client of one sequencer: every chunk write may have reached a
    member and goes unconfirmed; the fence that settles it is then refused."""

    def __init__(self) -> None:
        self.fences = 0

    async def last_key(self, start: bytes, end: bytes) -> None:
        return None

    async def create(self, key: bytes, value: bytes) -> tuple[int, bool]:
        return 1, True  # the gateway's floor

    async def get(self, key: bytes) -> None:
        return None

    async def create_or_read(
        self, key: bytes, value: bytes, hedge_after: float, until: float, floor: object = None
    ) -> tuple[int, bytes]:
        if value == FENCE:
            self.fences += 1
            raise EtcdError("kv/txn: etcdserver: request is too large")
        await asyncio.sleep(max(0.0, min(hedge_after, until - asyncio.get_running_loop().time())))
        raise EtcdUnavailableError("no etcd member answered in time", True)


def test_a_refused_fence_leaves_the_outcome_unknown() -> None:
    async def run() -> BaseException | None:
        etcd = FenceRefused()
        sequencer = Sequencer(etcd, "gw", deadline=0.3, attempt_timeout=0.1)  # type: ignore[arg-type]
        runner = asyncio.create_task(sequencer.run())
        try:
            await sequencer.submit([b'{"type":"deposit","account":"a","amount":1}'])
        except BaseException as exc:  # the outcome is what is checked
            return exc
        finally:
            runner.cancel()
        return None

    outcome = asyncio.run(run())
    assert isinstance(outcome, WriteOutcomeUnknownError), repr(outcome)
    assert "not fenced" in str(outcome)


def test_clients_waiting_on_a_write_are_answered_when_the_gateway_stops() -> None:
    class Hangs(FenceRefused):
        async def create_or_read(
            self, key: bytes, value: bytes, hedge_after: float, until: float, floor: object = None
        ) -> tuple[int, bytes]:
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

    async def run() -> BaseException | None:
        sequencer = Sequencer(Hangs(), "gw")  # type: ignore[arg-type]
        runner = asyncio.create_task(sequencer.run())
        waiting = asyncio.create_task(sequencer.submit([b"{}"]))
        await asyncio.sleep(0.1)
        runner.cancel()  # the gateway stops: its writes in flight are cancelled with it
        await asyncio.gather(runner, return_exceptions=True)
        done, _ = await asyncio.wait([waiting], timeout=2)
        return waiting.exception() if done else None

    outcome = asyncio.run(run())
    assert isinstance(outcome, WriteOutcomeUnknownError), repr(outcome)
