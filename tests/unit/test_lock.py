"""requirements.lock (what scripts/bootstrap.sh installs, hash-checked) pins every dependency
pyproject.toml declares for the package and its dev tools, at a version the declaration allows,
each with hashes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def locked() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", text, re.MULTILINE)
    return {canonicalize_name(name.split("[")[0]): version for name, version in pins}


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]
    ]


def test_every_declared_dependency_is_locked_at_an_allowed_version() -> None:
    pins = locked()
    env = default_environment()
    missing, outside = [], []
    for req in declared():
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            missing.append(req.name)
        elif not req.specifier.contains(version, prereleases=True):
            outside.append(f"{req.name}=={version} not in {req.specifier}")
    assert missing == [] and outside == [], "regenerate requirements.lock (see bootstrap.sh)"


def test_every_pin_has_hashes() -> None:
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())
    pinned = [b for b in blocks if "==" in b.split("\n")[0]]
    assert len(pinned) >= 50
    assert all("--hash=sha256:" in b for b in pinned)


def test_bootstrap_installs_from_the_lock_with_hashes() -> None:
    script = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert "--require-hashes -r requirements.lock" in script
    assert "--no-deps -e ." in script
