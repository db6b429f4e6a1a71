"""A gateway's sequencer holds at most ``max_queued`` messages waiting for etcd: past that a
request is refused at once (never committed), so an etcd outage under a steady flow cannot grow
the gateway's memory without bound (found by review: the queue had no limit)."""

from __future__ import annotations

import asyncio

import pytest

from validator.node.errors import WriteOutcomeUnknownError, WriteRefusedError
from validator.node.etcd import EtcdClient
from validator.node.sequencer import Sequencer


def test_a_full_queue_refuses_at_once_and_takes_again_once_it_drains() -> None:
    async def scenario() -> None:
        # not running: nothing takes the queue, as when every write in flight waits on etcd
        seq = Sequencer(EtcdClient(["http://127.0.0.1:9"]), "gw", max_queued=10)
        waiting = [asyncio.create_task(seq.submit([b"x"] * 5)) for _ in range(2)]
        await asyncio.sleep(0)
        assert seq.queued == 10
        with pytest.raises(WriteRefusedError, match="10 messages already wait for etcd"):
            await seq.submit([b"y"])
        assert seq.refused_queue_full == 1
        group = seq._take()  # a chunk write takes them
        assert len(group) == 2 and seq.queued == 0
        big = asyncio.create_task(seq.submit([b"z"] * 50))  # larger than the bound: nothing waits
        await asyncio.sleep(0)
        assert seq.queued == 50
        for task in (*waiting, big):
            task.cancel()

    asyncio.run(scenario())


def test_messages_still_waiting_when_the_gateway_stops_are_refused_never_left_hanging() -> None:
    """A small remainder held back behind a write in flight (on one host it waits for that
    write) was never sent: when the gateway stops it is told refused, the truth, and the write
    in flight is told its outcome is unknown."""

    async def scenario() -> tuple[BaseException | None, BaseException | None, int]:
        # nothing answers: the write keeps retrying until its deadline
        seq = Sequencer(EtcdClient(["http://127.0.0.1:9"]), "gw", pipeline_min=64, deadline=30)
        runner = asyncio.create_task(seq.run())
        first = asyncio.create_task(seq.submit([b"a"]))
        for _ in range(3):
            await asyncio.sleep(0)
        held = asyncio.create_task(seq.submit([b"b"]))
        for _ in range(3):
            await asyncio.sleep(0)
        waiting = seq.queued
        runner.cancel()
        await asyncio.wait_for(asyncio.gather(runner, first, held, return_exceptions=True), 5)
        await seq.etcd.aclose()
        return first.exception(), held.exception(), waiting

    first, held, waiting = asyncio.run(scenario())
    assert waiting == 1
    assert isinstance(held, WriteRefusedError)
    assert "stopped before the chunk was sent" in str(held)
    assert isinstance(first, WriteOutcomeUnknownError)
