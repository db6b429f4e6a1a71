"""The mutation score per module from mutmut's results (run by scripts/mutation.sh).

Counts each module's mutants by outcome; a survivor listed in mutation-equivalents.json (with
the reason it cannot change behaviour) is counted as equivalent, not as a survivor. The score is
killed / (mutants - equivalent), where timeouts count as killed (the mutant hung the code) and
"no tests" (no fast test covers the mutated function) as survivors.

    .venv/bin/python scripts/mutation_scores.py
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "mutation-equivalents.json"
KILLED = {"killed", "timeout"}


def results() -> dict[str, str]:
    """Each mutant's outcome, from the .meta files mutmut writes beside each mutated module
    (readable while a run is going)."""
    from mutmut.stats import status_by_exit_code

    found = {}
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):  # being rewritten: counted at the next look
            continue
        for name, code in data["exit_code_by_key"].items():
            found[name] = status_by_exit_code[code]
    return found


def module_of(name: str) -> str:
    return name.split(".x_")[0].split(".x\u01c1")[0]


def main() -> int:
    equivalent = json.loads(EQUIVALENTS.read_text())["equivalent"] if EQUIVALENTS.exists() else {}
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors = []
    for name, status in sorted(results().items()):
        counts = by_module[module_of(name)]
        counts["mutants"] += 1
        if status in KILLED:
            counts["killed"] += 1
        elif status == "not checked":
            counts["not checked"] += 1
        elif name in equivalent:
            counts["equivalent"] += 1
        else:
            counts["survived"] += 1
            survivors.append(f"{name}: {status}")
    total: Counter[str] = Counter()
    print(f"{'module':42} {'mutants':>7} {'killed':>6} {'equiv':>5} {'surv':>5} {'unrun':>5} score")
    for module, c in sorted(by_module.items()):
        total.update(c)
        print(_row(module, c))
    print(_row("all", total))
    if survivors:
        print(f"\n{len(survivors)} survivors (not in {EQUIVALENTS.name}):")
        print("\n".join(survivors))
    return 0


def _row(module: str, c: Counter[str]) -> str:
    judged = c["mutants"] - c["equivalent"] - c["not checked"]
    score = f"{100 * c['killed'] / judged:.1f}%" if judged else "-"
    return (
        f"{module:42} {c['mutants']:>7} {c['killed']:>6} {c['equivalent']:>5} "
        f"{c['survived']:>5} {c['not checked']:>5} {score}"
    )


if __name__ == "__main__":
    sys.exit(main())
