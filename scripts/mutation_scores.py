"""The mutation score per module from mutmut's results (run by scripts/mutation.sh).

Counts each module's mutants by outcome. A survivor listed in mutation-equivalents.json is
counted as equivalent (``equivalent``: the mutant cannot change behaviour, with the reason) or as
out of reach (``import_time``, by name prefix: code that runs when the module is imported,
before mutmut switches a mutant on, so no test can see the mutant), not as a survivor. The
score is killed / (mutants - equivalent - out of reach - not run), where timeouts count as
killed (the mutant hung the code) and "no tests" (no fast test covers the mutated function) as
survivors.

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
    listed = json.loads(EQUIVALENTS.read_text()) if EQUIVALENTS.exists() else {}
    equivalent: dict[str, str] = listed.get("equivalent", {})
    import_time: dict[str, str] = listed.get("import_time", {})
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
        elif any(name.startswith(prefix) for prefix in import_time):
            counts["out of reach"] += 1
        else:
            counts["survived"] += 1
            survivors.append(f"{name}: {status}")
    total: Counter[str] = Counter()
    print(
        f"{'module':34} {'mutants':>7} {'killed':>6} {'equiv':>5} {'reach':>5} {'surv':>5} "
        f"{'unrun':>5} score"
    )
    for module, c in sorted(by_module.items()):
        total.update(c)
        print(_row(module, c))
    print(_row("all", total))
    if survivors:
        print(f"\n{len(survivors)} survivors (not in {EQUIVALENTS.name}):")
        print("\n".join(survivors))
    return 0


def _row(module: str, c: Counter[str]) -> str:
    judged = c["mutants"] - c["equivalent"] - c["out of reach"] - c["not checked"]
    score = f"{100 * c['killed'] / judged:.1f}%" if judged else "-"
    return (
        f"{module:34} {c['mutants']:>7} {c['killed']:>6} {c['equivalent']:>5} "
        f"{c['out of reach']:>5} {c['survived']:>5} {c['not checked']:>5} {score}"
    )


if __name__ == "__main__":
    sys.exit(main())
