"""The API's settings, loaded like every deployable's (``redundancy.settings``): defaults, then a
TOML file (``--config api.toml``), then ``API_*`` environment variables (``API_RPC_URL``), then
the flags of ``redundancy-api`` (``--rpc-url``), each overriding the one before."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from redundancy.jsonlog import LogFormat
from redundancy.settings import DeployableSettings


class Settings(DeployableSettings):
    """Everything the API process needs; ``deployment`` has no default."""

    model_config = SettingsConfigDict(env_prefix="API_")

    deployment: Path = Field(description="deployment.json naming the chain and contracts")
    rpc_url: str = Field(
        default="http://127.0.0.1:8545", description="JSON-RPC endpoint of the chain"
    )
    host: str = Field(default="127.0.0.1", description="address to bind (loopback by default)")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port to bind")
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes")
    block_poll_ms: int = Field(
        default=250, ge=10, le=60_000, description="how often the latest block is fetched"
    )
    cache_entries: int = Field(
        default=4096,
        ge=16,
        description="cached responses kept per block (least recently used go first)",
    )
    cache_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024 * 1024,
        description="bytes of cached response bodies kept per block (least recently used go first)",
    )
    rpc_timeout_s: float = Field(default=5.0, gt=0, description="timeout of one JSON-RPC request")
    retry_after_s: int = Field(default=2, ge=1, description="Retry-After sent with 503 responses")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="an origin allowed by CORS (repeat the flag for more; none: CORS off)",
    )
    venue_nodes: list[str] = Field(
        default_factory=list,
        description="a validator node's HTTP URL, asked for GET /venue (repeat the flag for more)",
    )
    venue_file: Path | None = Field(
        default=None,
        description="a JSON list of {site, url} of the venue's nodes, read at each GET /venue "
        "(the devnet's venue writes it; absent: no venue running)",
    )
    access_log: bool = Field(default=False, description="log every request (costs throughput)")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="least severe log level written (the API's and uvicorn's)"
    )
    log_format: LogFormat = Field(
        default="json", description="json: one object per line; text: key=value for people"
    )
