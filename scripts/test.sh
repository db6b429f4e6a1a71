#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then lint, types, artifact
# freshness and pytest (real anvil, real ganache, real solc-js). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
echo "== lint and types"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
echo "== compiled artifacts match sources"
.venv/bin/redundancy-build --check
echo "== tests"
exec .venv/bin/python -m pytest "$@"
