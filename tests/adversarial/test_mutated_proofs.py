"""Random mutations of valid site proofs, submitted every way an attacker can.

Each case draws a valid proof of a random kind by facility A's attestor (checked valid by the
oracle below, and, in the replay test, accepted by the registry), mutates it (a bit flip or a
random value in any field of the ``SignedAttestation`` tuple or of its packed word, a re-signature
with another key or under another EIP-712 domain, a mistimed or misshapen proof signed by the
right key, a stale sequence, bits above the packed kind, a proof for an inactive, unknown or other
facility, a node another facility holds) and submits it four ways: ``submitAttestation`` through
the client (which estimates: a ``ContractRevertError``) and mined without an estimate (a reverted
transaction), and ``submitAttestations`` the same two ways (the proof skipped with
``AttestationRejected``). Every way must name the error the oracle predicts, with its arguments,
and leave the registry's storage root, the attestors' ``lastSequence`` and the facilities'
records (domains, coordinates, ``validUntil``) as they were.

The oracle is the registry's documented check order written out in Python (packing, kind,
facility, shape, timing, evidence hash, signature, signer, sequence, node holder). A mutation it
calls acceptable is not a mutant: the generator must never make one, and the test fails if it
does, as it fails if the mutant equals the proof it came from or if the verdict could change in
the seconds the case takes (timing mutants keep a margin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hypothesis import assume, event, given
from hypothesis import strategies as st
from web3 import Web3

from devnet.localchain import LocalChain
from redundancy.domains import Kind, facility_id
from redundancy.eip712 import Signature, Signer, recover_address, typed_digest
from redundancy.proofs import (
    ATTESTATION,
    Attestation,
    SignedProof,
    make_proof,
    registry_domain_separator,
    subject_for_node,
)
from redundancy.registry import DEFAULT_POLICY, RegistryClient
from tests.adversarial import tally
from tests.adversarial.conftest import dev_account
from tests.adversarial.mutations import (
    ORDER,
    Draw,
    Refusal,
    bit_width,
    differs,
    flip_bit,
    matches,
)
from tests.adversarial.rawtx import (
    calldata,
    changes_to,
    mine,
    refusals,
    send_unestimated,
)

U40, U64 = (1 << 40) - 1, (1 << 64) - 1
#: Seconds a case may take: a timing mutant's verdict must hold over this much of the clock.
SLACK = 20
FIELDS = (
    "facilityId",
    "subject",
    "domainId",
    "secondaryDomainId",
    "evidenceHash",
    "packed",
    "evidence",
    "r",
    "vs",
)
#: (name, bit offset, width, signed) of each field packed into the word, and the bits above it.
PACKED = (
    ("kind", 208, 8, False),
    ("latitudeE6", 176, 32, True),
    ("longitudeE6", 144, 32, True),
    ("issuedAt", 104, 40, False),
    ("expiresAt", 64, 40, False),
    ("sequence", 0, 64, False),
)

Raw = tuple[Any, ...]


@dataclass(frozen=True)
class Facility:
    name: str
    signer: Signer

    @property
    def id(self) -> bytes:
        return facility_id(self.name)


@dataclass
class Bench:
    w3: Web3
    registry: RegistryClient
    relayer: LocalAccount
    ds: bytes
    site: Facility  # active; every proof starts as one of its own
    other: Facility  # active; holds a freshly attested node
    retired: Facility  # registered, then deactivated
    ghost: Facility  # never registered
    held_node: str
    fixed_facilities: dict[bytes, tuple[str, bool]]  # id -> (attestor, active)
    fixed_last: dict[str, int]  # attestor -> last sequence, as the fixture left them

    @property
    def registered(self) -> list[Facility]:
        return [self.site, self.other, self.retired]


def _signer(chain: LocalChain, index: int) -> Signer:
    return Signer(bytes(dev_account(chain, index).key))


def _proof(
    signer: Signer,
    ds: bytes,
    fid: bytes,
    kind: Kind,
    t: int,
    sequence: int,
    subject: bytes | None = None,
) -> SignedProof:
    geo = kind == Kind.GEOGRAPHY
    return make_proof(
        signer,
        ds,
        facility_id=fid,
        kind=kind,
        evidence=b'{"honest":true}',
        issued_at=t,
        expires_at=t + DEFAULT_POLICY.max_lifetime[kind],
        sequence=sequence,
        subject=subject,
        domain_id=bytes(32) if kind == Kind.HEALTH else keccak(text=f"{kind.name}:{sequence}"),
        secondary_domain_id=keccak(text="country") if geo else bytes(32),
        latitude_e6=50_110_000 if geo else 0,
        longitude_e6=8_680_000 if geo else 0,
    )


@pytest.fixture(scope="module")
def bench(chain: LocalChain, w3: Web3, owner: LocalAccount, relayer: LocalAccount) -> Bench:
    registry, _ = RegistryClient.deploy(w3, owner)
    ds = registry.domain_separator()
    site, other = Facility("fra1", _signer(chain, 1)), Facility("ams1", _signer(chain, 4))
    retired, ghost = Facility("old1", _signer(chain, 7)), Facility("ghost", _signer(chain, 8))
    for f in (site, other, retired):
        registry.register_facility(f.id, f.signer.address, keccak(text=f.name))
    registry.deactivate_facility(retired.id)
    t = mine(w3)
    # A's record holds a proof of every kind (so validUntil and domains have something to
    # keep), and a node; B holds a node freshly.
    held_node = dev_account(chain, 9).address
    facility_kinds = [k for k in Kind if k != Kind.HARDWARE]
    own = [_proof(site.signer, ds, site.id, k, t, s) for s, k in enumerate(facility_kinds, 1)]
    own.append(
        _proof(site.signer, ds, site.id, Kind.HARDWARE, t, 6, subject_for_node(owner.address))
    )
    held = _proof(other.signer, ds, other.id, Kind.HARDWARE, t, 1, subject_for_node(held_node))
    result = registry.submit_attestations([*own, held], sender=relayer)
    assert not result.rejected and len(result.accepted) == len(own) + 1
    facilities = {}
    for f in (site, other, retired):
        info = registry.facility(f.id)
        facilities[f.id] = (info.attestor, info.active)
    last = {f.signer.address: registry.last_sequence(f.signer.address) for f in (other, retired)}
    return Bench(
        w3, registry, relayer, ds, site, other, retired, ghost, held_node, facilities, last
    )


# ------------------------------------------------------------------------------- the oracle


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def unpack(packed: int) -> dict[str, int]:
    return {
        name: (_signed if signed else lambda v, _b: v)(packed >> off & ((1 << w) - 1), w)
        for name, off, w, signed in PACKED
    }


def repack(fields: dict[str, int], high: int = 0) -> int:
    word = high << 216
    for name, off, width, _ in PACKED:
        word |= (fields[name] & ((1 << width) - 1)) << off
    return word


@dataclass(frozen=True)
class ChainView:
    """What the oracle needs of the chain: attestors, activity, sequences, node holders."""

    facilities: dict[bytes, tuple[str, bool]]  # id -> (attestor, active)
    last: dict[str, int]  # attestor -> last sequence
    nodes: dict[str, tuple[bytes, int]]  # node -> (holder, valid until)


Verdict = Refusal | None


def verdict(raw: Raw, declared: bytes, ds: bytes, view: ChainView, now: int) -> Verdict:
    """The custom error (name, arguments but the block timestamp) the registry must refuse
    ``raw`` with at block time ``now``, or None if it must accept it."""
    if declared != ds:
        return "RegistryWrongDomain", {"expected": ds, "given": declared}
    fid, subject, d1, d2, ev_hash, packed, evidence, r, vs = raw
    if packed >> 216:
        return "RegistryMalformedPacking", {"packed": packed}
    f = unpack(packed)
    kind = f["kind"]
    if kind >= len(Kind):
        return "RegistryUnknownKind", {"kind": kind}
    if fid not in view.facilities:
        return "RegistryUnknownFacility", {"facilityId": fid}
    attestor, active = view.facilities[fid]
    if not active:
        return "RegistryFacilityInactive", {"facilityId": fid}
    s = int.from_bytes(subject, "big")
    if (s == 0 or s >> 160 != 0) if kind == Kind.HARDWARE else subject != fid:
        return "RegistryInvalidSubject", {"kind": kind, "subject": subject}
    zero1, zero2 = d1 == bytes(32), d2 == bytes(32)
    if kind == Kind.HEALTH:
        domains_ok = zero1 and zero2
    elif kind == Kind.GEOGRAPHY:
        domains_ok = not zero1 and not zero2
    else:
        domains_ok = not zero1 and zero2
    if not domains_ok:
        return "RegistryInvalidDomain", {"kind": kind, "domainId": d1, "secondaryDomainId": d2}
    lat, lon = f["latitudeE6"], f["longitudeE6"]
    if kind == Kind.GEOGRAPHY:
        coords_ok = -90_000_000 <= lat <= 90_000_000 and -180_000_000 <= lon <= 180_000_000
    else:
        coords_ok = lat == 0 and lon == 0
    if not coords_ok:
        return "RegistryInvalidCoordinates", {"kind": kind, "latitudeE6": lat, "longitudeE6": lon}
    issued, expires = f["issuedAt"], f["expiresAt"]
    skew, max_life = DEFAULT_POLICY.max_future_skew, DEFAULT_POLICY.max_lifetime[kind]
    if issued > now + skew:
        return "RegistryAttestationFromFuture", {"issuedAt": issued, "maxFutureSkew": skew}
    if expires <= now:
        return "RegistryAttestationExpired", {"expiresAt": expires}
    if expires <= issued or expires - issued > max_life:
        return "RegistryInvalidLifetime", {
            "kind": kind,
            "issuedAt": issued,
            "expiresAt": expires,
            "maxLifetime": max_life,
        }
    computed = keccak(evidence)
    if computed != ev_hash:
        return "RegistryEvidenceHashMismatch", {"declared": ev_hash, "computed": computed}
    values = (fid, kind, subject, d1, d2, lat, lon, ev_hash, issued, expires, f["sequence"])
    signer = recover_address(typed_digest(ds, ATTESTATION, values), Signature.from_compact(r, vs))
    if signer is None:
        return "RegistryInvalidSignature", {}
    if "0x" + signer.hex() != attestor.lower():
        return "RegistrySignerNotAttestor", {
            "facilityId": fid,
            "signer": "0x" + signer.hex(),
            "attestor": attestor.lower(),
        }
    last = view.last[attestor]
    if f["sequence"] <= last:
        return "RegistrySequenceNotIncreasing", {
            "attestor": attestor.lower(),
            "lastSequence": last,
            "sequence": f["sequence"],
        }
    if kind == Kind.HARDWARE:
        node = Web3.to_checksum_address(subject[12:])
        holder, until = view.nodes.get(node, (bytes(32), 0))
        if holder not in (fid, bytes(32)) and until > now:
            return "RegistryNodeAtOtherFacility", {"node": node.lower(), "facilityId": holder}
    return None


def chain_view(bench: Bench, nodes: list[str]) -> ChainView:
    """The oracle's view: the facilities' attestors and activity and the other attestors'
    sequences as the fixture left them (no case may change them, and the per-transaction
    diffs check none does), A's sequence and the nodes' holders read now."""
    r = bench.registry
    last = {
        **bench.fixed_last,
        bench.site.signer.address: r.last_sequence(bench.site.signer.address),
    }
    held = {}
    for node in nodes:
        n = r.node_info(node)
        held[node] = (n.facility_id, n.valid_until)
    return ChainView(bench.fixed_facilities, last, held)


# ---------------------------------------------------------------------------- generation

bytes32 = st.binary(min_size=32, max_size=32)
nonzero32 = st.integers(1, (1 << 256) - 1).map(lambda v: v.to_bytes(32, "big"))
private_keys = st.integers(1, ORDER - 1).map(lambda k: Signer(k.to_bytes(32, "big")))


@st.composite
def base_proofs(draw: st.DrawFn, bench: Bench, now: int, last: int) -> SignedProof:
    """A valid proof by facility A's attestor of a random kind, fresh for at least SLACK s."""
    kind = draw(st.sampled_from(Kind))
    max_life = DEFAULT_POLICY.max_lifetime[kind]
    age = draw(st.integers(0, 30))
    issued = now - age
    geo = kind == Kind.GEOGRAPHY
    subject = None
    if kind == Kind.HARDWARE:
        node = draw(st.integers(1, (1 << 160) - 1).map(lambda n: n.to_bytes(20, "big")))
        assume(Web3.to_checksum_address(node) != bench.held_node)
        subject = bytes(12) + node
    return make_proof(
        bench.site.signer,
        bench.ds,
        facility_id=bench.site.id,
        kind=kind,
        evidence=draw(st.binary(max_size=200)),
        issued_at=issued,
        expires_at=issued + draw(st.integers(age + SLACK + 30, max_life)),
        sequence=last + draw(st.integers(1, 1_000)),
        subject=subject,
        domain_id=bytes(32) if kind == Kind.HEALTH else draw(nonzero32),
        secondary_domain_id=draw(nonzero32) if geo else bytes(32),
        latitude_e6=draw(st.integers(-90_000_000, 90_000_000)) if geo else 0,
        longitude_e6=draw(st.integers(-180_000_000, 180_000_000)) if geo else 0,
    )


