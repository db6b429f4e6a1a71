"""Settings of every deployable, loaded one way: defaults, then a TOML file, then ``<PREFIX>_*``
environment variables, then the command line, each overriding the one before.

Each deployable (attestor, validator node, API) declares one ``DeployableSettings`` subclass with
its ``env_prefix``. Its command line gets ``--config FILE`` and one flag per field, generated from
the class (``--rpc-url``, ``--chain.rpc-url`` for nested fields): nothing is copied by hand.
``load_settings`` validates the merged result and reports every bad field at once, one line each,
naming the file and the field (``ConfigError``).
"""

from __future__ import annotations

import argparse
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union, cast, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_settings import (
    BaseSettings,
    CliSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from redundancy.errors import ConfigError

S = TypeVar("S", bound="DeployableSettings")


class DeployableSettings(BaseSettings):
    """Base of every deployable's settings (subclasses set ``env_prefix``)."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, env_nested_delimiter="__")
    paths_relative_to_file: ClassVar[bool] = True
    """Whether the loader joins each relative ``Path`` in the TOML file to the file's directory
    (False: the deployable resolves its paths itself, e.g. some relative to another field)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the command line (passed in as init data) over the environment over the file
        toml = _TomlFile if cls.paths_relative_to_file else TomlConfigSettingsSource
        return (init_settings, env_settings, toml(settings_cls))


class _TomlFile(TomlConfigSettingsSource):
    """The TOML file, with every relative path in it taken relative to the file's directory
    (not the working directory a service manager happens to start the process in)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        self._model = settings_cls
        super().__init__(settings_cls)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        data = super()._read_file(file_path)
        base = Path(file_path).parent.resolve()  # the link's directory, if the file is a link
        return _paths_resolved(data, self._model, base)


def _kinds(annotation: Any) -> list[Any]:
    """The types a field's annotation allows (``Path | None`` -> ``[Path, NoneType]``)."""
    if get_origin(annotation) in (Union, types.UnionType):
        return list(get_args(annotation))
    return [annotation]


def _paths_resolved(data: dict[str, Any], model: type[BaseModel], base: Path) -> dict[str, Any]:
    """``data`` (a TOML table for ``model``) with each relative path of a ``Path`` field, nested
    tables included, joined to ``base``; anything else as it was (validation judges it)."""
    out = dict(data)
    for name, field in model.model_fields.items():
        value = data.get(name)
        if value is None:
            continue
        kinds = _kinds(field.annotation)
        if Path in kinds and isinstance(value, str) and value and not Path(value).is_absolute():
            out[name] = str(base / value)
            continue
        tables = [k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)]
        if tables and isinstance(value, dict):
            out[name] = _paths_resolved(value, tables[0], base)
    return out


def add_settings_arguments(
    parser: argparse.ArgumentParser, settings_cls: type[DeployableSettings], *, config: bool = True
) -> CliSettingsSource[Any]:
    """Add ``--config FILE`` (unless ``config`` is False) and a flag per field to ``parser``;
    the returned source turns the parsed namespace into settings values."""
    if config:
        parser.add_argument("--config", type=Path, help="a TOML settings file")
    return CliSettingsSource(
        settings_cls,
        root_parser=parser,
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_avoid_json=True,
    )


def load_settings(
    settings_cls: type[S],
    config: Path | None = None,
    *,
    cli: CliSettingsSource[Any] | None = None,
    args: argparse.Namespace | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> S:
    """Merge defaults, the TOML file ``config``, the environment and the command line (``cli``
    with its parsed ``args``; or plain ``overrides``) and validate; ConfigError lists every
    bad field."""
    where = settings_source(config)
    if config is not None:
        _check_toml(config)

    class Loaded(settings_cls):  # type: ignore[valid-type,misc]
        model_config = SettingsConfigDict(toml_file=config)

    kwargs: dict[str, Any] = dict(overrides or {})
    if cli is not None:
        if args is None:
            raise ValueError("a command-line settings source needs its parsed arguments")
        kwargs["_cli_settings_source"] = cli(parsed_args=args)
    try:
        loaded = Loaded(**kwargs)
    except ValidationError as exc:
        raise ConfigError(where, [describe(e) for e in exc.errors()]) from None
    return cast(S, loaded)


def settings_source(config: Path | None) -> str:
    """How errors name where the settings came from: the file, or (without one) ``bad
    settings``, as in ``bad settings: port: Input should be ...``."""
    return str(config) if config is not None else "bad settings"


def _check_toml(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(path, ["file not found"])
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("chain", "rpc_url")`` as ``chain.rpc_url``, list items as ``[i]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def describe(error: Any) -> str:
    """One pydantic error as ``field: what is wrong (got <value>)``."""
    where = field_path(tuple(error["loc"]))
    message = str(error["msg"]).removeprefix("Value error, ")
    given = error.get("input")
    shown = error["type"] in ("missing", "extra_forbidden") or isinstance(given, dict | list)
    if not shown and repr(given) not in message:
        message += f" (got {given!r})"
    return f"{where}: {message}"
