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

from attestor.errors import (
    DeviceIdentityError,
    OutboxUnwritableError,
    ProbeError,
    RegistrationError,
)
from attestor.issuer import Issuer
from attestor.keys import DeviceIdentity
from attestor.latency import AnchorCache, LatencyResponder
from attestor.metrics import Metrics
from attestor.outbox import PUBLISHED, Outbox
from attestor.probes import Observation
from attestor.probes.geography import GeographyProbe
from attestor.probes.hardware import HardwareProbe
from attestor.publisher import Publisher
from attestor.registry_link import RegistryLink
from attestor.schedule import Job, Schedule
from attestor.settings import Settings
from attestor.status import StatusServer
from redundancy.domains import Kind
from redundancy.errors import ChainUnreachableError, FeeCapError
from redundancy.jsonlog import log_event

log = logging.getLogger("attestor.daemon")

PRUNE_EVERY = 3600.0
PROBE_RETRY = 60.0
#: Seconds before signing is tried again after the outbox could not store a round.
OUTBOX_RETRY = 5.0
CERT_WARNING_DAYS = 30


class Daemon:
    """One facility's attestor: its lifecycle and its rounds. ``attestor.cli.build_daemon``
    wires the parts."""

    def __init__(
        self,
        settings: Settings,
        *,
        identity: DeviceIdentity,
        outbox: Outbox,
        schedule: Schedule,
        geography: GeographyProbe,
        issuer: Issuer,
        link: RegistryLink,
        publisher: Publisher,
        responder: LatencyResponder,
        status: StatusServer,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        anchor: AnchorCache | None = None,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self.outbox = outbox
        self.schedule = schedule
        self.geography = geography
        self.issuer = issuer
        self.link = link
        self.publisher = publisher
        self.responder = responder
        self._responder_started = False
        self.status = status
        self.metrics = metrics
        self.clock = clock
        self.anchor = anchor
        self._stop = threading.Event()
        self._stop_requested = False  # set by signal handlers, which must take no lock
        self._publish_wake = threading.Event()
        self._last_tick = time.monotonic()
        self._last_prune = 0.0
        self.fatal: RegistrationError | None = None
        self.outbox_error: str | None = None
        """Why the last round could not be stored (None once one is)."""
        self._publisher_thread = threading.Thread(
            target=self._publish_loop, name="publisher", daemon=True
        )

    def preflight(self) -> None:
        """Run the probes that depend only on this host and the settings, so that a probe that
        can never work stops the start-up with a clear message (ProbeError)."""
        for job in self.schedule.jobs:
            if isinstance(job.probe, HardwareProbe):
                job.probe.facts()

    # --------------------------------------------------------------- lifecycle

    def connect(self, wait: float) -> bool:
        """Reach the chain and run the start-up checks, retrying for up to ``wait`` seconds.
        False if the chain stayed unreachable, or asked more than the fee cap (the daemon then
        starts offline and checks at first contact); RegistrationError if the chain disagrees
        with the settings."""
        deadline = time.monotonic() + wait
        while True:
            try:
                self.link.client()
                return True
            except (ChainUnreachableError, FeeCapError, OSError) as exc:
                # FeeCapError: the start-up work (certificates) would cost more than the cap
                if time.monotonic() >= deadline or self._stop.is_set():
                    log_event(log, "chain.offline_start", logging.WARNING, error=str(exc)[:300])
                    return False
                self._stop.wait(1.0)

    def serve(self) -> None:
        """Answer peers' latency challenges and serve /metrics, /healthz and /latency: started
        before the chain is reached, so peers starting together can measure each other at once
        (the block RTT measurements bind is fetched in the background once the chain answers)."""
        if self.anchor is not None:
            self.anchor.start()
        self.responder.start()
        self._responder_started = True
        self.status.start(self.health)

    def start(self) -> None:
        host, port = self.status.address
        l_host, l_port = self.responder.address
        log_event(
            log,
            "daemon.started",
            facility=self.settings.facility,
            attestor=self.link.address,
            registry=self.link.target.registry,
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
        self._publisher_thread.join(timeout=self.link.target.receipt_timeout + 30)
        self.responder.stop()
        if self.anchor is not None:
            self.anchor.stop()
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
                self.metrics.probe_errors.labels(kind=job.probe.kind.name.lower()).inc()
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
        try:
            proofs = self.issuer.issue([(obs, job.lifetime) for job, obs in observed])
        except OutboxUnwritableError as exc:
            self._refuse_to_sign(observed, now, exc)
            return
        except DeviceIdentityError as exc:  # the TPM did not quote: nothing signed, retry soon
            log_event(log, "proof.unsigned", logging.ERROR, error=str(exc)[:300])
            for job, _obs in observed:
                self.schedule.done(job, now, PROBE_RETRY)
            return
        self.outbox_error = None
        for (job, obs), proof in zip(observed, proofs, strict=True):
            kind = obs.kind.name.lower()
            self.metrics.proofs_signed.labels(kind=kind).inc()
            if obs.kind == Kind.HEALTH:
                self.metrics.last_heartbeat.set(now)
            log_event(
                log,
                "proof.signed",
                kind=kind,
                probe=job.name,
                sequence=proof.attestation.sequence,
                expires_at=proof.attestation.expires_at,
            )
        self.metrics.last_signed_sequence.set(proofs[-1].attestation.sequence)
        self._publish_wake.set()

    def _refuse_to_sign(
        self, observed: list[tuple[Job, Observation]], now: float, exc: OutboxUnwritableError
    ) -> None:
        """The outbox could not store this round: nothing was signed for good (the signatures
        were discarded with the transaction). Say so, and try again soon."""
        self.outbox_error = str(exc)
        self.metrics.outbox_errors.inc()
        log_event(
            log,
            "outbox.unwritable",
            logging.ERROR,
            error=str(exc),
            unsigned=[job.name for job, _ in observed],
            retry_in=OUTBOX_RETRY,
        )
        for job, _ in observed:
            self.schedule.done(job, now, OUTBOX_RETRY)

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
        """(alive, details) for /healthz: alive while the main loop keeps ticking, the outbox
        takes writes and the latency responder (once started) runs."""
        stalled_after = 2 * self.settings.health.heartbeat_interval + 30
        age = time.monotonic() - self._last_tick
        looping = age < stalled_after and not self._stopping()
        answering = self.responder.alive or not self._responder_started
        alive = looping and self.outbox_error is None and answering
        reachable = self.metrics.value("attestor_chain_reachable")
        if not looping:
            status = "stalled"
        elif self.outbox_error is not None:
            status = "outbox_unwritable"
        else:
            status = "ok" if answering else "latency_responder_stopped"
        return alive, {
            "status": status,
            "outboxError": self.outbox_error,
            "facility": self.settings.facility,
            "attestor": self.link.address,
            "chainReachable": None if reachable is None else bool(reachable),
            "outboxDepth": self.outbox.depth(),
            "lastSignedSequence": self.outbox.last_sequence(),
            "lastPublishedSequence": self.outbox.last_sequence(PUBLISHED),
            "loopAgeSeconds": round(age, 3),
        }
