"""``redundancy-api``: serve the REST API and dashboard for one deployment under uvicorn.

    redundancy-api [--config api.toml] [--deployment deployment.json] [--rpc-url URL]
                   [--host 127.0.0.1] [--port 8000] [--workers 1] [--block-poll-ms 250]
                   [--cors-origins ORIGIN ...] [--log-level info] [--log-format json|text]

Settings (``api.settings.Settings``; ``--help`` lists a flag for each) come from their defaults, the
TOML file, ``API_*`` environment variables (``API_RPC_URL``) and the flags, each overriding the
one before; ``deployment`` must be given by one of them. Logs are JSON lines on stderr (uvicorn's
too). Exit codes: 0 stopped; 2 bad settings (one line per bad field) or a bad deployment file. An
unreachable chain is not fatal: the API answers 503 until the chain is back.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import uvicorn
from fastapi import FastAPI

from api.app import SETTINGS_ENV, create_app
from api.settings import Settings
from redundancy.deployment import Deployment
from redundancy.errors import ConfigError, DeploymentFileError
from redundancy.jsonlog import configure
from redundancy.settings import add_settings_arguments, load_settings

EXIT_CONFIG = 2


def _loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def read_settings(argv: Sequence[str] | None = None) -> Settings:
    """The settings the command line gives (with the file it names and the environment); raises
    ConfigError, one line per bad field."""
    parser = argparse.ArgumentParser(prog="redundancy-api", description=__doc__.splitlines()[0])
    cli = add_settings_arguments(parser, Settings)
    args = parser.parse_args(argv)
    return load_settings(Settings, args.config, cli=cli, args=args)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = read_settings(argv)
        Deployment.read(settings.deployment)
    except ConfigError as exc:
        return _fail(*str(exc).splitlines())
    except DeploymentFileError as exc:
        return _fail(str(exc))
    configure(settings.log_level, settings.log_format)
    app: FastAPI | str
    if settings.workers == 1:
        app = create_app(settings)
    else:  # uvicorn imports the factory in each worker process, which reads the settings back
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        app = "api.app:app_from_env"
    print(
        f"redundancy-api: serving {settings.deployment} from {settings.rpc_url}\n"
        f"  API        http://{settings.host}:{settings.port}/docs\n"
        f"  dashboard  http://{settings.host}:{settings.port}/",
        flush=True,
    )
    uvicorn.run(
        app,
        factory=isinstance(app, str),
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop=_loop(),
        http="httptools",
        log_config=None,  # uvicorn's loggers propagate to the root logger's JSON handler
        log_level=settings.log_level,
        access_log=settings.access_log,
        timeout_graceful_shutdown=5,
    )
    return 0


def _fail(*lines: str) -> int:
    for line in lines:
        print(f"redundancy-api: error: {line}", file=sys.stderr)
    return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
