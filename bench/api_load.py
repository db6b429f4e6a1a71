"""Throughput and latency of the REST API with a warm cache: GET /scores and GET /facilities.

    python bench/api_load.py [--workers 1] [--connections 16] [--duration 5] [--runs 5]
                             [--client loadgen|wrk] [--json]

Starts a real anvil, deploys and populates it (8 facilities, 16 validators, a committee, RTT
reports), serves it with ``redundancy-api`` (uvicorn, uvloop + httptools) and measures each
endpoint with a load generator in a separate process on loopback, ``--runs`` times:
``bench/loadgen.py`` (Python, asyncio) or ``wrk`` (C, Debian package ``wrk``, one thread, its
``--latency`` percentiles). Prints the median of the runs beside the goal. Blocks are mined
only on demand (anvil automine), so every measured request is answered from the per-block
cache: no RPC on the measured path.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account

from devnet.examples import example_facilities
from devnet.http import get_json
from devnet.localchain import start_chain
from devnet.ports import free_port
from devnet.world import FacilitySpec, ValidatorSpec, build
from redundancy.chain import connect
from redundancy.deployment import deploy
from redundancy.registry import RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import SelectorClient

GOAL_RPS = 2_000
GOAL_P99_MS = 20.0
ENDPOINTS = ("/scores", "/facilities")
HERE = Path(__file__).resolve().parent
ETH = 10**18
#: the example sites (examples/<site>.toml) and five more
SITES = [
    *example_facilities(),
    FacilitySpec("nyc1", "nyiso", "new york", "us", 40_712_776, -74_005_974, "as174", "equinix"),
    FacilitySpec("sgp1", "sp", "singapore", "sg", 1_352_083, 103_819_836, "as7473", "equinix"),
    FacilitySpec("nrt1", "tepco", "tokyo", "jp", 35_689_487, 139_691_706, "as2516", "kddi"),
    FacilitySpec("syd1", "nem", "sydney", "au", -33_868_820, 151_209_296, "as1221", "ntt"),
    FacilitySpec("gru1", "sin", "sao paulo", "br", -23_550_520, -46_633_308, "as28573", "ascenty"),
]
HARDWARE = [("dell", "r650", "2.19"), ("hpe", "dl380", "u46"), ("supermicro", "x13", "1.2")]
VALIDATORS = [
    ValidatorSpec(f"v-{s.name}-{j}", s.name, (1 + (i + j) % 4) * ETH, HARDWARE[(i + j) % 3])
    for i, s in enumerate(SITES)
    for j in range(2)
]


def populate(rpc_url: str, state_dir: Path, dev_key: str) -> Path:
    w3 = connect(rpc_url)
    owner = Account.from_key(dev_key)
    dep = deploy(w3, owner)
    path = state_dir / "deployment.json"
    dep.write(path)
    registry = RegistryClient(w3, dep.registry, owner)
    world = build(w3, registry, owner, SITES, VALIDATORS)
    selector = SelectorClient(w3, dep.selector, owner)
    selector.set_diversity_policy(DiversityPolicy(16))
    selector.select_committee()
    selector.set_landmark(SITES[1].facility_id, SITES[1].latitude_e6, SITES[1].longitude_e6)
    ds = registry.domain_separator()
    for a, b, rtt in ((0, 1, 4_500), (2, 3, 30_000), (0, 2, 100_000), (4, 5, 70_000)):
        selector.report_latency(ds, *world.latency(SITES[a], SITES[b], rtt))
    return path


def wait_ready(base: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            get_json(base + "/health", timeout=1)
            return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the API at {base} did not become healthy in {timeout:.0f} s")


def wrk(url: str, connections: int, duration: float) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration:.0f}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def ms(text: str) -> float:
        number = text.rstrip("usm")
        return float(number) * units[text[len(number) :]]

    percentiles = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            percentiles[parts[0]] = ms(parts[1])
    rps = float(next(x.split()[1] for x in out.splitlines() if x.startswith("Requests/sec")))
    non2xx = sum(int(x.split()[-1]) for x in out.splitlines() if "Non-2xx" in x)
    return {
        "url": url,
        "connections": connections,
        "rps": rps,
        "p50_ms": percentiles["50%"],
        "p99_ms": percentiles["99%"],
        "errors": non2xx,
    }


def load(url: str, connections: int, duration: float, client: str = "loadgen") -> dict[str, float]:
    if client == "wrk":
        return wrk(url, connections, duration)
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "loadgen.py"),
            url,
            "--connections",
            str(connections),
            "--duration",
            str(duration),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per endpoint (median shown)")
    parser.add_argument(
        "--client", choices=("loadgen", "wrk"), default="loadgen", help="load generator"
    )
    parser.add_argument("--json", action="store_true", help="print every run as JSON too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, start_chain("anvil") as chain:
        path = populate(chain.rpc_url, Path(tmp), chain.dev_keys[0])
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        api_cmd = [
            str(Path(sys.executable).parent / "redundancy-api"),
            "--deployment",
            str(path),
            "--rpc-url",
            chain.rpc_url,
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        server = subprocess.Popen(
            api_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ)
        )
        try:
            wait_ready(base)
            for endpoint in ENDPOINTS:  # warm every worker's cache
                for _ in range(8 * args.workers):
                    get_json(base + endpoint, timeout=10)
            print(
                f"redundancy-api, {args.workers} worker(s), uvloop + httptools; {args.client}: "
                f"{args.connections} keep-alive connections, {args.duration:.0f} s x "
                f"{args.runs} runs per endpoint; {os.cpu_count()} CPUs shared by server, "
                f"client and anvil"
            )
            print(f"{'endpoint':12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  goal")
            runs_by_endpoint = {}
            for endpoint in ENDPOINTS:
                runs = [
                    load(base + endpoint, args.connections, args.duration, args.client)
                    for _ in range(args.runs)
                ]
                runs_by_endpoint[endpoint] = runs
                rps = statistics.median(r["rps"] for r in runs)
                p50 = statistics.median(r["p50_ms"] for r in runs)
                p99 = statistics.median(r["p99_ms"] for r in runs)
                errors = sum(r["errors"] for r in runs)
                met = rps >= GOAL_RPS and p99 <= GOAL_P99_MS and errors == 0
                print(
                    f"{endpoint:12} {rps:8.0f} {p50:8.2f} {p99:8.2f}  >= {GOAL_RPS} req/s, "
                    f"p99 <= {GOAL_P99_MS:.0f} ms: {'met' if met else 'NOT met'}"
                    + (f" ({errors} errors)" if errors else "")
                )
            if args.json:
                print(json.dumps(runs_by_endpoint, indent=1))
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
