"""API memory under distinct query keys: RSS of a real ``redundancy-api`` (uvicorn) while it
answers ``--requests`` GETs that are each a new cache key, all at one block.

    python bench/api_memory.py [--requests 10000] [--cache-bytes 67108864] [--json]

Starts a real anvil, deploys and populates it like ``bench/api_load.py`` (ten sites, twenty
validators, a committee, RTT reports; no block is mined while it measures, so every response
lands in the one block's cache), then asks ``/attestations?limit=L&to_block=B`` for distinct
(L, B) pairs, one keep-alive connection, and samples the server's resident set (VmRSS from
/proc) every 500 requests. Finding 4 of issue 12 was +491 MB after 2,000 such pages. The bound
the cache gives: growth over the warmed-up baseline at most ``cache_bytes`` of kept bodies plus
their bookkeeping (at most ``cache_entries`` keys); the script checks growth <= cache_bytes +
BOOKKEEPING_BYTES and exits 1 when it is exceeded or a request fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import populate, wait_ready

from devnet.localchain import start_chain
from devnet.ports import free_port
from redundancy.chain import connect

#: What 4,096 cache keys, their LRU links and the allocator's slack may add beyond the bodies.
BOOKKEEPING_BYTES = 32 * 1024 * 1024
MIB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="distinct-key requests")
    parser.add_argument(
        "--cache-bytes", type=int, default=64 * MIB, help="the API's cache_bytes setting"
    )
    parser.add_argument("--json", action="store_true", help="print the samples as JSON too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, start_chain("anvil") as chain:
        path = populate(chain.rpc_url, Path(tmp), chain.dev_keys[0])
        head = int(connect(chain.rpc_url).eth.block_number)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "redundancy-api"),
                "--deployment",
                str(path),
                "--rpc-url",
                chain.rpc_url,
                "--port",
                str(port),
                "--cache-bytes",
                str(args.cache_bytes),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ),
        )
        try:
            wait_ready(base)
            session = requests.Session()
            for warm in ("/scores", "/facilities", "/attestations?limit=500"):
                session.get(base + warm, timeout=30).raise_for_status()
            baseline = rss_bytes(server.pid)
            samples = [(0, baseline)]
            body_bytes = failures = 0
            started = time.monotonic()
            for i in range(args.requests):
                limit = 100 + i % 401  # 100..500
                to_block = head - (i // 401) % max(1, head)
                response = session.get(
                    f"{base}/attestations?limit={limit}&to_block={to_block}", timeout=60
                )
                failures += response.status_code != 200
                body_bytes += len(response.content)
                if (i + 1) % 500 == 0:
                    samples.append((i + 1, rss_bytes(server.pid)))
            elapsed = time.monotonic() - started
            if server.poll() is not None:
                print("the API exited during the run", file=sys.stderr)
                return 1
        finally:
            server.terminate()
            server.wait(timeout=30)

    peak = max(rss for _, rss in samples)
    growth = peak - baseline
    bound = args.cache_bytes + BOOKKEEPING_BYTES
    print(
        f"{args.requests} distinct-key requests in {elapsed:.0f} s "
        f"({args.requests / elapsed:.0f} req/s), {failures} not 200, "
        f"{body_bytes / MIB:.0f} MiB of bodies served "
        f"(mean {body_bytes / args.requests / 1024:.0f} KiB)"
    )
    print(
        f"RSS: baseline {baseline / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB, "
        f"final {samples[-1][1] / MIB:.0f} MiB; growth {growth / MIB:.0f} MiB "
        f"<= bound {bound / MIB:.0f} MiB (cache_bytes {args.cache_bytes / MIB:.0f} MiB "
        f"+ {BOOKKEEPING_BYTES / MIB:.0f} MiB bookkeeping): "
        + ("met" if growth <= bound else "NOT met")
    )
    if args.json:
        print(json.dumps({"samples": samples, "baseline": baseline, "peak": peak}))
    return 0 if growth <= bound and failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
