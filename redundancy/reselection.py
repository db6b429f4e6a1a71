"""Whether the committee should be re-selected now, and why: the keeper's decision, as a pure
function of what it read at one block (no chain access here; ``keeper`` reads and acts).

The rule follows the selector's (docs/self-healing.md): a first committee as soon as one meets
the policy; a replacement at once when a current member is no longer eligible (the emergency
rule); a replacement with a strictly higher redundancy score only once the epoch is
``minEpochSeconds`` old. Nothing else: an equal score never churns the committee.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from redundancy.scores import compute_scores
from redundancy.selection import Selection


class Reason(StrEnum):
    """Why the committee should (or cannot) change."""

    NONE = "none"
    """Every member is eligible and no eligible committee scores higher."""
    FIRST = "no-committee"
    """No committee was ever selected, and one meets the policy."""
    INELIGIBLE = "member-ineligible"
    """A current member is no longer eligible: select at once (the emergency rule)."""
    BETTER = "better-committee"
    """The eligible set allows a committee with a higher redundancy score."""
    UNMET = "policy-unmet"
    """The committee should change but no committee meets the policy now."""


#: The reasons that call for a selection.
ACTIONABLE = frozenset({Reason.FIRST, Reason.INELIGIBLE, Reason.BETTER})


@dataclass(frozen=True)
class Observation:
    """What a keeper read at one block."""

    block: int
    timestamp: int
    epoch: int
    started_at: int
    members: tuple[str, ...]
    eligible: frozenset[str]
    preview: Selection
    """What ``selectCommittee`` would select at this block."""
    current_score: int
    """The current committee's redundancy score (selected stakes, current domains)."""
    min_epoch_seconds: int
    emergency_open: bool = True
    """Whether the selector names a member no longer eligible (``firstIneligibleMember``): a
    member can be out of the eligible set while the selector still counts it (the bonding rule
    applies to candidates; a member is tested for its attestation and bond only), and then no
    emergency selection is allowed."""


@dataclass(frozen=True)
class Decision:
    """What to do: the reason, from which block timestamp a selection is allowed, the members no
    longer eligible, and the score the selection would reach (-1 when none meets the policy)."""

    reason: Reason
    ready_at: int
    ineligible: tuple[str, ...]
    preview_score: int

    @property
    def actionable(self) -> bool:
        return self.reason in ACTIONABLE

    def due(self, timestamp: int) -> bool:
        """Whether to select in the block after one with this timestamp (its timestamp is at
        least one second later)."""
        return self.actionable and timestamp + 1 >= self.ready_at


def _key(address: str) -> str:
    return address.lower()


def ineligible_members(members: Sequence[str], eligible: frozenset[str]) -> tuple[str, ...]:
    """The members not in the eligible set, in committee order (addresses in any case)."""
    allowed = {_key(a) for a in eligible}
    return tuple(m for m in members if _key(m) not in allowed)


def decide(o: Observation) -> Decision:
    """The decision for one observation."""
    gone = ineligible_members(o.members, o.eligible) if o.emergency_open else ()
    ok = o.preview.ok and bool(o.preview.members)
    score = compute_scores(o.preview.members).score if ok else -1
    if o.epoch == 0:
        return Decision(Reason.FIRST if ok else Reason.UNMET, 0, (), score)
    if gone:
        return Decision(Reason.INELIGIBLE if ok else Reason.UNMET, 0, gone, score)
    same = {_key(m.address) for m in o.preview.members} == {_key(a) for a in o.members}
    if ok and not same and score > o.current_score:
        return Decision(Reason.BETTER, o.started_at + o.min_epoch_seconds, (), score)
    return Decision(Reason.NONE, 0, (), score)
