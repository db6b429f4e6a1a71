"""GET /facilities and /facilities/{facility}."""

from __future__ import annotations

from api.blockview import BlockView, FacilityRecord
from api.errors import FacilityNotFoundError
from api.eventindex import DiscRecord, IndexView, LatencyRecord, ProofRecord
from api.params import FacilityRef
from api.schemas.common import location
from api.schemas.facilities import (
    ConditionPublic,
    DiscPublic,
    FacilitiesPublic,
    FacilityDetailPublic,
    FacilityPublic,
    FlagPublic,
    FreshnessPolicyPublic,
    GeographyPublic,
    IdentityPublic,
    ProofFreshnessPublic,
    ProofRefPublic,
)
from api.views.common import ZERO32, block_public, domain_public, hx
from redundancy.domains import Dimension, Kind
from redundancy.geodesy import rtt_distance_bound_m

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
    """The latest measurement of each ordered (measuring facility, peer) pair (the selector
    refuses a report not newer than the stored one, so the latest accepted is the newest)."""
    return {(r.facility_id, r.peer_facility_id): r for r in index.latencies}


def latest_discs(index: IndexView, max_age: int) -> dict[tuple[bytes, bytes], DiscRecord]:
    """Each (facility, landmark)'s disc as the selector derives it: the pair's two-sided bound
    from both ends' latest reports, both measured since the landmark's position was fixed,
    counted through validUntil (the older report's time plus the freshness window). A landmark
    has no disc but its own position."""
    latest = latest_latencies(index)
    out = {}
    for lid in index.landmarks:
        for (fid, peer), r in latest.items():
            back = latest.get((lid, fid))
            if peer != lid or back is None or fid in index.landmarks:
                continue
            if min(r.measured_at, back.measured_at) < index.landmark_set_at[lid]:
                continue
            out[(fid, lid)] = DiscRecord(
                max(r.block, back.block),
                fid,
                lid,
                max(r.rtt_micros, back.rtt_micros),
                min(r.measured_at, back.measured_at) + max_age,
            )
    return out


def _lifetime(p: ProofRecord | None) -> int | None:
    if p is None or p.attestation is None:
        return None
    return p.attestation.expires_at - p.attestation.issued_at


def _discs(
    fid: bytes, snap: BlockView, discs: dict[tuple[bytes, bytes], DiscRecord]
) -> list[DiscPublic]:
    """The facility's fresh discs around landmarks still set, tightest first."""
    index = snap.index()
    out = [
        DiscPublic(
            landmark_facility_id=hx(lid),
            landmark_name=index.names.facility(lid),
            center=location(*index.landmarks[lid]),
            radius_m=rtt_distance_bound_m(r.rtt_micros),
            rtt_micros=r.rtt_micros,
            valid_until=r.valid_until,
        )
        for (f, lid), r in discs.items()
        if f == fid and lid in index.landmarks and r.valid_until >= snap.head.timestamp
    ]
    return sorted(out, key=lambda d: (d.radius_m, d.landmark_facility_id))


def _flag(rec: FacilityRecord, snap: BlockView) -> FlagPublic | None:
    if rec.flag is None:
        return None
    against = rec.flag.against
    return FlagPublic(
        against_facility_id=hx(against),
        against_name=snap.index().names.facility(against),
        by_landmark=against in snap.index().landmarks,
        rtt_micros=rec.flag.rtt_micros,
        raised_at=rec.flag.raised_at,
        holds=rec.flag.holds,
    )


def _ref(p: ProofRecord) -> ProofRefPublic:
    return ProofRefPublic(tx=p.tx, index=p.index, block_number=p.block, sequence=p.sequence)


def condition_public(latest: ProofRecord | None, now: int) -> ConditionPublic | None:
    """The site's condition from its latest health proof (None: none, or not decodable)."""
    c = None if latest is None else latest.condition
    if latest is None or c is None:
        return None
    return ConditionPublic(
        degraded=bool(c.reasons),
        reasons=list(c.reasons),
        claimed=None if c.claimed is None else list(c.claimed),
        consistent=None if c.claimed is None else sorted(c.claimed) == list(c.reasons),
        ups_status=c.ups_status,
        observed_at=c.observed_at,
        evidence_version=c.version,
        fresh=latest.valid_until > now,
        proof=_ref(latest),
    )


def facility_public(
    fid: bytes,
    rec: FacilityRecord,
    snap: BlockView,
    proofs: dict[tuple[bytes, Kind], ProofRecord],
    discs: dict[tuple[bytes, bytes], DiscRecord],
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
                latest=_ref(latest) if latest else None,
            )
        )
    has_location = any(info.domains.get(Dimension.METRO, ZERO32))
    landmark = index.landmarks.get(fid)
    fresh_discs = _discs(fid, snap, discs)
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
            flag=_flag(rec, snap),
            landmark=location(*landmark) if landmark else None,
            proven_disc=next((d for d in fresh_discs if d.radius_m > 0), None),
            discs=fresh_discs,
        ),
        validators=[a for a, v in snap.validators().items() if v.info.facility_id == fid],
        condition=condition_public(proofs.get((fid, Kind.HEALTH)), now),
        identity=IdentityPublic(
            backend="file" if info.tpm_ak_certificate == ZERO32 else "tpm",
            tpm_ak_certificate=None
            if info.tpm_ak_certificate == ZERO32
            else hx(info.tpm_ak_certificate),
        ),
    )


def _policy(snap: BlockView) -> FreshnessPolicyPublic:
    p = snap.freshness_policy()
    return FreshnessPolicyPublic(
        max_lifetime_s={k.name.lower(): p.max_lifetime[k] for k in Kind},
        max_future_skew_s=p.max_future_skew,
        required_kinds=[k.name.lower() for k in sorted(p.required_kinds)],
        require_tpm=[k.name.lower() for k in sorted(p.require_tpm)],
    )


def _latest(
    snap: BlockView,
) -> tuple[dict[tuple[bytes, Kind], ProofRecord], dict[tuple[bytes, bytes], DiscRecord]]:
    index = snap.index()
    max_age = snap.geography_policy().max_measurement_age
    return snap.once("latest", lambda: (latest_proofs(index), latest_discs(index, max_age)))


def list_facilities(snap: BlockView) -> FacilitiesPublic:
    proofs, discs = _latest(snap)
    items = [
        facility_public(fid, rec, snap, proofs, discs) for fid, rec in snap.facilities().items()
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
    proofs, discs = _latest(snap)
    return FacilityDetailPublic(
        block=block_public(snap.head),
        facility=facility_public(ref.id, rec, snap, proofs, discs),
    )
