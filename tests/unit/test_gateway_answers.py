"""What a gateway tells a client whose write may still commit (504): an order's retry with the
same client order id is refused as a duplicate, and so is a transfer's with the same request_id,
but a deposit or withdrawal without one (request_id 0 or absent) applies again. Found by review:
the 504 told every client retrying was safe, and a withdrawal retried after one was applied
twice."""

from __future__ import annotations

import asyncio

import pytest

from validator.engine.codec import decode_object
from validator.engine.errors import MessageError
from validator.node.errors import SiteDegradedError
from validator.node.gateway import Gateway, unknown_answer

ORDER = {
    "type": "order", "account": "a", "order_id": 7, "series": "S", "side": "buy", "price": 5,
    "qty": 1,
}  # fmt: skip
CANCEL = {"type": "cancel", "account": "a", "order_id": 7}


@pytest.mark.parametrize(
    ("items", "safe"),
    [
        ([ORDER], True),
        ([ORDER, CANCEL], True),
        ([{"type": "withdraw", "account": "a", "amount": 40}], False),
        ([ORDER, {"type": "deposit", "account": "a", "amount": 100}], False),
        ([{"type": "withdraw", "account": "a", "amount": 40, "request_id": 9}], True),
        ([{"type": "deposit", "account": "a", "amount": 1, "request_id": 0}], False),
        ([ORDER, {"type": "deposit", "account": "a", "amount": 1, "request_id": 3}], True),
    ],
)
def test_a_504_says_whether_a_retry_is_safe(items: list[dict[str, object]], safe: bool) -> None:
    answer = unknown_answer([decode_object(item) for item in items], "no quorum")
    assert answer["outcome"] == "unknown" and answer["retry_safe"] is safe
    assert "no quorum" in answer["error"]
    if safe:
        assert "Retry with the same client order id" in answer["error"]
    else:
        assert "read the account from a node (GET /accounts/{id})" in answer["error"]


class RecordingLog:
    """Stands in for the sequencer (etcd is not what this checks): records what would be logged
    and gives each call the next revision."""

    def __init__(self) -> None:
        self.logged: list[bytes] = []

    async def submit(self, lines: list[bytes]) -> tuple[int, int]:
        self.logged += lines
        return len(self.logged), 0


def test_a_gateway_answers_a_retried_transfer_with_a_request_id_from_memory() -> None:
    """Like an order's retry: the same transfer with the same request_id is not logged again and
    gets its first position; one without a request_id is logged each time (every copy applies);
    another transfer reusing the id with other content is logged for the engine to refuse."""
    log = RecordingLog()
    gateway = Gateway(log, "s1")  # type: ignore[arg-type]
    withdraw = {"type": "withdraw", "account": "a", "amount": 40, "request_id": 9}
    plain = {"type": "deposit", "account": "a", "amount": 1}

    async def run() -> None:
        first = await gateway.accept([withdraw])
        again = await gateway.accept([dict(withdraw)])
        assert first[0]["duplicate"] is False
        assert again[0] == {"rev": first[0]["rev"], "pos": first[0]["pos"], "duplicate": True}
        assert len(log.logged) == 1
        await gateway.accept([plain])
        await gateway.accept([plain])
        assert len(log.logged) == 3
        await gateway.accept([{**withdraw, "amount": 41}])
        assert len(log.logged) == 4

    asyncio.run(run())


def test_during_a_rolling_upgrade_a_gateway_refuses_a_transfers_request_id_and_logs_nothing() -> (
    None
):
    """With transfer_request_ids off (nodes not yet upgraded would not read the field), a
    deposit or withdrawal carrying a request_id is refused naming the field, and nothing of the
    request is logged; the same transfer without one, and orders, are logged as always."""
    log = RecordingLog()
    gateway = Gateway(log, "s1", transfer_request_ids=False)  # type: ignore[arg-type]
    withdraw = {"type": "withdraw", "account": "a", "amount": 40, "request_id": 9}
    order = {**ORDER, "series": "S", "side": "buy", "price": 100, "qty": 1}

    async def run() -> None:
        with pytest.raises(MessageError, match=r"^message 1: request_id: not accepted"):
            await gateway.accept([order, withdraw])
        assert log.logged == []
        plain = {k: v for k, v in withdraw.items() if k != "request_id"}
        acks = await gateway.accept([order, plain, {**plain, "request_id": 0}])
        assert [a["duplicate"] for a in acks] == [False, False, False]
        assert len(log.logged) == 3

    asyncio.run(run())
    on = Gateway(RecordingLog(), "s1")  # type: ignore[arg-type]
    assert asyncio.run(on.accept([withdraw]))[0]["duplicate"] is False


