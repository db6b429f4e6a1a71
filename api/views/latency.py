"""GET /latency: the measured pairs the dashboard draws between facilities."""

from __future__ import annotations

from api.blockview import BlockView
from api.eventindex import LatencyRecord
from api.schemas.latency import LatencyLinkPublic, LatencyLinksPublic, LatencyReportPublic
from api.views.common import ZERO32, block_public, hx
from api.views.facilities import latest_latencies
from redundancy.domains import Dimension
from redundancy.geodesy import distance_lower_bound_m, pair_bound, rtt_distance_bound_m


def _position(snap: BlockView, fid: bytes) -> tuple[int, int] | None:
    """Where the selector places a facility: a landmark's fixed position, else its claim."""
    landmark = snap.index().landmarks.get(fid)
    if landmark is not None:
        return landmark
    rec = snap.facilities().get(fid)
    if rec is None or rec.info.domains.get(Dimension.METRO, ZERO32) == ZERO32:
        return None  # no geography proof: no claimed coordinates
    return (rec.info.latitude_e6, rec.info.longitude_e6)


def _report(snap: BlockView, r: LatencyRecord, max_age: int) -> LatencyReportPublic:
    return LatencyReportPublic(
        facility_id=hx(r.facility_id),
        facility_name=snap.index().names.facility(r.facility_id),
        rtt_micros=r.rtt_micros,
        measured_at=r.measured_at,
        exchange_id=hx(r.exchange_id),
        fresh=r.measured_at + max_age >= snap.head.timestamp,
        tx=r.tx,
        block_number=r.block,
    )


def latency_links(snap: BlockView) -> LatencyLinksPublic:
    policy = snap.geography_policy()
    names, flags, set_at = snap.index().names, snap.index().flags, snap.index().landmark_set_at
    pairs: dict[tuple[bytes, bytes], list[LatencyRecord]] = {}
    for (fid, peer), r in latest_latencies(snap.index()).items():
        pairs.setdefault((min(fid, peer), max(fid, peer)), []).append(r)
    links = []
    for (a, b), reports in pairs.items():
        reports.sort(key=lambda r: (r.block, r.log_index))
        shown = [_report(snap, r, policy.max_measurement_age) for r in reports]
        rtt = measured = bound = None
        # a pair with a landmark proves something only from reports measured since its position
        # was fixed (the selector's rule): older ones are shown, not weighed
        since = max((set_at.get(f, 0) for f in (a, b) if f in snap.index().landmarks), default=0)
        if (
            len(reports) == 2
            and all(r.fresh for r in shown)
            and min(r.measured_at for r in reports) >= since
        ):
            rtt = pair_bound(reports[0].rtt_micros, reports[1].rtt_micros)
            measured = min(r.measured_at for r in reports)
            bound = rtt_distance_bound_m(rtt)
        pa, pb = _position(snap, a), _position(snap, b)
        lower = distance_lower_bound_m(pa, pb) if pa is not None and pb is not None else None
        newest = reports[-1]
        links.append(
            LatencyLinkPublic(
                facility_id=hx(a),
                facility_name=names.facility(a),
                peer_facility_id=hx(b),
                peer_name=names.facility(b),
                rtt_micros=rtt,
                measured_at=measured,
                rtt_distance_bound_m=bound,
                distance_lower_bound_m=lower,
                consistent=None
                if lower is None or bound is None
                else lower <= bound + policy.tolerance_m,
                flagged_on_chain=flags.get(a) == b or flags.get(b) == a,
                reports=shown,
                tx=newest.tx,
                block_number=newest.block,
            )
        )
    return LatencyLinksPublic(
        block=block_public(snap.head),
        tolerance_m=policy.tolerance_m,
        max_measurement_age_s=policy.max_measurement_age,
        max_anchor_age_blocks=policy.max_anchor_age_blocks,
        links=links,
    )
