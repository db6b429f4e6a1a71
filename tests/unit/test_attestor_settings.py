"""Site settings: the examples load, every bad field is named at once, env overrides the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attestor.registry_link import check_policy
from attestor.settings import load_settings
from redundancy.errors import ConfigError
from redundancy.registry import DEFAULT_POLICY

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))

MINIMAL = """
facility = "fra1"
data_dir = "data"
[chain]
rpc_url = "http://127.0.0.1:8545"
registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
chain_id = 31337
[power]
grid = "ercot"
feeds = 2
ups = true
generator = true
[geography]
latitude_e6 = 32776664
longitude_e6 = -96796988
country = "us"
metro = "dallas"
[network]
asns = ["AS7018"]
[provider]
name = "cyrusone"
"""


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment file the examples can point at (the devnet writes the real one)."""
    path = tmp_path / "deployment.json"
    path.write_text(
        json.dumps(
            {
                "chain_id": 31337,
                "registry": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "selector": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
                "settlement": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
                "deploy_block": 1,
                "deploy_tx": "0x",
                "deployer": "0x",
                "domain_separator": "0x",
            }
        )
    )
    monkeypatch.setenv("ATTESTOR_CHAIN__DEPLOYMENT", str(path))
    return path


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_examples_load_with_the_sites_facts(example: Path, deployment: Path) -> None:
    settings = load_settings(example)
    assert settings.facility == example.stem
    assert settings.registry_target() == (31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3", 1)
    assert len(settings.latency.peers) >= 1
    assert set(settings.latency.emulated_delay_us) == {p.facility for p in settings.latency.peers}
    assert check_policy(DEFAULT_POLICY, settings) == []
    assert settings.keys.dir.is_absolute() and settings.data_dir.is_absolute()


def test_the_devnet_reads_the_same_facts_from_the_examples_as_the_attestor(
    deployment: Path,
) -> None:
    from devnet.examples import example_sites

    assert [p.stem for p in EXAMPLES] == sorted(s.name for s in example_sites())
    for example in example_sites():
        site = example.facility
        settings = load_settings(example.config)
        geo = settings.geography
        assert (settings.power.grid, geo.metro, geo.country) == (
            site.grid,
            site.metro,
            site.country,
        )
        assert (geo.latitude_e6, geo.longitude_e6) == (site.latitude_e6, site.longitude_e6)
        assert (settings.network.asns[0], settings.provider.name) == (site.asn, site.provider)
        assert [(n.address, n.vendor, n.model, n.firmware) for n in settings.hardware.nodes] == [
            (n.address, *n.hardware) for n in example.nodes
        ]
        assert dict(example.emulated_delay_us) == settings.latency.emulated_delay_us


def test_example_emulated_delays_do_not_beat_light_in_fibre(deployment: Path) -> None:
    from math import asin, cos, radians, sin, sqrt

    sites = {p.stem: load_settings(p) for p in EXAMPLES}

    def km(a: str, b: str) -> float:
        ga, gb = sites[a].geography, sites[b].geography
        la1, lo1, la2, lo2 = (
            radians(v / 1e6)
            for v in (ga.latitude_e6, ga.longitude_e6, gb.latitude_e6, gb.longitude_e6)
        )
        h = sin((la2 - la1) / 2) ** 2 + cos(la1) * cos(la2) * sin((lo2 - lo1) / 2) ** 2
        return 2 * 6371 * asin(sqrt(h))

    from devnet.examples import DISHONEST_SITE

    for name, settings in sites.items():
        for peer, one_way_us in settings.latency.emulated_delay_us.items():
            possible = one_way_us / 1000 * 200 >= km(name, peer)
            # the dishonest site's claim is what its delays (the truth) contradict
            assert possible == (DISHONEST_SITE not in (name, peer)), (name, peer)


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, MINIMAL))
    assert settings.data_dir == tmp_path / "data"
    assert settings.keys.dir == tmp_path / "keys"
    assert settings.path(settings.keys.keystore) == tmp_path / "keys" / "attestor-key.json"
    assert settings.health.heartbeat_interval == 30


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTESTOR_CHAIN__RPC_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("ATTESTOR_HEALTH__HEARTBEAT_INTERVAL", "7")
    monkeypatch.setenv("ATTESTOR_KEYSTORE_PASSWORD", "from-env")
    settings = load_settings(_write(tmp_path, MINIMAL))
    assert settings.chain.rpc_url == "http://127.0.0.1:9999"
    assert settings.health.heartbeat_interval == 7
    assert settings.keystore_password is not None
    assert "from-env" not in repr(settings)


