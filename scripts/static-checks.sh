#!/usr/bin/env bash
# Static checks, the opt-in set (scripts/test.sh runs ruff, mypy and solhint; these are not in it
# or .ci/run: Slither takes minutes, and the two audits need advisory services this workplace's
# registries do not serve; SECURITY.md has the figures):
#   0. solhint over contracts/*.sol (scripts/solhint.sh, also in scripts/test.sh).
#   1. Slither over contracts/, compiled by the pinned solc-js through contracts/solc-shim.cjs
#      with the build's settings; fails on a high/medium finding not accepted, with its reason,
#      in slither-triage.json (scripts/slither_check.py).
#   2. pip-audit of the Python packages installed in the project's .venv (pinned as installed).
#   3. npm audit of every npm dependency in package-lock.json (all of them are devDependencies,
#      the toolchain: auditing only production ones would audit nothing).
# Slither and pip-audit live in their own virtualenv, .venv-static (slither-analyzer brings its
# own web3 and would fight the project's). Run scripts/bootstrap.sh first.
# Exit status: non-zero if any check fails or cannot run; each check runs even if an earlier one
# failed.
set -uo pipefail
cd "$(dirname "$0")/.."
SLITHER_VERSION=0.11.6
PIP_AUDIT_VERSION=2.10.1
status=0

if [ ! -x .venv-static/bin/slither ] || [ ! -x .venv-static/bin/pip-audit ] ||
   ! .venv-static/bin/python -c '' 2>/dev/null; then
  echo "== making .venv-static (slither-analyzer $SLITHER_VERSION, pip-audit $PIP_AUDIT_VERSION)"
  rm -rf .venv-static
  python3 -m venv .venv-static
  .venv-static/bin/pip install -q "slither-analyzer==$SLITHER_VERSION" "pip-audit==$PIP_AUDIT_VERSION"
fi

echo "== solhint (contracts/*.sol)"
./scripts/solhint.sh || status=1

echo "== slither (contracts/, pinned solc-js)"
.venv-static/bin/python scripts/slither_check.py || status=1

echo "== pip-audit (the project's .venv)"
frozen=$(mktemp)
trap 'rm -f "$frozen"' EXIT
.venv/bin/pip freeze --exclude-editable --all | grep -v '^pip==' >"$frozen"
if ! .venv-static/bin/pip-audit --strict --progress-spinner off --disable-pip --no-deps -r "$frozen"; then
  status=1
  echo "pip-audit failed; 'not found on PyPI and could not be audited' for every package means" \
    "PyPI's per-release JSON API (its advisory source) is unreachable: not audited" >&2
fi

echo "== npm audit (every dependency in package-lock.json)"
if ! npm audit --no-fund; then
  status=1
  echo "npm audit failed; 'audit endpoint returned an error' means the registry does not serve" \
    "its advisory endpoint here: not audited" >&2
fi

exit $status
