#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then lint, types, artifact
# freshness and pytest (real anvil, real ganache, real solc-js). Extra arguments go to pytest.
# Static checks: ruff, mypy and solhint run here; Slither, pip-audit and npm audit are opt-in
# (scripts/static-checks.sh): see SECURITY.md for their times and why.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
echo "== lint and types"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
echo "== solhint (contracts/*.sol, no warnings)"
./scripts/solhint.sh
echo "== compiled artifacts match sources"
.venv/bin/redundancy-build --check
echo "== tests"
exec .venv/bin/python -m pytest "$@"
