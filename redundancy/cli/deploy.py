"""Deploy the RedundancyRegistry to any JSON-RPC chain and write ``deployment.json``.

    redundancy-deploy --rpc-url http://127.0.0.1:8545 --keystore deployer.json \\
        --password-file pass.txt --out deployment.json

``--dev-account N`` signs with a local chain's public development key N instead (only on the
local chain ids 31337 and 1337). Every failure is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from redundancy.chain import connect
from redundancy.deployment import deploy
from redundancy.devkeys import ChainKind, dev_keys
from redundancy.errors import (
    ArtifactError,
    ChainError,
    ChainUnreachableError,
    InsufficientFundsError,
    KeystoreError,
    RedundancyError,
)
from redundancy.keystore import load_account, read_passphrase

PASSWORD_ENV = "REDUNDANCY_KEYSTORE_PASSWORD"
LOCAL_CHAINS: dict[int, ChainKind] = {31337: "anvil", 1337: "ganache"}

#: Why a local chain's public development account may hold nothing, and what to do.
DEV_ACCOUNT_HINT: dict[ChainKind, str] = {
    "ganache": "ganache makes random accounts unless started with --wallet.deterministic (-d); "
    "restart it with -d, or deploy with --keystore",
    "anvil": "anvil was started with other accounts (--mnemonic, --accounts 0?); restart it with "
    "its defaults, or deploy with --keystore",
}

EXIT_UNREACHABLE = 2
EXIT_FUNDS = 3
EXIT_KEYSTORE = 4
EXIT_OTHER = 1


def _deployer(args: argparse.Namespace, w3: Web3) -> LocalAccount:
    if args.dev_account is not None:
        chain_id = int(w3.eth.chain_id)
        kind = LOCAL_CHAINS.get(chain_id)
        if kind is None:
            raise KeystoreError(
                f"--dev-account is for local chains only (chain id {chain_id} is not "
                f"31337 or 1337); use --keystore"
            )
        account: LocalAccount = Account.from_key(dev_keys(kind)[args.dev_account])
        if int(w3.eth.get_balance(account.address)) == 0:
            raise KeystoreError(
                f"development account {args.dev_account} ({account.address}) has 0 wei on this "
                f"{kind} chain: {DEV_ACCOUNT_HINT[kind]}"
            )
        return account
    if args.keystore is None:
        raise KeystoreError("give --keystore (or --dev-account on a local chain)")
    return load_account(args.keystore, read_passphrase(args.password_file, PASSWORD_ENV))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="redundancy-deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--rpc-url", required=True, help="JSON-RPC endpoint of the chain")
    parser.add_argument("--out", type=Path, default=Path("deployment.json"), help="where to write")
    parser.add_argument("--keystore", type=Path, help="encrypted keystore of the deploying account")
    parser.add_argument(
        "--password-file", type=Path, help=f"keystore passphrase file (else ${PASSWORD_ENV})"
    )
    parser.add_argument(
        "--dev-account",
        type=int,
        choices=range(10),
        metavar="N",
        help="use a local dev chain's public account N instead of a keystore",
    )
    args = parser.parse_args(argv)
    try:
        w3 = connect(args.rpc_url)
        deployer = _deployer(args, w3)
        deployment = deploy(w3, deployer)
        deployment.write(args.out)
    except ChainUnreachableError as exc:
        return _fail(str(exc), EXIT_UNREACHABLE)
    except InsufficientFundsError as exc:
        return _fail(f"cannot deploy: {exc}", EXIT_FUNDS)
    except KeystoreError as exc:
        return _fail(str(exc), EXIT_KEYSTORE)
    except (ArtifactError, ChainError, RedundancyError, OSError) as exc:
        return _fail(str(exc), EXIT_OTHER)
    print(
        f"RedundancyRegistry deployed at {deployment.registry} on chain {deployment.chain_id} "
        f"(block {deployment.deploy_block}); wrote {args.out}"
    )
    return 0


def _fail(message: str, code: int) -> int:
    print(f"redundancy-deploy: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
