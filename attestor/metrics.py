"""Counters and gauges for ``/metrics``, in the Prometheus text exposition format."""

from __future__ import annotations

import threading
from collections.abc import Callable

Labels = tuple[tuple[str, str], ...]

#: name -> (type, help). Every metric the attestor exposes is listed here.
METRICS: dict[str, tuple[str, str]] = {
    "attestor_proofs_signed_total": ("counter", "Proofs signed into the outbox, by kind."),
    "attestor_proofs_published_total": ("counter", "Proofs accepted on-chain, by kind."),
    "attestor_proofs_failed_total": (
        "counter",
        "Proofs that will not land: refused by the registry or expired unsent, by reason.",
    ),
    "attestor_publish_batches_total": ("counter", "Transactions sent with a batch of proofs."),
    "attestor_publish_errors_total": ("counter", "Publish attempts that failed, by error."),
    "attestor_probe_errors_total": ("counter", "Probe runs that failed, by kind."),
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


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Metrics:
    """Thread-safe metric values; gauges may also be read from a callback at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {name: {} for name in METRICS}
        self._callbacks: dict[str, Callable[[], float]] = {}

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = _labels(labels)
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[name][_labels(labels)] = value

    def gauge_from(self, name: str, read: Callable[[], float]) -> None:
        """Read gauge ``name`` (no labels) from ``read`` at every scrape."""
        self._callbacks[name] = read

    def value(self, name: str, **labels: str) -> float | None:
        with self._lock:
            return self._values[name].get(_labels(labels))

    def render(self) -> str:
        for name, read in self._callbacks.items():
            try:
                self.set(name, read())
            except Exception:  # a scrape must not fail because one source did
                continue
        lines: list[str] = []
        with self._lock:
            for name, (kind, help_text) in METRICS.items():
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                for labels, value in sorted(self._values[name].items()):
                    rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    series = f"{name}{{{rendered}}}" if rendered else name
                    lines.append(f"{series} {_number(value)}")
        return "\n".join(lines) + "\n"
