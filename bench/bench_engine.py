"""Benchmark of the validator core (not a test): inputs per second on one core, and
per-input latency, on a mixed order flow in the spirit of exchange-core's.

Run from the repository root::

    PYTHONPATH=. python bench/bench_engine.py            # 1,000,000 inputs x 5 runs
    PYTHONPATH=. python bench/bench_engine.py --quick    # 200,000 inputs x 3 runs

Workload: ``devnet.loggen`` with the ``BENCHMARK`` profile - 200 series (4
underlyings x 5 expiries x 5 strikes x call/put), 2,000 funded accounts, books
held near 30 resting orders per series; the flow is new GTC and post-only
orders 1-5 ticks behind a drifting mid, cancels and cancel-replaces of live
orders, and IOC orders 1-5 ticks through the mid (most of which trade). Every
input is an order-entry command, as in exchange-core, so inputs/s = orders/s.

Method: the workload is generated once (untimed) and held in memory, its
messages laid out in arrival order (a pickle round trip) as a node that decodes
its log one entry at a time would have them, not scattered among the
generator's own garbage (that alone cost ~20% in cache misses); each run
applies the setup (listings, deposits) untimed to a fresh engine, then times
the whole flow with ``time.perf_counter_ns``. Throughput is inputs / wall time
of the run, and also inputs / CPU time of the process (``time.process_time``),
which leaves out time the process spent preempted by other work on a busy
machine; the figures printed are medians over the runs. Latency comes from
one more run that times every ``apply`` call separately (the ~50 ns cost of
reading the clock twice is included in each sample).

Garbage collection: the generated workload (a million message objects) is
frozen out of the cyclic collector with ``gc.freeze()``, since a validator
node decodes and drops one message at a time and never holds them. The engine
itself allocates no reference cycles (``tests/unit/test_loggen.py`` proves it on
a full life-cycle log), so a node may run with the collector off; figures are
given both with CPython's default collector and with it off.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import platform
import statistics
import time
from array import array
from collections import Counter
from collections.abc import Callable

from devnet.loggen import BENCHMARK, generate
from validator.engine import Engine
from validator.engine.codec import decode_message, encode_message
from validator.engine.hashchain import HashChain
from validator.engine.messages import Cancel, CancelReplace, Deposit, ListSeries, Message, NewOrder
from validator.engine.primitives import OrderKind
from validator.engine.results import Result

GOAL = 500_000
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


def timed_run(setup: list[Message], flow: list[Message], *, collector: bool) -> tuple[float, float]:
    """Inputs per second of wall time and per second of this process's CPU time, over
    one whole run."""
    engine = fresh_engine(setup)
    apply = engine.apply
    gc.collect()
    if not collector:
        gc.disable()
    try:
        wall, cpu = time.perf_counter_ns(), time.process_time_ns()
        for msg in flow:
            apply(msg)
        wall, cpu = time.perf_counter_ns() - wall, time.process_time_ns() - cpu
    finally:
        gc.enable()
    return len(flow) / (wall / 1e9), len(flow) / (cpu / 1e9)


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


def per_call(fn: Callable[[], object], count: int) -> float:
    """Mean microseconds per item of ``fn``, which handles ``count`` items."""
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / count / 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="timed inputs per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="200,000 inputs x 3 runs")
    args = parser.parse_args()
    if args.quick:
        args.inputs, args.runs = 200_000, 3

    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"validator core benchmark - {python}, one core")
    started = time.perf_counter()
    series = len(BENCHMARK.underlyings) * BENCHMARK.expiries * BENCHMARK.strikes * 2
    log = generate(series + BENCHMARK.accounts + args.inputs, args.seed, BENCHMARK)
    # Re-create the messages in arrival order, as a node decoding its log would,
    # rather than scattered among the generator's garbage.
    setup, flow = split(pickle.loads(pickle.dumps(log, protocol=5)))
    del log
    gc.collect()
    gc.freeze()
    print(
        f"workload: {len(flow):,} inputs after {len(setup):,} setup inputs "
        f"({series} series, {BENCHMARK.accounts:,} accounts), seed {args.seed}; "
        f"generated in {time.perf_counter() - started:.1f} s"
    )

    figures: dict[str, float] = {}
    for collector in (True, False):
        label = "default GC" if collector else "GC off"
        runs = [timed_run(setup, flow, collector=collector) for _ in range(args.runs)]
        for clock, column in (("wall", 0), ("CPU", 1)):
            rates = [run[column] for run in runs]
            figures[f"{label}, {clock} time"] = median = statistics.median(rates)
            each = ", ".join(f"{rate / 1e3:,.0f}k" for rate in rates)
            print(
                f"throughput, {label:10s} {clock:4s} time: {median:>9,.0f} inputs/s"
                f"  (median of {args.runs}: {each})"
            )

    print("latency per input (every apply timed, one run each; p50 / p99 / p99.9 / max):")
    for collector in (True, False):
        samples = latency_run(setup, flow, collector=collector)
        p = [percentile(samples, q) / 1e3 for q in (50, 99, 99.9)]
        label = "default GC" if collector else "GC off"
        print(f"  {label:10s}: {p[0]:.1f} / {p[1]:.1f} / {p[2]:.1f} / {samples[-1] / 1e3:,.0f} us")
    engine = fresh_engine(setup)
    results = [engine.apply(msg) for msg in flow]
    print(describe(flow, results))
    sample = flow[:100_000]
    sample_results = results[: len(sample)]
    chain = HashChain()
    link_us = per_call(
        lambda: [chain.link(m, r) for m, r in zip(sample, sample_results, strict=True)], len(sample)
    )
    lines = [encode_message(msg) for msg in sample]
    decode_us = per_call(lambda: [decode_message(line) for line in lines], len(lines))
    start = time.perf_counter_ns()
    snapshot = engine.snapshot()
    snapshot_ms = (time.perf_counter_ns() - start) / 1e6
    counts = engine.counts()
    print("side costs (not in the figures above):")
    print(f"  hash-chain link per input: {link_us:.1f} us; decoding a log line: {decode_us:.1f} us")
    size = f"{len(snapshot) / 1e6:.1f} MB"
    print(
        f"  full state hash at the end: {snapshot_ms:.0f} ms for a {size} snapshot "
        f"({counts['resting_orders']:,} resting orders, {counts['accounts']:,} accounts)"
    )

    best_label = max(figures, key=lambda label: figures[label])
    best = figures[best_label]
    verdict = "met" if best >= GOAL else f"NOT met: {best / GOAL:.0%} of the goal"
    print(f"goal: >= {GOAL:,} orders/s on one core in CPython - {verdict} (best: {best_label})")
    print("anchors: " + "; ".join(f"{name} {figure}" for name, figure in ANCHORS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
