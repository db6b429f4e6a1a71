"""The configuration reference (docs/configuration.md) is generated from the settings classes:
it is current, it documents every field, and an undocumented field fails the generator."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from devnet import configdoc


def test_the_committed_reference_is_current() -> None:
    assert configdoc.OUTPUT.read_text() == configdoc.render(), (
        "docs/configuration.md is stale: run `python -m devnet.configdoc`"
    )
    assert configdoc.main(["--check"]) == 0


def test_every_field_of_every_deployable_is_in_the_reference() -> None:
    text = configdoc.OUTPUT.read_text()

    def keys(model: type[BaseModel], prefix: str) -> list[str]:
        out = []
        for name, info in model.model_fields.items():
            out.append(prefix + name)
            if (sub := configdoc.nested_model(info.annotation)) is not None:
                out += keys(sub, f"{prefix}{name}.")
            if (listed := configdoc.listed_model(info.annotation)) is not None:
                out += keys(listed, f"{prefix}{name}[].")
        return out

    for d in configdoc.DEPLOYABLES:
        fields = keys(d.settings, "")
        assert len(fields) >= 10
        for key in fields:
            assert f"| `{key}` |" in text, (d.title, key)
    assert "| `chain.rpc_url` | `ATTESTOR_CHAIN__RPC_URL` | str | **required** |" in text
    assert "| `port` | `API_PORT` | int | `8000` | >= 0, <= 65535 |" in text


def test_an_undocumented_field_is_an_error() -> None:
    class Bare(BaseModel):
        documented: int = Field(default=1, description="has one")
        bare: int = 2

    with pytest.raises(configdoc.UndocumentedField, match=r"Bare\.bare has no description"):
        list(configdoc.rows(Bare, "", "X_"))


def test_a_stale_reference_is_reported(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text("# Configuration reference\n")
    assert configdoc.main(["--check", "--output", str(stale)]) == 1
    assert configdoc.main(["--output", str(stale)]) == 0
    assert configdoc.main(["--check", "--output", str(stale)]) == 0
