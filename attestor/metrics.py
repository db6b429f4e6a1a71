"""The attestor's Prometheus metrics, in a registry of its own per daemon (tests build several
daemons in one process), served by ``attestor.status``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


class LatestValue(Collector):
    """An unlabelled gauge with no sample until it is first set: before the first chain request
    or the first heartbeat the value is unknown, not 0."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self._value: float | None = None
        registry.register(self)

    def set(self, value: float) -> None:
        self._value = float(value)

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation)
        if self._value is not None:
            family.add_metric([], self._value)
        return [family]


class Metrics:
    """Every metric the attestor exposes, registered in ``registry``."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.proofs_signed = Counter(
            "attestor_proofs_signed_total",
            "Proofs signed into the outbox, by kind.",
            ["kind"],
            registry=r,
        )
        self.proofs_published = Counter(
            "attestor_proofs_published_total",
            "Proofs accepted on-chain, by kind.",
            ["kind"],
            registry=r,
        )
        self.proofs_failed = Counter(
            "attestor_proofs_failed_total",
            "Proofs that will not land: refused by the registry or expired unsent, by reason.",
            ["reason"],
            registry=r,
        )
        self.publish_batches = Counter(
            "attestor_publish_batches_total",
            "Transactions sent with a batch of proofs.",
            registry=r,
        )
        self.publish_errors = Counter(
            "attestor_publish_errors_total",
            "Publish attempts that failed, by error.",
            ["error"],
            registry=r,
        )
        self.probe_errors = Counter(
            "attestor_probe_errors_total",
            "Probe runs that failed, by kind.",
            ["kind"],
            registry=r,
        )
        self.outbox_errors = Counter(
            "attestor_outbox_errors_total",
            "Rounds the outbox could not store (disk full, read-only): nothing was signed.",
            registry=r,
        )
        self.outbox_depth = Gauge(
            "attestor_outbox_depth", "Signed proofs waiting to be published.", registry=r
        )
        self.last_signed_sequence = Gauge(
            "attestor_last_signed_sequence", "Sequence of the newest signed proof.", registry=r
        )
        self.last_published_sequence = Gauge(
            "attestor_last_published_sequence",
            "Sequence of the newest published proof.",
            registry=r,
        )
        self.chain_reachable = LatestValue(
            "attestor_chain_reachable", "1 if the last chain request succeeded, else 0.", r
        )
        self.peer_rtt = Gauge(
            "attestor_peer_rtt_microseconds",
            "Fastest signed round trip to each peer.",
            ["peer"],
            registry=r,
        )
        self.last_heartbeat = LatestValue(
            "attestor_last_heartbeat_timestamp_seconds", "When the newest heartbeat was signed.", r
        )
        self.device_cert_not_after = Gauge(
            "attestor_device_cert_not_after_timestamp_seconds",
            "When the device certificate expires.",
            registry=r,
        )

    def read_outbox_depth(self, read: Callable[[], float]) -> None:
        """Read ``attestor_outbox_depth`` from ``read`` at every scrape; a failed read keeps the
        last value (a scrape must not fail because one source did)."""
        last = 0.0

        def depth() -> float:
            nonlocal last
            with contextlib.suppress(Exception):
                last = float(read())
            return last

        self.outbox_depth.set_function(depth)

    def value(self, name: str, **labels: str) -> float | None:
        """The current value of one sample (None if it has none yet), read from the registry."""
        return self.registry.get_sample_value(name, labels)
