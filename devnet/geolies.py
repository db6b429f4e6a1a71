"""Sites that lie about geography, against the real contracts: the adversarial figures of issue 15.

Two experiments, each on a registry and selector freshly deployed on the chain given:

**Pair lies.** A pool of sites whose claims are their true positions measures RTTs two-sidedly;
half of them lie, each only ever paired with honest sites (so every pair has one liar at most,
across all the cases). In every case one site of a pair lies in one of seven ways: reports a
round trip lower than physics allows (``low_rtt``) or higher than it measured (``high_rtt``),
replays an accepted
measurement or one older than the stored one (``replay``), binds a block that is too old, in the
future or whose hash is wrong (``stale_anchor``), signs with a key that is not its facility's
attestor's (``forged``), submits the peer's signature on its own or on an altered measurement
(``swapped``), or relays a measurement signed for another pair (``relayed``). The honest end
reports what it measured (at least the physical round trip of the true distance at 200 km/ms).
Each case's outcome is checked against what the contract must do (the error and its arguments,
or acceptance with the pair's bound the larger report) and the pair's stored link must be
unchanged by a refusal. Figure: honest facilities flagged (goal 0).

**Landmark worlds.** Worlds of 10-50 sites and 3 landmarks (owner-fixed true positions), all
within 2,500 km of the world's centre. About a third of the sites claim a position displaced from
the truth (10 km to 15,000 km, log-uniform) and either
measure honestly or inflate their RTT to a landmark to fit the lie in its disc (adding delay is
always possible). Every site measures both ways with each landmark, then with two random peers.
Figures: claims outside one of their own fresh discs (plus tolerance) that are not flagged
(goal 0); claims further than (smallest disc radius + tolerance) or (smallest disc diameter +
tolerance) from the truth, flagged or not; honest sites flagged, by a landmark or by a lying peer.

Keys are the development keys of :mod:`devnet.world` (derived from public names).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from devnet.world import FacilitySpec, World, build
from redundancy.eip712 import Signature, Signer, recover_signer
from redundancy.errors import ContractRevertError
from redundancy.geodesy import distance_lower_bound_m, rtt_distance_bound_m
from redundancy.proofs import LatencyMeasurement
from redundancy.registry import DEFAULT_POLICY, RegistryClient
from redundancy.selection import DiversityPolicy
from redundancy.selector import GeographyPolicy, SelectorClient

#: The lie classes of the pair experiment, in the order they are printed.
LIES = ("low_rtt", "high_rtt", "replay", "stale_anchor", "forged", "swapped", "relayed")
POLICY = GeographyPolicy(tolerance_m=20_000)
EARTH_RADIUS_M = 6_378_137  # equatorial: an upper bound on the arc, so an honest RTT is physical
MEAN_RADIUS_M = 6_371_008
LANDMARKS = 3
#: A world's sites and landmarks lie within this distance of its centre (a continent).
REGION_M = 2_500_000


class Disagreement(AssertionError):
    """Raised when the contract does something other than what a case requires."""


# ----------------------------------------------------------------------------------- physics


def arc_upper_m(a: tuple[int, int], b: tuple[int, int]) -> int:
    """An upper bound on the surface distance (haversine on the equatorial radius, plus 1 m)."""
    la1, lo1, la2, lo2 = (math.radians(v / 1e6) for v in (*a, *b))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return math.ceil(2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))) + 1


def physical_rtt_us(a: tuple[int, int], b: tuple[int, int]) -> int:
    """The least round trip light in fibre (200 km/ms) allows between two true positions."""
    return max(POLICY.min_rtt_micros, math.ceil(arc_upper_m(a, b) / 100))


def honest_rtt_us(rng: random.Random, a: tuple[int, int], b: tuple[int, int]) -> int:
    """What an honest end measures: physics, times a route factor (1 to 2.5, sometimes exactly
    1), plus 0-2 ms of queueing."""
    factor = 1.0 if rng.random() < 0.2 else rng.uniform(1.0, 2.5)
    rtt = math.ceil(physical_rtt_us(a, b) * factor) + rng.randint(0, 2_000)
    return min(rtt, POLICY.max_rtt_micros)


def random_position(rng: random.Random) -> tuple[int, int]:
    """A uniform point on the sphere between 70 S and 70 N, in micro-degrees."""
    lat = math.degrees(
        math.asin(rng.uniform(-math.sin(math.radians(70)), math.sin(math.radians(70))))
    )
    return round(lat * 1e6), round(rng.uniform(-180, 180) * 1e6)


def displaced(rng: random.Random, p: tuple[int, int], metres: float) -> tuple[int, int]:
    """A point ``metres`` from ``p`` in a random direction (clamped to valid coordinates)."""
    lat1, lon1 = math.radians(p[0] / 1e6), math.radians(p[1] / 1e6)
    d, bearing = metres / MEAN_RADIUS_M, rng.uniform(0, 2 * math.pi)
    lat2 = math.asin(
        math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(bearing)
    )
    lon2 = lon1 + math.atan2(
        math.sin(bearing) * math.sin(d) * math.cos(lat1),
        math.cos(d) - math.sin(lat1) * math.sin(lat2),
    )
    lon = (math.degrees(lon2) + 180) % 360 - 180
    return (
        max(-90_000_000, min(90_000_000, round(math.degrees(lat2) * 1e6))),
        max(-180_000_000, min(180_000_000, round(lon * 1e6))),
    )


def site(name: str, position: tuple[int, int]) -> FacilitySpec:
    return FacilitySpec(
        name, f"grid-{name}", f"metro-{name}", "xx", position[0], position[1], f"as-{name}", "p"
    )


def claim(spec: FacilitySpec) -> tuple[int, int]:
    return spec.latitude_e6, spec.longitude_e6


# ----------------------------------------------------------------------------------- contracts


@dataclass
class Stage:
    """A registry and selector deployed for one experiment, and the world built on them."""

    w3: Web3
    world: World
    selector: SelectorClient
    owner: LocalAccount
    relayer: LocalAccount

    @property
    def ds(self) -> bytes:
        return self.world.registry.domain_separator()

    def report(self, m: LatencyMeasurement, sig: Signature) -> list[Any]:
        """Relay a measurement and flag at once any contradiction it completes (as the devnet's
        relayer does): the receipts, the report's first."""
        return self.selector.report_latency_and_flag(self.ds, m, sig, sender=self.relayer)

    def refusal(self, m: LatencyMeasurement, sig: Signature) -> ContractRevertError:
        """The error the contract refuses the report with (Disagreement if it accepts it)."""
        try:
            self.report(m, sig)
        except ContractRevertError as exc:
            return exc
        raise Disagreement(f"accepted what must be refused: {m}")

    def flagged_in(self, receipts: list[Any]) -> list[bytes]:
        return [
            bytes(e["facilityId"])
            for receipt in receipts
            for e in self.selector.events_in(receipt, "GeographyFlagged")
        ]


