"""Recompute eligibility, selection, scores and class from events alone; compare to the contracts.

Replays every registry and selector event up to a block (``redundancy.rebuild``), computes with
the Python reference, and compares each result with the contracts' own views at that same block.
Returns every comparison; nothing here prints or exits (``redundancy.cli.verify_scores`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

from redundancy.domains import Dimension
from redundancy.events import contract_events
from redundancy.geodesy import distance_lower_bound_m, rtt_distance_bound_m
from redundancy.rebuild import RebuiltState, rebuild
from redundancy.registry import RegistryClient
from redundancy.scores import Member, Scores, compute_scores
from redundancy.selection import DiversityPolicy, GeoFacts, classify
from redundancy.selector import SelectorClient


@dataclass
class Comparison:
    what: str
    ok: bool
    detail: str = ""


def _keys(members: list[Member] | tuple[Member, ...]) -> list[tuple[str, int, tuple[bytes, ...]]]:
    return sorted((m.address.lower(), m.stake, m.domains) for m in members)


@dataclass(frozen=True)
class ScoreReport:
    """Every comparison, and the scores and class the Python reference computed."""

    comparisons: list[Comparison]
    scores: Scores
    klass: str

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)


def compare(
    registry: RegistryClient, selector: SelectorClient, deploy_block: int, block: int
) -> ScoreReport:
    """Rebuild the state from events up to ``block`` and compare every derived result with the
    contracts' own views at that block."""
    w3 = registry.w3
    now = int(w3.eth.get_block(block)["timestamp"])
    state = rebuild(contract_events([registry, selector], deploy_block, block))
    policy = state.diversity or DiversityPolicy(1)
    candidates = state.candidates(now)
    geo = state.geo_facts(now)
    out = _facility_comparisons(registry, state, block, now)
    out += _geography_comparisons(selector, state, block, now)
    out += _selection_comparisons(selector, state, candidates, policy, geo, block, now)
    members = state.committee_members()
    scores = compute_scores(members)
    klass = classify(members, candidates, policy, geo)
    onchain_class = selector.current_class(block)
    out.append(
        Comparison("committee scores", selector.current_scores(block) == scores, "scores differ")
    )
    out.append(
        Comparison(
            f"configuration class {klass.name.lower()}",
            onchain_class == klass,
            f"contract says {onchain_class.name.lower()}",
        )
    )
    return ScoreReport(out, scores, klass.name.lower())


def _facility_comparisons(
    registry: RegistryClient, state: RebuiltState, block: int, now: int
) -> list[Comparison]:
    """Each facility's stored view and staleness against the rebuilt state."""
    out = []
    for fid, f in state.facilities.items():
        onchain = registry.facility(fid, block)
        same = (
            onchain.attestor == f.attestor
            and onchain.active == f.active
            and (onchain.latitude_e6, onchain.longitude_e6) == (f.latitude_e6, f.longitude_e6)
            and all(
                onchain.domains[d] == f.domains.get(d, bytes(32))
                for d in Dimension
                if d != 0 and d != Dimension.HARDWARE
            )
            and all(onchain.valid_until[k] == f.valid_until.get(k, 0) for k in f.valid_until)
        )
        name = f"facility 0x{fid.hex()[:12]}"
        out.append(Comparison(name, same, "" if same else "registry view differs"))
        stale = registry.facility_status(fid, block).stale
        out.append(
            Comparison(f"{name} stale={stale}", stale == state.stale(fid, now), "staleness differs")
        )
    return out


def _short(fid: bytes) -> str:
    return f"0x{fid.hex()[:12]}"


def _km(metres: int) -> str:
    return f"{metres / 1000:,.0f} km"


def explain_flag(state: RebuiltState, fid: bytes) -> str:
    """Why a facility's flag record holds or not, in physical terms, from the rebuilt state."""
    against, rtt, raised_at = state.flags[fid]
    f = state.facilities[fid]
    claim = (f.latitude_e6, f.longitude_e6)
    where = f"claims ({claim[0] / 1e6:.4f}, {claim[1] / 1e6:.4f})"
    if against in state.landmarks and raised_at < state.landmark_set_at[against]:
        return (
            f"{where}; landmark {_short(against)} raised the flag before its position was last "
            "fixed, so it holds until a fresh measurement with the landmark answers it"
        )
    position = state.position(against)
    if position is None:
        return f"{where}; {_short(against)} has no position now, so the flag no longer holds"
    reach = rtt_distance_bound_m(rtt)
    apart = distance_lower_bound_m(claim, position)
    if against in state.landmarks:
        proof = (
            f"a two-sided RTT of {rtt / 1000:.2f} ms with landmark {_short(against)} proves it "
            f"within {_km(reach)} of the landmark"
        )
    else:
        proof = (
            f"a two-sided RTT of {rtt / 1000:.2f} ms with {_short(against)} (claiming "
            f"({position[0] / 1e6:.4f}, {position[1] / 1e6:.4f})) allows at most {_km(reach)}"
        )
    return f"{where}; {proof}; the claim is at least {_km(apart)} away"


def _geography_comparisons(
    selector: SelectorClient, state: RebuiltState, block: int, now: int
) -> list[Comparison]:
    """Each flag record (holding or not, with why) and each facility's fresh landmark discs."""
    out = []
    for fid in state.flags:
        flagged = state.flagged(fid)
        onchain = selector.is_geography_flagged(fid, block)
        why = explain_flag(state, fid)
        out.append(
            Comparison(
                f"facility {_short(fid)} geography flagged={flagged}: {why}",
                onchain == flagged,
                f"contract says flagged={onchain}",
            )
        )
    facts = state.geo_facts(now)
    for fid in state.facilities:
        ours = sorted((d.landmark, d.radius_m) for d in facts.discs.get(fid, ()))
        theirs = sorted((d.landmark_id, d.radius_m) for d in selector.discs_of(fid, block))
        if ours or theirs:
            radii = ", ".join(f"{_km(r)} of {_short(lid)}" for lid, r in ours) or "none"
            out.append(
                Comparison(
                    f"facility {_short(fid)} landmark discs: within {radii}",
                    ours == theirs,
                    "contract's discs differ",
                )
            )
    return out


def _selection_comparisons(
    selector: SelectorClient,
    state: RebuiltState,
    candidates: list[Member],
    policy: DiversityPolicy,
    geo: GeoFacts,
    block: int,
    now: int,
) -> list[Comparison]:
    """The eligible set, the selection preview and the stored committee."""
    onchain_candidates = selector.eligible_candidates(block)
    ours = state.select(now, policy, geo)
    theirs = selector.preview_selection(block)
    committee = selector.current_committee(block)
    rebuilt = state.committee
    return [
        Comparison(
            f"eligible validators ({len(candidates)})",
            _keys(candidates) == _keys(onchain_candidates),
            "eligible sets differ",
        ),
        Comparison(
            f"selection preview ({ours.describe()})",
            (ours.failure, ours.dimension) == (theirs.failure, theirs.dimension)
            and _keys(ours.members) == _keys(theirs.members),
            "selections differ",
        ),
        Comparison(
            f"committee of epoch {committee.epoch} ({len(committee.members)} members)",
            (committee.epoch, committee.members, committee.stakes)
            == (rebuilt.epoch, rebuilt.members, rebuilt.stakes),
            "stored committee differs from CommitteeSelected events",
        ),
    ]
