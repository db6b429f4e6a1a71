"""Distance bounds from physics, in integer arithmetic identical to the contract's.

Light in fibre covers about 200 km per millisecond, so a round trip of ``rtt`` microseconds
bounds the distance between two sites by ``rtt * 100`` metres. A site can add delay but never
remove it. Claimed coordinates (micro-degrees) give a *lower* bound on their distance: the chord
through the earth is never longer than the arc, and the polar radius is the smallest. Two
facilities whose lower bound exceeds the RTT's upper bound plus a tolerance are inconsistent: at
least one lies about where it is.

Both ends of a pair measure the round trip in one exchange and each signs what it measured; the
pair's bound is the *larger* of the two fresh reports (``pair_bound``), so one lying end cannot
shrink it. With one end a landmark (a true position the owner fixed), the bound is a disc around
the landmark that the other end lies in; two discs prove a minimum separation.

Fixed point: radians and unit vectors scaled by 1e18, sines and cosines by a 15-term Taylor
series, every division truncating toward zero as Solidity's signed division does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import isqrt

SCALE = 10**18
PI_E18 = 3_141_592_653_589_793_238
POLAR_RADIUS_M = 6_356_752
METRES_PER_RTT_MICROSECOND = 100  # 200 km/ms one way = 200 m/us; rtt/2 * 200 = rtt * 100
TAYLOR_TERMS = 15


def tdiv(a: int, b: int) -> int:
    """Integer division truncating toward zero (Solidity's int256 ``/``)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def radians_e18(degrees_e6: int) -> int:
    return tdiv(degrees_e6 * PI_E18, 180_000_000)


def sin_e18(x: int) -> int:
    term = x
    total = x
    for i in range(1, TAYLOR_TERMS):
        term = -tdiv(tdiv(term * x, SCALE) * x, SCALE * (2 * i) * (2 * i + 1))
        total += term
    return total


def cos_e18(x: int) -> int:
    term = SCALE
    total = SCALE
    for i in range(1, TAYLOR_TERMS):
        term = -tdiv(tdiv(term * x, SCALE) * x, SCALE * (2 * i - 1) * (2 * i))
        total += term
    return total


def unit_vector(lat_e6: int, lon_e6: int) -> tuple[int, int, int]:
    lat, lon = radians_e18(lat_e6), radians_e18(lon_e6)
    cl = cos_e18(lat)
    return tdiv(cl * cos_e18(lon), SCALE), tdiv(cl * sin_e18(lon), SCALE), sin_e18(lat)


def distance_lower_bound_m(a: tuple[int, int], b: tuple[int, int]) -> int:
    """A lower bound in metres on the surface distance between two (lat, lon) micro-degrees."""
    ax, ay, az = unit_vector(*a)
    bx, by, bz = unit_vector(*b)
    chord = isqrt((ax - bx) ** 2 + (ay - by) ** 2 + (az - bz) ** 2)
    return chord * POLAR_RADIUS_M // SCALE


def rtt_distance_bound_m(rtt_us: int) -> int:
    """The furthest two sites can be apart given a measured round trip (metres)."""
    return rtt_us * METRES_PER_RTT_MICROSECOND


def inconsistent(a: tuple[int, int], b: tuple[int, int], rtt_us: int, tolerance_m: int) -> bool:
    """True when the claimed positions are further apart than the RTT physically allows."""
    return distance_lower_bound_m(a, b) > rtt_distance_bound_m(rtt_us) + tolerance_m


@dataclass(frozen=True)
class Disc:
    """A site proven to lie within ``radius_m`` of a landmark at a known position."""

    landmark: bytes
    center: tuple[int, int]
    radius_m: int


def proven_disc(measurements: Iterable[tuple[bytes, tuple[int, int], int]]) -> Disc | None:
    """The tightest disc from (landmark id, landmark position, rtt_us) measurements."""
    discs = [Disc(lid, pos, rtt_distance_bound_m(rtt)) for lid, pos, rtt in measurements]
    return min(discs, key=lambda d: (d.radius_m, d.landmark)) if discs else None


def proven_separation_m(a: Iterable[Disc], b: Iterable[Disc]) -> int:
    """The largest proven minimum distance between two sites from their landmark discs:
    ``dist(L1, L2) - r1 - r2`` over every pair of discs (0 if nothing is proven)."""
    best = 0
    discs_b = list(b)
    for da in a:
        for db in discs_b:
            best = max(
                best, distance_lower_bound_m(da.center, db.center) - da.radius_m - db.radius_m
            )
    return best


def pair_bound(rtt_ab: int, rtt_ba: int) -> int:
    """A pair's RTT from both ends' fresh reports: the larger, which a single liar cannot lower."""
    return max(rtt_ab, rtt_ba)


def flag_holds(
    claim: tuple[int, int], against: tuple[int, int], rtt_us: int, tolerance_m: int
) -> bool:
    """Whether a flag raised by ``against`` (a landmark's position, or the peer's current claim)
    with a pair RTT of ``rtt_us`` still holds for ``claim``: the contract's ``_holds``."""
    return inconsistent(claim, against, rtt_us, tolerance_m)


def separated(a: Iterable[Disc], b: Iterable[Disc], min_m: int) -> bool:
    """Whether two facilities' discs prove them at least ``min_m`` (> 0) metres apart."""
    return proven_separation_m(a, b) >= min_m


def own_discs(
    claim: tuple[int, int],
    peer_claim: tuple[int, int],
    discs: Iterable[Disc],
    rtt_us: int,
    tolerance_m: int,
) -> tuple[bytes | None, bytes | None]:
    """A site's fresh discs (in landmark order; a landmark's own excluded: landmarks are never
    flagged) against its claim and a peer's, given the pair's RTT: the contract's ``_ownDiscs``.

    ``refuting``: the first disc ``claim`` lies outside of (plus tolerance): the claim is proven
    false. ``exonerating``: the first disc that holds ``claim`` and proves ``peer_claim`` false:
    the peer lies within ``rtt_us`` of this site, so within (radius + bound) of the landmark, and
    its claim is further than that plus tolerance. None where none does.

    Sound whichever end lies: the disc's radius includes the landmark's own (honest) report, and
    the pair's bound the honest end's, so an honest site's true position is always inside its own
    discs and an honest peer's inside (radius + bound).
    """
    reach = rtt_distance_bound_m(rtt_us) + tolerance_m
    refuting: bytes | None = None
    exonerating: bytes | None = None
    for d in discs:
        if distance_lower_bound_m(claim, d.center) > d.radius_m + tolerance_m:
            if refuting is None:
                refuting = d.landmark
            continue
        if (
            exonerating is None
            and distance_lower_bound_m(peer_claim, d.center) > d.radius_m + reach
        ):
            exonerating = d.landmark
    return refuting, exonerating


def pair_flags(
    a: tuple[int, int],
    b: tuple[int, int],
    discs_a: Sequence[Disc],
    discs_b: Sequence[Disc],
    rtt_us: int,
    tolerance_m: int,
) -> tuple[bool, bool]:
    """Which of two sites (neither a landmark) measured both ways with a pair RTT of ``rtt_us``
    the contract flags: none when the claims are consistent; when exactly one claim is already
    proven false by one of its own discs, only that one (the contradiction is its doing);
    otherwise each one its own discs do not exonerate. The contract's ``_sitePair``."""
    if not inconsistent(a, b, rtt_us, tolerance_m):
        return False, False
    refuted_a, exonerated_a = own_discs(a, b, discs_a, rtt_us, tolerance_m)
    refuted_b, exonerated_b = own_discs(b, a, discs_b, rtt_us, tolerance_m)
    if (refuted_a is None) != (refuted_b is None):
        return refuted_a is not None, refuted_b is not None
    return exonerated_a is None, exonerated_b is None


def clearing_landmark(
    claim: tuple[int, int],
    peer_claim: tuple[int, int],
    discs: Sequence[Disc],
    peer_discs: Sequence[Disc],
    rtt_us: int,
    tolerance_m: int,
) -> bytes | None:
    """The landmark whose disc clears a flag a peer raised (the contract's
    ``clearGeographyFlag``): one of the site's own discs exonerating it, else, when none of its
    own discs proves its claim false, the first of the peer's discs that proves the peer's claim
    false. None when the flag cannot be cleared that way."""
    refuted, exonerating = own_discs(claim, peer_claim, discs, rtt_us, tolerance_m)
    if exonerating is not None or refuted is not None:
        return exonerating
    return own_discs(peer_claim, claim, peer_discs, rtt_us, tolerance_m)[0]
