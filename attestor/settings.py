"""Site settings: one TOML file per facility, overridden by ``ATTESTOR_*`` environment variables,
overridden by command-line flags (the core's loader, ``redundancy.settings``).

    attestor run --config examples/fra1.toml [--chain.rpc-url http://127.0.0.1:8545 ...]

Nested fields take ``__`` in the environment (``ATTESTOR_CHAIN__RPC_URL``) and ``.`` on the
command line; the keystore passphrase may come from ``ATTESTOR_KEYSTORE_PASSWORD`` instead of
``keys.password_file`` (never from a flag: the command line is readable by every user).
Relative paths, wherever they were given, are relative to the file's own directory (without a
file: to the working directory). ``load_settings`` reports every bad field at once, one line
each, naming the file and the field.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from eth_utils import is_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import CliSettingsSource, CliSuppress, SettingsConfigDict

from redundancy.deployment import Deployment
from redundancy.errors import ConfigError, DeploymentFileError
from redundancy.settings import DeployableSettings, settings_source
from redundancy.settings import load_settings as load_deployable

DAY = 86_400


def _address(value: str) -> str:
    if not is_address(value):
        raise ValueError(f"{value!r} is not an Ethereum address")
    return str(to_checksum_address(value))


def _endpoint(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not of the form host:port")
    return value


_ASN = re.compile(r"^as\d{1,10}$")


def _asn(value: str) -> str:
    folded = value.strip().lower()
    if not _ASN.match(folded):
        raise ValueError(f"{value!r} is not an AS number like 'AS3320'")
    return folded


Address = Annotated[str, AfterValidator(_address)]
Endpoint = Annotated[str, AfterValidator(_endpoint)]
Asn = Annotated[str, AfterValidator(_asn)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Seconds = Annotated[int, Field(gt=0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Refresh(Section):
    """How often a probe is re-run and signed, and how long its proof lives."""

    interval: Seconds = 6 * 3600
    lifetime: Seconds = DAY

    @model_validator(mode="after")
    def _refresh_before_expiry(self) -> Refresh:
        if self.interval >= self.lifetime:
            raise ValueError(
                f"interval ({self.interval} s) must be shorter than lifetime ({self.lifetime} s), "
                "or the proof expires before it is refreshed"
            )
        return self


class ChainSettings(Section):
    """Where the registry is. Give ``deployment`` (a deployment.json) or ``registry`` and
    ``chain_id``."""

    rpc_url: Annotated[str, Field(pattern=r"^https?://")]
    deployment: Path | None = None
    registry: Address | None = None
    chain_id: Annotated[int, Field(gt=0)] | None = None
    deploy_block: Annotated[int, Field(ge=0)] = 0
    timeout: Annotated[float, Field(gt=0)] = 10.0
    receipt_timeout: Annotated[float, Field(gt=0)] = 120.0
    startup_wait: Annotated[float, Field(ge=0)] = 10.0

    @model_validator(mode="after")
    def _one_source(self) -> ChainSettings:
        if self.deployment is None and (self.registry is None or self.chain_id is None):
            raise ValueError("give either deployment, or both registry and chain_id")
        return self


class KeySettings(Section):
    """The attestor's key files (``attestor init`` writes them under ``dir``)."""

    dir: Path = Path("keys")
    keystore: Path = Path("attestor-key.json")
    device_key: Path = Path("device-key.pem")
    device_cert: Path = Path("device-cert.pem")
    ca_cert: Path = Path("ca-cert.pem")
    password_file: Path | None = None


class IdentitySettings(Section):
    """Which device identity signs evidence: ``file`` (the Ed25519 device key under the
    operator's CA) or ``tpm`` (quotes by a TPM 2.0 attestation key certified by the TPM's
    manufacturer; ``attestor.tpm``). Certificate paths resolve under ``keys.dir``."""

    backend: Literal["file", "tpm"] = "file"
    tcti: str | None = Field(default=None, min_length=1, max_length=200)
    ak_handle: str = Field(default="0x81010002", pattern=r"^0x81[0-9a-fA-F]{6}$")
    ak_cert: Path = Path("tpm-ak-cert.pem")
    ek_cert: Path = Path("tpm-ek-cert.pem")
    ca_chain: Path = Path("tpm-ca-chain.pem")

    @model_validator(mode="after")
    def _tcti_for_tpm(self) -> IdentitySettings:
        if self.backend == "tpm" and self.tcti is None:
            raise ValueError("backend 'tpm' needs tcti (e.g. 'swtpm:host=127.0.0.1,port=2321')")
        return self


class PublisherSettings(Section):
    """Batching and retry of on-chain publication."""

    batch_size: Annotated[int, Field(ge=1, le=200)] = 25
    backoff_initial: Annotated[float, Field(gt=0)] = 1.0
    backoff_max: Annotated[float, Field(gt=0)] = 60.0
    expiry_margin: Annotated[int, Field(ge=0)] = 15
    retention_days: Annotated[int, Field(ge=1)] = 30

    @model_validator(mode="after")
    def _cap_above_start(self) -> PublisherSettings:
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must not be below backoff_initial")
        return self


class HealthSettings(Section):
    """The heartbeat: a health proof every interval, living two intervals."""

    heartbeat_interval: Seconds = 30


