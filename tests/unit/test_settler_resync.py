"""The settler across a node's re-sync: boundaries agreed before the refuted one are still
settled once the node serves again, the refuted one is not. The etcd client and the chain are
fakes here (named so): the settler's own order of decisions is what is tested; the real-process
re-sync is in tests/faults/test_nodes.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from validator.node.follower import Boundary, Node
from validator.node.settings import Settings
from validator.node.settler import Settler


class FakeEtcd:
    """Fake: no roots stored, deletes accepted."""

    async def get_range(self, *args: object, **kwargs: object) -> tuple[list[object], int, bool]:
        return [], 0, False

    async def delete_keys(self, keys: list[bytes]) -> None:
        pass


def test_agreed_boundaries_wait_out_a_re_sync_and_are_settled(tmp_path: Path) -> None:
    async def main() -> list[int]:
        settings = Settings(
            node_id="ams1",
            etcd_endpoints=["http://127.0.0.1:1"],
            committee=["ams1", "fra1", "lon1"],
            data_dir=tmp_path,
            peers=["http://127.0.0.1:2"],
        )
        node = Node(settings, FakeEtcd())  # type: ignore[arg-type]
        node.restored.set()
        release_first, release_catch_up = asyncio.Event(), asyncio.Event()
        attempted: list[int] = []
        settler = Settler.__new__(Settler)

        async def recover(_node: Node) -> list[Boundary]:
            return []

        async def settle_once(b: Boundary) -> bool:  # fake chain: settled once tried
            attempted.append(b.index)
            if b.index == 0:
                await release_first.wait()
            return True

        async def forget(_b: Boundary) -> None:
            pass

        async def catch_up(_why: str) -> bool:  # fake peer: a snapshot once released
            await release_catch_up.wait()
            return True

        settler.confirmations = 0
        settler._settled = lambda: 10**9  # type: ignore[method-assign]  # fake chain: all deep
        settler.recover = recover  # type: ignore[method-assign]
        settler._settle_once = settle_once  # type: ignore[method-assign]
        settler._forget_signature = forget  # type: ignore[method-assign]
        node.catch_up = catch_up  # type: ignore[method-assign]
        for i in (0, 50, 100, 150):
            node.boundaries.put_nowait(Boundary(i, i, i, b"\x00" * 32))
        task = asyncio.create_task(settler.run(node))
        await asyncio.sleep(0.05)  # the settler is busy with boundary 0
        node._diverge("DIVERGED at chunk 150", 150)
        resync = asyncio.create_task(node.resync())
        await asyncio.sleep(0.05)
        release_first.set()
        await asyncio.sleep(1.5)  # while re-syncing, nothing more is tried, nothing dropped
        during = list(attempted)
        release_catch_up.set()
        await resync
        deadline = time.monotonic() + 10
        while len(attempted) < 3:
            assert time.monotonic() < deadline, attempted
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)
        task.cancel()
        assert during == [0]
        return attempted

    assert asyncio.run(main()) == [0, 50, 100]  # 150 was refuted: never tried
