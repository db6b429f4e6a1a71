"""The configuration reference, generated from the deployables' settings classes.

    python -m devnet.configdoc            # writes docs/configuration.md
    python -m devnet.configdoc --check    # exit 1 if the committed file is not current

Every field of the attestor's, the validator node's and the API's pydantic settings, with its
TOML key, environment variable, type, default, constraints and description (the field's
``description`` or attribute docstring). A field without a description is an error: the
reference documents every one.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from api.settings import Settings as ApiSettings
from attestor.settings import Settings as AttestorSettings
from devnet.toolchain import PROJECT_ROOT
from keeper.settings import Settings as KeeperSettings
from validator.node.settings import Settings as ValidatorSettings

OUTPUT = PROJECT_ROOT / "docs" / "configuration.md"


@dataclass(frozen=True)
class Deployable:
    title: str
    command: str
    settings: type[BaseModel]
    env_prefix: str
    intro: str


DEPLOYABLES = (
    Deployable(
        "Attestor",
        "attestor run --config site.toml",
        AttestorSettings,
        "ATTESTOR_",
        "One per site: probes the facility, signs proofs and round trips, publishes them.",
    ),
    Deployable(
        "Validator node and gateway",
        "validator run --config node.toml / validator gateway --config node.toml",
        ValidatorSettings,
        "VALIDATOR_",
        "One per site: the node applies the etcd-replicated input log and settles batches; the "
        "gateway takes orders.",
    ),
    Deployable(
        "API",
        "redundancy-api --config api.toml",
        ApiSettings,
        "API_",
        "The read-only REST API and dashboard over the chain.",
    ),
    Deployable(
        "Keeper",
        "redundancy-keeper --config keeper.toml",
        KeeperSettings,
        "KEEPER_",
        "Any number, run by anyone: re-selects the committee when a member becomes ineligible or "
        "a better committee is allowed.",
    ),
)


class UndocumentedField(Exception):
    """Raised when a settings field has no description."""


def type_name(annotation: Any) -> str:
    """A short readable type: ``int``, ``list[str]``, ``"json" | "text"``, ``Path | None``."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return type_name(get_args(annotation)[0])
    if origin is Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in get_args(annotation))
    if origin is not None:
        args = ", ".join(type_name(a) for a in get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def constraints(info: FieldInfo) -> str:
    """The field's validation constraints (``>= 1``, ``pattern ...``), from its metadata."""
    out = []
    symbols = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    metadata = list(info.metadata)
    annotation = info.annotation
    # constraints inside Optional[Annotated[...]] (e.g. ``Annotated[int, Field(gt=0)] | None``)
    for arg in (
        get_args(annotation) if get_origin(annotation) in (typing.Union, types.UnionType) else ()
    ):
        if get_origin(arg) is typing.Annotated:
            for extra in get_args(arg)[1:]:
                metadata.extend(getattr(extra, "metadata", [extra]))
    for item in metadata:
        for attr, symbol in symbols.items():
            if getattr(item, attr, None) is not None:
                out.append(f"{symbol} {getattr(item, attr)}")
        if getattr(item, "min_length", None) is not None:
            out.append(f"length >= {item.min_length}")
        if getattr(item, "max_length", None) is not None:
            out.append(f"length <= {item.max_length}")
        if getattr(item, "pattern", None) is not None:
            out.append(f"pattern `{item.pattern}`")
    return ", ".join(out)


def default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    else:
        value = info.default
    if value is PydanticUndefined:
        return "**required**"
    if isinstance(value, BaseModel):
        return "(table)"
    if isinstance(value, Path):
        return f"`{value}`"
    if value is None:
        return "none"
    return f"`{value!r}`".replace("|", "\\|")


def listed_model(annotation: Any) -> type[BaseModel] | None:
    """The table type of an array of tables (``list[NodeSettings]``), or None."""
    if get_origin(annotation) is list:
        (arg,) = get_args(annotation)
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The settings table a field holds (also inside ``X | None``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None


def description(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    text = info.description
    if not text:
        raise UndocumentedField(
            f"{model.__module__}.{model.__qualname__}.{name} has no description"
        )
    return " ".join(text.split())


@dataclass(frozen=True)
class Row:
    key: str
    env: str
    type: str
    default: str
    constraints: str
    description: str


def rows(model: type[BaseModel], prefix: str, env_prefix: str) -> Iterator[tuple[str, list[Row]]]:
    """(table name, its fields) for the model and, depth first, every table it holds."""
    own: list[Row] = []
    tables: list[tuple[str, type[BaseModel]]] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        # an array element's fields are set through the array's JSON, not one by one
        env = "-" if prefix.endswith("[].") else f"{env_prefix}{name.upper()}"
        sub = nested_model(info.annotation)
        doc = description(model, name, info)
        if sub is not None:
            own.append(Row(key, env + "__*", f"table `[{key}]`", default_text(info), "", doc))
            tables.append((key, sub))
            continue
        listed = listed_model(info.annotation)
        if listed is not None:
            kind = f"array of tables `[[{key}]]` (JSON in the environment)"
            own.append(Row(key, env, kind, default_text(info), constraints(info), doc))
            tables.append((key + "[]", listed))
            continue
        own.append(
            Row(key, env, type_name(info.annotation), default_text(info), constraints(info), doc)
        )
    yield prefix.rstrip(".") or "(top level)", own
    for key, sub in tables:
        last = key.split(".")[-1].removesuffix("[]").upper()
        yield from rows(sub, key + ".", f"{env_prefix}{last}__")


def escape(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m devnet.configdoc` from the settings classes; do not edit. "
        "`tests/unit/test_configdoc.py` fails when this file is not current. -->",
        "",
        "Every deployable loads its settings the same way (`redundancy/settings.py`): defaults, "
        "then a TOML file (`--config`), then environment variables, then command-line flags, "
        "each overriding the one before. A nested table's fields are set in the environment "
        "with `__` between levels (`ATTESTOR_CHAIN__RPC_URL`). Unknown keys are errors. Paths "
        "in a TOML file are relative to that file.",
        "",
    ]
    for d in DEPLOYABLES:
        out += [
            f"## {d.title}",
            "",
            d.intro,
            "",
            f"Started as `{d.command}`; environment prefix `{d.env_prefix}`.",
            "",
        ]
        for table, fields in rows(d.settings, "", d.env_prefix):
            out += [f"### `{table}`" if table != "(top level)" else "### top level", ""]
            out += [
                "| key | environment | type | default | constraints | description |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            for r in fields:
                env = "-" if r.env == "-" else f"`{r.env}`"
                out.append(
                    f"| `{r.key}` | {env} | {escape(r.type)} | {r.default} | "
                    f"{escape(r.constraints)} | {escape(r.description)} |"
                )
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="configdoc", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not current")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    try:
        text = render()
    except UndocumentedField as exc:
        print(f"configdoc: error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(
                f"configdoc: {args.output} is not current; run: python -m devnet.configdoc",
                file=sys.stderr,
            )
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
