"""The house rules: which package may import, or start, which.

- the core (``redundancy``) imports no part (``attestor``, ``validator``, ``api``, ``keeper``),
  not the harness (``devnet``) and not the tests, and launches no process at all;
- the deployable parts import the core and never each other, nor the harness;
- the engine (``validator.engine``) is pure: no I/O, clock, randomness, and not the node;
- tooling (``devnet``, ``scripts``, ``bench``) never imports the test suite.

Each rule is checked statically (every import statement, including those inside functions) and
the checker itself is tested on sources that break it, so the rules cannot pass vacuously.
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PARTS = ("attestor", "validator", "api", "keeper")
DEPLOYABLE = ("redundancy", *PARTS)
#: Modules through which code starts other processes.
LAUNCHERS = ("subprocess", "multiprocessing", "pty")
LAUNCH_CALLS = ("system", "popen", "posix_spawn", "posix_spawnp", "fork", "forkpty")
#: What a deterministic engine must not touch.
IMPURE = (
    "asyncio",
    "socket",
    "time",
    "datetime",
    "random",
    "secrets",
    "os",
    "threading",
    "aiohttp",
    "requests",
    "web3",
    "validator.node",
)


def imports(source: str) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in a source, at any depth; relative imports as '.x'."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            yield node.lineno, base
            if node.module is None or node.level:
                continue
            for alias in node.names:  # `from validator import node` imports validator.node
                yield node.lineno, f"{node.module}.{alias.name}"


def launches(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) of every way a source could start a process: a launcher import, an
    ``os.system``-like call, or a ``"-m", "<module>"`` argument pair."""
    for line, module in imports(source):
        if module.split(".")[0] in LAUNCHERS:
            yield line, f"imports {module}"
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and (node.attr in LAUNCH_CALLS or node.attr.startswith(("exec", "spawn")))
        ):
            yield node.lineno, f"calls os.{node.attr}"
        if isinstance(node, ast.List | ast.Tuple):
            items = node.elts
            for first, second in itertools.pairwise(items):
                if (
                    isinstance(first, ast.Constant)
                    and first.value == "-m"
                    and isinstance(second, ast.Constant)
                ):
                    yield node.lineno, f'runs "-m {second.value}"'


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def name_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def violations(
    paths: list[Path], forbidden: tuple[str, ...], *, allow: tuple[str, ...] = ()
) -> list[str]:
    out = []
    for path in paths:
        for line, module in imports(path.read_text(encoding="utf-8")):
            if within(module, forbidden) and not within(module, allow):
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


# ----------------------------------------------------------------- the rules


def test_core_imports_no_part_no_harness_no_tests() -> None:
    assert violations(sources("redundancy"), (*PARTS, "devnet", "tests")) == []


def test_core_launches_nothing() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} {what}"
        for path in sources("redundancy")
        for line, what in launches(path.read_text(encoding="utf-8"))
    ]
    assert found == []


@pytest.mark.parametrize("part", PARTS)
def test_part_imports_no_other_part_and_no_harness(part: str) -> None:
    others = tuple(p for p in PARTS if p != part)
    assert violations(sources(part), (*others, "devnet", "tests")) == []


def test_engine_is_pure() -> None:
    assert violations(sources("validator/engine"), IMPURE) == []


def test_tooling_imports_no_tests() -> None:
    assert violations(sources("devnet", "scripts", "bench"), ("tests",)) == []


def test_importing_every_core_module_loads_no_part() -> None:
    """The same rule at run time: what importing the whole core actually loads."""
    modules = [name_of(p).removesuffix(".__init__") for p in sources("redundancy")]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        f"{set((*PARTS, 'devnet', 'tests'))!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "redundancy.attestation_verifier" in modules and "redundancy.cli.deploy" in modules
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------- the checker itself


def test_checker_catches_every_kind_of_import() -> None:
    source = (
        "import attestor.daemon\n"
        "from api import app\n"
        "from validator import node\n"
        "def lazy():\n"
        "    from devnet.localchain import start_chain\n"
    )
    found = [m for _, m in imports(source)]
    assert "attestor.daemon" in found and "api.app" in found and "validator.node" in found
    assert "devnet.localchain" in found
    assert within("validator.node", IMPURE) and not within("validator.nodes", ("validator.node",))


def test_checker_catches_launching_a_part() -> None:
    source = (
        "import sys\n"
        "from subprocess import Popen\n"
        "import os\n"
        'Popen([sys.executable, "-m", "attestor", "run"])\n'
        'os.execv(sys.executable, [sys.executable, "-m", "validator.node"])\n'
        'os.system("redundancy-api")\n'
    )
    found = [what for _, what in launches(source)]
    assert found.count('runs "-m attestor"') == 1 and 'runs "-m validator.node"' in found
    assert "imports subprocess" in found and "calls os.execv" in found
    assert "calls os.system" in found
    assert list(launches("import json\nx = ['-n', 'attestor']\n")) == []
