"""``validator run --config node.toml`` (a node) and ``validator gateway --config node.toml``.

    validator run|gateway [--config node.toml] [--node-id ID] [--chain.rpc-url URL] ...
                          [--log-level info] [--log-format json|text]

Settings (``validator.node.settings.Settings``; ``--help`` lists a flag for each) come from the
TOML file, ``VALIDATOR_*`` environment variables and the flags, each overriding the one before.
Logs are JSON lines on stderr (uvicorn's too). Exit codes: 0 stopped; 2 bad settings, one line per
bad field.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import uvicorn
import uvloop

from redundancy.errors import ConfigError, KeystoreError
from redundancy.jsonlog import configure, log_event
from redundancy.settings import add_settings_arguments, load_settings
from validator.node.etcd import EtcdClient
from validator.node.settings import ChainSettings, Settings

if TYPE_CHECKING:
    from validator.node.settler import SettlerKeys

EXIT_CONFIG = 2
EXIT_KEYS = 3


async def _serve(app: object, settings: Settings, port: int, *tasks: asyncio.Task[None]) -> None:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.host,
        port=port,
        log_config=None,  # uvicorn's loggers propagate to the root logger's JSON handler
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


async def run_node(settings: Settings, keys: SettlerKeys | None = None) -> None:
    from validator.node.follower import Node
    from validator.node.queries import create_app
    from validator.node.settler import start_settler

    etcd = EtcdClient(
        settings.etcd_endpoints, settings.etcd_timeout, transport=settings.etcd_transport
    )
    node = Node(settings, etcd)
    follower = node.start()
    settler = start_settler(settings, node, keys)
    tasks = [follower, *([settler] if settler else [])]
    watch = mover = None
    if settings.site is not None:
        from validator.node.sitewatch import LeadershipMover, SiteWatch

        watch = SiteWatch(settings.site, settings.data_dir)
        # its own client: a leadership check must not wait behind the log's requests
        mover = LeadershipMover(EtcdClient(settings.etcd_endpoints, settings.etcd_timeout), watch)
        tasks += [asyncio.create_task(watch.run()), asyncio.create_task(mover.run())]
    if settings.chain is not None and settings.venue_directory is not None:
        tasks.append(asyncio.create_task(_follow_committee(settings, settings.chain)))
    if settings.learn_members_every > 0:
        tasks.append(asyncio.create_task(_learn_members(node.etcd, settings.learn_members_every)))
    await _serve(create_app(node, watch, mover), settings, settings.node_port, *tasks)


async def _learn_members(etcd: EtcdClient, every: float) -> None:
    """Forever: every ``every`` seconds, add the members etcd lists that ``etcd`` does not know
    (an etcd outage only delays it)."""
    log = logging.getLogger("validator.node.membership")
    while True:
        await asyncio.sleep(every)
        try:
            added = await etcd.learn_members()
        except Exception as exc:  # no member answered: the next look
            log_event(log, "etcd.members_unreadable", logging.INFO, error=str(exc)[:200])
            continue
        if added:
            log_event(log, "etcd.members_learned", logging.WARNING, endpoints=added)


async def _follow_committee(settings: Settings, chain: ChainSettings) -> None:
    from redundancy.chain import connect
    from redundancy.selector import SelectorClient
    from validator.node.membership import (
        MembershipReconciler,
        follow_committee,
        read_directory,
    )

    assert settings.venue_directory is not None
    directory = read_directory(settings.venue_directory)
    selector = SelectorClient(connect(chain.rpc_url), chain.selector)

    def facilities() -> list[bytes]:
        return [m.facility for m in selector.committee_members()]

    reconciler = MembershipReconciler(EtcdClient(settings.etcd_endpoints, settings.etcd_timeout))
    await follow_committee(reconciler, facilities, directory, settings.membership_interval)


async def run_gateway(settings: Settings) -> None:
    from validator.node.gateway import Gateway, GatewayApp
    from validator.node.sequencer import Sequencer

    sequencer = Sequencer(
        EtcdClient(
            settings.etcd_endpoints, settings.etcd_timeout, transport=settings.etcd_transport
        ),
        settings.node_id,
        max_messages=settings.max_chunk_messages,
        max_inflight=settings.max_inflight_writes,
        pipeline_min=settings.pipeline_min_messages,
        deadline=settings.write_deadline,
        attempt_timeout=settings.write_attempt_timeout,
        settle_timeout=settings.write_settle_timeout,
        max_queued=settings.max_queued_messages,
        compression=settings.log_compression,
    )
    tasks = [asyncio.create_task(sequencer.run())]
    if settings.learn_members_every > 0:
        tasks.append(
            asyncio.create_task(_learn_members(sequencer.etcd, settings.learn_members_every))
        )
    gateway = Gateway(
        sequencer, settings.node_id, transfer_request_ids=settings.transfer_request_ids
    )
    app = GatewayApp(gateway)
    if settings.site is not None:
        from validator.node.sitewatch import SiteWatch

        watch = SiteWatch(settings.site, settings.data_dir)
        gateway.degraded = lambda: watch.degraded
        app.site_health = watch.public
        tasks.append(asyncio.create_task(watch.run()))
    await _serve(app, settings, settings.gateway_port, *tasks)


def tune_collector(settings: Settings) -> None:
    """The youngest generation's threshold from ``gc_first_threshold``; the others as they
    are."""
    gc.set_threshold(settings.gc_first_threshold, *gc.get_threshold()[1:])


def read_settings(argv: Sequence[str] | None = None) -> tuple[str, Settings]:
    """The role and the settings the command line gives (with the file it names and the
    environment); raises ConfigError, one line per bad field."""
    parser = argparse.ArgumentParser(prog="validator", description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["run", "gateway"], help="the node, or its gateway")
    cli = add_settings_arguments(parser, Settings)
    args = parser.parse_args(argv)
    return args.role, load_settings(Settings, args.config, cli=cli, args=args)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        role, settings = read_settings(argv)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"validator: error: {line}", file=sys.stderr)
        return EXIT_CONFIG
    if settings.venue_directory is not None:
        from validator.node.membership import read_directory

        try:
            read_directory(settings.venue_directory)
        except ValueError as exc:
            print(f"validator: error: venue_directory: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    configure(settings.log_level, settings.log_format)
    tune_collector(settings)
    keys = None
    if role == "run" and settings.chain is not None:  # a bad key stops the node before it starts
        from validator.node.settler import load_keys

        try:
            keys = load_keys(settings.chain)
        except KeystoreError as exc:
            print(f"validator: error: chain: {exc}", file=sys.stderr)
            return EXIT_KEYS
    with contextlib.suppress(KeyboardInterrupt):  # libuv's loop: about half the CPU per event
        uvloop.run(run_node(settings, keys) if role == "run" else run_gateway(settings))
    return 0
