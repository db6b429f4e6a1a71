"""The ``attestor`` command: ``init`` and ``keygen`` set up a site's keys, ``run`` starts the
daemon. Loads settings (``--config FILE``, ``ATTESTOR_*``, a flag per field), wires the daemon's
parts (``build_daemon``), starts; every failure is one line per problem on stderr and a non-zero
exit: 2 settings (or a probe that can never work), 3 keys, 4 registration (the chain does not
know this attestor as configured), 1 anything else.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount
from pydantic_settings import CliSettingsSource

from attestor.daemon import Daemon
from attestor.errors import (
    AttestorError,
    DeviceIdentityError,
    LatencyError,
    ProbeError,
    RegistrationError,
)
from attestor.issuer import Issuer
from attestor.jobs import ProbeSpec, plan_jobs
from attestor.keys import (
    PASSWORD_ENV,
    DeviceIdentity,
    init_site,
    keygen,
    load_device_identity,
    passphrase,
)
from attestor.latency import (
    AnchorCache,
    KnownAttestors,
    LatencyBook,
    LatencyResponder,
    Measurement,
    MeasurementSigner,
    allowed_sources,
    measure_peer,
)
from attestor.metrics import Metrics
from attestor.outbox import PUBLISHED, Outbox
from attestor.probes.geography import GeographyProbe
from attestor.probes.hardware import HardwareProbe
from attestor.probes.health import DaemonStatus, HealthProbe
from attestor.probes.network import NetworkProbe, ProviderProbe
from attestor.probes.power import PowerProbe, read_ups
from attestor.publisher import Publisher
from attestor.registry_link import RegistryLink, Target
from attestor.schedule import Schedule
from attestor.settings import PeerSettings, Settings, load_settings
from attestor.status import StatusServer
from attestor.tpm import TpmIdentity, load_tpm_identity
from redundancy.chain import gwei
from redundancy.domains import facility_id
from redundancy.eip712 import Signer
from redundancy.errors import ConfigError, KeystoreError, RedundancyError
from redundancy.jsonlog import configure
from redundancy.keystore import load_account, read_passphrase
from redundancy.proofs import registry_domain_separator
from redundancy.settings import add_settings_arguments

EXIT_OTHER, EXIT_CONFIG, EXIT_KEYS, EXIT_REGISTRATION = 1, 2, 3, 4


def _fail(message: str, code: int) -> int:
    for line in message.splitlines():
        print(f"attestor: error: {line}", file=sys.stderr)
    return code


#: Libraries whose records pass only at warning and worse (their debug output is not the site's).
QUIET_LOGGERS = ("web3", "urllib3")


def run(args: argparse.Namespace, cli: CliSettingsSource[Any]) -> int:
    config: Path | None = args.config
    if getattr(args, "keystore_password", None) is not None:  # hidden, but argparse takes it
        return _fail(
            "--keystore-password: a command line is readable by every user; give the "
            f"passphrase in keys.password_file or ${PASSWORD_ENV}",
            EXIT_CONFIG,
        )
    try:
        settings = load_settings(config, cli=cli, args=args)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    configure(settings.log.level, settings.log.format, quiet=QUIET_LOGGERS)
    try:
        return _run(settings)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except ProbeError as exc:
        return _fail(f"{config}: {exc}" if config is not None else str(exc), EXIT_CONFIG)
    except (KeystoreError, DeviceIdentityError) as exc:
        return _fail(str(exc), EXIT_KEYS)
    except RegistrationError as exc:
        return _fail(str(exc), EXIT_REGISTRATION)
    except (RedundancyError, OSError) as exc:
        return _fail(str(exc), EXIT_OTHER)


def _run(settings: Settings) -> int:
    keys = settings.keys
    env_secret = settings.keystore_password
    secret = passphrase(keys.password_file, env_secret.get_secret_value() if env_secret else None)
    account = load_account(settings.path(keys.keystore), secret)
    identity = load_device_identity(
        settings.path(keys.device_key),
        settings.path(keys.device_cert),
        settings.path(keys.ca_cert),
        secret,
    )
    del secret
    chain_id, registry, from_block = settings.registry_target()
    separator = registry_domain_separator(chain_id, registry)
    target = Target(
        settings.chain.rpc_url,
        chain_id,
        registry,
        from_block,
        settings.chain.timeout,
        settings.chain.receipt_timeout,
        gwei(settings.chain.max_fee_gwei),
    )
    outbox = Outbox(
        settings.data_dir / "outbox.sqlite",
        attestor=account.address,
        domain_separator=separator,
        synchronous=settings.outbox.synchronous,
    )
    try:
        daemon = build_daemon(settings, account, identity, target, outbox, separator)
    except OSError as exc:
        raise AttestorError(f"cannot listen: {exc.strerror or exc}") from None

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        daemon.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    daemon.preflight()
    daemon.serve()
    daemon.connect(settings.chain.startup_wait)
    code = daemon.run()
    if daemon.fatal is not None:
        return _fail(str(daemon.fatal), EXIT_REGISTRATION)
    return code


_T = TypeVar("_T")


def _bound(setting: str, address: object, make: Callable[[], _T]) -> _T:
    """``make()``, whose socket binds ``address``; an OSError names the setting and address."""
    try:
        return make()
    except OSError as exc:
        raise OSError(exc.errno, f"{setting} {address}: {exc.strerror or exc}") from None


def build_daemon(
    settings: Settings,
    account: LocalAccount,
    identity: DeviceIdentity,
    target: Target,
    outbox: Outbox,
    separator: bytes,
    clock: Callable[[], float] = time.time,
) -> Daemon:
    """Wire one site's daemon: metrics, registry link, probes and their schedule, issuer,
    publisher, latency responder and status server (both bound here: OSError if taken)."""
    s, lat = settings, settings.latency
    fid = facility_id(s.facility)
    metrics = Metrics()
    link = RegistryLink(target, s, account, identity, fid, separator)
    started = time.monotonic()

    def status() -> DaemonStatus:
        return DaemonStatus(
            chain_head=link.chain_head(),
            last_published_sequence=outbox.last_sequence(PUBLISHED),
            outbox_depth=outbox.depth(),
            uptime_seconds=int(time.monotonic() - started),
        )

    # both ends of every exchange sign what they measured, binding a recent block
    attestor_key = Signer(bytes(account.key))
    anchor = AnchorCache(link.anchor)
    signer = MeasurementSigner(s.facility, anchor, lambda m: attestor_key.sign(separator, m), clock)
    book = LatencyBook()

    def measure(peer: PeerSettings) -> Measurement:
        delay = lat.emulated_delay_us.get(peer.facility, 0)
        pinned = link.ca_fingerprint_of(facility_id(peer.facility))
        if pinned is None:  # answers could not be told from an impostor's
            raise LatencyError(f"{peer.facility}: its pinned CA is unknown (chain unreachable?)")
        m = measure_peer(
            peer,
            s.facility,
            lat.samples,
            lat.timeout,
            emulated_delay_us=delay,
            signer=signer,
            pinned_ca=pinned,
        )
        metrics.peer_rtt.labels(peer=peer.facility).set(m.rtt_micros)
        if m.signed is not None:
            book.put(m.signed)
        return m

    geography = GeographyProbe(s.geography, list(lat.peers), measure)
    ups_name = s.power.ups_name
    ups = None if ups_name is None else partial(read_ups, s.power.upsc, ups_name)
    probes: list[ProbeSpec] = [
        ("health", HealthProbe(s.data_dir, status, ups=ups), s.health.heartbeat_interval),
        ("power", PowerProbe(s.power), s.power.interval),
        ("network", NetworkProbe(s.network), s.network.interval),
        ("provider", ProviderProbe(s.provider), s.provider.interval),
    ]
    probes += [
        (f"hardware[{i}]", HardwareProbe(node, i, s.hardware.root), s.hardware.interval)
        for i, node in enumerate(s.hardware.nodes)
    ]
    probes.append(("geography", geography, s.geography.interval))
    schedule = Schedule(plan_jobs(probes, s, outbox, fid, clock()))
    tpm = _tpm_identity(s, link) if s.identity.backend == "tpm" else None
    if tpm is not None:
        link.extra_certificates = tpm.certificates_der
        link.tpm_ak_certificate = tpm.ak_certificate_sha256
    issuer = Issuer(s.facility, fid, identity, attestor_key, separator, outbox, clock, tpm=tpm)
    publisher = Publisher(
        outbox,
        link,
        s.publisher,
        metrics,
        schedule.request,
        clock,
        in_flight_timeout=target.receipt_timeout,
    )
    responder = _bound(
        "latency.listen",
        lat.listen,
        lambda: LatencyResponder(
            lat.listen,
            s.facility,
            identity,
            lat.emulated_delay_us,
            allowed_sources(lat.allow, list(lat.peers)),
            signer=signer,
            book=book,
            peers=[peer.facility for peer in lat.peers],
            check=KnownAttestors(separator, link.attestor_of),
        ),
    )
    status_server = _bound(
        "http.listen",
        s.http.listen,
        lambda: StatusServer(
            s.http.listen, metrics.registry, lambda: [x.to_json() for x in book.snapshot()]
        ),
    )
    metrics.read_outbox_depth(outbox.depth)
    metrics.device_cert_not_after.set(identity.cert.not_valid_after_utc.timestamp())
    metrics.last_signed_sequence.set(outbox.last_sequence())
    metrics.last_published_sequence.set(outbox.last_sequence(PUBLISHED))
    return Daemon(
        s,
        identity=identity,
        outbox=outbox,
        schedule=schedule,
        geography=geography,
        issuer=issuer,
        link=link,
        publisher=publisher,
        responder=responder,
        status=status_server,
        metrics=metrics,
        clock=clock,
        anchor=anchor,
    )


def _tpm_identity(s: Settings, link: RegistryLink) -> TpmIdentity:
    """The TPM backend: certificates from ``keys.dir``, nonces from the chain's recent blocks."""

    def nonce() -> tuple[int, bytes]:
        found = link.anchor()
        if found is None:
            raise DeviceIdentityError("no recent block for the TPM quote's nonce: chain silent")
        return found

    ident = s.identity
    assert ident.tcti is not None  # the settings refuse tpm without one
    return load_tpm_identity(
        ident.tcti,
        ident.ak_handle,
        s.path(ident.ak_cert),
        s.path(ident.ek_cert),
        s.path(ident.ca_chain),
        nonce,
    )


