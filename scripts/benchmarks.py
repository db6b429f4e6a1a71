"""Run every benchmark in bench/ (and the demo's time to its first batch) and write BENCHMARKS.md.

    .venv/bin/python scripts/benchmarks.py            # the full runs (tens of minutes)
    .venv/bin/python scripts/benchmarks.py --quick    # short runs, a few minutes
    .venv/bin/python scripts/benchmarks.py --only gas_registry,scores --output /tmp/b.md

Each benchmark runs as its own process, with its own medians over several runs, and prints its
figures beside its goals; this script records, for each, the command, when it ran, how long it
took, the machine's load before and after, its goal and anchor, and its output verbatim. The
report starts with the machine: CPU, cores, memory, Python, the commit. Figures on a shared
machine are noisy: compare runs from the same report, and read the load columns.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass(frozen=True)
class Bench:
    name: str
    what: str
    goal: str
    full: tuple[str, ...]
    quick: tuple[str, ...] | None
    """None: not run with --quick (needs root, or far too long)."""
    timeout: float = 1800.0
    plots: tuple[str, ...] = ()
    """Images the benchmark writes (paths from the repository root), shown in its section."""


BENCHES = (
    Bench(
        "gas_registry",
        "Gas per site proof in RedundancyRegistry: single submission, batches of 10 and 50.",
        "single (refresh) <= 70,000 gas; batch of 50 <= 20,000 gas per proof. Anchor: the "
        "Ethereum Attestation Service spends 209,000-344,000 gas per attest.",
        ("bench/gas_registry.py",),
        ("bench/gas_registry.py",),
    ),
    Bench(
        "gas_signed_calls",
        "Gas of SettlementLedger.commitBatch, CommitteeSelector.reportLatency in each path and "
        "the flagContradiction that follows each contradiction.",
        "reportLatency <= 80,000 gas (commitBatch: no fixed goal, tracked so a change shows); "
        "deterministic up to calldata zero bytes.",
        ("bench/gas_signed_calls.py",),
        ("bench/gas_signed_calls.py",),
    ),
    Bench(
        "scores",
        "Gas of the score views and selection; off-chain proof verification rate.",
        "scores for 1,000 validators within a 30M-gas call; >= 20,000 proofs/s verified "
        "(anchor: eth-account's generic recovery path).",
        ("bench/scores.py",),
        ("bench/scores.py", "--quick"),
    ),
    Bench(
        "engine",
        "The validator engine: inputs/s on one core, compiled and pure, and the node pipeline.",
        "compiled apply >= 1,500,000 inputs/s; node pipeline >= 500,000/s. Anchors: public "
        "pure-CPython engines 70,000-90,000/s; PyPy + SortedList ~400,000/s; exchange-core "
        "(Java) 5,000,000/s.",
        ("bench/bench_engine.py",),
        ("bench/bench_engine.py", "--quick"),
    ),
    Bench(
        "attestor",
        "The attestor: signing rate, publish throughput with batching, idle daemon cost.",
        ">= 5,000 proofs/s signed; idle daemon < 1 % of a core and < 100 MB RSS.",
        ("bench/bench_attestor.py",),
        (
            "bench/bench_attestor.py",
            "--runs",
            "3",
            "--sign-n",
            "1000",
            "--publish-n",
            "50",
            "--idle-seconds",
            "10",
            "--idle-windows",
            "1",
            "--warmup",
            "5",
        ),
    ),
    Bench(
        "api_load",
        "The REST API with a warm cache: GET /scores and GET /facilities, req/s and latency.",
        ">= 2,000 req/s with p99 <= 20 ms per endpoint (one worker).",
        ("bench/api_load.py",),
        ("bench/api_load.py", "--runs", "1", "--duration", "2"),
    ),
    Bench(
        "nodes",
        "Acknowledged orders/s through a 3-member etcd cluster with group commit; ack latency.",
        ">= 50,000 orders/s acknowledged; >= 100,000 acknowledged orders per CPU-second of the "
        "cluster's processes; single-order ack p50 <= 5 ms, p99 <= 20 ms on loopback "
        "at 2,000 orders/s (issue 17).",
        ("bench/bench_nodes.py", "--without-nodes", "--plot", "docs/bench/ack-latency.png"),
        (
            "bench/bench_nodes.py",
            "--runs",
            "1",
            "--seconds",
            "3",
            "--rates",
            "300,2000",
            "--without-nodes",
            "--plot",
            "docs/bench/ack-latency.png",
        ),
        plots=("docs/bench/ack-latency.png",),
    ),
    Bench(
        "frontier",
        "The latency-redundancy frontier: ack latency against tolerated site failures, sites as "
        "hosts at emulated distances (needs root for network namespaces; plots in docs/frontier).",
        "no fixed goal: the curve, beside the physical floor.",
        ("bench/frontier.py",),
        None,
        plots=("docs/frontier.png",),
    ),
)

DEMO_GOAL = "fresh clone -> demo summary in <= 90 s after set-up (issue 16)."


def machine_facts() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores (shared with other work)",
        f"- memory: {mem}",
        f"- system: {platform.platform()}",
        f"- Python: {platform.python_version()} ({sys.executable})",
        f"- commit: {commit}{' (with uncommitted changes)' if dirty else ''}",
        f"- load average at start: {load()}",
    ]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


@dataclass
class Outcome:
    command: str
    started: str
    seconds: float
    code: int | None
    load_before: str
    load_after: str
    output: str


def run(args: list[str], timeout: float, env: dict[str, str] | None = None) -> Outcome:
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    before = load()
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            args,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        code: int | None = proc.returncode
        output = proc.stdout + (f"\n[stderr]\n{proc.stderr}" if proc.returncode else "")
    except subprocess.TimeoutExpired as exc:
        code = None
        output = (
            (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        )
        output += f"\n[timed out after {timeout:.0f} s]"
    return Outcome(
        " ".join(a if a != PYTHON else ".venv/bin/python" for a in args),
        started,
        time.monotonic() - t0,
        code,
        before,
        load(),
        output.strip(),
    )


def demo_outcome() -> Outcome:
    """The demo's default world from start to its first committed batch (``--once``)."""
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        args = [
            PYTHON,
            "-m",
            "devnet.demo",
            "--once",
            "--state-dir",
            tmp,
            "--json",
            str(Path(tmp) / "summary.json"),
        ]
        out = run(args, 900)
        out.command = ".venv/bin/redundancy-devnet --once"
        summary = Path(tmp) / "summary.json"
        if summary.exists():
            out.output += "\n\n[summary.json]\n" + summary.read_text()
    return out


