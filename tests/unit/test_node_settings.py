"""A validator node's settings: the harness's TOML file (with its ``[chain]`` table), then
``VALIDATOR_*`` variables, then the generated flags of ``validator run|gateway``; every bad field
one line and exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devnet.nodes import write_config
from redundancy.errors import ConfigError
from redundancy.keystore import write_keystore
from validator.node.cli import main, read_settings

DEV_KEY = "0x" + "11" * 32
CHAIN = {
    "rpc_url": "http://127.0.0.1:8545",
    "settlement": "0x" + "aa" * 20,
    "selector": "0x" + "bb" * 20,
    "registry": "0x" + "cc" * 20,
    "dev_node_key": DEV_KEY,
    "dev_submitter_key": DEV_KEY,
}


def site_config(tmp_path: Path, **overrides: Any) -> Path:
    """A node config as the harness writes it (``devnet.nodes.write_config``)."""
    values: dict[str, Any] = {
        "node_id": "fra1",
        "etcd_endpoints": ["http://127.0.0.1:2379", "http://127.0.0.1:22379"],
        "committee": ["fra1", "ams1", "dal1"],
        "data_dir": tmp_path / "fra1",
        "node_port": 8101,
        "gateway_port": 8201,
        **overrides,
    }
    path = tmp_path / "fra1.toml"
    write_config(path, values)
    return path


def test_the_harness_config_loads_with_its_chain_table(tmp_path: Path) -> None:
    config = site_config(tmp_path, snapshot_every=4, batch_every=2, chain=dict(CHAIN))
    role, settings = read_settings(["run", "--config", str(config)])
    assert role == "run" and settings.node_id == "fra1" and settings.data_dir == tmp_path / "fra1"
    assert (settings.snapshot_every, settings.batch_every) == (4, 2)
    assert settings.etcd_endpoints[0] == "http://127.0.0.1:2379"
    assert settings.chain is not None and settings.chain.settlement == CHAIN["settlement"]
    assert (settings.log_level, settings.log_format) == ("info", "json")
    role, settings = read_settings(["gateway", "--config", str(site_config(tmp_path))])
    assert role == "gateway" and settings.chain is None


def test_flags_over_environment_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = site_config(tmp_path, chain=dict(CHAIN))
    monkeypatch.setenv("VALIDATOR_NODE_PORT", "9101")
    monkeypatch.setenv("VALIDATOR_CHAIN__RPC_URL", "http://127.0.0.1:9545")
    _, settings = read_settings(["run", "--config", str(config), "--gateway-port", "9201"])
    assert (settings.node_port, settings.gateway_port) == (9101, 9201)
    assert settings.chain is not None and settings.chain.rpc_url == "http://127.0.0.1:9545"
    _, settings = read_settings(
        [
            "run",
            "--config",
            str(config),
            "--node-port",
            "9102",
            "--chain.rpc-url",
            "http://127.0.0.1:8546",
            "--committee",
            "fra1",
            "--committee",
            "ams1",
            "--log-level",
            "debug",
            "--log-format",
            "text",
        ]
    )
    assert settings.node_port == 9102 and settings.committee == ["fra1", "ams1"]
    assert settings.chain is not None and settings.chain.rpc_url == "http://127.0.0.1:8546"
    assert settings.chain.settlement == CHAIN["settlement"]  # the rest of the table stays
    assert (settings.log_level, settings.log_format) == ("debug", "text")


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"snapshot_every": 5, "batch_every": 2}, "snapshot_every must be a multiple of batch"),
        ({"committee": ["ams1", "dal1"]}, "node_id 'fra1' is not in committee"),
        ({"committee": ["fra1", "x/fra1"]}, "committee[1]: String should match pattern"),
        (
            {"log_retention": 1.0},
            "log_retention must exceed write_deadline + write_settle_timeout + etcd_timeout",
        ),
        ({"node_port": 70000}, "node_port: Input should be less than or equal to 65535"),
        ({"log_level": "loud"}, "log_level: Input should be 'debug', 'info'"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
        ({"gc_first_threshold": 0}, "gc_first_threshold: Input should be greater than or equal"),
        ({"chain": {**CHAIN, "max_fee_gwei": 0}}, "chain.max_fee_gwei: Input should be greater"),
        ({"chain": {**CHAIN, "confirmations": -1}}, "chain.confirmations: Input should be greater"),
        (
            {"chain": {k: v for k, v in CHAIN.items() if k != "dev_submitter_key"}},
            "chain: the submitter key needs submitter_keystore and submitter_password_file",
        ),
    ],
)
def test_a_bad_field_is_one_line_naming_it(
    tmp_path: Path, overrides: dict[str, Any], problem: str
) -> None:
    config = site_config(tmp_path, **overrides)
    with pytest.raises(ConfigError) as caught:
        read_settings(["run", "--config", str(config)])
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{config}: ") and problem in line, line


def test_bad_settings_exit_2_with_one_line_per_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gateway", "--node-id", "fra1", "--etcd-timeout", "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "validator: error: bad settings: etcd_endpoints: Field required",
        "validator: error: bad settings: committee: Field required",
        "validator: error: bad settings: data_dir: Field required",
        "validator: error: bad settings: etcd_timeout: Input should be greater than 0 (got '0')",
    ]
    assert main(["run", "--config", str(tmp_path / "absent.toml")]) == 2
    assert capsys.readouterr().err == f"validator: error: {tmp_path}/absent.toml: file not found\n"


def test_dev_keys_are_never_command_line_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key on the command line is visible to every user of the machine (``ps``)."""
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = capsys.readouterr().out
    assert "--chain.rpc-url" in help_text
    assert "dev-node-key" not in help_text and "dev-submitter-key" not in help_text
    _, settings = read_settings(["run", "--config", str(site_config(tmp_path, chain=dict(CHAIN)))])
    assert settings.chain is not None and settings.chain.dev_node_key == DEV_KEY
    assert DEV_KEY[2:] not in repr(settings)


