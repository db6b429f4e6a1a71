"""The one settings loader every deployable uses: file < environment < command line."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from redundancy.errors import ConfigError
from redundancy.settings import DeployableSettings, add_settings_arguments, load_settings


class Chain(BaseModel):
    rpc_url: str = "http://127.0.0.1:8545"
    timeout: float = Field(default=1.0, gt=0)


class Example(DeployableSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_")

    name: str
    port: int = Field(default=8000, ge=0, le=65535)
    origins: list[str] = Field(default_factory=list)
    chain: Chain = Chain()


def parse(argv: list[str]) -> tuple[argparse.Namespace, object]:
    parser = argparse.ArgumentParser(prog="example")
    cli = add_settings_arguments(parser, Example)
    return parser.parse_args(argv), cli


def test_each_source_overrides_the_one_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "example.toml"
    config.write_text('name = "from-file"\nport = 5000\n[chain]\ntimeout = 3.0\n')
    args, cli = parse(["--config", str(config)])
    from_file = load_settings(Example, args.config, cli=cli, args=args)  # type: ignore[arg-type]
    assert (from_file.name, from_file.port, from_file.chain.timeout) == ("from-file", 5000, 3.0)

    monkeypatch.setenv("EXAMPLE_PORT", "6000")
    monkeypatch.setenv("EXAMPLE_CHAIN__RPC_URL", "http://127.0.0.1:9999")
    from_env = load_settings(Example, args.config, cli=cli, args=args)  # type: ignore[arg-type]
    assert from_env.port == 6000 and from_env.chain.rpc_url == "http://127.0.0.1:9999"

    args, cli = parse(
        ["--config", str(config), "--port", "7000", "--chain.timeout", "4", "--origins", "a"]
    )
    from_cli = load_settings(Example, args.config, cli=cli, args=args)  # type: ignore[arg-type]
    assert (from_cli.port, from_cli.chain.timeout, from_cli.origins) == (7000, 4.0, ["a"])
    assert from_cli.name == "from-file" and isinstance(from_cli, Example)


class Files(BaseModel):
    keystore: Path | None = None
    label: str = ""


class WithPaths(DeployableSettings):
    model_config = SettingsConfigDict(env_prefix="WITHPATHS_")

    data_dir: Path
    files: Files = Files()


def test_relative_paths_in_a_file_are_relative_to_the_file_and_elsewhere_to_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, a relative path in the node's, API's or keeper's file was taken from the working
    directory the process started in (a service manager's, say), not from the file's."""
    (tmp_path / "etc").mkdir()
    config = tmp_path / "etc" / "venue.toml"
    config.write_text('data_dir = "data"\n[files]\nkeystore = "keys/node.json"\nlabel = "x/y"\n')
    monkeypatch.chdir(tmp_path)
    loaded = load_settings(WithPaths, Path("etc/venue.toml"))
    assert loaded.data_dir == tmp_path / "etc" / "data"
    assert loaded.files.keystore == tmp_path / "etc" / "keys" / "node.json"
    assert loaded.files.label == "x/y"  # not a path: as written
    config.write_text('data_dir = "/srv/data"\n')
    assert load_settings(WithPaths, config).data_dir == Path("/srv/data")
    # through a link to the file: relative to the link's directory, not the target's
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "venue.toml"
    target.write_text('data_dir = "data"\n')
    (tmp_path / "etc" / "linked.toml").symlink_to(target)
    assert load_settings(WithPaths, tmp_path / "etc" / "linked.toml").data_dir == (
        tmp_path / "etc" / "data"
    )
    # a relative path from the environment or the command line is the caller's: the cwd's
    monkeypatch.setenv("WITHPATHS_DATA_DIR", "here")
    assert load_settings(WithPaths, config).data_dir == Path("here")


def test_every_bad_field_is_reported_at_once(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = 70000\nsurprise = 1\n[chain]\ntimeout = -1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(Example, config)
    problems = caught.value.problems
    assert any(p.startswith("name: Field required") for p in problems), problems
    assert any(p.startswith("port: ") and "65535" in p for p in problems), problems
    assert any(p.startswith("surprise: ") for p in problems), problems
    assert any(p.startswith("chain.timeout: ") for p in problems), problems
    assert all(line.startswith(f"{config}: ") for line in str(caught.value).splitlines())


def test_a_missing_or_broken_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(Example, tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(Example, broken)


def test_without_a_file_overrides_and_environment_suffice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXAMPLE_NAME", "from-env")
    assert load_settings(Example, overrides={"port": 1}).port == 1
    assert load_settings(Example).name == "from-env"
