"""The attestor daemon: probes on their schedules signing into the outbox (main thread), a
publisher thread draining the outbox to the chain, the latency responder and the status server.

Stopping (SIGTERM/SIGINT via ``stop``) lets an in-flight publish finish, then closes everything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount

from attestor.errors import ProbeError, RegistrationError
from attestor.issuer import Issuer
from attestor.keys import DeviceIdentity
from attestor.latency import LatencyResponder, Measurement, allowed_sources, measure_peer
from attestor.metrics import Metrics
from attestor.outbox import PUBLISHED, Outbox
from attestor.probes import Observation, Probe
from attestor.probes.geography import GeographyProbe
from attestor.probes.hardware import HardwareProbe
from attestor.probes.health import DaemonStatus, HealthProbe
from attestor.probes.network import NetworkProbe, ProviderProbe
from attestor.probes.power import PowerProbe
from attestor.publisher import Publisher
from attestor.registry_link import RegistryLink, Target, lifetimes
from attestor.schedule import Job, Schedule
from attestor.settings import PeerSettings, Settings
from attestor.status import StatusServer
from redundancy.domains import Dimension, Kind, domain_id, facility_id
from redundancy.eip712 import Signer
from redundancy.errors import ChainUnreachableError
from redundancy.jsonlog import log_event

log = logging.getLogger("attestor.daemon")

PRUNE_EVERY = 3600.0
PROBE_RETRY = 60.0
CERT_WARNING_DAYS = 30


class Daemon:
    """One facility's attestor."""

    def __init__(
        self,
        settings: Settings,
        account: LocalAccount,
        identity: DeviceIdentity,
        target: Target,
        outbox: Outbox,
        domain_separator: bytes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self.target = target
        self.outbox = outbox
        self.clock = clock
        self.metrics = Metrics()
        self.facility_id = facility_id(settings.facility)
        self._stop = threading.Event()
        self._stop_requested = False  # set by signal handlers, which must take no lock
        self._publish_wake = threading.Event()
        self._started = time.monotonic()
        self._last_tick = time.monotonic()
        self._last_prune = 0.0
        self.fatal: RegistrationError | None = None

        self.geography = GeographyProbe(
            settings.geography, list(settings.latency.peers), self._measure
        )
        self.schedule = Schedule(self._jobs())
        self.issuer = Issuer(
            settings.facility,
            self.facility_id,
            identity,
            Signer(bytes(account.key)),
            domain_separator,
            outbox,
            clock,
        )
        self.link = RegistryLink(
            target, settings, account, identity, self.facility_id, domain_separator
        )
        self.publisher = Publisher(
            outbox,
            self.link,
            settings.publisher,
            self.metrics,
            self.schedule.request,
            clock,
            in_flight_timeout=target.receipt_timeout,
        )
        latency = settings.latency
        self.responder = LatencyResponder(
            latency.listen,
            settings.facility,
            identity,
            latency.emulated_delay_us,
            allowed_sources(latency.allow, list(latency.peers)),
        )
        self.status = StatusServer(settings.http.listen, self.metrics, self.health)
        self._publisher_thread = threading.Thread(
            target=self._publish_loop, name="publisher", daemon=True
        )
        self.metrics.gauge_from("attestor_outbox_depth", outbox.depth)
        self.metrics.set(
            "attestor_device_cert_not_after_timestamp_seconds",
            identity.cert.not_valid_after_utc.timestamp(),
        )
        self.metrics.set("attestor_last_signed_sequence", outbox.last_sequence())
        self.metrics.set("attestor_last_published_sequence", outbox.last_sequence(PUBLISHED))

    # ------------------------------------------------------------------ wiring

    def _jobs(self) -> list[Job]:
        s = self.settings
        life = {kind: seconds for kind, (_, seconds) in lifetimes(s).items()}
        probes: list[tuple[str, Probe, float]] = [
            ("health", self._health_probe(), s.health.heartbeat_interval),
            ("power", PowerProbe(s.power), s.power.interval),
            ("network", NetworkProbe(s.network), s.network.interval),
            ("provider", ProviderProbe(s.provider), s.provider.interval),
        ]
        probes += [
            (f"hardware[{i}]", HardwareProbe(node, i, s.hardware.root), s.hardware.interval)
            for i, node in enumerate(s.hardware.nodes)
        ]
        probes.append(("geography", self.geography, s.geography.interval))
        now = self.clock()
        return [
            Job(name, probe, interval, life[probe.kind], self._first_due(probe, interval, now))
            for name, probe, interval in probes
        ]

    def _claims(self, probe: Probe, now: float) -> tuple[bytes, bytes, int, int] | None:
        """What a fresh proof of this probe would assert on-chain (domains, coordinates)."""
        if probe.kind == Kind.HEALTH:
            return None
        if probe is self.geography:  # from the settings: no peers measured for this
            g = self.settings.geography
            obs = Observation(
                Kind.GEOGRAPHY,
                {},
                int(now),
                domain_id=domain_id(Dimension.METRO, g.metro),
                secondary_domain_id=domain_id(Dimension.COUNTRY, g.country),
                latitude_e6=g.latitude_e6,
                longitude_e6=g.longitude_e6,
            )
        else:
            obs = probe.observe(int(now))
        return (obs.domain_id, obs.secondary_domain_id, obs.latitude_e6, obs.longitude_e6)

    def _first_due(self, probe: Probe, interval: float, now: float) -> float:
        """When a probe first runs: one interval after its newest live proof, or at once if
        there is none or the settings now claim something else (a restart after an edit)."""
        subject = self.facility_id if probe.subject is None else probe.subject
        last = self.outbox.last_live(probe.kind, subject)
        if last is None:
            return now
        a = last.proof.attestation
        try:
            claims = self._claims(probe, now)
        except ProbeError:
            return now  # preflight reports it; the round logs it
        if claims is not None and claims != (
            a.domain_id,
            a.secondary_domain_id,
            a.latitude_e6,
            a.longitude_e6,
        ):
            log_event(log, "probe.changed", kind=probe.kind.name.lower(), sequence=a.sequence)
            return now
        return min(now + interval, a.issued_at + interval)

    def _health_probe(self) -> HealthProbe:
        def status() -> DaemonStatus:
            return DaemonStatus(
                chain_head=self.link.chain_head(),
                last_published_sequence=self.outbox.last_sequence(PUBLISHED),
                outbox_depth=self.outbox.depth(),
                uptime_seconds=int(time.monotonic() - self._started),
            )

        return HealthProbe(self.settings.data_dir, status)

    def _measure(self, peer: PeerSettings) -> Measurement:
        lat = self.settings.latency
        m = measure_peer(peer, self.settings.facility, lat.samples, lat.timeout)
        self.metrics.set("attestor_peer_rtt_microseconds", m.rtt_micros, peer=peer.facility)
        return m

    def preflight(self) -> None:
        """Run the probes that depend only on this host and the settings, so that a probe that
        can never work stops the start-up with a clear message (ProbeError)."""
        for job in self.schedule.jobs:
            if isinstance(job.probe, HardwareProbe):
                job.probe.facts()

    # --------------------------------------------------------------- lifecycle

    def connect(self, wait: float) -> bool:
        """Reach the chain and run the start-up checks, retrying for up to ``wait`` seconds.
        False if the chain stayed unreachable (the daemon then starts offline and checks at
        first contact); RegistrationError if the chain disagrees with the settings."""
        deadline = time.monotonic() + wait
        while True:
            try:
                self.link.client()
                return True
            except (ChainUnreachableError, OSError) as exc:
                if time.monotonic() >= deadline or self._stop.is_set():
                    log_event(log, "chain.offline_start", logging.WARNING, error=str(exc)[:300])
                    return False
                self._stop.wait(1.0)

    def serve(self) -> None:
        """Answer peers' latency challenges and serve /metrics and /healthz: started before
        the chain is reached, so peers starting together can measure each other at once."""
        self.responder.start()
        self.status.start()

    def start(self) -> None:
        host, port = self.status.address
        l_host, l_port = self.responder.address
        log_event(
            log,
            "daemon.started",
            facility=self.settings.facility,
            attestor=self.link.address,
            registry=self.target.registry,
            status=f"http://{host}:{port}",
            latency=f"{l_host}:{l_port}",
            outbox_depth=self.outbox.depth(),
            retired=self.outbox.retired,
        )
        left = self.identity.cert.not_valid_after_utc.timestamp() - self.clock()
        if left < CERT_WARNING_DAYS * 86_400:
            log_event(
                log,
                "device_cert.expiring",
                logging.WARNING,
                days_left=int(left // 86_400),
                not_after=self.identity.cert.not_valid_after_utc.isoformat(),
            )
        self._publisher_thread.start()

    def request_stop(self) -> None:
        """Ask the daemon to stop; safe from a signal handler (takes no lock)."""
        self._stop_requested = True
        self.schedule.waker.wake()

    def stop(self) -> None:
        """Stop the loops (from a thread, not a signal handler)."""
        self._stop.set()
        self.schedule.waker.wake()
        self._publish_wake.set()

    def _stopping(self) -> bool:
        return self._stop_requested or self._stop.is_set()

    def run(self) -> int:
        """Run until stopped (``serve`` first); the exit code (0, or 4 after a fatal
        registration problem)."""
        self.start()
        try:
            while not self._stopping():
                self._last_tick = time.monotonic()
                now = self.clock()
                due = self.schedule.due(now)
                if due:
                    self._round(due, now)
                self._maybe_prune(now)
                if not self._stopping():
                    self.schedule.waker.wait(self.schedule.seconds_until_next(self.clock()))
        finally:
            self.stop()
            self._shutdown()
        return 4 if self.fatal is not None else 0

    def _shutdown(self) -> None:
        log_event(log, "daemon.stopping", pending=self.outbox.depth())
        self._publish_wake.set()
        self._publisher_thread.join(timeout=self.target.receipt_timeout + 30)
        self.responder.stop()
        self.status.stop()
        pending = self.outbox.depth()
        self.outbox.close()
        log_event(log, "daemon.stopped", pending=pending)

    # ------------------------------------------------------------------ rounds

    def _round(self, due: list[Job], now: float) -> None:
        """Observe every due probe and sign the results in one outbox transaction."""
        observed: list[tuple[Job, Observation]] = []
        for job in due:
            try:
                obs = job.probe.observe(int(now))
            except ProbeError as exc:
                self.metrics.inc("attestor_probe_errors_total", kind=job.probe.kind.name.lower())
                log_event(log, "probe.failed", logging.ERROR, probe=job.name, error=str(exc))
                self.schedule.done(job, now, PROBE_RETRY)
                continue
            observed.append((job, obs))
            retry = None
            if job.probe is self.geography and self.geography.unreachable:
                retry = self.settings.geography.peer_retry_interval
            self.schedule.done(job, now, retry)
        if not observed:
            return
        proofs = self.issuer.issue([(obs, job.lifetime) for job, obs in observed])
        for (job, obs), proof in zip(observed, proofs, strict=True):
            kind = obs.kind.name.lower()
            self.metrics.inc("attestor_proofs_signed_total", kind=kind)
            if obs.kind == Kind.HEALTH:
                self.metrics.set("attestor_last_heartbeat_timestamp_seconds", now)
            log_event(
                log,
                "proof.signed",
                kind=kind,
                probe=job.name,
                sequence=proof.attestation.sequence,
                expires_at=proof.attestation.expires_at,
            )
        self.metrics.set("attestor_last_signed_sequence", proofs[-1].attestation.sequence)
        self._publish_wake.set()

    def _maybe_prune(self, now: float) -> None:
        if now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        removed = self.outbox.prune(now - self.settings.publisher.retention_days * 86_400)
        if removed:
            log_event(log, "outbox.pruned", removed=removed)

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            self._publish_wake.clear()
            try:
                delay = self.publisher.step()
            except RegistrationError as exc:
                self.fatal = exc
                log_event(log, "registration.failed", logging.ERROR, error=str(exc))
                self.stop()
                return
            except Exception as exc:  # keep publishing whatever went wrong once
                log.exception("publisher.error", extra={"fields": {"error": str(exc)[:300]}})
                delay = self.publisher.backoff.next()
            if delay == 0:
                continue
            self._publish_wake.wait(60.0 if delay is None else delay)

    # ------------------------------------------------------------------ health

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(alive, details) for /healthz: alive while the main loop keeps ticking."""
        stalled_after = 2 * self.settings.health.heartbeat_interval + 30
        age = time.monotonic() - self._last_tick
        alive = age < stalled_after and not self._stopping()
        reachable = self.metrics.value("attestor_chain_reachable")
        return alive, {
            "status": "ok" if alive else "stalled",
            "facility": self.settings.facility,
            "attestor": self.link.address,
            "chainReachable": None if reachable is None else bool(reachable),
            "outboxDepth": self.outbox.depth(),
            "lastSignedSequence": self.outbox.last_sequence(),
            "lastPublishedSequence": self.outbox.last_sequence(PUBLISHED),
            "loopAgeSeconds": round(age, 3),
        }
