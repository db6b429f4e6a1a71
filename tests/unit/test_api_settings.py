"""``redundancy-api``'s settings: a TOML file, ``API_*`` variables and generated flags, each over
the one before; every bad field one line; the workers' copy is the validated settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.cli import read_settings
from api.settings import Settings
from redundancy.errors import ConfigError


def test_flags_over_environment_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "api.toml"
    config.write_text(
        'deployment = "d.json"\nport = 9000\nblock_poll_ms = 500\ncors_origins = ["https://f"]\n'
    )
    monkeypatch.setenv("API_PORT", "9001")
    monkeypatch.setenv("API_RPC_URL", "http://127.0.0.1:9545")
    settings = read_settings(["--config", str(config), "--block-poll-ms", "100"])
    assert (settings.port, settings.rpc_url) == (9001, "http://127.0.0.1:9545")
    assert (settings.block_poll_ms, settings.cors_origins) == (100, ["https://f"])
    assert settings.deployment == tmp_path / "d.json"  # relative to the file, not the cwd
    assert isinstance(settings, Settings)


def test_the_flags_users_give() -> None:
    settings = read_settings(
        [
            "--deployment",
            "d.json",
            "--rpc-url",
            "http://127.0.0.1:8546",
            "--host",
            "127.0.0.2",
            "--port",
            "8001",
            "--workers",
            "2",
            "--cors-origins",
            "https://a.example",
            "--cors-origins",
            "https://b.example",
            "--access-log",
            "--log-level",
            "warning",
            "--log-format",
            "text",
        ]
    )
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.2", 8001, 2)
    assert (settings.access_log, settings.log_level, settings.log_format) == (
        True,
        "warning",
        "text",
    )


def test_every_bad_field_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        read_settings(["--port", "70000", "--log-level", "loud", "--workers", "0"])
    lines = str(caught.value).splitlines()
    assert len(lines) == 4, lines
    for field in ("deployment: Field required", "port: ", "workers: ", "log_level: "):
        assert any(line.startswith(f"bad settings: {field}") for line in lines), lines
    config = tmp_path / "api.toml"
    config.write_text('deployment = "d.json"\nretry_after_s = 0\n')
    with pytest.raises(ConfigError) as caught:
        read_settings(["--config", str(config)])
    assert str(caught.value) == (
        f"{config}: retry_after_s: Input should be greater than or equal to 1 (got 0)"
    )


def test_workers_get_the_validated_settings_back_from_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = read_settings(["--deployment", "d.json", "--cors-origins", "https://a.example"])
    monkeypatch.setenv("API_PORT", "9999")  # not read again: the JSON is the whole truth
    again = Settings.model_validate_json(settings.model_dump_json())
    assert again.model_dump() == settings.model_dump() and again.port == 8000
