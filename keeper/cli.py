"""``redundancy-keeper --config keeper.toml``: watch the selector and re-select its committee.

    redundancy-keeper [--config keeper.toml] [--rpc-url URL] [--selector ADDR] [--keystore FILE]
                      [--password-file FILE] [--delay-blocks N] [--max-gas N] ...

Settings (``keeper.settings.Settings``; ``--help`` lists a flag for each) come from the TOML
file, ``KEEPER_*`` environment variables and the flags, each overriding the one before. Logs are
JSON lines on stderr. Every bad start is one line on stderr and a non-zero exit, before the loop:
2 bad settings (one line per bad field), 3 keys, 4 chain (unreachable RPC, no selector at the
address), 5 an account that cannot pay for one selection. Once running, an RPC outage only
delays the keeper. SIGTERM or SIGINT stops it (exit 0).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from eth_account import Account
from eth_account.signers.local import LocalAccount

from keeper.errors import NotASelectorError, UnfundedKeeperError
from keeper.settings import PASSWORD_ENV, Settings
from keeper.watcher import GasBound, Keeper
from redundancy.chain import connect, gwei
from redundancy.errors import (
    ChainError,
    ConfigError,
    ContractRevertError,
    KeystoreError,
    RedundancyError,
)
from redundancy.jsonlog import configure, log_event
from redundancy.keystore import load_account, read_passphrase
from redundancy.selector import SelectorClient
from redundancy.settings import add_settings_arguments, load_settings

EXIT_OTHER, EXIT_CONFIG, EXIT_KEYS, EXIT_CHAIN, EXIT_FUNDS = 1, 2, 3, 4, 5
QUIET_LOGGERS = ("web3", "urllib3")


def _fail(message: str, code: int) -> int:
    for line in message.splitlines():
        print(f"redundancy-keeper: error: {line}", file=sys.stderr)
    return code


def read_settings(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(prog="redundancy-keeper", description=__doc__.splitlines()[0])
    cli = add_settings_arguments(parser, Settings)
    args = parser.parse_args(argv)
    return load_settings(Settings, args.config, cli=cli, args=args)


def load_key(settings: Settings) -> LocalAccount:
    """The keeper's account: from its keystore, or the dev key."""
    if settings.keystore is not None:
        return load_account(
            settings.keystore, read_passphrase(settings.password_file, PASSWORD_ENV)
        )
    try:
        account: LocalAccount = Account.from_key(settings.dev_key)
    except (ValueError, TypeError):
        raise KeystoreError("dev_key is not a valid private key") from None
    return account


def build_keeper(settings: Settings, account: LocalAccount) -> Keeper:
    """Connect, check the selector and the account's funds, and wire the keeper; raises
    ChainError (unreachable), NotASelectorError or UnfundedKeeperError."""
    w3 = connect(settings.rpc_url, settings.rpc_timeout)
    selector = SelectorClient(w3, settings.selector, account)
    selector.tx.receipt_timeout = settings.receipt_timeout
    selector.tx.max_fee_per_gas = gwei(settings.max_fee_gwei)
    if not w3.eth.get_code(selector.address):
        raise NotASelectorError(selector.address, "no contract code")
    try:
        selector.current_committee()
        selector.geography_policy()
    except (ContractRevertError, ValueError) as exc:  # web3 raises BadFunctionCallOutput
        raise NotASelectorError(selector.address, type(exc).__name__) from None
    needed = settings.max_gas * int(w3.eth.gas_price)
    balance = int(w3.eth.get_balance(account.address))
    if balance < needed:
        raise UnfundedKeeperError(account.address, balance, needed)
    return Keeper(
        w3,
        selector,
        account,
        GasBound(settings.max_gas, settings.gas_margin),
        poll_interval=settings.poll_interval,
        retry_interval=settings.retry_interval,
        delay_blocks=settings.delay_blocks,
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = read_settings(argv)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    try:
        account = load_key(settings)
    except KeystoreError as exc:
        return _fail(str(exc), EXIT_KEYS)
    try:
        keeper = build_keeper(settings, account)
    except UnfundedKeeperError as exc:
        return _fail(str(exc), EXIT_FUNDS)
    except (ChainError, NotASelectorError) as exc:
        return _fail(str(exc), EXIT_CHAIN)
    except (RedundancyError, OSError) as exc:
        return _fail(str(exc), EXIT_OTHER)
    configure(settings.log_level, settings.log_format, quiet=QUIET_LOGGERS)

    def stop(signum: int, frame: FrameType | None) -> None:
        keeper.stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log_event(
        keeper_log(),
        "keeper.started",
        account=account.address,
        selector=keeper.selector.address,
        max_gas=settings.max_gas,
        delay_blocks=settings.delay_blocks,
    )
    keeper.run()
    log_event(keeper_log(), "keeper.stopped", selections=keeper.selections)
    return 0


def keeper_log() -> logging.Logger:
    return logging.getLogger("keeper")
