#!/usr/bin/env bash
# Mutation testing, opt-in (not in scripts/test.sh or .ci/run: it takes tens of minutes).
# mutmut (pinned in pyproject.toml's `mutation` extra) mutates, one at a time, the modules listed
# under [tool.mutmut] in pyproject.toml (the core's pure modules, the attestor's outbox, the
# engine) and runs the fast unit tests that cover each mutated function; a mutant no test fails
# on survives. The engine runs as pure Python (VALIDATOR_ENGINE=pure): mutants are made in the
# sources, not in the compiled build. Prints the score per module and writes it to
# mutants/scores.txt. docs/mutation.md lists the equivalent mutants.
#
#   scripts/mutation.sh                 # everything configured (nice -n 10, 2 workers)
#   scripts/mutation.sh 'redundancy.evidence*'   # only mutants whose name matches
#   MUTATION_WORKERS=1 scripts/mutation.sh
#
# Re-running reuses mutants/ (mutmut caches results by source); remove it to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
MUTMUT_VERSION=3.8.1
if ! .venv/bin/python -c "import mutmut, sys; sys.exit(mutmut.__version__ != '$MUTMUT_VERSION')" 2>/dev/null; then
  .venv/bin/pip install --quiet "mutmut==$MUTMUT_VERSION"
fi
export VALIDATOR_ENGINE=pure
nice -n 10 .venv/bin/mutmut run --max-children "${MUTATION_WORKERS:-2}" "$@" || true
.venv/bin/python scripts/mutation_scores.py | tee mutants/scores.txt
