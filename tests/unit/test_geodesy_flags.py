"""Who a contradiction between two sites flags, and which disc clears it (the Python reference of
the selector's ``_sitePair`` and ``clearGeographyFlag``; the parity test checks the contract)."""

from __future__ import annotations

from redundancy.geodesy import Disc, clearing_landmark, own_discs, pair_flags

FRA = (50_110_922, 8_682_127)
SYD = (-33_868_820, 151_209_296)
TYO = (35_689_487, 139_691_706)
AMS_ID, AMS = b"ams".ljust(32, b"\0"), (52_367_573, 4_904_139)
TOL = 20_000
NEAR_AMS = Disc(AMS_ID, AMS, 500_000)  # within 500 km of Amsterdam
WIDE_AMS = Disc(AMS_ID, AMS, 17_000_000)  # proves nothing on one earth


def test_a_claim_outside_its_own_disc_is_refuted() -> None:
    assert own_discs(SYD, FRA, [NEAR_AMS], 1_000, TOL) == (AMS_ID, None)
    assert own_discs(FRA, SYD, [NEAR_AMS], 1_000, TOL) == (None, AMS_ID)  # and exonerates
    assert own_discs(FRA, SYD, [WIDE_AMS], 1_000, TOL) == (None, None)


def test_only_the_side_its_own_disc_refutes_is_flagged() -> None:
    # Frankfurt has no disc (nothing exonerates it); the liar's own disc refutes its claim
    assert pair_flags(FRA, SYD, [], [NEAR_AMS], 1_000, TOL) == (False, True)
    assert pair_flags(SYD, FRA, [NEAR_AMS], [], 1_000, TOL) == (True, False)
    # neither refuted, nothing exonerates: both, as before
    assert pair_flags(FRA, SYD, [], [WIDE_AMS], 1_000, TOL) == (True, True)
    # both refuted: as before (each unless its own disc exonerates it)
    assert pair_flags(SYD, TYO, [NEAR_AMS], [NEAR_AMS], 1_000, TOL) == (True, True)
    # consistent claims: nobody, whatever the discs say
    assert pair_flags(SYD, SYD, [NEAR_AMS], [], 100, TOL) == (False, False)


def test_a_flag_is_cleared_by_the_peers_refuting_disc_unless_the_site_is_refuted_too() -> None:
    assert clearing_landmark(FRA, SYD, [], [NEAR_AMS], 1_000, TOL) == AMS_ID
    assert clearing_landmark(FRA, SYD, [WIDE_AMS], [NEAR_AMS], 1_000, TOL) == AMS_ID
    assert clearing_landmark(SYD, FRA, [NEAR_AMS], [], 1_000, TOL) is None
    assert clearing_landmark(SYD, FRA, [NEAR_AMS], [NEAR_AMS], 1_000, TOL) is None
    assert clearing_landmark(FRA, SYD, [], [WIDE_AMS], 1_000, TOL) is None
