#!/usr/bin/env bash
# Install what the project needs, once: a virtualenv with the package and its locked dev tools, the
# pinned npm toolchain (anvil, ganache, solc-js, OpenZeppelin Contracts), and Chromium for the
# dashboard's browser test (Debian packages chromium and chromium-driver, when /usr/bin/chromium
# is missing). Re-running is quick: steps whose inputs have not changed are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for py in python3 python3.13 python3.12 python3.11; do
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  echo "bootstrap: Python 3.11 or newer is required" >&2; return 1
}

command -v node >/dev/null 2>&1 || { echo "bootstrap: Node.js 20+ is required (node not found)" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "bootstrap: npm is required" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  "$(pick_python)" -m venv .venv
fi
# Python dependencies come from requirements.lock: exact versions with their hashes (pip
# refuses anything else), so two installs a month apart are the same. Update it with
#   uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
#     --python-platform x86_64-unknown-linux-gnu -o requirements.lock
# (uv from PyPI; tests/unit/test_lock.py fails when pyproject.toml asks for what it lacks).
# Reinstalled when the lock or the package's declaration changes, and when the engine's sources
# do: the install compiles the engine with mypyc (setup.py), and a build older than its sources
# is never used (validator/native.py falls back to the pure-Python engine).
if [ ! -f .venv/.installed ] || [ requirements.lock -nt .venv/.installed ] ||
   [ pyproject.toml -nt .venv/.installed ] || [ setup.py -nt .venv/.installed ] ||
   [ -n "$(find validator/engine -maxdepth 1 -name '*.py' -newer .venv/.installed)" ]; then
  .venv/bin/python -m pip install --quiet --require-hashes -r requirements.lock
  .venv/bin/python -m pip install --quiet --no-deps -e .
  touch .venv/.installed
fi
if [ ! -f node_modules/.installed ] || [ package-lock.json -nt node_modules/.installed ]; then
  # `npm install --no-save` installs exactly the versions and integrity hashes in package-lock.json
  # and leaves it untouched. Not `npm ci`: it refuses a lock that lacks anvil's optional builds for
  # other platforms, and the registry reachable here serves only the linux-x64 one.
  npm install --no-save --no-audit --no-fund --loglevel=error
  touch node_modules/.installed
fi
# Debian packages the tests drive for real: etcd (the validator nodes' replicated log),
# Chromium with its driver (the dashboard's browser test; never a downloaded browser),
# libfaketime (the fault campaign's clock jumps on attestors), Network UPS Tools (upsd and the
# dummy-ups driver from nut-server, upsc from nut-client: UPSes put on battery by tests) and the
# software TPM with its tools (swtpm, swtpm-tools, tpm2-tools: TPM-rooted device identity).
missing=""
[ -x /usr/bin/etcd ] && [ -x /usr/bin/etcdctl ] || missing="$missing etcd-server etcd-client"
[ -f /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || missing="$missing libfaketime"
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || missing="$missing chromium chromium-driver"
[ -x /lib/nut/upsd ] && [ -x /lib/nut/dummy-ups ] || missing="$missing nut-server"
[ -x /usr/bin/upsc ] || missing="$missing nut-client"
[ -x /usr/bin/swtpm ] || missing="$missing swtpm"
[ -x /usr/bin/swtpm_setup ] && [ -x /usr/bin/swtpm_localca ] || missing="$missing swtpm-tools"
[ -x /usr/bin/tpm2_quote ] || missing="$missing tpm2-tools"
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  else
    echo "bootstrap: install the Debian packages:$missing" >&2
    exit 1
  fi
fi