def test_a_passphrase_in_the_settings_file_is_refused(tmp_path: Path) -> None:
    """Before, ``keystore_password = "..."`` in the file was taken, though the docs said "from
    the environment only": a settings file is often readable by others."""
    for value in ('"hunter2"', "918273645"):  # a number failed validation first, echoing it
        with pytest.raises(ConfigError) as caught:
            load_settings(_write(tmp_path, f"keystore_password = {value}\n" + MINIMAL))
        message = str(caught.value)
        assert "keystore_password: not in a settings file" in message
        assert value.strip('"') not in message


def test_key_file_names_in_the_file_are_relative_to_the_key_directory(tmp_path: Path) -> None:
    """The shared loader joins relative paths to the file's directory; the attestor's key file
    names are relative to ``keys.dir`` instead (its own resolution), however they are given."""
    text = MINIMAL + '[keys]\ndir = "secrets"\nkeystore = "my-key.json"\n'
    settings = load_settings(_write(tmp_path, text))  # (a [keys] table at the end: TOML)
    assert settings.path(settings.keys.keystore) == tmp_path / "secrets" / "my-key.json"


def test_every_bad_field_is_reported_once_naming_file_and_field(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace('facility = "fra1"', 'facility = "FRA 1"')
        .replace("feeds = 2", "feeds = 0")
        .replace("latitude_e6 = 32776664", "latitude_e6 = 95000000")
        .replace('asns = ["AS7018"]', 'asns = ["7018"]')
        .replace('rpc_url = "http://127.0.0.1:8545"', 'rpc_url = "ws://x"\nmax_fee_gwei = -1')
        + '[[hardware.nodes]]\naddress = "0x12"\n[http]\nlisten = "localhost"\nport = 1\n'
    )
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.problems == [
        "facility: String should match pattern '^[a-z0-9][a-z0-9._-]*$' (got 'FRA 1')",
        "chain.rpc_url: String should match pattern '^https?://' (got 'ws://x')",
        "chain.max_fee_gwei: Input should be greater than or equal to 0.000000001 (got -1)",
        "power.feeds: Input should be greater than or equal to 1 (got 0)",
        "geography.latitude_e6: Input should be less than or equal to 90000000 (got 95000000)",
        "network.asns[0]: '7018' is not an AS number like 'AS3320'",
        "hardware.nodes[0].address: '0x12' is not an Ethereum address",
        "http.listen: 'localhost' is not of the form host:port",
        "http.port: Extra inputs are not permitted",
    ]
    assert all(line.startswith(f"{path}: ") for line in str(caught.value).splitlines())


def test_cross_field_rules(tmp_path: Path) -> None:
    cases = {
        "[power]\n": ("[power]\ninterval = 100\nlifetime = 50\n", "power: interval (100 s) must"),
        "registry = ": ("#", "chain: give either deployment, or both registry and chain_id"),
        "[provider]\n": (
            '[latency]\npeers = [{ facility = "fra1", address = "127.0.0.1:1" }]\n[provider]\n',
            "latency.peers lists this facility (fra1) itself",
        ),
    }
    for anchor, (replacement, message) in cases.items():
        path = _write(tmp_path, MINIMAL.replace(anchor, replacement, 1))
        with pytest.raises(ConfigError) as caught:
            load_settings(path)
        assert any(message in p for p in caught.value.problems), caught.value.problems


