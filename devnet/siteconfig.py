"""Write an attestor's site config (TOML) for a facility, with its own chain, ports and peers.

For tests and benchmarks that run ``attestor run`` against a chain of their own; the demo runs
the example configs (``examples/<site>.toml``) as they are instead. Keys and data live beside the
config (``keys/``, ``data/``), as ``attestor init --dir <site>/keys`` leaves them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from devnet.world import FacilitySpec


def _s(text: str) -> str:
    """A TOML basic string (a JSON string is one)."""
    return json.dumps(text)


def site_toml(
    facts: FacilitySpec,
    *,
    rpc_url: str,
    deployment: Path,
    http_port: int,
    latency_port: int,
    heartbeat: int = 10,
    peers: Mapping[str, int] | None = None,
    emulated: Mapping[str, int] | None = None,
    extra: Mapping[str, str] | None = None,
) -> str:
    """The config text. ``peers``: peer facility -> its latency port on loopback; ``emulated``:
    peer -> one-way delay (us) to add; ``extra``: lines to add at the top of a table (made if
    absent), e.g. ``{"power": "interval = 1"}``."""
    peer_list = ", ".join(
        f'{{ facility = "{peer}", address = "127.0.0.1:{port}" }}'
        for peer, port in (peers or {}).items()
    )
    delays = ", ".join(f"{peer} = {us}" for peer, us in (emulated or {}).items())
    tables = {
        "chain": [
            f"rpc_url = {_s(rpc_url)}",
            f"deployment = {_s(str(deployment))}",
        ],
        "keys": ['dir = "keys"', 'password_file = "keys/password"'],
        "health": [f"heartbeat_interval = {heartbeat}"],
        "power": [
            f"grid = {_s(facts.grid)}",
            "feeds = 2",
            "ups = true",
            "generator = true",
        ],
        "geography": [
            f"latitude_e6 = {facts.latitude_e6}",
            f"longitude_e6 = {facts.longitude_e6}",
            f"country = {_s(facts.country)}",
            f"metro = {_s(facts.metro)}",
        ],
        "network": [f"asns = [{_s(facts.asn.upper())}]"],
        "provider": [f"name = {_s(facts.provider)}"],
        "latency": [
            f'listen = "127.0.0.1:{latency_port}"',
            f"peers = [{peer_list}]",
            f"emulated_delay_us = {{ {delays} }}",
        ],
        "http": [f'listen = "127.0.0.1:{http_port}"'],
    }
    for table, added in (extra or {}).items():
        tables[table] = [*added.splitlines(), *tables.get(table, [])]
    text = f'facility = "{facts.name}"\ndata_dir = "data"\n'
    for table, lines in tables.items():
        text += f"\n[{table}]\n" + "".join(line + "\n" for line in lines)
    return text