def section(title: str, what: str, goal: str, out: Outcome) -> list[str]:
    status = "ok" if out.code == 0 else ("timed out" if out.code is None else f"exit {out.code}")
    return [
        f"## {title}",
        "",
        what,
        "",
        f"- goal / anchor: {goal}",
        f"- command: `{out.command}`",
        f"- ran: {out.started}, {out.seconds:.0f} s, {status}",
        f"- load before / after: {out.load_before} / {out.load_after}",
        "",
        "```",
        out.output,
        "```",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a few minutes)")
    parser.add_argument("--only", help="comma-separated benchmark names (and/or 'demo')")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo timing")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    known = {b.name for b in BENCHES} | {"demo"}
    if only and not only <= known:
        parser.error(f"unknown benchmark(s) {sorted(only - known)}; known: {sorted(known)}")
    mode = "quick" if args.quick else "full"
    lines = [
        "# Benchmarks",
        "",
        f"<!-- Generated by `scripts/benchmarks.py{' --quick' if args.quick else ''}`; "
        "do not edit by hand. -->",
        "",
        f"Mode: **{mode}** (`--quick`: fewer and shorter runs; the full runs take tens of "
        "minutes). Each benchmark reports medians of its own runs beside its goals; the output "
        "below is verbatim. Regenerate with `.venv/bin/python scripts/benchmarks.py [--quick]`.",
        "",
        "## Machine",
        "",
        *machine_facts(),
        "",
    ]
    t0 = time.monotonic()
    summary = ["| benchmark | status | seconds |", "| --- | --- | --- |"]
    sections: list[str] = []

    def write(done: bool) -> None:
        """The report so far (written after every benchmark, so a stopped run keeps its part)."""
        total = f"Total: {time.monotonic() - t0:.0f} s." if done else "(still running)"
        text = [*lines, "## Summary", "", *summary, "", total, "", *sections]
        args.output.write_text("\n".join(text).rstrip() + "\n")

    for bench in BENCHES:
        if only is not None and bench.name not in only:
            continue
        command = bench.quick if args.quick else bench.full
        if command is None:
            summary.append(f"| {bench.name} | not run in quick mode | - |")
            kept = [p for p in bench.plots if (ROOT / p).exists()]
            if kept:  # the plot of its last full run, committed beside the docs
                sections += [f"## {bench.name}", "", bench.what, "",
                             f"Not run in quick mode; the plot of its last full run "
                             f"(`{' '.join(bench.full)}`):", ""]  # fmt: skip
                sections += [f"![{bench.name}]({p})\n" for p in kept]
            continue
        print(f"running {bench.name} ...", flush=True)
        out = run([PYTHON, *command], bench.timeout)
        status = (
            "ok" if out.code == 0 else ("timed out" if out.code is None else f"exit {out.code}")
        )
        summary.append(f"| [{bench.name}](#{bench.name}) | {status} | {out.seconds:.0f} |")
        sections += section(bench.name, bench.what, bench.goal, out)
        sections += [f"![{bench.name}]({p})\n" for p in bench.plots if (ROOT / p).exists()]
        write(done=False)
    if not args.no_demo and (only is None or "demo" in only):
        print("running demo ...", flush=True)
        out = demo_outcome()
        status = "ok" if out.code == 0 else f"exit {out.code}"
        summary.append(f"| [demo](#demo) | {status} | {out.seconds:.0f} |")
        sections += section(
            "demo",
            "The default devnet world (five attestors, policy, committee, venue) from start to "
            "its first committed settlement batch, then stopped.",
            DEMO_GOAL,
            out,
        )
    write(done=True)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
