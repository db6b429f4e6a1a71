"""The ``attestor`` command: ``init`` and ``keygen`` set up a site's keys, ``run`` starts the
daemon. Loads settings, wires objects, starts; every failure is one line per problem on stderr
and a non-zero exit: 2 settings (or a probe that can never work), 3 keys, 4 registration (the
chain does not know this attestor as configured), 1 anything else.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import signal
import sys
from pathlib import Path
from types import FrameType

from attestor.daemon import Daemon
from attestor.errors import (
    AttestorError,
    DeviceIdentityError,
    ProbeError,
    RegistrationError,
)
from attestor.keys import PASSWORD_ENV, init_site, keygen, load_device_identity, passphrase
from attestor.outbox import Outbox
from attestor.registry_link import Target
from attestor.settings import Settings, load_settings
from redundancy.domains import facility_id
from redundancy.errors import ConfigError, KeystoreError, RedundancyError
from redundancy.jsonlog import configure
from redundancy.keystore import load_account, read_passphrase
from redundancy.proofs import registry_domain_separator

EXIT_OTHER, EXIT_CONFIG, EXIT_KEYS, EXIT_REGISTRATION = 1, 2, 3, 4


def _fail(message: str, code: int) -> int:
    for line in message.splitlines():
        print(f"attestor: error: {line}", file=sys.stderr)
    return code


def run(config: Path) -> int:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    configure(settings.log.level, settings.log.format)
    try:
        return _run(settings)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except ProbeError as exc:
        return _fail(f"{config}: {exc}", EXIT_CONFIG)
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
    )
    outbox = Outbox(
        settings.data_dir / "outbox.sqlite",
        attestor=account.address,
        domain_separator=separator,
        synchronous=settings.outbox.synchronous,
    )
    try:
        daemon = Daemon(settings, account, identity, target, outbox, separator)
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


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="attestor", description="Per-site attestor daemon.")
    sub = top.add_subparsers(dest="command", required=True)

    run_p = sub.add_parser("run", help="run the daemon for one site")
    run_p.add_argument("--config", type=Path, required=True, help="the site's TOML settings")

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
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "run":
        return run(args.config)
    try:
        return cmd_init(args) if args.command == "init" else cmd_keygen(args)
    except (KeystoreError, DeviceIdentityError) as exc:
        return _fail(str(exc), EXIT_KEYS)
    except (RedundancyError, OSError) as exc:
        return _fail(str(exc), EXIT_OTHER)


if __name__ == "__main__":
    sys.exit(main())
