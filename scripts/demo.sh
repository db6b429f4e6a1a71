#!/usr/bin/env bash
# The demo, from a fresh clone: installs what it needs, then runs a local devnet (a real anvil,
# the registry deployed, example sites attested) until Ctrl-C. Extra arguments go to the devnet.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/redundancy-devnet "$@"
