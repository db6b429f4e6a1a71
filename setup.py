"""Build step of the package: the validator's engine compiled with mypyc, beside its sources.

Everything else about the package is declared in ``pyproject.toml``; this file only adds the
compiled engine, so that ``pip install -e '.[dev]'`` (what ``scripts/bootstrap.sh`` runs) and
``pip install .`` both build it with no manual step.

The state-machine modules of ``validator/engine`` (``COMPILED``) are compiled from the very
sources that run as the pure-Python reference, into ``validator/engine/_compiled/``: one shim
per module plus the shared library mypyc makes of the group. They are placed there, not next
to the ``.py`` files, so that they never shadow the reference: ``validator.native`` decides at
import which of the two runs (``VALIDATOR_ENGINE=compiled|pure``, default: compiled when built
from the current sources). The build writes ``_compiled/manifest.json`` with the sha256 of every
source of ``validator/engine`` so that a build older than its sources is never used.

The compiler runs only when ``build_ext`` does (building a wheel or an editable install), not
when pip merely asks for the package's metadata.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
ENGINE = ROOT / "validator" / "engine"
COMPILED = (
    "accounts",
    "audit",
    "book",
    "funding",
    "instruments",
    "lifecycle",
    "machine",
    "matching",
    "orders",
    "records",
    "snapshot",
    "state",
)
"""Modules of ``validator.engine`` compiled; the others (messages, codec, results, errors, ...)
stay pure Python and are shared by both implementations."""
PACKAGE = "validator.engine._compiled"
GROUP = f"{PACKAGE}.engine"
"""mypyc group: its shared library is ``validator/engine/_compiled/engine__mypyc.*.so``."""


def manifest() -> dict[str, Any]:
    """What the compiled modules were built from: every source of the engine, by sha256."""
    sources = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(ENGINE.glob("*.py"))
    }
    return {"compiled": list(COMPILED), "python": sys.implementation.cache_tag, "sources": sources}


class BuildEngine(build_ext):
    """``build_ext`` that compiles the engine with mypyc (lazily) and writes its manifest."""

    def finalize_options(self) -> None:
        from mypyc.build import mypycify  # a build requirement (pyproject.toml)

        extensions = mypycify(
            [str(ENGINE / f"{name}.py") for name in COMPILED],
            opt_level="3",
            group_name=GROUP,
        )
        for ext in extensions:
            if not ext.name.startswith(PACKAGE):  # a module's shim: into _compiled/ too
                ext.name = f"{PACKAGE}.{ext.name.rsplit('.', 1)[1]}"
        self.distribution.ext_modules = extensions
        super().finalize_options()

    def run(self) -> None:
        build_py = self.get_finalized_command("build_py")
        targets = [Path(self.build_lib) / "validator" / "engine" / "_compiled"]
        if self.inplace or getattr(self, "editable_mode", False):
            targets.append(Path(build_py.get_package_dir("validator.engine")) / "_compiled")
        for target in targets:
            target.mkdir(parents=True, exist_ok=True)
        super().run()
        text = json.dumps(manifest(), indent=1, sort_keys=True) + "\n"
        for target in targets:
            (target / "manifest.json").write_text(text, encoding="utf-8")

    def get_outputs(self) -> list[str]:
        outputs: list[str] = super().get_outputs()
        manifest_path = Path(self.build_lib) / "validator" / "engine" / "_compiled"
        return [*outputs, str(manifest_path / "manifest.json")]


# A placeholder until BuildEngine.finalize_options replaces it by mypyc's extensions: it marks
# the distribution as having compiled parts without running the compiler for its metadata.
setup(
    ext_modules=[Extension(f"{GROUP}__mypyc", sources=[])],
    cmdclass={"build_ext": BuildEngine},
)