def test_a_request_mixing_retries_and_new_orders_logs_the_new_and_remembers_first_copies() -> None:
    """In one request: a retry of an acknowledged order is answered from memory, new orders and
    a reused id with other content are logged in request order with consecutive positions, and
    an order sent twice in the request is logged twice (the engine refuses the second copy)
    while the gateway remembers the first copy's position for later retries; a copy of the
    reused id's message gets that message's own position (where the engine refused it)."""
    log = RecordingLog()
    gateway = Gateway(log, "s1")  # type: ignore[arg-type]

    def order(order_id: int, price: int = 100) -> dict[str, object]:
        return {**ORDER, "order_id": order_id, "series": "S", "side": "buy", "price": price,
                "qty": 1}  # fmt: skip

    async def run() -> None:
        [known] = await gateway.accept([order(1)])
        acks = await gateway.accept([order(2), order(1), order(3), order(2), order(1, 101)])
        assert acks[1] == {"rev": known["rev"], "pos": known["pos"], "duplicate": True}
        fresh = [acks[i] for i in (0, 2, 3, 4)]
        assert [a["duplicate"] for a in fresh] == [False] * 4
        assert len(log.logged) == 5  # (the stand-in's revision: lines logged so far)
        assert {a["rev"] for a in fresh} == {5} and [a["pos"] for a in fresh] == [0, 1, 2, 3]
        [again] = await gateway.accept([order(2)])
        assert again == {"rev": 5, "pos": 0, "duplicate": True}  # the first copy's position
        [changed] = await gateway.accept([order(1, 101)])  # the reused id's copy, at pos 3
        assert changed == {"rev": 5, "pos": 3, "duplicate": True} and len(log.logged) == 5
        assert gateway.acknowledged == 5

    asyncio.run(run())


def test_a_gateway_remembers_at_least_half_its_memory_of_the_newest_orders() -> None:
    """The memory keeps two generations of ``remember // 2`` lines: a retry of any of the newest
    ``remember // 2`` acknowledged orders is answered from it; an older one is eventually
    forgotten and logged again (the engine rejects that copy)."""
    log = RecordingLog()
    gateway = Gateway(log, "s1", remember=4)  # type: ignore[arg-type]
    orders = [{**ORDER, "order_id": i} for i in range(10)]

    async def run() -> None:
        for i, item in enumerate(orders):
            await gateway.accept([item])
            for newest in orders[max(0, i - 1) : i + 1]:  # the newest remember // 2 = 2
                [again] = await gateway.accept([newest])
                assert again["duplicate"] is True
        assert len(log.logged) == 10
        [forgotten] = await gateway.accept([orders[0]])
        assert forgotten["duplicate"] is False and len(log.logged) == 11

    asyncio.run(run())


def test_a_degraded_gateway_answers_retries_and_refuses_the_first_new_order_logging_nothing() -> (
    None
):
    log = RecordingLog()
    reasons: list[str] = []
    gateway = Gateway(log, "s1", degraded=lambda: reasons)  # type: ignore[arg-type]
    known, new = ORDER, {**ORDER, "order_id": 8}

    async def run() -> None:
        [first] = await gateway.accept([known])
        reasons.append("ups on battery")
        [again] = await gateway.accept([known])
        assert again == {**first, "duplicate": True}
        with pytest.raises(SiteDegradedError) as refused:
            await gateway.accept([known, CANCEL, new])
        assert refused.value.reasons == ["ups on battery"]
        assert "(message 2 is one)" in str(refused.value)
        assert len(log.logged) == 1 and gateway.refused_degraded == 1
        [cancel] = await gateway.accept([CANCEL])  # reducing risk is still taken
        assert cancel["duplicate"] is False and len(log.logged) == 2

    asyncio.run(run())


class HeldLog(RecordingLog):
    """A sequencer whose writes are answered only when the test lets them go, in log order."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def submit(self, lines: list[bytes]) -> tuple[int, int]:
        answer = await super().submit(lines)
        await self.release.wait()
        return answer


def test_a_resend_while_the_first_copy_is_in_flight_leaves_the_first_position_remembered() -> None:
    """Neither copy finds the other (both logged; the engine rejects the second), and the
    gateway remembers the first copy's position, wherever it had one: found by review, a
    plain update let the second, rejected copy replace it."""

    async def run(remember: int) -> None:
        log = HeldLog()
        gateway = Gateway(log, "s1", remember=remember)  # type: ignore[arg-type]
        if remember == 4:  # the first copy remembered in the older generation
            log.release.set()
            await gateway.accept([{**ORDER, "order_id": 1}])
            log.release.clear()
        first = asyncio.create_task(gateway.accept([ORDER]))
        await asyncio.sleep(0)
        second = asyncio.create_task(gateway.accept([ORDER]))
        await asyncio.sleep(0)
        log.release.set()
        [a], [b] = await first, await second
        assert (a["duplicate"], b["duplicate"]) == (False, False) and a != b
        [again] = await gateway.accept([ORDER])
        assert again == {**a, "duplicate": True}

    asyncio.run(run(1_000))
    asyncio.run(run(4))
