"""Small daemon parts: backoff, schedule and its waker, metrics text, structured logs."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import threading
import time

import pytest

from attestor.backoff import Backoff
from attestor.metrics import Metrics
from attestor.probes import Observation
from attestor.schedule import RENEW_MIN_GAP, Job, Schedule, Waker
from redundancy.domains import Kind
from redundancy.jsonlog import configure, log_event


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


def test_metrics_render_prometheus_text() -> None:
    m = Metrics()
    m.inc("attestor_proofs_signed_total", kind="health")
    m.inc("attestor_proofs_signed_total", 2, kind="health")
    m.set("attestor_peer_rtt_microseconds", 7391, peer='a"b')
    m.gauge_from("attestor_outbox_depth", lambda: 3)
    text = m.render()
    assert "# TYPE attestor_proofs_signed_total counter\n" in text
    assert 'attestor_proofs_signed_total{kind="health"} 3\n' in text
    assert 'attestor_peer_rtt_microseconds{peer="a\\"b"} 7391\n' in text
    assert "attestor_outbox_depth 3\n" in text
    assert all(line.startswith("# ") or " " in line for line in text.splitlines())


def test_logs_are_one_json_object_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
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
