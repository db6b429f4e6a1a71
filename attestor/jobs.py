"""The daemon's jobs: each probe on its interval, with its proofs' lifetime, first due one
interval after its newest live proof in the outbox, or at once if there is none or the settings
now claim something else (a restart after an edit)."""

from __future__ import annotations

import logging

from attestor.errors import ProbeError
from attestor.outbox import Outbox
from attestor.probes import Observation, Probe
from attestor.probes.geography import GeographyProbe
from attestor.registry_link import lifetimes
from attestor.schedule import Job
from attestor.settings import GeographySettings, Settings
from redundancy.domains import Dimension, Kind, domain_id
from redundancy.jsonlog import log_event

log = logging.getLogger("attestor.daemon")

#: (job name, probe, interval in seconds)
ProbeSpec = tuple[str, Probe, float]


def plan_jobs(
    probes: list[ProbeSpec], settings: Settings, outbox: Outbox, facility_id: bytes, now: float
) -> list[Job]:
    """A job per probe, each with its kind's lifetime and its first due time."""
    life = {kind: seconds for kind, (_, seconds) in lifetimes(settings).items()}
    return [
        Job(
            name,
            probe,
            interval,
            life[probe.kind],
            first_due(probe, interval, now, settings.geography, outbox, facility_id),
        )
        for name, probe, interval in probes
    ]


def claims(
    probe: Probe, geography: GeographySettings, now: float
) -> tuple[bytes, bytes, int, int] | None:
    """What a fresh proof of this probe would assert on-chain (domains, coordinates)."""
    if probe.kind == Kind.HEALTH:
        return None
    if isinstance(probe, GeographyProbe):  # from the settings: no peers measured for this
        obs = Observation(
            Kind.GEOGRAPHY,
            {},
            int(now),
            domain_id=domain_id(Dimension.METRO, geography.metro),
            secondary_domain_id=domain_id(Dimension.COUNTRY, geography.country),
            latitude_e6=geography.latitude_e6,
            longitude_e6=geography.longitude_e6,
        )
    else:
        obs = probe.observe(int(now))
    return (obs.domain_id, obs.secondary_domain_id, obs.latitude_e6, obs.longitude_e6)


def first_due(
    probe: Probe,
    interval: float,
    now: float,
    geography: GeographySettings,
    outbox: Outbox,
    facility_id: bytes,
) -> float:
    """When a probe first runs: one interval after its newest live proof, or at once if there
    is none or the settings now claim something else."""
    subject = facility_id if probe.subject is None else probe.subject
    last = outbox.last_live(probe.kind, subject)
    if last is None:
        return now
    a = last.proof.attestation
    try:
        claimed = claims(probe, geography, now)
    except ProbeError:
        return now  # preflight reports it; the round logs it
    if claimed is not None and claimed != (
        a.domain_id,
        a.secondary_domain_id,
        a.latitude_e6,
        a.longitude_e6,
    ):
        log_event(log, "probe.changed", kind=probe.kind.name.lower(), sequence=a.sequence)
        return now
    return min(now + interval, a.issued_at + interval)