def _secret(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        return passphrase(args.password_file, None)
    return read_passphrase(None, PASSWORD_ENV)


def cmd_keygen(args: argparse.Namespace) -> int:
    made = keygen(args.dir, _secret(args), args.kdf_iterations)
    print(f"attestor address   {made.address}")
    print(f"device public key  {made.device_public_key}")
    print(f"wrote {args.dir}/attestor-key.json and {args.dir}/device-key.pem (mode 0600)")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    site = init_site(
        args.facility,
        args.dir,
        _secret(args),
        ca_cert_path=args.ca_cert,
        ca_key_path=args.ca_key,
        kdf_iterations=args.kdf_iterations,
    )
    fid = "0x" + facility_id(site.facility).hex()
    if args.json:
        print(
            json.dumps(
                {
                    "facility": site.facility,
                    "facilityId": fid,
                    "attestor": site.address,
                    "caFingerprint": "0x" + site.ca_fingerprint,
                    "deviceCert": site.device_cert_sha256,
                    "dir": str(site.directory),
                }
            )
        )
        return 0
    print(f"facility        {site.facility} (id {fid})")
    print(f"attestor        {site.address}")
    print(f"CA fingerprint  0x{site.ca_fingerprint}")
    print(f"device cert     sha256 {site.device_cert_sha256}")
    print(
        "\nnext: the registry owner calls registerFacility(facilityId, attestor, caFingerprint)"
        "\nwith the values above; fund the attestor address; then `attestor run --config ...`."
    )
    return 0


def parser() -> tuple[argparse.ArgumentParser, CliSettingsSource[Any]]:
    """The command line, and the settings source of ``run``'s generated flags."""
    top = argparse.ArgumentParser(prog="attestor", description="Per-site attestor daemon.")
    sub = top.add_subparsers(dest="command", required=True)

    run_p = sub.add_parser(
        "run",
        help="run the daemon for one site",
        description="Run the daemon for one site: settings from --config FILE (TOML), then "
        "ATTESTOR_* environment variables, then these flags, each overriding the one before. "
        "Relative paths are relative to the file.",
    )
    cli = add_settings_arguments(run_p, Settings)

    for name, help_text in (
        ("keygen", "create the attestor's Ethereum keystore and device key"),
        ("init", "set up a new site: keys, facility CA (unless given), device certificate"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--dir", type=Path, required=True, help="where the key files go")
        p.add_argument("--password-file", type=Path, help=f"passphrase file (else ${PASSWORD_ENV})")
        p.add_argument(
            "--kdf-iterations",
            type=int,
            help="scrypt cost (a power of two) for throwaway development keys only",
        )
        if name == "init":
            p.add_argument("--facility", required=True, help="the facility's name, e.g. fra1")
            p.add_argument("--ca-cert", type=Path, help="the operator's CA certificate (PEM)")
            p.add_argument("--ca-key", type=Path, help="the operator's CA key (encrypted PEM)")
            p.add_argument("--json", action="store_true", help="print the result as JSON")
    return top, cli


def main(argv: list[str] | None = None) -> int:
    top, cli = parser()
    args = top.parse_args(argv)
    if args.command == "run":
        return run(args, cli)
    try:
        return cmd_init(args) if args.command == "init" else cmd_keygen(args)
    except (KeystoreError, DeviceIdentityError) as exc:
        return _fail(str(exc), EXIT_KEYS)
    except (RedundancyError, OSError) as exc:
        return _fail(str(exc), EXIT_OTHER)


if __name__ == "__main__":
    sys.exit(main())
