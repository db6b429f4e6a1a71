"""The API's settings, in one place: environment variables ``API_*`` (or an env file), which the
``redundancy-api`` command fills from its flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the API process needs; ``deployment`` has no default."""

    model_config = SettingsConfigDict(env_prefix="API_", env_file=None, extra="ignore")

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
    rpc_timeout_s: float = Field(default=5.0, gt=0, description="timeout of one JSON-RPC request")
    retry_after_s: int = Field(default=2, ge=1, description="Retry-After sent with 503 responses")
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed by CORS (empty: CORS off)"
    )
    access_log: bool = Field(default=False, description="log every request (costs throughput)")
    log_level: str = Field(default="info", description="uvicorn log level")
