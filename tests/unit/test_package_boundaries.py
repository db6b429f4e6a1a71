"""The core package never imports the attestor (the devnet runs it as a subprocess)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import redundancy

ROOT = Path(__file__).resolve().parent.parent.parent


def test_core_modules_import_no_attestor_module() -> None:
    modules = [f"redundancy.{m.name}" for m in pkgutil.iter_modules(redundancy.__path__)]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'attestor'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
    assert "redundancy.devnet_sites" in modules
