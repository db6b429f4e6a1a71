"""Reading small host files (``/sys``, ``/proc``) under a root, so fixtures can stand in."""

from __future__ import annotations

from pathlib import Path


def read_text(root: Path, relative: str) -> str | None:
    """The stripped contents of ``root/relative``, or None if missing, unreadable or empty."""
    try:
        text = (root / relative).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return text or None


def cpuinfo_field(cpuinfo: str, *names: str) -> str | None:
    """The first value of any of ``names`` in /proc/cpuinfo text (first processor wins)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in names and value.strip():
            return value.strip()
    return None


def meminfo_kib(meminfo: str, name: str) -> int | None:
    """A ``/proc/meminfo`` value in KiB."""
    for line in meminfo.splitlines():
        key, sep, rest = line.partition(":")
        if sep and key.strip() == name:
            number = rest.split()[0] if rest.split() else ""
            return int(number) if number.isdigit() else None
    return None
