"""When each probe runs next: its own interval, sooner on request (a proof to re-issue)."""

from __future__ import annotations

import contextlib
import os
import select
import threading
from dataclasses import dataclass

from attestor.probes import Probe
from redundancy.domains import Kind

#: A job re-runs on request no sooner than this after its last run, so that a proof refused
#: again and again (clocks far apart) cannot make the daemon sign in a tight loop.
RENEW_MIN_GAP = 5.0


class Waker:
    """Wakes a thread waiting in ``wait``. ``wake`` takes no lock (a self-pipe), so it is safe
    from a signal handler: setting a ``threading.Event`` there can deadlock the main thread when
    the signal lands while it holds that event's lock."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full pipe: already awake
            os.write(self._write, b"\0")

    def wait(self, timeout: float | None) -> bool:
        """Sleep until woken or ``timeout`` seconds pass; True if woken."""
        ready, _, _ = select.select([self._read], [], [], timeout)
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass
        return True


@dataclass
class Job:
    """One probe on its schedule."""

    name: str
    probe: Probe
    interval: float
    lifetime: int
    next_due: float = 0.0
    last_run: float = float("-inf")


class Schedule:
    """The daemon's jobs; ``request`` may be called from any thread."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self._lock = threading.Lock()
        self.waker = Waker()

    def _rebase(self, now: float) -> None:
        """The wall clock stepped back (an NTP correction of a clock that ran ahead): a job
        planned after that future time would wait out the whole jump. No job waits longer than
        its interval from now; none ran later than now. Called with the lock held."""
        for j in self.jobs:
            if j.next_due > now + j.interval:
                j.next_due = now + j.interval
            j.last_run = min(j.last_run, now)

    def due(self, now: float) -> list[Job]:
        with self._lock:
            self._rebase(now)
            return [j for j in self.jobs if j.next_due <= now]

    def done(self, job: Job, now: float, retry_after: float | None = None) -> None:
        """Schedule the job's next run: after its interval, or ``retry_after`` if sooner."""
        delay = job.interval if retry_after is None else min(job.interval, retry_after)
        with self._lock:
            job.last_run = now
            job.next_due = now + delay

    def request(self, kind: Kind, subject: bytes) -> None:
        """Run the job for this kind and subject soon (a fresh proof is needed): at once, or
        ``RENEW_MIN_GAP`` after its last run."""
        with self._lock:
            for job in self.jobs:
                probe_subject = job.probe.subject
                if job.probe.kind == kind and (probe_subject is None or probe_subject == subject):
                    job.next_due = min(job.next_due, job.last_run + RENEW_MIN_GAP)
        self.waker.wake()

    def seconds_until_next(self, now: float) -> float:
        with self._lock:
            self._rebase(now)
            return max(0.0, min((j.next_due for j in self.jobs), default=60.0) - now)