def test_the_site_table_loads_and_a_bad_one_is_one_line_per_field(tmp_path: Path) -> None:
    site = {"ups": "fra1@127.0.0.1:3493", "react_to": ["ups", "disk"], "poll_interval": 0.5}
    _, settings = read_settings(["run", "--config", str(site_config(tmp_path, site=site))])
    assert settings.site is not None and settings.site.ups == "fra1@127.0.0.1:3493"
    assert (settings.site.react_to, settings.site.poll_interval) == (["ups", "disk"], 0.5)
    _, settings = read_settings(["run", "--config", str(site_config(tmp_path))])
    assert settings.site is None  # no [site] table: the venue does not watch this site
    bad = {"react_to": ["ups", "weather"], "poll_interval": 0, "upsc": "x"}
    with pytest.raises(ConfigError) as caught:
        read_settings(["run", "--config", str(site_config(tmp_path, site=bad))])
    lines = str(caught.value).splitlines()
    assert len(lines) == 3, lines
    assert any("site.react_to[1]" in line and "'ups', 'clock' or 'disk'" in line for line in lines)
    assert any("site.poll_interval" in line and "greater than 0" in line for line in lines)
    assert any("site.upsc" in line and "Extra inputs are not permitted" in line for line in lines)


def test_a_bad_venue_directory_exits_2_naming_the_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "venue.json"
    directory.write_text('[{"name": "fra1", "facility_id": "0x12"}]')
    config = site_config(tmp_path, venue_directory=str(directory))
    assert main(["run", "--config", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"validator: error: venue_directory: {directory}: site 0: "
        "etcd_peer_url missing or not a string\n"
    )


def test_a_fee_cap_must_be_a_finite_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``inf`` would pass "greater than 0" and then fail converting to wei, inside the settler."""
    monkeypatch.setenv("VALIDATOR_CHAIN__MAX_FEE_GWEI", "inf")
    config = site_config(tmp_path, chain=dict(CHAIN))
    with pytest.raises(ConfigError) as caught:
        read_settings(["run", "--config", str(config)])
    assert "chain.max_fee_gwei: Input should be a finite number" in str(caught.value)


@pytest.mark.parametrize(
    "problem", ["readable by others", "missing", "wrong passphrase", "malformed dev key"]
)
def test_a_bad_node_key_exits_3_in_one_line_before_the_node_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str
) -> None:
    """Before, the keys were read inside the running node: a traceback, and exit 1."""
    keystore, password = tmp_path / "node.json", tmp_path / "node.pass"
    write_keystore(keystore, bytes.fromhex(DEV_KEY[2:]), "right", iterations=2)
    password.write_text("wrong\n" if problem == "wrong passphrase" else "right\n")
    password.chmod(0o644 if problem == "readable by others" else 0o600)
    if problem == "missing":
        password.unlink()
    chain = {
        **{k: v for k, v in CHAIN.items() if k != "dev_node_key"},
        "node_keystore": str(keystore),
        "node_password_file": str(password),
    }
    if problem == "malformed dev key":
        chain = {**CHAIN, "dev_node_key": "0x1234"}
    assert main(["run", "--config", str(site_config(tmp_path, chain=chain))]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("validator: error: chain: "), err
    assert {
        "readable by others": "mode 0644",
        "missing": "cannot read passphrase file",
        "wrong passphrase": "wrong passphrase",
        "malformed dev key": "not a valid secp256k1 private key",
    }[problem] in err
    assert "0x1234" not in err


def test_the_collector_threshold_is_set_from_the_settings_and_leaves_the_older_ones(
    tmp_path: Path,
) -> None:
    import gc

    from validator.node.cli import tune_collector

    before = gc.get_threshold()
    try:
        _, settings = read_settings(["run", "--config", str(site_config(tmp_path))])
        tune_collector(settings)
        assert gc.get_threshold() == (10_000, *before[1:])
        _, settings = read_settings(
            ["run", "--config", str(site_config(tmp_path, gc_first_threshold=2_000))]
        )
        tune_collector(settings)
        assert gc.get_threshold() == (2_000, *before[1:])
    finally:
        gc.set_threshold(*before)