class PowerSettings(Refresh):
    grid: Text
    feeds: Annotated[int, Field(ge=1, le=16)]
    ups: bool
    generator: bool
    ups_name: Text | None = None
    upsc: str = "upsc"


class GeographySettings(Refresh):
    latitude_e6: Annotated[int, Field(ge=-90_000_000, le=90_000_000)]
    longitude_e6: Annotated[int, Field(ge=-180_000_000, le=180_000_000)]
    country: Annotated[str, Field(pattern=r"^[a-z]{2}$")]
    metro: Text
    lifetime: Seconds = 7 * DAY
    peer_retry_interval: Seconds = 300


class NetworkSettings(Refresh):
    asns: Annotated[list[Asn], Field(min_length=1)]


class ProviderSettings(Refresh):
    name: Text


class NodeSettings(Section):
    """A validator node at this facility; fields left out are read from this machine."""

    address: Address
    vendor: Text | None = None
    model: Text | None = None
    firmware: Text | None = None
    cpu_model: Text | None = None


class HardwareSettings(Refresh):
    nodes: list[NodeSettings] = []
    root: Path = Path("/")


class PeerSettings(Section):
    facility: Name
    address: Endpoint


class LatencySettings(Section):
    """The challenge-response endpoint and the peers to measure. The responder answers only
    the hosts in ``allow`` (default: the peers' hosts; ``["*"]``: anyone), so that it cannot be
    used to reflect traffic at a spoofed address."""

    listen: Endpoint = "127.0.0.1:7400"
    peers: list[PeerSettings] = []
    samples: Annotated[int, Field(ge=1, le=50)] = 5
    timeout: Annotated[float, Field(gt=0, le=10)] = 1.0
    emulated_delay_us: dict[str, Annotated[int, Field(ge=0, le=1_000_000)]] = {}
    allow: list[str] | None = None


class HttpSettings(Section):
    listen: Endpoint = "127.0.0.1:9400"


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


class OutboxSettings(Section):
    synchronous: Literal["full", "normal"] = "full"


class Settings(DeployableSettings):
    """Everything one site's attestor needs; required facts have no default."""

    model_config = SettingsConfigDict(env_prefix="ATTESTOR_")

    facility: Name
    data_dir: Path
    keystore_password: CliSuppress[SecretStr | None] = None
    chain: ChainSettings
    keys: KeySettings = KeySettings()
    identity: IdentitySettings = IdentitySettings()
    publisher: PublisherSettings = PublisherSettings()
    outbox: OutboxSettings = OutboxSettings()
    health: HealthSettings = HealthSettings()
    power: PowerSettings
    geography: GeographySettings
    network: NetworkSettings
    provider: ProviderSettings
    hardware: HardwareSettings = HardwareSettings()
    latency: LatencySettings = LatencySettings()
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()

    @model_validator(mode="after")
    def _peers_are_others(self) -> Settings:
        names = [p.facility for p in self.latency.peers]
        if self.facility in names:
            raise ValueError(f"latency.peers lists this facility ({self.facility}) itself")
        if len(set(names)) != len(names):
            raise ValueError("latency.peers lists a facility twice")
        return self

    # ---------------------------------------------------------------- derived

    def path(self, relative: Path) -> Path:
        """A key path resolved under ``keys.dir``."""
        return relative if relative.is_absolute() else self.keys.dir / relative

    def registry_target(self) -> tuple[int, str, int]:
        """(chain id, registry address, first block to scan) from the deployment or the fields."""
        chain = self.chain
        if chain.deployment is not None:
            dep = Deployment.read(chain.deployment)
            return dep.chain_id, dep.registry, dep.deploy_block
        assert chain.chain_id is not None and chain.registry is not None
        return chain.chain_id, chain.registry, chain.deploy_block


def _resolve(base: Path, value: Path) -> Path:
    return value if value.is_absolute() else (base / value).resolve()


def _resolved(settings: Settings, base: Path) -> Settings:
    keys = settings.keys
    key_dir = _resolve(base, keys.dir)
    new_keys = keys.model_copy(
        update={
            "dir": key_dir,
            "password_file": None
            if keys.password_file is None
            else _resolve(base, keys.password_file),
        }
    )
    chain = settings.chain
    if chain.deployment is not None:
        chain = chain.model_copy(update={"deployment": _resolve(base, chain.deployment)})
    hardware = settings.hardware.model_copy(update={"root": _resolve(base, settings.hardware.root)})
    return settings.model_copy(
        update={
            "data_dir": _resolve(base, settings.data_dir),
            "keys": new_keys,
            "chain": chain,
            "hardware": hardware,
        }
    )


def load_settings(
    path: Path | None,
    *,
    cli: CliSettingsSource[Any] | None = None,
    args: argparse.Namespace | None = None,
) -> Settings:
    """Load and validate a site's settings (the file ``path``, the environment, the command line
    of ``cli`` as parsed into ``args``); relative paths are resolved against the file's
    directory and the deployment file is read. Raises ConfigError with one line per bad field."""
    settings = load_deployable(Settings, path, cli=cli, args=args)
    resolved = _resolved(settings, path.parent.resolve() if path is not None else Path.cwd())
    if resolved.chain.deployment is not None:
        try:
            Deployment.read(resolved.chain.deployment)
        except DeploymentFileError as exc:
            raise ConfigError(settings_source(path), [f"chain.deployment: {exc}"]) from None
    return resolved
