"""The publisher against a real anvil, in-process: batching, idempotence by sequence,
re-issue instead of sending expired proofs, final rejections, backoff, start-up checks."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from attestor.daemon import Daemon
from attestor.errors import RegistrationError
from attestor.issuer import Issuer
from attestor.keys import CA_CERT, DEVICE_CERT, DEVICE_KEY, DeviceIdentity, load_device_identity
from attestor.metrics import Metrics
from attestor.outbox import EXPIRED, PENDING, PUBLISHED, REJECTED, Outbox
from attestor.probes import Observation
from attestor.publisher import Publisher
from attestor.registry_link import RegistryLink, Target
from attestor.settings import Settings, load_settings
from redundancy.devicecert import parse_envelope, verify_envelope
from redundancy.domains import Dimension, Kind, domain_id
from redundancy.eip712 import Signer
from redundancy.keystore import load_account
from redundancy.proofs import registry_domain_separator
from redundancy.registry import DEFAULT_POLICY, FreshnessPolicy
from tests.attestor_sites import PASSWORD, Deployed, Site, make_site, register


@dataclass
class Wired:
    """One attestor's parts, wired as the daemon wires them."""

    site: Site
    settings: Settings
    account: LocalAccount
    identity: DeviceIdentity
    outbox: Outbox
    link: RegistryLink
    publisher: Publisher
    metrics: Metrics
    renewed: list[tuple[Kind, bytes]] = field(default_factory=list)

    def issuer(self, clock: Callable[[], float] = time.time) -> Issuer:
        return Issuer(
            "fra1",
            self.site.facility_id,
            self.identity,
            Signer(bytes(self.account.key)),
            self.link.domain_separator,
            self.outbox,
            clock,
        )

    def issue(
        self, *kinds: Kind, lifetime: int | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        """Sign observations; heartbeats live 4 s (two 2 s intervals), others 10 min."""
        items = [(_observation(k), lifetime or (4 if k == Kind.HEALTH else 600)) for k in kinds]
        self.issuer(clock).issue(items)

    def drain(self) -> None:
        while self.publisher.step() == 0.0:
            pass


def _observation(kind: Kind) -> Observation:
    now = int(time.time())
    if kind == Kind.GEOGRAPHY:
        return Observation(
            kind,
            {"metro": "frankfurt"},
            now,
            domain_id=domain_id(Dimension.METRO, "frankfurt"),
            secondary_domain_id=domain_id(Dimension.COUNTRY, "de"),
            latitude_e6=50_110_922,
            longitude_e6=8_682_127,
        )
    if kind == Kind.HEALTH:
        return Observation(kind, {"load1Milli": 1}, now)
    dimension = {Kind.POWER: Dimension.POWER, Kind.NETWORK: Dimension.NETWORK}.get(
        kind, Dimension.PROVIDER
    )
    return Observation(kind, {"k": kind.name}, now, domain_id=domain_id(dimension, "x"))


def wire(
    deployed: Deployed,
    tmp_path: Path,
    *,
    registered: bool = True,
    rpc_url: str | None = None,
    max_fee_per_gas: int | None = None,
) -> Wired:
    site = make_site(tmp_path, "fra1", deployed, heartbeat=2)
    if registered:
        register(deployed, site)
    settings = load_settings(site.config)
    keys = site.root / "keys"
    account = load_account(site.keystore, PASSWORD)
    identity = load_device_identity(keys / DEVICE_KEY, keys / DEVICE_CERT, keys / CA_CERT, PASSWORD)
    chain_id, registry, from_block = settings.registry_target()
    separator = registry_domain_separator(chain_id, registry)
    target = Target(
        rpc_url or deployed.chain.rpc_url,
        chain_id,
        registry,
        from_block,
        2.0,
        30.0,
        max_fee_per_gas,
    )
    outbox = Outbox(
        tmp_path / "outbox.sqlite", attestor=account.address, domain_separator=separator
    )
    link = RegistryLink(target, settings, account, identity, site.facility_id, separator)
    metrics = Metrics()
    renewed: list[tuple[Kind, bytes]] = []
    publisher = Publisher(
        outbox, link, settings.publisher, metrics, lambda k, s: renewed.append((k, s))
    )
    return Wired(site, settings, account, identity, outbox, link, publisher, metrics, renewed)


FACILITY_KINDS = (Kind.POWER, Kind.GEOGRAPHY, Kind.NETWORK, Kind.PROVIDER, Kind.HEALTH)


def test_pending_proofs_go_out_in_one_batch_and_the_site_is_fresh(
    deployed: Deployed, tmp_path: Path
) -> None:
    w = wire(deployed, tmp_path)
    w.link.client()  # start-up work (certificates) first: it would age the 4 s heartbeat
    w.issue(*FACILITY_KINDS, Kind.POWER)
    assert w.publisher.step() == 0.0
    entries = w.outbox.entries()
    assert [(e.state, e.reason) for e in entries] == [(PUBLISHED, None)] * 6
    assert len({e.tx_hash for e in entries}) == 1  # one transaction
    assert deployed.registry.last_sequence(w.account.address) == 6
    assert not deployed.registry.facility_status(w.site.facility_id).stale
    assert w.publisher.step() is None  # nothing left
    assert w.metrics.value("attestor_proofs_published_total", kind="power") == 2
    # the evidence verifies against the certificates the link published
    ca = deployed.registry.find_certificate(w.identity.ca_fingerprint)
    dev = deployed.registry.find_certificate(bytes.fromhex(w.identity.cert_sha256))
    assert ca is not None and dev is not None
    doc = entries[0].proof.evidence
    assert parse_envelope(doc)["kind"] == "power"
    checks = verify_envelope(doc, w.identity.cert, w.identity.ca_cert, w.identity.ca_fingerprint)
    assert all(c.ok for c in checks)


def test_a_proof_the_chain_already_has_counts_as_done(deployed: Deployed, tmp_path: Path) -> None:
    w = wire(deployed, tmp_path)
    w.link.client()  # start-up work (certificates) first
    w.issue(Kind.POWER, Kind.NETWORK, Kind.HEALTH)
    relayer = Account.from_key(deployed.chain.dev_keys[5])
    relayed = deployed.registry.submit_attestations(
        [e.proof for e in w.outbox.pending()], sender=relayer
    )
    nonce = deployed.w3.eth.get_transaction_count(w.account.address)
    w.drain()
    assert [e.state for e in w.outbox.entries()] == [PUBLISHED] * 3
    assert {e.tx_hash for e in w.outbox.entries()} == {bytes(relayed.receipt["transactionHash"])}
    assert deployed.w3.eth.get_transaction_count(w.account.address) == nonce  # sent nothing


def test_a_proof_skipped_on_chain_is_rejected_and_renewed(
    deployed: Deployed, tmp_path: Path
) -> None:
    w = wire(deployed, tmp_path)
    w.issue(Kind.NETWORK, Kind.POWER, Kind.POWER)
    # someone relays only the later proofs: sequence 1 can never land now
    later = [e.proof for e in w.outbox.pending()[1:]]
    deployed.registry.submit_attestations(later, sender=deployed.owner)
    w.drain()
    states = [(e.sequence, e.state) for e in w.outbox.entries()]
    assert states == [(1, REJECTED), (2, PUBLISHED), (3, PUBLISHED)]
    assert w.renewed == [(Kind.NETWORK, w.site.facility_id)]


def test_expired_pending_proofs_are_renewed_not_sent(deployed: Deployed, tmp_path: Path) -> None:
    w = wire(deployed, tmp_path)
    w.issue(Kind.HEALTH, lifetime=4, clock=lambda: time.time() - 10)  # ran out while waiting
    w.issue(Kind.POWER, Kind.POWER, lifetime=4, clock=lambda: time.time() - 10)
    w.issue(Kind.POWER)  # a fresh one of the same kind: the expired power needs no renewal
    w.drain()
    assert [e.state for e in w.outbox.entries()] == [EXPIRED, EXPIRED, EXPIRED, PUBLISHED]
    assert w.renewed == [(Kind.HEALTH, w.site.facility_id)]
    assert deployed.registry.last_sequence(w.account.address) == 4


def test_a_proof_inside_the_expiry_margin_is_renewed_not_sent(
    deployed: Deployed, tmp_path: Path
) -> None:
    """Still valid, but too close to its end to land: sending it would waste a transaction on a
    proof the registry may refuse as expired when mined."""
    w = wire(deployed, tmp_path)
    margin = w.settings.publisher.expiry_margin
    assert 0 < margin < 600 // 4
    w.issue(Kind.POWER, lifetime=600, clock=lambda: time.time() - 600 + margin - 5)
    (entry,) = w.outbox.entries()
    assert entry.expires_at > time.time() + 1  # valid now ...
    w.drain()
    (entry,) = w.outbox.entries()
    assert (entry.state, entry.reason) == (EXPIRED, "would expire before landing")
    assert w.renewed == [(Kind.POWER, w.site.facility_id)]
    assert deployed.registry.last_sequence(w.account.address) == 0  # ... and never sent


def test_a_refused_proof_is_rejected_with_its_reason(deployed: Deployed, tmp_path: Path) -> None:
    w = wire(deployed, tmp_path)
    w.link.client()
    deployed.registry.deactivate_facility(w.site.facility_id)
    w.issue(Kind.POWER)
    w.drain()
    (entry,) = w.outbox.entries()
    assert (entry.state, entry.reason) == (REJECTED, "RegistryFacilityInactive")
    assert w.renewed == []
    assert w.metrics.value("attestor_proofs_failed_total", reason="RegistryFacilityInactive") == 1


def test_a_proof_from_the_future_is_renewed_with_backoff(
    deployed: Deployed, tmp_path: Path
) -> None:
    w = wire(deployed, tmp_path)
    w.issue(Kind.HEALTH, lifetime=100, clock=lambda: time.time() + 300)  # our clock runs fast
    delay = w.publisher.step()
    assert delay is not None and delay > 0
    (entry,) = w.outbox.entries()
    assert (entry.state, entry.reason) == (REJECTED, "RegistryAttestationFromFuture")
    assert w.renewed == [(Kind.HEALTH, w.site.facility_id)]


def test_an_unreachable_chain_backs_off_and_keeps_the_proofs(
    deployed: Deployed, tmp_path: Path
) -> None:
    w = wire(deployed, tmp_path, rpc_url="http://127.0.0.1:9")
    w.issue(Kind.POWER, Kind.HEALTH)
    delays = [w.publisher.step() for _ in range(4)]
    assert all(d is not None and d > 0 for d in delays)
    assert delays[-1] > delays[0]  # exponential, within jitter
    assert [e.state for e in w.outbox.entries()] == [PENDING, PENDING]
    assert w.metrics.value("attestor_chain_reachable") == 0


def test_a_chain_asking_more_than_the_fee_cap_delays_the_proofs_and_loses_none(
    deployed: Deployed, tmp_path: Path
) -> None:
    """With a fee cap of 1 wei (below any base fee) no batch is sent: the proofs stay pending
    and count no attempt, the step backs off, and the error is the fee cap (the chain answered:
    it is not reported unreachable). Under a cap the chain's price fits, the same proofs go
    out."""
    w = wire(deployed, tmp_path)
    client = w.link.client()  # start-up work (certificates) first, under no cap
    client.tx.max_fee_per_gas = 1
    w.issue(Kind.POWER, Kind.HEALTH)
    delays = [w.publisher.step() for _ in range(2)]
    assert all(d is not None and d > 0 for d in delays)
    assert [(e.state, e.attempts) for e in w.outbox.entries()] == [(PENDING, 0), (PENDING, 0)]
    assert w.metrics.value("attestor_publish_errors_total", error="FeeCapError") == 2
    assert w.metrics.value("attestor_publish_batches_total") == 0
    assert w.metrics.value("attestor_chain_reachable") == 1
    assert deployed.registry.last_sequence(w.account.address) == 0
    price = int(deployed.registry.w3.eth.get_block("latest")["baseFeePerGas"])
    client.tx.max_fee_per_gas = 3 * price + 10**9
    assert w.publisher.step() == 0.0
    assert [e.state for e in w.outbox.entries()] == [PUBLISHED, PUBLISHED]
    assert deployed.registry.last_sequence(w.account.address) == 2


def test_an_attestor_started_while_the_chain_asks_more_than_the_fee_cap_starts_offline(
    deployed: Deployed, tmp_path: Path
) -> None:
    """Its start-up work (publishing its certificates) would cost more than the cap: it starts
    offline, as with an unreachable chain, instead of exiting."""
    w = wire(deployed, tmp_path, max_fee_per_gas=1)
    stopping = threading.Event()
    assert Daemon.connect(SimpleNamespace(link=w.link, _stop=stopping), 0.0) is False  # type: ignore[arg-type]


def test_start_up_checks_refuse_a_chain_that_disagrees(deployed: Deployed, tmp_path: Path) -> None:
    unregistered = wire(deployed, tmp_path / "a", registered=False)
    with pytest.raises(RegistrationError, match="is not registered"):
        unregistered.link.client()
    # registered to another key
    deployed.registry.register_facility(unregistered.site.facility_id, deployed.owner.address)
    with pytest.raises(RegistrationError, match="not to this key"):
        unregistered.link.client()


def test_start_up_checks_refuse_another_ca_and_a_too_slow_heartbeat(
    deployed: Deployed, tmp_path: Path
) -> None:
    w = wire(deployed, tmp_path)
    deployed.registry.set_ca_fingerprint(w.site.facility_id, b"\x01" * 32)
    with pytest.raises(RegistrationError, match="pins CA fingerprint 0x0101"):
        w.link.client()
    deployed.registry.set_ca_fingerprint(w.site.facility_id, w.identity.ca_fingerprint)
    lifetimes = list(DEFAULT_POLICY.max_lifetime)
    lifetimes[Kind.HEALTH] = 3  # heartbeats every 2 s live 4 s
    policy = FreshnessPolicy(tuple(lifetimes), 60, DEFAULT_POLICY.required_kinds)  # type: ignore[arg-type]
    deployed.registry.set_freshness_policy(policy)
    with pytest.raises(RegistrationError, match="use 1 or less"):
        w.link.client()


def test_a_file_key_attestor_refuses_a_tpm_bound_facility_or_a_tpm_policy(
    deployed: Deployed, tmp_path: Path
) -> None:
    w = wire(deployed, tmp_path)
    ak = hashlib.sha256(b"the AK certificate of the machine that was here").digest()
    deployed.registry.set_tpm_identity(w.site.facility_id, ak)
    with pytest.raises(RegistrationError, match=f"bound to TPM AK certificate 0x{ak.hex()}"):
        w.link.client()
    deployed.registry.set_tpm_identity(w.site.facility_id, bytes(32))  # the owner unbinds
    policy = replace(DEFAULT_POLICY, require_tpm=frozenset({Kind.HARDWARE, Kind.POWER}))
    deployed.registry.set_freshness_policy(policy)
    with pytest.raises(RegistrationError, match="accepts hardware, power proofs only from a TPM"):
        w.link.client()
    deployed.registry.set_freshness_policy(DEFAULT_POLICY)
    w.link.client()  # and with neither it starts


def test_certificates_are_published_once(deployed: Deployed, tmp_path: Path) -> None:
    w = wire(deployed, tmp_path)
    w.link.client()
    again = RegistryLink(
        w.link.target,
        w.settings,
        w.account,
        w.identity,
        w.site.facility_id,
        w.link.domain_separator,
    )
    again.client()  # a restarted daemon finds them on-chain
    published = deployed.registry.published_certificates(facility_id=w.site.facility_id)
    assert len(published) == 2