def test_missing_file_and_bad_toml_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        load_settings(tmp_path / "nope.toml")
    assert missing.value.problems == ["file not found"]
    with pytest.raises(ConfigError) as bad:
        load_settings(_write(tmp_path, 'facility = "x\n'))
    assert len(bad.value.problems) == 1
    assert bad.value.problems[0].startswith("not valid TOML: ")


def test_registry_policy_bounds_the_heartbeat(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, MINIMAL + "[health]\nheartbeat_interval = 90\n"))
    assert check_policy(DEFAULT_POLICY, settings) == [
        "health.heartbeat_interval = 90 s gives heartbeats a 180 s lifetime (two intervals); "
        "the registry allows at most 120 s: use 60 or less"
    ]
    long_power = MINIMAL.replace("[power]\n", "[power]\nlifetime = 100000\n")
    assert check_policy(DEFAULT_POLICY, load_settings(_write(tmp_path, long_power))) == [
        "power.lifetime = 100000 s exceeds the registry's 86400 s"
    ]


def test_command_line_overrides_environment_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from attestor.cli import main, parser

    monkeypatch.setenv("ATTESTOR_HEALTH__HEARTBEAT_INTERVAL", "7")
    monkeypatch.setenv("ATTESTOR_CHAIN__RPC_URL", "http://127.0.0.1:9999")
    path = _write(tmp_path, MINIMAL)
    top, cli = parser()
    flags = ["--health.heartbeat-interval", "9", "--data-dir", "elsewhere", "--no-power.ups"]
    flags += ["--network.asns", "AS1", "--network.asns", "AS2"]
    args = top.parse_args(["run", "--config", str(path), *flags])
    settings = load_settings(args.config, cli=cli, args=args)
    assert settings.health.heartbeat_interval == 9  # flag over environment
    assert settings.chain.rpc_url == "http://127.0.0.1:9999"  # environment over file
    assert settings.data_dir == tmp_path / "elsewhere"  # relative to the file
    assert settings.power.ups is False and settings.network.asns == ["as1", "as2"]
    assert settings.provider.name == "cyrusone"  # the file's

    args = top.parse_args(["run", "--config", str(path), "--power.feeds", "0"])
    with pytest.raises(ConfigError) as caught:
        load_settings(args.config, cli=cli, args=args)
    assert str(caught.value).startswith(
        f"{path}: power.feeds: Input should be greater than or equal to 1"
    )
    # the passphrase has no flag (hidden from --help, refused if given): argv is world-readable
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    run_help = capsys.readouterr().out
    assert "--health.heartbeat-interval" in run_help and "--keystore-password" not in run_help
    code = main(["run", "--config", str(path), "--keystore-password", "a secret"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("attestor: error: --keystore-password: a command line is readable")
    assert "a secret" not in err


def test_identity_backend_tpm_needs_a_tcti_and_a_persistent_ak_handle(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, MINIMAL))
    assert settings.identity.backend == "file"
    path = _write(tmp_path, MINIMAL + '[identity]\nbackend = "tpm"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert any("backend 'tpm' needs tcti" in p for p in caught.value.problems)
    path = _write(tmp_path, MINIMAL + '[identity]\nbackend = "tpm"\nak_handle = "0x01000000"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert any("identity.ak_handle" in p for p in caught.value.problems), caught.value.problems
    tcti = "swtpm:host=127.0.0.1,port=2321"
    path = _write(tmp_path, MINIMAL + f'[identity]\nbackend = "tpm"\ntcti = "{tcti}"\n')
    loaded = load_settings(path)
    assert (loaded.identity.backend, loaded.identity.tcti) == ("tpm", tcti)
    assert loaded.path(loaded.identity.ak_cert).name == "tpm-ak-cert.pem"
