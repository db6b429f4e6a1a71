"""GET /scores and /scores/what-if."""

from __future__ import annotations

from api.blockview import BlockView
from api.schemas.scores import DimensionScorePublic, RemainingPublic, ScoresPublic, WhatIfPublic
from api.views.common import ZERO32, block_public, domain_public, share_bps
from api.whatif import what_if
from redundancy.domains import Dimension
from redundancy.scores import DIMENSIONS, ConfigurationClass

CLASS_DESCRIPTIONS = {
    ConfigurationClass.EMPTY: "no committee has been selected, or it holds no stake",
    ConfigurationClass.SINGLE_SITE: "one facility holds all the committee's stake",
    ConfigurationClass.UNPROTECTED: "one facility's failure halts the committee, and no "
    "compliant committee could be formed without it",
    ConfigurationClass.ACTIVE_PASSIVE: "one facility's failure halts the committee, but eligible "
    "standby validators elsewhere could form a compliant one",
    ConfigurationClass.ACTIVE_ACTIVE: "the committee survives the failure of any one facility",
}


def scores(snap: BlockView) -> ScoresPublic:
    s = snap.scores()
    names = snap.index().names
    cls = snap.configuration_class()
    return ScoresPublic(
        block=block_public(snap.head),
        epoch=snap.committee().epoch,
        total_stake_wei=str(s.total_stake),
        score=s.score,
        weakest=s.weakest.name.lower(),
        configuration_class=cls.name.lower(),
        class_description=CLASS_DESCRIPTIONS[cls],
        dimensions=[
            DimensionScorePublic(
                dimension=d.dimension.name.lower(),
                nakamoto=d.nakamoto,
                tolerance=d.tolerance,
                hhi_bps=d.hhi_bps,
                largest_domain=domain_public(d.dimension, d.largest_domain, names)
                if d.domain_count and d.largest_domain != ZERO32
                else None,
                largest_share_bps=d.largest_share_bps,
                domain_count=d.domain_count,
            )
            for d in s.dimensions
        ],
    )


def scores_what_if(snap: BlockView, failed: list[tuple[Dimension, bytes]]) -> WhatIfPublic:
    names = snap.index().names
    result = what_if(snap.committee_members(), failed)
    weakest = result.weakest
    return WhatIfPublic(
        block=block_public(snap.head),
        epoch=snap.committee().epoch,
        failed=[domain_public(d, dom, names) for d, dom in dict.fromkeys(failed)],
        failed_members=list(result.failed_members),
        offline_stake_wei=str(result.offline),
        total_stake_wei=str(result.total),
        offline_share_bps=share_bps(result.offline, result.total),
        live=result.live,
        score=result.score,
        weakest=weakest.name.lower() if weakest is not None else None,
        dimensions=[
            RemainingPublic(dimension=d.name.lower(), tolerance=result.remaining[d])
            for d in DIMENSIONS
        ],
        score_before=snap.scores().score,
    )
