"""Two validators at one facility with different hardware keep their own hardware domains.

Regression: CommitteeSelector built each member's domains by assigning the facility entry's
memory array (``m.domains = f.domains``), which aliases it, so setting one member's hardware
domain overwrote it for every member at that facility: eligibility, selection and the scores'
hardware dimension then differed from the Python reference (``redundancy-verify-scores`` said so).
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3 import Web3

from devnet.world import FacilitySpec, ValidatorSpec, build
from redundancy.domains import Dimension, hardware_domain
from redundancy.registry import RegistryClient
from redundancy.scores import compute_scores
from redundancy.selection import DiversityPolicy
from redundancy.selector import SelectorClient

ETH = 10**18
SITES = [
    FacilitySpec("fra7", "amprion", "frankfurt", "de", 50_110_922, 8_682_127, "as3320", "equinix"),
    FacilitySpec("dal7", "ercot", "dallas", "us", 32_776_664, -96_796_988, "as7018", "cyrusone"),
]
DELL = ("dell", "poweredge r650", "2.19.1")
HPE = ("hpe", "proliant dl380", "u46")
VALIDATORS = [
    ValidatorSpec("v-fra7-dell", "fra7", 2 * ETH, DELL),
    ValidatorSpec("v-fra7-hpe", "fra7", 1 * ETH, HPE),
    ValidatorSpec("v-dal7-dell", "dal7", 3 * ETH, DELL),
]


def test_members_at_one_facility_keep_their_own_hardware(
    w3: Web3, registry: RegistryClient, owner: LocalAccount
) -> None:
    build(w3, registry, owner, SITES, VALIDATORS)
    selector, _ = SelectorClient.deploy(w3, owner, registry.address, DiversityPolicy(5))
    expected = {v.account().address: hardware_domain(*v.hardware) for v in VALIDATORS}

    candidates = selector.eligible_candidates()
    assert {m.address: m.domains[Dimension.HARDWARE] for m in candidates} == expected

    selector.select_committee(sender=owner)
    members = selector.committee_members()
    assert {m.address: m.domains[Dimension.HARDWARE] for m in members} == expected
    scores = selector.current_scores()
    assert scores == compute_scores(members)
    hardware = scores.of(Dimension.HARDWARE)
    assert (hardware.largest_domain, hardware.largest_share_bps) == (hardware_domain(*DELL), 8_333)
    assert (hardware.nakamoto, hardware.tolerance, hardware.domain_count) == (1, 0, 2)
