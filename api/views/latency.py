"""GET /latency: the RTT links the dashboard draws between facilities."""

from __future__ import annotations

from api.blockview import BlockView
from api.schemas.latency import LatencyLinkPublic, LatencyLinksPublic
from api.views.common import ZERO32, block_public, hx
from api.views.facilities import latest_latencies
from redundancy.domains import Dimension
from redundancy.geodesy import distance_lower_bound_m, rtt_distance_bound_m


def _position(snap: BlockView, fid: bytes) -> tuple[int, int] | None:
    """Where the selector places a facility: a landmark's fixed position, else its claim."""
    landmark = snap.index().landmarks.get(fid)
    if landmark is not None:
        return landmark
    rec = snap.facilities().get(fid)
    if rec is None or rec.info.domains.get(Dimension.METRO, ZERO32) == ZERO32:
        return None  # no geography proof: no claimed coordinates
    return (rec.info.latitude_e6, rec.info.longitude_e6)


def latency_links(snap: BlockView) -> LatencyLinksPublic:
    policy = snap.geography_policy()
    names = snap.index().names
    links = []
    for (fid, peer), r in latest_latencies(snap.index()).items():
        a, b = _position(snap, fid), _position(snap, peer)
        bound = rtt_distance_bound_m(r.rtt_micros)
        lower = distance_lower_bound_m(a, b) if a is not None and b is not None else None
        links.append(
            LatencyLinkPublic(
                facility_id=hx(fid),
                facility_name=names.facility(fid),
                peer_facility_id=hx(peer),
                peer_name=names.facility(peer),
                rtt_micros=r.rtt_micros,
                measured_at=r.measured_at,
                rtt_distance_bound_m=bound,
                distance_lower_bound_m=lower,
                consistent=None if lower is None else lower <= bound + policy.tolerance_m,
                flagged_on_chain=r.flagged,
                tx=r.tx,
                block_number=r.block,
            )
        )
    return LatencyLinksPublic(
        block=block_public(snap.head),
        tolerance_m=policy.tolerance_m,
        max_measurement_age_s=policy.max_measurement_age,
        links=links,
    )
