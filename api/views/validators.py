"""GET /validators and /validators/{address}."""

from __future__ import annotations

from api.blockview import BlockView, ValidatorRecord
from api.errors import ValidatorNotFoundError
from api.schemas.validators import (
    HardwarePublic,
    ValidatorDetailPublic,
    ValidatorPublic,
    ValidatorsPublic,
)
from api.views.common import ZERO32, block_public, domain_public, hx
from redundancy.domains import Dimension


def eligible_from(address: str, rec: ValidatorRecord, snap: BlockView) -> int:
    """When the selector's bonding rule lets the validator in: at once if it bonded by the first
    committee's selection (or none has been), else once bonded for the minimum epoch; and not
    before its bench ends, if it forced an emergency selection."""
    info, genesis = rec.info, snap.genesis_bonds()
    start = info.bonded_at
    if genesis and info.bond_seq > genesis:
        start += snap.geography_policy().min_epoch_seconds
    return max(start, snap.benched_until().get(address.lower(), 0))


def _reasons(address: str, rec: ValidatorRecord, snap: BlockView) -> list[str]:
    """Why a validator is not eligible, from the same facts the selector reads."""
    info, node, now = rec.info, rec.node, snap.head.timestamp
    out = []
    if info.stake == 0:
        out.append("no stake")
    else:
        benched = snap.benched_until().get(address.lower(), 0)
        if benched > now:
            out.append(
                f"benched until {benched}: it allowed an emergency selection (selected before"
                " then only if the policy cannot be met without it)"
            )
        elif (start := eligible_from(address, rec, snap)) > now:
            out.append(f"bonded too recently: eligible from {start} (bonded at {info.bonded_at})")
    facility = snap.facilities().get(info.facility_id)
    if facility is None:
        out.append("facility not registered")
    else:
        if facility.status.stale:
            out.append("facility stale: " + ", ".join(facility.status.reasons()))
        if facility.flagged:
            out.append("facility geography flagged")
    if node.facility_id != info.facility_id:
        out.append("node not attested at the validator's facility")
    elif node.valid_until <= now:
        out.append("node hardware proof expired" if node.valid_until else "node never attested")
    return out


def validator_public(address: str, rec: ValidatorRecord, snap: BlockView) -> ValidatorPublic:
    names = snap.index().names
    eligible = {m.address.lower() for m in snap.eligible()}
    committee = {a.lower() for a in snap.committee().members}
    node = rec.node
    is_eligible = address.lower() in eligible
    reasons = [] if is_eligible else (_reasons(address, rec, snap) or ["not eligible"])
    return ValidatorPublic(
        address=address,
        facility_id=hx(rec.info.facility_id),
        facility_name=names.facility(rec.info.facility_id),
        stake_wei=str(rec.info.stake),
        bonded_at=rec.info.bonded_at,
        bond_seq=rec.info.bond_seq,
        eligible_from=eligible_from(address, rec, snap),
        eligible=is_eligible,
        ineligible_reasons=reasons,
        in_committee=address.lower() in committee,
        hardware=HardwarePublic(
            node=node.node,
            facility_id=hx(node.facility_id),
            domain=domain_public(Dimension.HARDWARE, node.hardware_domain_id, names)
            if node.hardware_domain_id != ZERO32
            else None,
            valid_until=node.valid_until,
            fresh=node.valid_until > snap.head.timestamp,
        ),
    )


def list_validators(snap: BlockView) -> ValidatorsPublic:
    items = [validator_public(a, rec, snap) for a, rec in snap.validators().items()]
    return ValidatorsPublic(block=block_public(snap.head), count=len(items), validators=items)


def get_validator(snap: BlockView, address: str) -> ValidatorDetailPublic:
    found = {a.lower(): (a, rec) for a, rec in snap.validators().items()}.get(address.lower())
    if found is None:
        raise ValidatorNotFoundError(address)
    return ValidatorDetailPublic(
        block=block_public(snap.head), validator=validator_public(*found, snap)
    )
