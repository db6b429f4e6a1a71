"""GET /facilities and /facilities/{facility}."""

from __future__ import annotations

from api.blockview import BlockView, FacilityRecord
from api.errors import FacilityNotFoundError
from api.eventindex import IndexView, LatencyRecord, ProofRecord
from api.params import FacilityRef
from api.schemas.common import location
from api.schemas.facilities import (
    DiscPublic,
    FacilitiesPublic,
    FacilityDetailPublic,
    FacilityPublic,
    FreshnessPolicyPublic,
    GeographyPublic,
    ProofFreshnessPublic,
    ProofRefPublic,
)
from api.views.common import ZERO32, block_public, domain_public, hx
from redundancy.domains import Dimension, Kind
from redundancy.geodesy import proven_disc

FACILITY_DIMENSIONS = (
    Dimension.FACILITY,
    Dimension.METRO,
    Dimension.COUNTRY,
    Dimension.POWER,
    Dimension.NETWORK,
    Dimension.PROVIDER,
)


def latest_proofs(index: IndexView) -> dict[tuple[bytes, Kind], ProofRecord]:
    """The latest accepted proof of each (facility, kind) (hardware: of any node)."""
    return {(p.facility_id, p.kind): p for p in index.proofs}


def latest_latencies(index: IndexView) -> dict[tuple[bytes, bytes], LatencyRecord]:
    """The latest measurement of each ordered (measuring facility, peer) pair."""
    return {(r.facility_id, r.peer_facility_id): r for r in index.latencies}


def _lifetime(p: ProofRecord | None) -> int | None:
    if p is None or p.attestation is None:
        return None
    return p.attestation.expires_at - p.attestation.issued_at


def _disc(
    fid: bytes, snap: BlockView, latencies: dict[tuple[bytes, bytes], LatencyRecord]
) -> DiscPublic | None:
    index = snap.index()
    max_age = snap.geography_policy().max_measurement_age
    found: dict[bytes, LatencyRecord] = {}
    for (a, b), r in latencies.items():
        other = b if a == fid else a if b == fid else None
        if other is None or other not in index.landmarks:
            continue
        if r.measured_at + max_age < snap.head.timestamp:
            continue  # too old to prove anything now
        best = found.get(other)
        if best is None or r.rtt_micros < best.rtt_micros:
            found[other] = r
    disc = proven_disc((lid, index.landmarks[lid], r.rtt_micros) for lid, r in found.items())
    if disc is None:
        return None
    r = found[disc.landmark]
    return DiscPublic(
        landmark_facility_id=hx(disc.landmark),
        landmark_name=index.names.facility(disc.landmark),
        center=location(*disc.center),
        radius_m=disc.radius_m,
        rtt_micros=r.rtt_micros,
        measured_at=r.measured_at,
    )


def facility_public(
    fid: bytes,
    rec: FacilityRecord,
    snap: BlockView,
    proofs: dict[tuple[bytes, Kind], ProofRecord],
    latencies: dict[tuple[bytes, bytes], LatencyRecord],
) -> FacilityPublic:
    index, now, info = snap.index(), snap.head.timestamp, rec.info
    policy = snap.freshness_policy()
    names = index.names
    freshness = []
    for kind in Kind:
        until = info.valid_until.get(kind, 0)
        latest = proofs.get((fid, kind))
        if kind == Kind.HARDWARE:
            until = latest.valid_until if latest else 0  # per node: the latest of any node
        freshness.append(
            ProofFreshnessPublic(
                kind=kind.name.lower(),
                required=kind in policy.required_kinds,
                valid_until=until,
                fresh=until > now,
                expires_in_s=until - now if until else None,
                lifetime_s=_lifetime(latest),
                latest=ProofRefPublic(
                    tx=latest.tx,
                    index=latest.index,
                    block_number=latest.block,
                    sequence=latest.sequence,
                )
                if latest
                else None,
            )
        )
    has_location = any(info.domains.get(Dimension.METRO, ZERO32))
    landmark = index.landmarks.get(fid)
    return FacilityPublic(
        id=hx(fid),
        name=names.facility(fid),
        attestor=info.attestor,
        active=info.active,
        stale=rec.status.stale,
        stale_reasons=rec.status.reasons(),
        location=location(info.latitude_e6, info.longitude_e6) if has_location else None,
        domains=[
            domain_public(d, fid if d == Dimension.FACILITY else info.domains[d], names)
            for d in FACILITY_DIMENSIONS
            if d == Dimension.FACILITY or any(info.domains.get(d, ZERO32))
        ],
        proofs=freshness,
        geography=GeographyPublic(
            flagged=rec.flagged,
            landmark=location(*landmark) if landmark else None,
            proven_disc=_disc(fid, snap, latencies),
        ),
        validators=[a for a, v in snap.validators().items() if v.info.facility_id == fid],
    )


def _policy(snap: BlockView) -> FreshnessPolicyPublic:
    p = snap.freshness_policy()
    return FreshnessPolicyPublic(
        max_lifetime_s={k.name.lower(): p.max_lifetime[k] for k in Kind},
        max_future_skew_s=p.max_future_skew,
        required_kinds=[k.name.lower() for k in sorted(p.required_kinds)],
    )


def _latest(
    snap: BlockView,
) -> tuple[dict[tuple[bytes, Kind], ProofRecord], dict[tuple[bytes, bytes], LatencyRecord]]:
    index = snap.index()
    return snap.once("latest", lambda: (latest_proofs(index), latest_latencies(index)))


def list_facilities(snap: BlockView) -> FacilitiesPublic:
    proofs, latencies = _latest(snap)
    items = [
        facility_public(fid, rec, snap, proofs, latencies) for fid, rec in snap.facilities().items()
    ]
    return FacilitiesPublic(
        block=block_public(snap.head),
        count=len(items),
        freshness_policy=_policy(snap),
        facilities=items,
    )


def get_facility(snap: BlockView, ref: FacilityRef) -> FacilityDetailPublic:
    rec = snap.facilities().get(ref.id)
    if rec is None:
        raise FacilityNotFoundError(ref.name or ref.hex)
    proofs, latencies = _latest(snap)
    return FacilityDetailPublic(
        block=block_public(snap.head),
        facility=facility_public(ref.id, rec, snap, proofs, latencies),
    )
