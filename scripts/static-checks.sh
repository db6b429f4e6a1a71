#!/usr/bin/env bash
# Opt-in static checks (not part of scripts/test.sh or .ci/run: they need the package
# registries' network, PyPI's advisory data and the npm registry's audit endpoint):
#   1. Slither over contracts/, compiled by the pinned solc-js through contracts/solc-shim.cjs
#      with the build's settings; fails on a high/medium finding not accepted, with its reason,
#      in slither-triage.json (scripts/slither_check.py).
#   2. pip-audit of the Python packages installed in the project's .venv (pinned as installed).
#   3. npm audit of the production npm dependencies (package-lock.json).
# Slither and pip-audit live in their own virtualenv, .venv-static (slither-analyzer brings its
# own web3 and would fight the project's). Run scripts/bootstrap.sh first.
# Exit status: non-zero if any check fails; each check runs even if an earlier one failed.
set -uo pipefail
cd "$(dirname "$0")/.."
SLITHER_VERSION=0.11.6
PIP_AUDIT_VERSION=2.10.1
status=0

if [ ! -x .venv-static/bin/slither ] || [ ! -x .venv-static/bin/pip-audit ]; then
  echo "== making .venv-static (slither-analyzer $SLITHER_VERSION, pip-audit $PIP_AUDIT_VERSION)"
  python3 -m venv .venv-static
  .venv-static/bin/pip install -q "slither-analyzer==$SLITHER_VERSION" "pip-audit==$PIP_AUDIT_VERSION"
fi

echo "== slither (contracts/, pinned solc-js)"
.venv-static/bin/python scripts/slither_check.py || status=1

echo "== pip-audit (the project's .venv)"
frozen=$(mktemp)
trap 'rm -f "$frozen"' EXIT
.venv/bin/pip freeze --exclude-editable --all | grep -v '^pip==' >"$frozen"
.venv-static/bin/pip-audit --strict --progress-spinner off --disable-pip --no-deps -r "$frozen" || status=1

echo "== npm audit (production dependencies)"
npm audit --omit=dev || status=1

exit $status