@dataclass(frozen=True)
class Mutant:
    how: str
    raw: Raw
    declared: bytes


def _resigned(signer: Signer, ds: bytes, a: Attestation, evidence: bytes) -> Raw:
    return SignedProof(a, evidence, signer.sign(ds, a)).as_abi()


def _with(a: Attestation, **changes: Any) -> Attestation:
    fields = {name: getattr(a, name) for name in Attestation.__slots__}
    return Attestation(**{**fields, **changes})


#: Every mutation, one test each: in each field, in each packed field, and the re-signed ones.
MUTATIONS = [
    *(f"bit flip:{f}" for f in FIELDS),
    *(f"random value:{f}" for f in FIELDS),
    *(f"packed field:{name}" for name, *_ in PACKED),
    "bits above the kind",
    "wrong key",
    "foreign domain",
    "mistimed",
    "misshapen",
    "stale sequence",
    "other facility",
    "held node",
]


def mutate(
    mutation: str, draw: Draw, bench: Bench, base: SignedProof, now: int, last: int
) -> Mutant:
    raw: Raw = base.as_abi()
    ds, a = bench.ds, base.attestation
    how, _, field = mutation.partition(":")
    site = bench.site.signer
    if how == "bit flip":
        i = FIELDS.index(field)
        if FIELDS[i] == "evidence" and not raw[i]:
            new = draw(st.binary(min_size=1, max_size=8))  # nothing to flip: add a byte
        else:
            new = flip_bit(raw[i], draw(st.integers(0, bit_width(raw[i]) - 1)))
        return Mutant(f"bit flip in {FIELDS[i]}", (*raw[:i], new, *raw[i + 1 :]), ds)
    if how == "random value":
        i = FIELDS.index(field)
        kind_of = {"packed": st.integers(0, (1 << 256) - 1), "evidence": st.binary(max_size=300)}
        new = differs(draw(kind_of.get(FIELDS[i], bytes32)), raw[i])
        return Mutant(f"random {FIELDS[i]}", (*raw[:i], new, *raw[i + 1 :]), ds)
    if how == "packed field":
        name, _, width, signed = next(p for p in PACKED if p[0] == field)
        fields = unpack(raw[5])
        low, high = (
            (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        )
        fields[name] = differs(draw(st.integers(low, high)), fields[name])
        return Mutant(f"random {name} in the packed word", (*raw[:5], repack(fields), *raw[6:]), ds)
    if how == "bits above the kind":
        high = draw(st.integers(1, (1 << 40) - 1))
        return Mutant("bits above the kind", (*raw[:5], raw[5] | high << 216, *raw[6:]), ds)
    if how == "wrong key":
        known = [bench.other.signer, bench.retired.signer, bench.ghost.signer]
        signer = draw(st.sampled_from(known) | private_keys)
        assume(signer.address != site.address)
        return Mutant("re-signed by another key", _resigned(signer, ds, a, base.evidence), ds)
    if how == "foreign domain":
        chain_id = bench.w3.eth.chain_id
        foreign = draw(
            st.one_of(
                st.integers(0, (1 << 256) - 1)
                .filter(lambda c: c != chain_id)
                .map(lambda c: registry_domain_separator(c, bench.registry.address)),
                st.binary(min_size=20, max_size=20)
                .filter(lambda x: x != bytes.fromhex(bench.registry.address[2:]))
                .map(lambda x: registry_domain_separator(chain_id, "0x" + x.hex())),
                bytes32.filter(lambda d: d != ds),
            )
        )
        declared = draw(st.sampled_from([foreign, ds]))
        return Mutant(
            "signed under a foreign domain", _resigned(site, foreign, a, base.evidence), declared
        )
    if how == "mistimed":
        skew, max_life = DEFAULT_POLICY.max_future_skew, DEFAULT_POLICY.max_lifetime[a.kind]
        which = draw(st.sampled_from(["future", "expired", "too long", "not after issue"]))
        # offsets from the clock in fixed ranges: Hypothesis replays a case's choices, so what
        # it may draw must not depend on the chain
        far = st.integers(0, 1 << 39)
        if which == "future":
            issued = min(U40, now + skew + SLACK + 1 + draw(far))
            expires = draw(st.integers(0, U40))
        elif which == "expired":
            expires = max(0, now - draw(far))
            issued = max(0, now + skew - draw(far))
        elif which == "too long":
            issued = max(0, now + skew - draw(st.integers(0, 10 * max_life)))
            expires = min(U40, max(now + SLACK, issued + max_life) + 1 + draw(far))
        else:
            expires = now + SLACK + 1 + draw(st.integers(0, skew - SLACK - 1))
            issued = min(now + skew, expires + draw(st.integers(0, skew)))
        timed = _with(a, issued_at=issued, expires_at=expires)
        return Mutant(f"mistimed ({which})", _resigned(site, ds, timed, base.evidence), ds)
    if how == "misshapen":
        return Mutant(
            "misshapen for its kind", _resigned(site, ds, misshapen(draw, a), base.evidence), ds
        )
    if how == "stale sequence":
        stale = _with(a, sequence=max(0, last - draw(st.integers(0, 1 << 16))))
        return Mutant("a sequence already used", _resigned(site, ds, stale, base.evidence), ds)
    if how == "other facility":
        owner_of, signer = draw(
            st.sampled_from(
                [
                    (bench.retired, bench.retired.signer),  # inactive
                    (bench.ghost, bench.ghost.signer),  # unknown
                    (bench.other, site),  # another facility's proof signed by ours
                ]
            )
        )
        subject = a.subject if a.kind == Kind.HARDWARE else owner_of.id
        moved = _with(a, facility_id=owner_of.id, subject=subject)
        return Mutant(
            f"a proof for {owner_of.name}", _resigned(signer, ds, moved, base.evidence), ds
        )
    # a hardware proof of the node B freshly attested
    taken = _with(
        a,
        kind=Kind.HARDWARE,
        subject=subject_for_node(bench.held_node),
        domain_id=a.domain_id if any(a.domain_id) else keccak(b"hw"),
        secondary_domain_id=bytes(32),
        latitude_e6=0,
        longitude_e6=0,
        expires_at=min(a.expires_at, a.issued_at + DEFAULT_POLICY.max_lifetime[Kind.HARDWARE]),
    )
    return Mutant("a node another facility holds", _resigned(site, ds, taken, base.evidence), ds)


def misshapen(draw: Draw, a: Attestation) -> Attestation:
    """``a`` with one field that breaks its kind's shape rule (subject, domains, coordinates)."""
    kind = a.kind
    rule = draw(st.sampled_from(["subject", "domains", "coordinates"]))
    if rule == "subject":
        if kind == Kind.HARDWARE:
            bad = draw(
                st.just(bytes(32))
                | st.integers(1 << 160, (1 << 256) - 1).map(lambda s: s.to_bytes(32, "big"))
            )
        else:
            bad = draw(bytes32.filter(lambda s: s != a.facility_id))
        return _with(a, subject=bad)
    if rule == "domains":
        nonzero = nonzero32
        zero = st.just(bytes(32))
        if kind == Kind.HEALTH:
            d1, d2 = draw(st.sampled_from([(nonzero, zero), (zero, nonzero), (nonzero, nonzero)]))
        elif kind == Kind.GEOGRAPHY:
            d1, d2 = draw(st.sampled_from([(zero, nonzero), (nonzero, zero), (zero, zero)]))
        else:
            d1, d2 = draw(st.sampled_from([(zero, zero), (nonzero, nonzero), (zero, nonzero)]))
        return _with(a, domain_id=draw(d1), secondary_domain_id=draw(d2))
    if kind == Kind.GEOGRAPHY:
        lat_s, lon_s = draw(
            st.sampled_from([(beyond(90_000_000), st.just(0)), (st.just(0), beyond(180_000_000))])
        )
        lat, lon = draw(lat_s), draw(lon_s)
        if draw(st.booleans()):  # the other coordinate anywhere
            lat, lon = (lat, draw(INT32)) if lat else (draw(INT32), lon)
    else:
        lat_s, lon_s = draw(st.sampled_from([(beyond(0), INT32), (INT32, beyond(0))]))
        lat, lon = draw(lat_s), draw(lon_s)
    return _with(a, latitude_e6=lat, longitude_e6=lon)


INT32 = st.integers(-(1 << 31), (1 << 31) - 1)


def beyond(limit: int) -> st.SearchStrategy[int]:
    """An int32 whose magnitude is above ``limit``."""
    return st.tuples(st.booleans(), st.integers(limit + 1, (1 << 31) - 1)).map(
        lambda t: -t[1] if t[0] else t[1]
    )


# ------------------------------------------------------------------------------ submission


def state(bench: Bench, mutant: Mutant) -> tuple[object, ...]:
    """A's lastSequence and record (domains, coordinates, CA, validUntil per kind), and the
    record of any other registered facility the mutant names."""
    r = bench.registry
    named = {bench.site.id, mutant.raw[0]} & {f.id for f in bench.registered}
    return (
        r.last_sequence(bench.site.signer.address),
        [r.facility(fid) for fid in sorted(named)],
    )


def refuse_every_way(bench: Bench, mutant: Mutant, expected: Refusal) -> None:
    r, w3, relayer = bench.registry, bench.w3, bench.relayer
    single = r.contract.functions.submitAttestation(mutant.declared, mutant.raw)
    batch = r.contract.functions.submitAttestations(mutant.declared, [mutant.raw])
    for err in refusals(r, single, relayer):
        assert matches(err, expected), ("single", err, expected)
    if expected[0] == "RegistryWrongDomain":  # a batch-level fault: the whole batch reverts
        for err in refusals(r, batch, relayer):
            assert matches(err, expected), ("batch", err, expected)
        return
    unestimated = send_unestimated(w3, relayer, r.address, calldata(batch))
    for receipt in (r.tx.send(batch, relayer), unestimated):
        assert receipt["status"] == 1
        result = r.outcome(receipt)
        assert (result.accepted, result.rejected) == ([], [(0, expected[0])])
        (event,) = r.events_in(receipt, "AttestationRejected")
        assert event == {
            "index": 0,
            "facilityId": mutant.raw[0],
            "sequence": mutant.raw[5] & U64,
            "reason": r.errors.selector_of(expected[0]),
        }
        assert len(receipt["logs"]) == 1  # nothing else happened
        assert changes_to(w3, receipt, r.address) == {}, "a skipped proof changed the registry"


def _nodes(bench: Bench, *raws: Raw) -> list[str]:
    nodes = {bench.held_node}
    for raw in raws:
        if int.from_bytes(raw[1], "big") >> 160 == 0:
            nodes.add(Web3.to_checksum_address(raw[1][12:]))
    return sorted(nodes)


def check_refused(bench: Bench, base: SignedProof, mutant: Mutant, now: int) -> None:
    assert (mutant.raw, mutant.declared) != (base.as_abi(), bench.ds), "not a mutation"
    view = chain_view(bench, _nodes(bench, base.as_abi(), mutant.raw))
    assert verdict(base.as_abi(), bench.ds, bench.ds, view, now) is None, "the base is not valid"
    expected = verdict(mutant.raw, mutant.declared, bench.ds, view, now)
    assert expected is not None, f"the generator made a valid proof ({mutant.how})"
    later = verdict(mutant.raw, mutant.declared, bench.ds, view, now + SLACK)
    assert later == expected, f"the verdict on {mutant.how} depends on the second it lands"
    event(expected[0])
    before = state(bench, mutant)
    refuse_every_way(bench, mutant, expected)
    assert state(bench, mutant) == before


@pytest.mark.parametrize("mutation", MUTATIONS)
@tally.timeout("proofs", 0.8 / len(MUTATIONS))
@tally.profile("proofs", 0.8 / len(MUTATIONS))
@given(data=st.data())
def test_every_mutant_of_a_valid_proof_is_refused_and_changes_nothing(
    bench: Bench, mutation: str, data: st.DataObject
) -> None:
    now = mine(bench.w3)
    last = bench.registry.last_sequence(bench.site.signer.address)
    base = data.draw(base_proofs(bench, now, last), label="base")
    mutant = mutate(mutation, data.draw, bench, base, now, last)
    check_refused(bench, base, mutant, now)
    tally.count("proofs")


@tally.timeout("proofs", 0.2)
@tally.profile("proofs", 0.2)
@given(data=st.data())
def test_an_accepted_proof_replayed_or_undercut_is_refused_and_changes_nothing(
    bench: Bench, data: st.DataObject
) -> None:
    """The base is accepted first (single or batch), then replayed as is or re-signed by its
    own attestor with a sequence it or an earlier proof used."""
    now = mine(bench.w3)
    last = bench.registry.last_sequence(bench.site.signer.address)
    base = data.draw(base_proofs(bench, now, last), label="base")
    if data.draw(st.booleans(), label="accepted through the batch path"):
        result = bench.registry.submit_attestations([base], sender=bench.relayer)
    else:
        result = bench.registry.submit_attestation(base, sender=bench.relayer)
    assert result.accepted == [(bench.site.id, base.attestation.sequence)]
    seq = base.attestation.sequence
    if data.draw(st.booleans(), label="replayed as is"):
        mutant = Mutant("replayed", base.as_abi(), bench.ds)
    else:
        back = data.draw(st.integers(0, 1 << 16), label="sequences back")
        undercut = _with(base.attestation, sequence=max(0, seq - back))
        mutant = Mutant(
            "re-signed with a used sequence",
            _resigned(bench.site.signer, bench.ds, undercut, base.evidence),
            bench.ds,
        )
    view = chain_view(bench, _nodes(bench, mutant.raw))
    expected = verdict(mutant.raw, mutant.declared, bench.ds, view, now)
    assert expected is not None and expected[0] == "RegistrySequenceNotIncreasing", expected
    before = state(bench, mutant)
    refuse_every_way(bench, mutant, expected)
    assert state(bench, mutant) == before
    tally.count("proofs")
