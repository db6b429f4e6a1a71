"""GET /committee."""

from __future__ import annotations

from api.blockview import BlockView
from api.schemas.committee import (
    CommitteePublic,
    DimensionStakePublic,
    DiversityPolicyPublic,
    DiversityRulePublic,
    DomainStakePublic,
    MemberPublic,
)
from api.views.common import block_public, domain_public, share_bps
from redundancy.scores import DIMENSIONS, domain_stakes

HALT_SHARE_BPS = 3_334  # 3 * offline >= total: a third of the stake, rounded up to a basis point


def committee(snap: BlockView) -> CommitteePublic:
    c = snap.committee()
    members = snap.committee_members()
    names = snap.index().names
    total = sum(m.stake for m in members)
    stake_by_domain = []
    for d in DIMENSIONS:
        stakes = domain_stakes(members, d)
        counts: dict[bytes, int] = {}
        for m in members:
            counts[m.domains[d]] = counts.get(m.domains[d], 0) + 1
        ordered = sorted(stakes.items(), key=lambda kv: (-kv[1], kv[0]))
        stake_by_domain.append(
            DimensionStakePublic(
                dimension=d.name.lower(),
                domains=[
                    DomainStakePublic(
                        domain=domain_public(d, dom, names),
                        stake_wei=str(w),
                        share_bps=share_bps(w, total),
                        members=counts[dom],
                    )
                    for dom, w in ordered
                ],
            )
        )
    policy = snap.diversity_policy()
    return CommitteePublic(
        block=block_public(snap.head),
        epoch=c.epoch,
        started_at=c.started_at,
        total_stake_wei=str(total),
        halt_share_bps=HALT_SHARE_BPS,
        members=[
            MemberPublic(
                address=m.address,
                stake_wei=str(m.stake),
                share_bps=share_bps(m.stake, total),
                facility_name=names.facility(m.facility),
                domains=[domain_public(d, m.domains[d], names) for d in DIMENSIONS],
            )
            for m in members
        ],
        stake_by_domain=stake_by_domain,
        policy=DiversityPolicyPublic(
            committee_size=policy.committee_size,
            min_tolerance=policy.min_tolerance,
            rules=[
                DiversityRulePublic(
                    dimension=d.name.lower(),
                    max_members=r.max_members,
                    min_distinct=r.min_distinct,
                    max_share_bps=r.max_share_bps,
                )
                for d, r in zip(DIMENSIONS, policy.rules, strict=True)
            ],
        ),
    )
