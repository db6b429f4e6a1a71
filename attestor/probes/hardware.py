"""Hardware, per validator node: vendor, model, firmware, CPU model.

Read from ``/sys/class/dmi/id`` and ``/proc/cpuinfo`` where readable, with the node's config
overriding (a node that is not this machine, or a host without DMI, e.g. a container). The
hardware domain id is keccak of ``hardware:<vendor>/<model>/<firmware>``: nodes sharing all three
share a common-mode defect. Evidence body::

    {"node": "0x14dC...", "vendor": "dell", "model": "poweredge r650", "firmware": "2.19.1",
     "biosDate": "03/01/2024", "cpuModel": "AMD EPYC 7443", "cpuCount": 48, "memoryMiB": 257000,
     "sources": {"vendor": "dmi", "model": "dmi", "firmware": "config", "cpuModel": "cpuinfo"}}

``biosDate``, ``cpuCount`` and ``memoryMiB`` appear only when readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attestor.errors import ProbeError
from attestor.probes import Observation
from attestor.probes.hostfiles import cpuinfo_field, meminfo_kib, read_text
from attestor.settings import NodeSettings
from redundancy.domains import Kind, hardware_domain
from redundancy.proofs import subject_for_node

DMI = "sys/class/dmi/id"
#: Values firmware vendors leave in unfilled DMI fields: not facts.
PLACEHOLDERS = frozenset(
    {"to be filled by o.e.m.", "default string", "system product name", "not specified", "none"}
)
_CPU_NAMES = ("model name", "Model", "cpu model", "cpu", "Hardware")
_FIELDS: tuple[tuple[str, str, str], ...] = (
    # (evidence field, node setting, DMI file)
    ("vendor", "vendor", "sys_vendor"),
    ("model", "model", "product_name"),
    ("firmware", "firmware", "bios_version"),
)


def _dmi(root: Path, name: str) -> str | None:
    value = read_text(root, f"{DMI}/{name}")
    return None if value is None or value.lower() in PLACEHOLDERS else value


class HardwareProbe:
    """Observes one validator node's hardware."""

    kind = Kind.HARDWARE

    def __init__(self, node: NodeSettings, index: int, root: Path = Path("/")) -> None:
        self.node = node
        self.index = index
        self.root = root
        self.subject: bytes | None = subject_for_node(node.address)

    def facts(self) -> dict[str, Any]:
        """The node's hardware facts (ProbeError if vendor, model or firmware is unknown)."""
        body: dict[str, Any] = {"node": self.node.address}
        sources: dict[str, str] = {}
        for name, setting, dmi_file in _FIELDS:
            configured = getattr(self.node, setting)
            value = configured if configured is not None else _dmi(self.root, dmi_file)
            if value is None:
                raise ProbeError(
                    "hardware",
                    f"{name} of node {self.node.address} is unknown: {self.root / DMI / dmi_file} "
                    f"is not readable; set hardware.nodes[{self.index}].{setting}",
                )
            body[name] = value
            sources[name] = "config" if configured is not None else "dmi"
        if self.node.firmware is None and (date := _dmi(self.root, "bios_date")):
            body["biosDate"] = date
        cpuinfo = read_text(self.root, "proc/cpuinfo") or ""
        cpu = self.node.cpu_model or cpuinfo_field(cpuinfo, *_CPU_NAMES)
        if cpu is not None:
            body["cpuModel"] = cpu
            sources["cpuModel"] = "config" if self.node.cpu_model else "cpuinfo"
        processors = sum(1 for line in cpuinfo.splitlines() if line.startswith("processor"))
        if processors:
            body["cpuCount"] = processors
        mem = meminfo_kib(read_text(self.root, "proc/meminfo") or "", "MemTotal")
        if mem is not None:
            body["memoryMiB"] = mem // 1024
        body["sources"] = sources
        return body

    def observe(self, now: int) -> Observation:
        body = self.facts()
        return Observation(
            kind=Kind.HARDWARE,
            body=body,
            observed_at=now,
            subject=self.subject,
            domain_id=hardware_domain(body["vendor"], body["model"], body["firmware"]),
        )
