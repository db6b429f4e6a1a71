"""Bad starts: a wrong passphrase, a keystore others can read, a malformed or unparsable
config, a facility the registry does not know, a status port already taken. Each is one clear
error, a non-zero exit, and nothing published."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.attestor_sites import ROOT, Deployed, Site, attestor_command, make_site, register

BAD_FIELDS = {
    "heartbeat_interval = 2": "heartbeat_interval = -5",
    "feeds = 2": 'feeds = "two"',
    'country = "de"': 'country = "Germany"',
    'asns = ["AS64500"]': 'asns = ["64500"]',
}


def _wrong_passphrase(site: Site) -> None:
    (site.root / "keys" / "password").write_text("not the passphrase\n")


def _world_readable_keystore(site: Site) -> None:
    site.keystore.chmod(0o644)


def _malformed_fields(site: Site) -> None:
    text = site.config.read_text()
    for good, bad in BAD_FIELDS.items():
        text = text.replace(good, bad)
    site.config.write_text(text + "\n[typo]\nunexpected = 1\n")


def _as_is(site: Site) -> None:
    return None


_HELD: list[socket.socket] = []
"""Sockets holding ports the test's attestors are configured to listen on."""


def _http_port_taken(site: Site) -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", site.http_port))
    held.listen()
    _HELD.append(held)


def _not_toml(site: Site) -> None:
    site.config.write_text(site.config.read_text() + '\nfacility = "fra1\n')


CASES: dict[str, tuple[Callable[[Site], None], bool, int, list[str]]] = {
    # name: (break the site, register it first, exit code, expected stderr lines)
    "wrong-passphrase": (_wrong_passphrase, True, 3, ["wrong passphrase for keystore"]),
    "world-readable": (_world_readable_keystore, True, 3, ["has mode 0644", "chmod 600"]),
    "malformed": (
        _malformed_fields,
        True,
        2,
        [
            "site.toml: health.heartbeat_interval: Input should be greater than 0 (got -5)",
            "site.toml: power.feeds: Input should be a valid integer",
            "site.toml: geography.country: String should match pattern",
            "site.toml: network.asns[0]: '64500' is not an AS number",
            "site.toml: typo: Extra inputs are not permitted",
        ],
    ),
    "not-toml": (_not_toml, True, 2, ["site.toml: not valid TOML"]),
    "unregistered": (_as_is, False, 4, ["is not registered"]),
    "port-taken": (
        _http_port_taken,
        True,
        1,
        ["cannot listen: http.listen 127.0.0.1:", "Address already in use"],
    ),
}


def test_bad_starts_fail_clearly_and_publish_nothing(deployed: Deployed, tmp_path: Path) -> None:
    sites: dict[str, Site] = {}
    procs: dict[str, subprocess.Popen[str]] = {}
    for name, (breaks, registered, _, _) in CASES.items():
        site = make_site(tmp_path, name.replace("-", ""), deployed)
        if registered:
            register(deployed, site)
        breaks(site)
        sites[name] = site
        procs[name] = subprocess.Popen(
            attestor_command(site.config),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for name, (_, _, code, expected) in CASES.items():
        _, err = procs[name].communicate(timeout=60)
        if name == "port-taken":
            assert f"http.listen 127.0.0.1:{sites[name].http_port}:" in err, err
        assert procs[name].returncode == code, (name, err)
        lines = err.strip().splitlines()
        assert all(line.startswith("attestor: error: ") for line in lines), (name, err)
        for text in expected:
            assert sum(text in line for line in lines) == 1, (name, text, err)
        if name == "malformed":
            assert len(lines) == len(expected)  # one line per bad field, nothing else
        else:
            assert len(lines) == 1, (name, err)
    for held in _HELD:
        held.close()
    registry = deployed.registry
    for name, site in sites.items():
        assert registry.last_sequence(site.address) == 0, name
        assert registry.published_certificates(facility_id=site.facility_id) == [], name
