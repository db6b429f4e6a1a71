"""``redundancy-api``: serve the REST API and dashboard for one deployment under uvicorn.

    redundancy-api --deployment deployment.json --rpc-url URL [--host 127.0.0.1] [--port 8000]
                   [--workers 1] [--block-poll-ms 250] [--cors-origin ORIGIN ...]

Every flag may also be given as an ``API_*`` environment variable (``API_RPC_URL``). Exit codes:
0 stopped; 2 bad arguments or deployment file. An unreachable chain is not fatal: the API answers
503 until the chain is back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from api.settings import Settings
from redundancy.deployment import Deployment
from redundancy.errors import DeploymentFileError

EXIT_CONFIG = 2


def _loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="redundancy-api", description=__doc__.splitlines()[0])
    parser.add_argument("--deployment", type=Path, help="deployment.json (API_DEPLOYMENT)")
    parser.add_argument("--rpc-url", help="JSON-RPC endpoint (API_RPC_URL)")
    parser.add_argument("--host", help="bind address, loopback by default (API_HOST)")
    parser.add_argument("--port", type=int, help="TCP port, default 8000 (API_PORT)")
    parser.add_argument("--workers", type=int, help="uvicorn worker processes (API_WORKERS)")
    parser.add_argument("--block-poll-ms", type=int, help="latest-block poll interval")
    parser.add_argument(
        "--cors-origin", action="append", help="allow this origin (repeat); CORS is off without"
    )
    parser.add_argument("--access-log", action="store_true", default=None, help="log requests")
    args = parser.parse_args(argv)
    given = {
        "deployment": args.deployment,
        "rpc_url": args.rpc_url,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "block_poll_ms": args.block_poll_ms,
        "cors_origins": args.cors_origin,
        "access_log": args.access_log,
    }
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
        Deployment.read(settings.deployment)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors())
        return _fail(f"bad settings: {fields}")
    except DeploymentFileError as exc:
        return _fail(str(exc))
    # Workers build the app from the environment (uvicorn imports the factory in each process).
    for name, value in settings.model_dump(mode="json").items():
        os.environ[f"API_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    print(
        f"redundancy-api: serving {settings.deployment} from {settings.rpc_url}\n"
        f"  API        http://{settings.host}:{settings.port}/docs\n"
        f"  dashboard  http://{settings.host}:{settings.port}/",
        flush=True,
    )
    uvicorn.run(
        "api.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop=_loop(),
        http="httptools",
        access_log=settings.access_log,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )
    return 0


def _fail(message: str) -> int:
    print(f"redundancy-api: error: {message}", file=sys.stderr)
    return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
