"""Settings of a keeper, loaded like every deployable's (``redundancy.settings``): a TOML file
(``--config keeper.toml``), then ``KEEPER_*`` environment variables, then the ``redundancy-keeper``
command's flags, each overriding the one before."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from eth_utils import is_address
from pydantic import Field, field_validator, model_validator
from pydantic_settings import CliSuppress, SettingsConfigDict

from redundancy.jsonlog import LogFormat
from redundancy.settings import DeployableSettings

PASSWORD_ENV = "KEEPER_PASSWORD"


class Settings(DeployableSettings):
    """One keeper's settings."""

    model_config = SettingsConfigDict(env_prefix="KEEPER_", use_attribute_docstrings=True)

    rpc_url: str
    """JSON-RPC endpoint of the chain."""
    selector: str
    """Address of the CommitteeSelector."""
    keystore: Path | None = None
    """Encrypted keystore of the account that sends selections and pays their gas."""
    password_file: Path | None = None
    """File holding the keystore's passphrase (else the KEEPER_PASSWORD environment variable)."""
    dev_key: CliSuppress[str | None] = Field(default=None, repr=False)
    """Hex private key, for local dev chains only (production: ``keystore``); from the file or
    the environment only, never a command-line flag (``ps`` would show it)."""
    poll_interval: float = Field(default=0.5, gt=0)
    """Seconds between looks at the chain head (a new block is read once)."""
    delay_blocks: int = Field(default=0, ge=0)
    """Blocks to wait after a selection becomes due before sending one: 0 for a primary keeper,
    1, 2, ... for backups that step in only if the ones before them did not."""
    max_gas: int = Field(default=8_000_000, ge=50_000)
    """Gas limit bound of a selection transaction: a selection estimated above it is not sent."""
    gas_margin: float = Field(default=1.25, ge=1.0)
    """The gas limit sent is the estimate times this (at most ``max_gas``)."""
    rpc_timeout: float = Field(default=5.0, gt=0)
    """Seconds one RPC request may take."""
    retry_interval: float = Field(default=2.0, gt=0)
    """Seconds between attempts while the RPC endpoint does not answer."""
    receipt_timeout: float = Field(default=60.0, gt=0)
    """Seconds to wait for a selection's receipt."""
    max_fee_gwei: float | None = Field(default=None, ge=1e-9, allow_inf_nan=False)
    """The most the keeper pays per gas, in gwei (none if unset): while the chain asks more, a
    due selection waits, and a stuck one is re-priced up to this and no further."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Least severe log level written."""
    log_format: LogFormat = "json"
    """json: one object per line on stderr; text: key=value for people."""

    @field_validator("selector")
    @classmethod
    def _address(cls, value: str) -> str:
        if not is_address(value):
            raise ValueError(f"{value!r} is not an address")
        return value

    @model_validator(mode="after")
    def _key_given(self) -> Settings:
        if self.keystore is None and self.dev_key is None:
            raise ValueError("the keeper's key needs keystore (or dev_key on a local dev chain)")
        return self
