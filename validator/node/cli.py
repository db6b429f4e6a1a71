"""``validator run --config node.toml`` (a node) and ``validator gateway --config node.toml``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn
import uvloop

from validator.node.etcd import EtcdClient
from validator.node.settings import Settings, load_settings


async def _serve(app: object, settings: Settings, port: int, *tasks: asyncio.Task[None]) -> None:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        http="httptools",
    )
    server = uvicorn.Server(config)
    try:
        await server.serve()
    finally:
        for t in tasks:
            t.cancel()


async def run_node(settings: Settings) -> None:
    from validator.node.follower import Node
    from validator.node.queries import create_app
    from validator.node.settler import start_settler

    node = Node(settings, EtcdClient(settings.etcd_endpoints, settings.etcd_timeout))
    follower = asyncio.create_task(node.run())
    settler = start_settler(settings, node)
    tasks = [follower, *([settler] if settler else [])]
    await _serve(create_app(node), settings, settings.node_port, *tasks)


async def run_gateway(settings: Settings) -> None:
    from validator.node.gateway import Gateway, GatewayApp
    from validator.node.sequencer import Sequencer

    sequencer = Sequencer(
        EtcdClient(settings.etcd_endpoints, settings.etcd_timeout),
        settings.node_id,
        max_messages=settings.max_chunk_messages,
        max_inflight=settings.max_inflight_writes,
        deadline=settings.write_deadline,
        attempt_timeout=settings.write_attempt_timeout,
    )
    task = asyncio.create_task(sequencer.run())
    await _serve(
        GatewayApp(Gateway(sequencer, settings.node_id)), settings, settings.gateway_port, task
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="validator", description=__doc__)
    parser.add_argument("role", choices=["run", "gateway"])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = load_settings(args.config)
    runner = run_node if args.role == "run" else run_gateway
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(runner(settings))  # libuv's loop: about half the CPU per socket event
    return 0
