"""A gateway's sequencer holds at most ``max_queued`` messages waiting for etcd: past that a
request is refused at once (never committed), so an etcd outage under a steady flow cannot grow
the gateway's memory without bound (found by review: the queue had no limit)."""

from __future__ import annotations

import asyncio

import pytest

from validator.node.errors import WriteRefusedError
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
