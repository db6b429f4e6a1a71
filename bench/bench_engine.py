"""Benchmark of the validator core (not a test): inputs per second on one core, per-input
latency, and the node's whole per-chunk pipeline, for the compiled engine and the pure-Python
reference, printed beside the goals.

Run from the repository root::

    .venv/bin/python bench/bench_engine.py                 # 1,000,000 inputs x 5 runs, both builds
    .venv/bin/python bench/bench_engine.py --quick         # 200,000 inputs x 3 runs
    .venv/bin/python bench/bench_engine.py --engine pure   # one build only

Each build runs in its own process (``VALIDATOR_ENGINE=compiled`` / ``=pure``: they are the same
modules, one process holds one of them); the parent prints their figures and the goals.

Workload: ``devnet.loggen`` with the ``BENCHMARK`` profile - 200 series (4
underlyings x 5 expiries x 5 strikes x call/put), 2,000 funded accounts, books
held near 30 resting orders per series; the flow is new GTC and post-only
orders 1-5 ticks behind a drifting mid, cancels and cancel-replaces of live
orders, and IOC orders 1-5 ticks through the mid (most of which trade). Every
input is an order-entry command, as in exchange-core, so inputs/s = orders/s.

Engine apply. The workload is generated once (untimed) and held in memory, its
messages laid out in arrival order (a pickle round trip) as a node that decodes
its log one entry at a time would have them, not scattered among the
generator's own garbage (that alone cost ~20% in cache misses); each run
applies the setup (listings, deposits) untimed to a fresh engine, then times
the whole flow with ``time.perf_counter_ns``, calling ``Engine.apply`` once per input
from Python. Throughput is inputs / wall time of the run, and also inputs / CPU time of the
process (``time.process_time``), which leaves out time the process spent preempted by other
work on a busy machine; the figures printed are medians over the runs. ``apply_many`` is the
same flow applied a chunk at a time (``CHUNK`` inputs), as a node applies its log. Latency comes
from one more run that times every ``apply`` call separately (the ~50 ns cost of reading the
clock twice is included in each sample).

Node pipeline. What a validator node does with each chunk of its log (``follower.Node._apply``):
inflate the value (``inputlog.Chunk.decode``), then ``inputlog.apply_chunk``: decode the
lines (``Chunk.slices``: one msgspec call per slice of up to 512 lines), apply them
(``apply_many``) and link the chunk into the hash chain (``HashChain.extend_records``). The
flow is cut into chunks of ``CHUNK`` canonical lines, compressed as a gateway writes them
(untimed); each run times all chunks on a fresh engine, with CPython's default collector (a
node does not turn it off).

Garbage collection: the generated workload (a million message objects) is
frozen out of the cyclic collector with ``gc.freeze()``, since a validator
node decodes and drops one message at a time and never holds them. The engine
itself allocates no reference cycles (``tests/unit/test_loggen.py`` proves it on
a full life-cycle log), so a node may run with the collector off; engine figures are
given both with CPython's default collector and with it off.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable
from typing import Any

from devnet.loggen import BENCHMARK, generate
from validator.engine import IMPLEMENTATION, Engine
from validator.engine.codec import decode_lines, decode_message, encode_message
from validator.engine.hashchain import HashChain
from validator.engine.messages import Cancel, CancelReplace, Deposit, ListSeries, Message, NewOrder
from validator.engine.primitives import OrderKind
from validator.engine.results import Result
from validator.node.inputlog import Chunk, apply_chunk, encode_chunk

CHUNK = 200
"""Lines per log chunk in the pipeline and ``apply_many`` figures (a gateway's group commit)."""
HASH_EVERY = 150
"""Inputs between two state hashes in the kept-snapshot figure: a node's batch boundary (50
chunks) at 2,000 single orders/s, about three orders per chunk."""
GOALS = {
    "compiled engine apply": 1_500_000,
    "node pipeline": 500_000,
}
TODAY_PURE = (390_000, 470_000)
"""The pure engine before it was compiled (docs/validator-core.md, GC off, quiet-ish machine):
the reference must be no slower."""
ANCHORS = (
    ("best public pure-CPython engines", "70,000-90,000/s"),
    ("a PyPy + SortedList engine", "~400,000/s"),
    ("exchange-core (Java)", "5,000,000/s"),
)


def split(log: list[Message]) -> tuple[list[Message], list[Message]]:
    """(setup, flow): the listings and deposits, then the order flow."""
    n = next(i for i, msg in enumerate(log) if not isinstance(msg, ListSeries | Deposit))
    return log[:n], log[n:]


def fresh_engine(setup: list[Message]) -> Engine:
    engine = Engine()
    for msg in setup:
        engine.apply(msg)
    return engine


def timed(fn: Callable[[], object], *, collector: bool) -> tuple[float, float]:
    """(wall, CPU) seconds of one call of ``fn``."""
    gc.collect()
    if not collector:
        gc.disable()
    try:
        wall, cpu = time.perf_counter_ns(), time.process_time_ns()
        fn()
        wall, cpu = time.perf_counter_ns() - wall, time.process_time_ns() - cpu
    finally:
        gc.enable()
    return wall / 1e9, cpu / 1e9


def apply_run(setup: list[Message], flow: list[Message], *, collector: bool) -> tuple[float, float]:
    """Inputs per second of wall time and of this process's CPU time, one ``apply`` per input."""
    apply = fresh_engine(setup).apply

    def run() -> None:
        for msg in flow:
            apply(msg)

    wall, cpu = timed(run, collector=collector)
    return len(flow) / wall, len(flow) / cpu


def apply_many_run(
    setup: list[Message], chunks: list[list[Message]], *, collector: bool
) -> tuple[float, float]:
    """The same, one ``apply_many`` per chunk."""
    apply_many = fresh_engine(setup).apply_many

    def run() -> None:
        for chunk in chunks:
            apply_many(chunk)

    wall, cpu = timed(run, collector=collector)
    count = sum(map(len, chunks))
    return count / wall, count / cpu


def pipeline_run(setup: list[Message], values: list[bytes], count: int) -> tuple[float, float]:
    """Inputs per second of the node's per-chunk work: inflate, decode, apply, link."""
    engine, chain = fresh_engine(setup), HashChain()

    def run() -> None:
        for value in values:
            apply_chunk(engine, chain, Chunk.decode(b"k", 1, value))

    wall, cpu = timed(run, collector=True)
    return count / wall, count / cpu


def latency_run(setup: list[Message], flow: list[Message], *, collector: bool) -> list[int]:
    """Nanoseconds per ``apply``, for every input of one run, sorted."""
    engine = fresh_engine(setup)
    apply, clock = engine.apply, time.perf_counter_ns
    samples = array("q", bytes(8 * len(flow)))  # not a GC container, unlike a list
    gc.collect()
    if not collector:
        gc.disable()
    try:
        for i, msg in enumerate(flow):
            start = clock()
            apply(msg)
            samples[i] = clock() - start
    finally:
        gc.enable()
    return sorted(samples)


def percentile(sorted_samples: list[int], p: float) -> float:
    return sorted_samples[min(len(sorted_samples) - 1, int(p / 100 * len(sorted_samples)))]


def describe(flow: list[Message], results: list[Result]) -> str:
    kinds: Counter[str] = Counter()
    for msg in flow:
        if isinstance(msg, NewOrder):
            kinds[
                {OrderKind.GTC: "new GTC", OrderKind.IOC: "IOC", OrderKind.POST_ONLY: "post-only"}[
                    msg.kind
                ]
            ] += 1
        elif isinstance(msg, Cancel):
            kinds["cancel"] += 1
        elif isinstance(msg, CancelReplace):
            kinds["cancel-replace"] += 1
    fills = sum(len(result.fills) for result in results)
    trading = sum(1 for result in results if result.fills)
    rejected = Counter(result.reason.value for result in results if result.reason is not None)
    mix = "  ".join(f"{name} {count / len(flow):.1%}" for name, count in kinds.most_common())
    return (
        f"  mix: {mix}\n"
        f"  {trading / len(flow):.1%} of inputs trade ({fills:,} fills); "
        f"rejected {sum(rejected.values()) / len(flow):.2%} ({', '.join(rejected) or 'none'})"
    )


def per_item(fn: Callable[[], object], count: int) -> float:
    """Mean microseconds per item of ``fn``, which handles ``count`` items."""
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / count / 1e3


def medians(label: str, runs: list[tuple[float, float]], figures: dict[str, float]) -> None:
    for clock, column in (("wall", 0), ("CPU", 1)):
        rates = [run[column] for run in runs]
        figures[f"{label}, {clock} time"] = median = statistics.median(rates)
        each = ", ".join(f"{rate / 1e3:,.0f}k" for rate in rates)
        print(
            f"  {label:28s} {clock:4s} time: {median:>10,.0f} inputs/s  "
            f"(median of {len(runs)}: {each})"
        )


def measure(inputs: int, runs: int, seed: int) -> dict[str, float]:
    """Every figure of the engine loaded in this process; printed, and returned."""
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"== {IMPLEMENTATION} engine - {python}, one core")
    started = time.perf_counter()
    series = len(BENCHMARK.underlyings) * BENCHMARK.expiries * BENCHMARK.strikes * 2
    log = generate(series + BENCHMARK.accounts + inputs, seed, BENCHMARK)
    # Re-create the messages in arrival order, as a node decoding its log would,
    # rather than scattered among the generator's garbage.
    setup, flow = split(pickle.loads(pickle.dumps(log, protocol=5)))
    del log
    lines = [encode_message(msg) for msg in flow]
    values = [encode_chunk(lines[i : i + CHUNK]) for i in range(0, len(lines), CHUNK)]
    chunks = [flow[i : i + CHUNK] for i in range(0, len(flow), CHUNK)]
    gc.collect()
    gc.freeze()
    print(
        f"workload: {len(flow):,} inputs after {len(setup):,} setup inputs "
        f"({series} series, {BENCHMARK.accounts:,} accounts), seed {seed}; "
        f"generated in {time.perf_counter() - started:.1f} s; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )

    figures: dict[str, float] = {}
    print("engine apply:")
    for collector in (True, False):
        gc_label = "default GC" if collector else "GC off"
        medians(
            f"apply, {gc_label}",
            [apply_run(setup, flow, collector=collector) for _ in range(runs)],
            figures,
        )
    medians(
        f"apply_many ({CHUNK}), GC off",
        [apply_many_run(setup, chunks, collector=False) for _ in range(runs)],
        figures,
    )
    print("node pipeline (inflate + decode + apply_many + hash chain, per chunk, default GC):")
    medians(
        f"pipeline ({CHUNK}-line chunks)",
        [pipeline_run(setup, values, len(flow)) for _ in range(runs)],
        figures,
    )

    print("latency per input (every apply timed, one run each; p50 / p99 / p99.9 / max):")
    for collector in (True, False):
        samples = latency_run(setup, flow, collector=collector)
        p = [percentile(samples, q) / 1e3 for q in (50, 99, 99.9)]
        label = "default GC" if collector else "GC off"
        print(f"  {label:10s}: {p[0]:.1f} / {p[1]:.1f} / {p[2]:.1f} / {samples[-1] / 1e3:,.0f} us")
    engine = fresh_engine(setup)
    results = engine.apply_many(flow)
    print(describe(flow, results))

    sample = slice(0, min(len(flow), 100_000))
    sample_lines, sample_results = lines[sample], results[sample]
    chain = HashChain()
    figures["chain link"] = link_us = per_item(
        lambda: [
            chain.extend(sample_lines[i : i + CHUNK], sample_results[i : i + CHUNK])
            for i in range(0, len(sample_lines), CHUNK)
        ],
        len(sample_lines),
    )
    figures["decode line"] = line_us = per_item(
        lambda: [decode_message(line) for line in sample_lines], len(sample_lines)
    )
    figures["decode chunk"] = chunk_us = per_item(
        lambda: [
            decode_lines(sample_lines[i : i + CHUNK]) for i in range(0, len(sample_lines), CHUNK)
        ],
        len(sample_lines),
    )
    start = time.perf_counter_ns()
    snapshot = engine.snapshot()
    snapshot_ms = (time.perf_counter_ns() - start) / 1e6
    counts = engine.counts()
    print("parts of the pipeline, per input:")
    print(
        f"  hash chain (one link per {CHUNK}-line chunk): {link_us:.2f} us; decoding: "
        f"{chunk_us:.2f} us in {CHUNK}-line chunks, {line_us:.2f} us line by line"
    )
    size = f"{len(snapshot) / 1e6:.1f} MB"
    print(
        f"  full state hash at the end, written from scratch: {snapshot_ms:.0f} ms for a {size} "
        f"snapshot ({counts['resting_orders']:,} resting orders, {counts['accounts']:,} accounts)"
    )
    kept = kept_hash_ms(setup, flow)
    figures["kept hash ms"] = kept
    print(
        f"  state hash every {HASH_EVERY} inputs (the snapshot kept up to date between hashes), "
        f"median over the flow: {kept:.2f} ms"
    )
    return figures


def kept_hash_ms(setup: list[Message], flow: list[Message]) -> float:
    """Median time of ``state_hash`` taken every ``HASH_EVERY`` inputs along the flow, the way a
    node takes one at every batch boundary (the snapshot's unchanged parts kept between)."""
    engine = fresh_engine(setup)
    engine.state_hash()
    samples = []
    for i in range(0, len(flow), HASH_EVERY):
        engine.apply_many(flow[i : i + HASH_EVERY])
        start = time.perf_counter_ns()
        engine.state_hash()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6


def verdict(figure: float, goal: float) -> str:
    return "met" if figure >= goal else f"NOT met ({figure / goal:.1%} of it)"


def summary(found: dict[str, dict[str, float]]) -> None:
    print("== goals (best median of wall and CPU time; one core)")
    compiled, pure = found.get("compiled"), found.get("pure")
    if compiled is not None:
        best = max(value for key, value in compiled.items() if key.startswith("apply"))
        goal = GOALS["compiled engine apply"]
        print(
            f"  compiled engine apply: {best:>10,.0f} inputs/s  goal >= {goal:,}: "
            f"{verdict(best, goal)}"
        )
        pipeline = max(value for key, value in compiled.items() if key.startswith("pipeline"))
        goal = GOALS["node pipeline"]
        print(
            f"  node pipeline:         {pipeline:>10,.0f} inputs/s  goal >= {goal:,}: "
            f"{verdict(pipeline, goal)}"
        )
    if pure is not None:
        best = max(value for key, value in pure.items() if key.startswith("apply, GC off"))
        low, high = TODAY_PURE
        print(
            f"  pure engine apply:     {best:>10,.0f} inputs/s  before compiling: "
            f"{low:,}-{high:,} on a quieter machine (compare A/B on the same machine)"
        )
    if compiled is not None and pure is not None:
        ratio = max(v for k, v in compiled.items() if k.startswith("apply, GC off")) / max(
            v for k, v in pure.items() if k.startswith("apply, GC off")
        )
        print(f"  compiled / pure, apply with GC off: {ratio:.1f}x")
    print("anchors: " + "; ".join(f"{name} {figure}" for name, figure in ANCHORS))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="timed inputs per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="200,000 inputs x 3 runs")
    parser.add_argument(
        "--engine", choices=("both", "compiled", "pure"), default="both", help="which build(s)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.inputs, args.runs = 200_000, 3
    if args.child:  # one build, in this process: figures as JSON on the last line
        figures = measure(args.inputs, args.runs, args.seed)
        print(json.dumps(figures))
        return 0
    found: dict[str, dict[str, Any]] = {}
    for engine in ("compiled", "pure") if args.engine == "both" else (args.engine,):
        command = [sys.executable, __file__, "--child", f"--inputs={args.inputs}"]
        command += [f"--runs={args.runs}", f"--seed={args.seed}"]
        env = {**os.environ, "VALIDATOR_ENGINE": engine}
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=False)
        out = done.stdout.rstrip("\n").split("\n")
        print("\n".join(out[:-1]))
        if done.returncode != 0:
            print(f"bench: the {engine} engine could not be measured", file=sys.stderr)
            return 1
        found[engine] = json.loads(out[-1])
    summary(found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
