"""Which implementation of the engine runs: the mypyc-compiled build, or the pure-Python reference.

Both come from the same sources (``validator/engine/*.py``). The package build (``setup.py``)
compiles the engine's state-machine modules into ``validator/engine/_compiled/``, beside the
sources rather than over them, with a manifest of the sources it was built from.
``validator.engine`` asks ``compiled_engine_dir`` when it is imported and, when it gets a
directory, searches it before the sources, so that its compiled modules load instead of the
pure ones; everything else in the package (messages, codec, results, errors) is shared.

``VALIDATOR_ENGINE`` chooses:

- ``pure``: the reference, always;
- ``compiled``: the compiled build, which must exist and match the sources (else
  ``EngineBuildError``: rebuild with ``pip install -e .``);
- unset or ``auto``: the compiled build when it exists and matches the sources, else the
  reference (with a warning when a build exists but its sources changed since).

This lives outside ``validator.engine`` because reading the environment is not the engine's
business; it chooses which build of the same deterministic code runs, never what it computes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig
import warnings
from pathlib import Path

from validator.engine.errors import EngineBuildError

ENV = "VALIDATOR_ENGINE"
CHOICES = ("auto", "compiled", "pure")
ENGINE_SOURCES = Path(__file__).resolve().parent / "engine"
COMPILED_DIR = ENGINE_SOURCES / "_compiled"


def stale_reason(directory: Path = COMPILED_DIR) -> str | None:
    """Why the compiled build in ``directory`` cannot be used, or None if it can."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"no compiled engine in {directory}"
    if manifest.get("python") != sys.implementation.cache_tag:
        return f"built for {manifest.get('python')}, this is {sys.implementation.cache_tag}"
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    missing = [
        name for name in manifest["compiled"] if not (directory / f"{name}{suffix}").exists()
    ]
    if missing:
        return f"compiled modules missing from {directory}: {', '.join(missing)}"
    built: dict[str, str] = manifest["sources"]
    now = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(ENGINE_SOURCES.glob("*.py"))
    }
    changed = sorted(name for name in built.keys() | now.keys() if built.get(name) != now.get(name))
    if changed:
        return f"sources changed since the build: {', '.join(changed)}"
    return None


def compiled_engine_dir() -> str | None:
    """The directory of the compiled engine to use, or None for the pure-Python reference."""
    choice = os.environ.get(ENV, "auto") or "auto"
    if choice not in CHOICES:
        raise EngineBuildError(f"{ENV}={choice!r}: must be one of {', '.join(CHOICES)}")
    if choice == "pure":
        return None
    reason = stale_reason()
    if reason is None:
        return str(COMPILED_DIR)
    if choice == "compiled":
        raise EngineBuildError(
            f"{ENV}=compiled, but the compiled engine cannot be used: {reason} "
            "(build it with: pip install -e .)"
        )
    if (COMPILED_DIR / "manifest.json").exists():
        warnings.warn(
            f"running the pure-Python engine: {reason} (rebuild with: pip install -e .)",
            RuntimeWarning,
            stacklevel=2,
        )
    return None
