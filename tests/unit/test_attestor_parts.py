"""Small daemon parts: backoff, schedule and its waker, metrics and the status server, structured
logs."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from attestor.backoff import Backoff
from attestor.metrics import Metrics
from attestor.probes import Observation
from attestor.schedule import RENEW_MIN_GAP, Job, Schedule, Waker
from attestor.status import StatusServer
from redundancy.domains import Kind
from redundancy.jsonlog import configure, log_event

#: Every metric the attestor exposes: name -> (type, help). Dashboards and the devnet read them.
METRICS = {
    "attestor_proofs_signed_total": ("counter", "Proofs signed into the outbox, by kind."),
    "attestor_proofs_published_total": ("counter", "Proofs accepted on-chain, by kind."),
    "attestor_proofs_failed_total": (
        "counter",
        "Proofs that will not land: refused by the registry or expired unsent, by reason.",
    ),
    "attestor_publish_batches_total": ("counter", "Transactions sent with a batch of proofs."),
    "attestor_publish_errors_total": ("counter", "Publish attempts that failed, by error."),
    "attestor_probe_errors_total": ("counter", "Probe runs that failed, by kind."),
    "attestor_outbox_errors_total": (
        "counter",
        "Rounds the outbox could not store (disk full, read-only): nothing was signed.",
    ),
    "attestor_outbox_depth": ("gauge", "Signed proofs waiting to be published."),
    "attestor_last_signed_sequence": ("gauge", "Sequence of the newest signed proof."),
    "attestor_last_published_sequence": ("gauge", "Sequence of the newest published proof."),
    "attestor_chain_reachable": ("gauge", "1 if the last chain request succeeded, else 0."),
    "attestor_peer_rtt_microseconds": ("gauge", "Fastest signed round trip to each peer."),
    "attestor_last_heartbeat_timestamp_seconds": ("gauge", "When the newest heartbeat was signed."),
    "attestor_device_cert_not_after_timestamp_seconds": (
        "gauge",
        "When the device certificate expires.",
    ),
}


def test_backoff_doubles_to_the_cap_and_resets() -> None:
    b = Backoff(1.0, 10.0, jitter=0.0)
    assert [b.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    b.reset()
    assert b.next() == 1.0


def test_backoff_jitter_stays_within_bounds() -> None:
    low = Backoff(1.0, 60.0, jitter=0.2, rand=lambda: 0.0)
    high = Backoff(1.0, 60.0, jitter=0.2, rand=lambda: 1.0)
    assert (low.next(), high.next()) == pytest.approx((0.8, 1.2))
    for _ in range(10):
        assert high.next() <= 60.0
    with pytest.raises(ValueError):
        Backoff(0, 1)


class _Probe:
    def __init__(self, kind: Kind, subject: bytes | None = None) -> None:
        self.kind = kind
        self.subject = subject

    def observe(self, now: int) -> Observation:
        return Observation(self.kind, {}, now)


def test_schedule_runs_jobs_on_their_intervals_and_sooner_on_request() -> None:
    power = Job("power", _Probe(Kind.POWER), interval=100, lifetime=1000)
    node = Job("hw", _Probe(Kind.HARDWARE, b"\x01" * 32), interval=100, lifetime=1000)
    schedule = Schedule([power, node])
    assert schedule.due(0.0) == [power, node]
    schedule.done(power, 0.0)
    schedule.done(node, 0.0, retry_after=30)
    assert (power.next_due, node.next_due) == (100.0, 30.0)
    assert schedule.seconds_until_next(10.0) == 20.0
    schedule.request(Kind.POWER, b"\xff" * 32)  # facility kinds match any subject
    assert power.next_due == RENEW_MIN_GAP  # not sooner than the gap after its last run
    schedule.request(Kind.HARDWARE, b"\x02" * 32)  # another node: untouched
    assert node.next_due == 30.0


def test_a_wall_clock_stepped_back_does_not_postpone_jobs_by_the_step() -> None:
    """Found by the fault campaign's clock jumps: a clock an hour ahead, then corrected, left
    every job due an hour later, so the attestor went silent for the size of the jump."""
    health = Job("health", _Probe(Kind.HEALTH), interval=10, lifetime=20)
    schedule = Schedule([health])
    schedule.done(health, 3600.0 + 1000.0)  # last run while the clock was an hour ahead
    assert schedule.seconds_until_next(1005.0) == 10.0  # stepped back: one interval, not 3605
    assert schedule.due(1015.0) == [health]
    assert health.last_run <= 1015.0  # a renewal request is not held back by a future run


def test_waker_is_woken_from_a_signal_handler() -> None:
    waker = Waker()
    previous = signal.signal(signal.SIGUSR2, lambda *_: waker.wake())
    try:
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR2)).start()
        started = time.monotonic()
        assert waker.wait(5.0) is True
        assert time.monotonic() - started < 2.0
        assert waker.wait(0.01) is False  # drained
        for _ in range(20_000):  # a full pipe does not block the waker
            waker.wake()
        assert waker.wait(0) is True
    finally:
        signal.signal(signal.SIGUSR2, previous)


Series = dict[tuple[tuple[str, str], ...], float]


def _scrape(url: str) -> dict[str, tuple[str, str, Series]]:
    """name -> (type, help, {labels: value}) from a /metrics endpoint, without the counters'
    ``_created`` timestamps."""
    reply = requests.get(url, timeout=5)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(reply.text):
        if family.name.endswith("_created"):
            continue
        name = family.name + "_total" if family.type == "counter" else family.name
        series = {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        out[name] = (family.type, family.documentation, series)
    return out


@pytest.fixture
def status() -> Iterator[tuple[Metrics, StatusServer, dict[str, Any]]]:
    metrics = Metrics()
    server = StatusServer("127.0.0.1:0", metrics.registry)
    health: dict[str, Any] = {"alive": True}
    server.start(lambda: (health["alive"], {"status": "ok" if health["alive"] else "stalled"}))
    try:
        yield metrics, server, health
    finally:
        server.stop()


def test_metrics_and_health_are_served_over_http(
    status: tuple[Metrics, StatusServer, dict[str, Any]],
) -> None:
    m, server, health = status
    host, port = server.address
    base = f"http://{host}:{port}"
    assert host == "127.0.0.1"
    m.proofs_signed.labels(kind="health").inc()
    m.proofs_signed.labels(kind="health").inc(2)
    m.peer_rtt.labels(peer='a"b').set(7391)
    m.read_outbox_depth(lambda: 3)
    scraped = _scrape(f"{base}/metrics")
    assert {name: (kind, text) for name, (kind, text, _) in scraped.items()} == METRICS
    assert scraped["attestor_proofs_signed_total"][2] == {(("kind", "health"),): 3}
    assert scraped["attestor_peer_rtt_microseconds"][2] == {(("peer", 'a"b'),): 7391}
    assert scraped["attestor_outbox_depth"][2] == {(): 3}
    # unknown until first set: no sample, not 0
    assert scraped["attestor_chain_reachable"][2] == {}
    assert m.value("attestor_chain_reachable") is None
    m.chain_reachable.set(0)
    assert m.value("attestor_chain_reachable") == 0
    assert _scrape(f"{base}/metrics")["attestor_chain_reachable"][2] == {(): 0}

    depths = [5]

    def flaky() -> float:
        if not depths:
            raise OSError("database is locked")
        return depths.pop()

    m.read_outbox_depth(flaky)
    assert _scrape(f"{base}/metrics")["attestor_outbox_depth"][2] == {(): 5}
    # a failed read keeps the last value, and the scrape still succeeds
    assert _scrape(f"{base}/metrics")["attestor_outbox_depth"][2] == {(): 5}

    reply = requests.get(f"{base}/healthz", timeout=5)
    assert (reply.status_code, reply.json()) == (200, {"status": "ok"})
    health["alive"] = False
    reply = requests.get(f"{base}/healthz", timeout=5)
    assert (reply.status_code, reply.json()) == (503, {"status": "stalled"})
    assert reply.headers["Content-Type"] == "application/json"
    assert requests.get(f"{base}/nope", timeout=5).status_code == 404


def test_status_server_stops_and_frees_its_port() -> None:
    metrics = Metrics()
    server = StatusServer("127.0.0.1:0", metrics.registry).start(lambda: (True, {}))
    host, port = server.address
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2.0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{host}:{port}/healthz", timeout=2)
    StatusServer(f"{host}:{port}", Metrics().registry).stop()  # the port is free again


@pytest.fixture
def root_logger() -> Iterator[None]:
    """configure() replaces the root logger's handlers: put them back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_logs_are_one_json_object_per_line(
    monkeypatch: pytest.MonkeyPatch, root_logger: None
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure("info", "json")
    log = logging.getLogger("attestor.test")
    log_event(log, "proof.signed", kind="power", sequence=3)
    log_event(log, "hidden", logging.DEBUG)
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["event"] == "proof.signed" and entry["sequence"] == 3
    assert entry["level"] == "info" and entry["logger"] == "attestor.test"
    configure("info", "text")
    log_event(log, "proof.signed", kind="power")
    assert stream.getvalue().splitlines()[-1].endswith("info proof.signed kind=power")