def stage(w3: Web3, owner: LocalAccount, relayer: LocalAccount, specs: list[FacilitySpec]) -> Stage:
    registry, _ = RegistryClient.deploy(w3, owner, DEFAULT_POLICY)
    selector, _ = SelectorClient.deploy(w3, owner, registry.address, DiversityPolicy(1), POLICY)
    return Stage(w3, build(w3, registry, owner, specs), selector, owner, relayer)


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise Disagreement(what)


# ----------------------------------------------------------------------------------- pair lies


@dataclass
class PairFigures:
    """What the pair experiment saw."""

    sites: int = 0
    cases: Counter[str] = field(default_factory=Counter)
    #: per lie class: outcome ("refused <Error>", "accepted, bound = honest end", ...) -> count
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    #: low_rtt cases whose lie alone contradicts the claims (what flagged both ends before)
    one_sided_would_flag: int = 0
    honest_flagged: int = 0
    #: liars (whose claims are true; they lie about RTTs and signatures) flagged
    liars_flagged: int = 0
    flag_events: int = 0
    #: flagContradiction called by a stranger on the pair after each accepted report: refused
    flag_calls_refused: Counter[str] = field(default_factory=Counter)
    disagreements: list[str] = field(default_factory=list)


class PairLies:
    """The pair experiment: a pool of honest sites, one liar per case."""

    def __init__(self, st: Stage, rng: random.Random, truth: dict[str, tuple[int, int]]) -> None:
        self.st, self.rng, self.truth = st, rng, truth
        self.specs = list(st.world.facilities.values())
        #: the first half lie (each only ever to honest sites), the second half never does
        half = len(self.specs) // 2
        self.liars, self.honest_sites = self.specs[:half], self.specs[half:]
        #: accepted measurements per direction, oldest first
        self.history: dict[tuple[str, str], list[tuple[LatencyMeasurement, Signature]]] = (
            defaultdict(list)
        )
        self.figures = PairFigures(sites=len(self.specs))
        self.forgers = 0

    # -- building blocks

    def honest(self, a: FacilitySpec, b: FacilitySpec, exchange: bytes) -> tuple[Any, Any]:
        rtt = honest_rtt_us(self.rng, self.truth[a.name], self.truth[b.name])
        return self.st.world.latency(a, b, rtt, exchange)

    def accept(self, m: LatencyMeasurement, sig: Signature, who: str) -> Any:
        receipts = self.st.report(m, sig)
        flagged = self.st.flagged_in(receipts)
        self.figures.flag_events += len(flagged)
        expect(not flagged, f"{who}: flagged {[f.hex()[:8] for f in flagged]}")
        # anyone may ask the selector to flag the pair: with an honest end it must refuse
        try:
            self.st.selector.flag_contradiction(
                m.facility_id, m.peer_facility_id, sender=self.st.relayer
            )
        except ContractRevertError as exc:
            self.figures.flag_calls_refused[exc.error_name] += 1
            expect(
                exc.error_name in ("SelectorNoContradiction", "SelectorPairNotMeasured"),
                f"{who}: flagContradiction refused with {exc.error_name}",
            )
        else:
            expect(False, f"{who}: flagContradiction flagged the pair")
        self.history[(m.facility_id.hex(), m.peer_facility_id.hex())].append((m, sig))
        return receipts[0]

    def link(self, a: FacilitySpec, b: FacilitySpec) -> Any:
        return self.st.selector.latency_link(a.facility_id, b.facility_id)

    def refused(
        self, m: LatencyMeasurement, sig: Signature, error: str, args: dict[str, Any]
    ) -> str:
        a, b = m.facility_id, m.peer_facility_id
        before = self.st.selector.latency_link(a, b)
        exc = self.st.refusal(m, sig)
        expect(exc.error_name == error, f"refused with {exc}, not {error}")
        for k, v in args.items():
            got = exc.args_by_name.get(k)
            got = bytes(got) if isinstance(got, bytes | bytearray) else got
            expect(
                got == v if not isinstance(v, str) else str(got).lower() == v.lower(),
                f"{error}.{k} = {got!r}, not {v!r}",
            )
        expect(self.st.selector.latency_link(a, b) == before, f"{error}: the link changed")
        return f"refused {error}"

    def exchange_id(self, a: FacilitySpec, b: FacilitySpec) -> bytes:
        return keccak(text=f"x:{a.name}:{b.name}:{self.rng.getrandbits(64)}")

    def complete(self, a: FacilitySpec, b: FacilitySpec) -> None:
        """An honest exchange of the pair, both ends reported (so the pair has history)."""
        x = self.exchange_id(a, b)
        for m, sig in (self.honest(a, b, x), self.honest(b, a, x)):
            self.accept(m, sig, "honest exchange")

    def signed_by_attestor_of(
        self, spec: FacilitySpec, m: LatencyMeasurement
    ) -> tuple[LatencyMeasurement, Signature]:
        return m, spec.signer().sign(self.st.ds, m)

    # -- the lies (liar a, honest b, third site c); each returns its outcome

    def low_rtt(self, a: FacilitySpec, b: FacilitySpec, c: FacilitySpec) -> str:
        x = self.exchange_id(a, b)
        mb, sb = self.honest(b, a, x)
        lower = distance_lower_bound_m(claim(a), claim(b))
        ceiling = max(POLICY.min_rtt_micros, (lower - POLICY.tolerance_m) // 100 - 1)
        phys = physical_rtt_us(self.truth[a.name], self.truth[b.name])
        lie = self.rng.randint(
            POLICY.min_rtt_micros, max(POLICY.min_rtt_micros, min(ceiling, phys - 1))
        )
        if lower > rtt_distance_bound_m(lie) + POLICY.tolerance_m:
            self.figures.one_sided_would_flag += 1
        ma, sa = self.st.world.latency(a, b, lie, x)
        order = [(ma, sa), (mb, sb)] if self.rng.random() < 0.5 else [(mb, sb), (ma, sa)]
        for m, sig in order:
            self.accept(m, sig, "low_rtt")
        bound = self.st.selector.pair_rtt(a.facility_id, b.facility_id)
        expect(bound == max(lie, mb.rtt_micros), f"low_rtt: bound {bound}")
        return "accepted, bound = the honest end's" if bound == mb.rtt_micros else "accepted"

    def high_rtt(self, a: FacilitySpec, b: FacilitySpec, c: FacilitySpec) -> str:
        x = self.exchange_id(a, b)
        mb, sb = self.honest(b, a, x)
        lie = self.rng.randint(mb.rtt_micros + 1, min(POLICY.max_rtt_micros, mb.rtt_micros * 10))
        ma, sa = self.st.world.latency(a, b, lie, x)
        for m, sig in [(ma, sa), (mb, sb)] if self.rng.random() < 0.5 else [(mb, sb), (ma, sa)]:
            self.accept(m, sig, "high_rtt")
        bound = self.st.selector.pair_rtt(a.facility_id, b.facility_id)
        expect(bound == lie, f"high_rtt: bound {bound}, not the liar's {lie}")
        return "accepted, looks farther (bound = the liar's)"

    def replay(self, a: FacilitySpec, b: FacilitySpec, c: FacilitySpec) -> str:
        self.complete(a, b)
        key = (a.facility_id.hex(), b.facility_id.hex())
        last = self.history[key][-1][0].measured_at
        if self.rng.random() < 0.5:  # an accepted measurement, sent again by anyone
            m, sig = self.rng.choice(self.history[key])
            how = "replayed as is"
        else:  # the liar signs a fresh anchor on a time not newer than the stored one
            old = self.rng.randint(max(1, last - 3_600), last)
            number, block_hash = self.st.world.anchor()
            m = dataclasses.replace(
                self.history[key][-1][0],
                measured_at=old,
                anchor_block=number,
                anchor_hash=block_hash,
                rtt_micros=self.rng.randint(POLICY.min_rtt_micros, 1_000),
            )
            m, sig = self.signed_by_attestor_of(a, m)
            how = "re-signed, not newer"
        args: dict[str, Any]
        if int(self.st.w3.eth.block_number) + 1 - m.anchor_block > POLICY.max_anchor_age_blocks:
            args = {
                "anchorBlock": m.anchor_block,
                "maxAnchorAgeBlocks": POLICY.max_anchor_age_blocks,
            }
            return self.refused(m, sig, "SelectorStaleAnchor", args) + f" ({how}, anchor expired)"
        args = {
            "facilityId": a.facility_id,
            "peerFacilityId": b.facility_id,
            "measuredAt": m.measured_at,
            "lastMeasuredAt": last,
        }
        return self.refused(m, sig, "SelectorMeasurementReplayed", args) + f" ({how})"

    def stale_anchor(self, a: FacilitySpec, b: FacilitySpec, c: FacilitySpec) -> str:
        x = self.exchange_id(a, b)
        ma, _ = self.honest(a, b, x)
        head = int(self.st.w3.eth.block_number)
        way = self.rng.choice(("too old", "future", "wrong hash"))
        args: dict[str, Any]
        if way == "too old":
            number = self.rng.randint(1, head - POLICY.max_anchor_age_blocks)
            m = dataclasses.replace(
                ma, anchor_block=number, anchor_hash=bytes(self.st.w3.eth.get_block(number)["hash"])
            )
            error, args = (
                "SelectorStaleAnchor",
                {"anchorBlock": number, "maxAnchorAgeBlocks": POLICY.max_anchor_age_blocks},
            )
        elif way == "future":
            number = head + self.rng.randint(1, 1_000)
            m = dataclasses.replace(
                ma, anchor_block=number, anchor_hash=keccak(number.to_bytes(8, "big"))
            )
            error, args = (
                "SelectorStaleAnchor",
                {"anchorBlock": number, "maxAnchorAgeBlocks": POLICY.max_anchor_age_blocks},
            )
        else:
            number = self.rng.randint(head - 100, head - 1)
            other = self.rng.choice([n for n in range(head - 300, head) if n != number])
            real = bytes(self.st.w3.eth.get_block(number)["hash"])
            wrong = (
                bytes(self.st.w3.eth.get_block(other)["hash"])
                if self.rng.random() < 0.5
                else keccak(text=str(self.rng.random()))
            )
            m = dataclasses.replace(ma, anchor_block=number, anchor_hash=wrong)
            error, args = (
                "SelectorAnchorMismatch",
                {"anchorBlock": number, "blockHash": real, "anchorHash": wrong},
            )
        m, sig = self.signed_by_attestor_of(a, m)
        out = self.refused(m, sig, error, args) + f" ({way})"
        self.complete(a, b)
        return out

    def forged(self, a: FacilitySpec, b: FacilitySpec, c: FacilitySpec) -> str:
        x = self.exchange_id(a, b)
        mb, _ = self.honest(b, a, x)  # the liar forges the honest end's report, lowered
        m = dataclasses.replace(
            mb,
            rtt_micros=self.rng.randint(
                POLICY.min_rtt_micros, max(POLICY.min_rtt_micros, mb.rtt_micros - 1)
            ),
        )
        self.forgers += 1
        if self.rng.random() < 0.5:
            key, how = Signer(keccak(text=f"forger:{self.forgers}")), "a stranger's key"
        else:
            key, how = a.signer(), "the liar's own key"
        sig = key.sign(self.st.ds, m)
        args = {"facilityId": b.facility_id, "signer": key.address, "attestor": b.signer().address}
        out = self.refused(m, sig, "SelectorSignerNotAttestor", args) + f" ({how})"
        self.complete(a, b)
        return out

    def swapped(self, a: FacilitySpec, b: FacilitySpec, c: FacilitySpec) -> str:
        x = self.exchange_id(a, b)
        mb, sb = self.honest(b, a, x)
        if self.rng.random() < 0.5:  # the peer's signature on the liar's own (low) report
            m = dataclasses.replace(
                mb,
                facility_id=a.facility_id,
                peer_facility_id=b.facility_id,
                rtt_micros=self.rng.randint(POLICY.min_rtt_micros, 1_000),
            )
            owner, how = a, "the peer's signature on the liar's report"
        else:  # the honest report, its RTT lowered, under its own signature
            m = dataclasses.replace(
                mb,
                rtt_micros=self.rng.randint(
                    POLICY.min_rtt_micros, max(POLICY.min_rtt_micros, mb.rtt_micros - 1)
                ),
            )
            owner, how = b, "the honest report altered under its signature"
        if m == mb:
            m = dataclasses.replace(m, rtt_micros=m.rtt_micros + 1)
        signer = recover_signer(m.digest(self.st.ds), sb)
        if signer is None:
            out = self.refused(m, sb, "SelectorInvalidSignature", {})
        else:
            args: dict[str, Any] = {
                "facilityId": owner.facility_id,
                "signer": signer,
                "attestor": owner.signer().address,
            }
            out = self.refused(m, sb, "SelectorSignerNotAttestor", args)
        self.complete(a, b)
        return out + f" ({how})"

    def relayed(self, a: FacilitySpec, b: FacilitySpec, c: FacilitySpec) -> str:
        x = self.exchange_id(a, b)
        mb, sb = self.honest(b, a, x)
        if self.rng.random() < 0.5:  # the honest end's report, relayed as if for another pair
            m = dataclasses.replace(mb, peer_facility_id=c.facility_id)
            signer = recover_signer(m.digest(self.st.ds), sb)
            out = (
                self.refused(m, sb, "SelectorInvalidSignature", {})
                if signer is None
                else self.refused(
                    m,
                    sb,
                    "SelectorSignerNotAttestor",
                    {"facilityId": b.facility_id, "signer": signer, "attestor": b.signer().address},
                )
            ) + " (the peer's report, another pair)"
            self.complete(a, b)
            return out
        # the liar signs its own RTT with b as if measured with c: a lie about a-c it may tell
        self.complete(c, a)
        ma, _ = self.honest(a, b, x)
        m, sig = self.st.world.latency(a, c, ma.rtt_micros, x)
        self.accept(m, sig, "relayed (own)")
        bound = self.st.selector.pair_rtt(a.facility_id, c.facility_id)
        honest_c = self.history[(c.facility_id.hex(), a.facility_id.hex())][-1][0].rtt_micros
        expect(bound == max(honest_c, m.rtt_micros), f"relayed: bound {bound}")
        return "accepted, bound = the larger end's (the liar's own a-c report)"

    def case(self) -> None:
        lie = LIES[sum(self.figures.cases.values()) % len(LIES)]  # every class in turn
        a = self.rng.choice(self.liars)
        b, c = self.rng.sample(self.honest_sites, 2)
        try:
            outcome = getattr(self, lie)(a, b, c)
        except Disagreement as exc:
            self.figures.disagreements.append(f"{lie} {a.name}->{b.name}: {exc}")
            outcome = "DISAGREEMENT"
        self.figures.cases[lie] += 1
        self.figures.outcomes[lie][outcome] += 1

    def finish(self) -> PairFigures:
        flagged = self.st.selector.is_geography_flagged
        self.figures.honest_flagged = sum(flagged(s.facility_id) for s in self.honest_sites)
        self.figures.liars_flagged = sum(flagged(s.facility_id) for s in self.liars)
        return self.figures


def pair_lies(
    w3: Web3,
    owner: LocalAccount,
    relayer: LocalAccount,
    cases: int,
    seed: int,
    sites: int = 16,
    progress: Callable[[int], None] | None = None,
) -> PairFigures:
    """Run ``cases`` pair-lie cases on a pool of ``sites`` honest sites."""
    rng = random.Random(seed)
    truth = {f"h{seed % 1000}p{i}": random_position(rng) for i in range(sites)}
    specs = [site(name, pos) for name, pos in truth.items()]
    st = stage(w3, owner, relayer, specs)
    head = int(w3.eth.block_number)
    if head < 2 * POLICY.max_anchor_age_blocks:  # blocks old enough for a too-old anchor
        w3.provider.make_request("anvil_mine", [hex(2 * POLICY.max_anchor_age_blocks - head)])  # type: ignore[arg-type]
    lies = PairLies(st, rng, truth)
    for i in range(cases):
        lies.case()
        if progress:
            progress(i + 1)
    return lies.finish()


# ------------------------------------------------------------------------------------ worlds


@dataclass
class WorldFigures:
    """What the landmark worlds saw (sites exclude the landmarks)."""

    worlds: int = 0
    sites: int = 0
    liars: int = 0
    inflating_liars: int = 0
    #: claims outside one of their own fresh discs (plus tolerance): provably false
    provably_false: int = 0
    provably_false_missed: int = 0
    #: claims further than (smallest disc radius + tolerance) from the truth
    beyond_radius: int = 0
    beyond_radius_flagged: int = 0
    #: ... of those not flagged, how many lie inside every disc (no evidence contradicts them)
    beyond_radius_inside_every_disc: int = 0
    #: claims further than (smallest disc diameter + tolerance) from the truth
    beyond_diameter: int = 0
    beyond_diameter_missed: int = 0
    liars_flagged: int = 0
    honest_flagged_by_landmark: int = 0
    honest_flagged_by_peer: int = 0
    #: ... cleared with clearGeographyFlag (their own disc, or the lying peer's, refutes it)
    honest_cleared: int = 0
    honest_flagged_at_end: int = 0
    #: ... of those, flagged against a peer whose own claim lies outside one of its own discs
    honest_flagged_by_provably_false_peer: int = 0
    disagreements: list[str] = field(default_factory=list)


def landmark_world(
    w3: Web3,
    owner: LocalAccount,
    relayer: LocalAccount,
    rng: random.Random,
    index: int,
    n_sites: int,
    figures: WorldFigures,
) -> None:
    tol = POLICY.tolerance_m
    truth: dict[str, tuple[int, int]] = {}
    specs: list[FacilitySpec] = []
    liars: dict[str, bool] = {}  # liar name -> inflates its landmark RTTs
    center = random_position(rng)
    for i in range(LANDMARKS + n_sites):
        name = f"w{index}s{i}"
        truth[name] = displaced(rng, center, REGION_M * math.sqrt(rng.random()))
        position = truth[name]
        if i >= LANDMARKS and rng.random() < 1 / 3:
            metres = math.exp(rng.uniform(math.log(1e4), math.log(1.5e7)))
            position = displaced(rng, truth[name], metres)
            liars[name] = rng.random() < 0.5
        specs.append(site(name, position))
    st = stage(w3, owner, relayer, specs)
    landmarks, sites = specs[:LANDMARKS], specs[LANDMARKS:]
    for lm in landmarks:
        st.selector.set_landmark(lm.facility_id, lm.latitude_e6, lm.longitude_e6, owner)

    def rtt(s: FacilitySpec, peer: FacilitySpec) -> int:
        honest = honest_rtt_us(rng, truth[s.name], truth[peer.name])
        if liars.get(s.name):  # inflate to fit the claim: the bound must cover claim-to-peer
            need = (distance_lower_bound_m(claim(s), claim(peer)) - tol) // 100 + 1
            return min(POLICY.max_rtt_micros, max(honest, need))
        return honest

    flagged_by: dict[str, str] = {}  # site -> "landmark" | "peer", at the time of its first flag
    names = {s.facility_id: s.name for s in specs}

    def exchange(a: FacilitySpec, b: FacilitySpec, why: str) -> None:
        x = keccak(text=f"{why}:{a.name}:{b.name}")
        for m, sig in (st.world.latency(a, b, rtt(a, b), x), st.world.latency(b, a, rtt(b, a), x)):
            for f in st.flagged_in(st.report(m, sig)):
                flagged_by.setdefault(names[f], why)

    for s in sites:
        for lm in landmarks:
            exchange(s, lm, "landmark")
    for s in sites:
        for peer in rng.sample([p for p in sites if p is not s], 2):
            exchange(s, peer, "peer")
    for s in sites:  # anyone may clear an honest site's peer flag with a disc proving the peer's
        # claim false (the site's own, or the peer's own)
        if s.name not in liars and st.selector.is_geography_flagged(s.facility_id):
            flag = st.selector.geography_flag(s.facility_id)
            if flag is not None and flag.against not in {lm.facility_id for lm in landmarks}:
                try:
                    st.selector.clear_geography_flag(s.facility_id, sender=relayer)
                    figures.honest_cleared += 1
                except ContractRevertError:
                    pass

    figures.worlds += 1
    outside: dict[bytes, bool] = {}  # site -> its claim lies outside one of its own discs
    for s in sites:
        discs = [
            (d, next(lm for lm in landmarks if lm.facility_id == d.landmark_id))
            for d in st.selector.discs_of(s.facility_id)
        ]
        if len(discs) != LANDMARKS:
            figures.disagreements.append(f"{s.name}: {len(discs)} fresh discs, not {LANDMARKS}")
            continue
        figures.sites += 1
        flagged = st.selector.is_geography_flagged(s.facility_id)
        off = distance_lower_bound_m(claim(s), truth[s.name])
        out = outside[s.facility_id] = any(
            distance_lower_bound_m(claim(s), claim(lm)) > rtt_distance_bound_m(d.rtt_micros) + tol
            for d, lm in discs
        )
        smallest = min(rtt_distance_bound_m(d.rtt_micros) for d, _ in discs)
        if s.name in liars:
            figures.liars += 1
            figures.inflating_liars += liars[s.name]
            figures.liars_flagged += flagged
        if out:
            figures.provably_false += 1
            if not flagged:
                figures.provably_false_missed += 1
                figures.disagreements.append(f"{s.name}: claim outside a disc, not flagged")
        if off > smallest + tol:
            figures.beyond_radius += 1
            figures.beyond_radius_flagged += flagged
            figures.beyond_radius_inside_every_disc += not flagged and not out
        if off > 2 * smallest + tol:
            figures.beyond_diameter += 1
            figures.beyond_diameter_missed += not flagged
    for s in sites:
        if s.name in liars:
            continue
        by = flagged_by.get(s.name)
        figures.honest_flagged_by_landmark += by == "landmark"
        figures.honest_flagged_by_peer += by == "peer"
        flag = st.selector.geography_flag(s.facility_id)
        if flag is not None and flag.holds:
            figures.honest_flagged_at_end += 1
            figures.honest_flagged_by_provably_false_peer += outside.get(flag.against, False)


def landmark_worlds(
    w3: Web3,
    owner: LocalAccount,
    relayer: LocalAccount,
    worlds: int,
    seed: int,
    min_sites: int = 10,
    max_sites: int = 50,
    progress: Callable[[int], None] | None = None,
) -> WorldFigures:
    rng = random.Random(seed + 1)
    figures = WorldFigures()
    for i in range(worlds):
        landmark_world(
            w3, owner, relayer, rng, seed * 1000 + i, rng.randint(min_sites, max_sites), figures
        )
        if progress:
            progress(i + 1)
    return figures


# ------------------------------------------------------------------------------------ report


def render(pairs: PairFigures | None, worlds: WorldFigures | None) -> str:
    lines: list[str] = []
    if pairs is not None:
        total = sum(pairs.cases.values())
        lines.append(
            f"pair lies: {total} cases on {pairs.sites} sites (half of them liars, each only ever "
            "paired with honest sites; every claim is the true position)"
        )
        for lie in LIES:
            lines.append(f"  {lie:<13}{pairs.cases[lie]:>6}")
            for outcome, n in sorted(pairs.outcomes[lie].items()):
                lines.append(f"      {n:>6}  {outcome}")
        lines.append(
            f"  low_rtt lies that alone contradict the claims (flagged both ends one-sided): "
            f"{pairs.one_sided_would_flag}"
        )
        lines.append(f"  GeographyFlagged events: {pairs.flag_events}")
        refused = ", ".join(f"{n} {e}" for e, n in sorted(pairs.flag_calls_refused.items()))
        lines.append(
            "  flagContradiction by a stranger after each accepted report: "
            f"{sum(pairs.flag_calls_refused.values())} refused ({refused or 'none'}), 0 accepted"
            if not any("flagContradiction flagged" in d for d in pairs.disagreements)
            else "  flagContradiction by a stranger flagged a pair (see disagreements)"
        )
        lines.append(f"  honest facilities flagged: {pairs.honest_flagged} (goal 0)")
        lines.append(f"  lying facilities flagged: {pairs.liars_flagged}")
        lines.append(f"  disagreements with the expected outcome: {len(pairs.disagreements)}")
        lines += [f"    {d}" for d in pairs.disagreements[:20]]
    if worlds is not None:
        w = worlds
        lines.append(
            f"landmark worlds: {w.worlds} worlds, {w.sites} sites, {LANDMARKS} landmarks each; "
            f"{w.liars} claim a false position ({w.inflating_liars} inflate their RTT to fit)"
        )
        lines.append(
            f"  claims outside one of their own discs + tolerance: {w.provably_false}, "
            f"not flagged: {w.provably_false_missed} (goal 0)"
        )
        unflagged = w.beyond_radius - w.beyond_radius_flagged
        lines.append(
            f"  claims > (smallest disc radius + tolerance) from the truth: {w.beyond_radius}, "
            f"flagged {w.beyond_radius_flagged}, not flagged {unflagged} "
            f"(inside every disc: {w.beyond_radius_inside_every_disc})"
        )
        lines.append(
            f"  claims > (smallest disc diameter + tolerance) from the truth: {w.beyond_diameter}, "
            f"not flagged: {w.beyond_diameter_missed} (goal 0)"
        )
        lines.append(f"  liars flagged: {w.liars_flagged} of {w.liars}")
        lines.append(
            f"  honest sites flagged: by a landmark {w.honest_flagged_by_landmark} (goal 0), "
            f"by a lying peer {w.honest_flagged_by_peer}, of which cleared (clearGeographyFlag) "
            f"{w.honest_cleared}; still flagged at the end {w.honest_flagged_at_end}, "
            f"{w.honest_flagged_by_provably_false_peer} of them against a peer whose own claim "
            "lies outside one of its own discs (goal 0)"
        )
        lines.append(f"  disagreements: {len(w.disagreements)}")
        lines += [f"    {d}" for d in w.disagreements[:20]]
    return "\n".join(lines)
