"""Settings of one site's validator node and gateway: a TOML file, overridden by ``VALIDATOR_*``
environment variables (``VALIDATOR_NODE_ID``, ``VALIDATOR_ETCD_ENDPOINTS='["http://..."]'``...).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class ChainSettings(BaseModel):
    """Where settlement batches go. The node key signs batches; the submitter pays gas."""

    rpc_url: str
    settlement: str
    selector: str
    registry: str
    node_keystore: Path | None = None
    node_password_file: Path | None = None
    dev_node_key: str | None = None
    """Hex private key, for local dev chains only (production: ``node_keystore``)."""
    submitter_keystore: Path | None = None
    submitter_password_file: Path | None = None
    dev_submitter_key: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VALIDATOR_", extra="forbid")

    node_id: str
    etcd_endpoints: list[str] = Field(min_length=1)
    """This site's etcd member first; the others are used when it does not answer."""
    committee: list[str] = Field(min_length=1)
    """Node ids of every node: root majorities and log compaction are over these."""
    data_dir: Path
    host: str = "127.0.0.1"
    node_port: int = 0
    gateway_port: int = 0
    etcd_timeout: float = 1.5
    snapshot_every: int = Field(default=200, ge=1)
    """Chunks between snapshots; a multiple of ``batch_every``."""
    batch_every: int = Field(default=50, ge=1)
    """Chunks per settlement batch (and state-root comparison)."""
    max_chunk_messages: int = Field(default=5_000, ge=1)
    max_inflight_writes: int = Field(default=2, ge=1)
    """Chunks a gateway has in flight to etcd at once."""
    write_deadline: float = Field(default=3.0, gt=0)
    """How long a gateway retries a chunk write etcd has not confirmed before answering 503."""
    write_attempt_timeout: float = Field(default=0.2, gt=0)
    """How long one attempt of a chunk write waits for etcd before it is sent again (to the same
    key, so at most once in the log): bounds how long a leader's death stalls writes beyond the
    election itself."""
    log_retention: float = Field(default=10.0, gt=0)
    """Seconds a log key outlives the last snapshot that needs it (longer than a gateway's
    ``write_deadline``, so a retried write always finds its key)."""
    chain: ChainSettings | None = None

    @model_validator(mode="after")
    def _snapshots_on_batch_boundaries(self) -> Settings:
        if self.snapshot_every % self.batch_every:
            raise ValueError("snapshot_every must be a multiple of batch_every")
        if self.log_retention <= self.write_deadline + self.etcd_timeout:
            raise ValueError("log_retention must exceed write_deadline + etcd_timeout")
        if self.node_id not in self.committee:
            raise ValueError(f"node_id {self.node_id!r} is not in committee {self.committee}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)  # the environment overrides the file


def load_settings(path: Path) -> Settings:
    """Settings from a TOML file (environment variables win)."""
    with path.open("rb") as f:
        data = tomllib.load(f)
    return Settings(**data)
