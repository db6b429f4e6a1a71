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
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

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
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Refresh(Section):
    """How often a probe is re-run and signed, and how long its proof lives."""

    interval: Seconds = 6 * 3600
    """Seconds between runs of this probe (each run signs a new proof); shorter than
    ``lifetime``."""
    lifetime: Seconds = DAY
    """Seconds a proof of this kind lives (its ``expiresAt``); at most the registry's maximum for
    the kind."""

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
    """JSON-RPC endpoint of the chain (http or https)."""
    deployment: Path | None = None
    """A deployment.json naming the chain id and the contracts (``redundancy-deploy`` writes it)."""
    registry: Address | None = None
    """The registry's address, when no ``deployment`` is given."""
    chain_id: Annotated[int, Field(gt=0)] | None = None
    """The chain id, when no ``deployment`` is given (checked against the RPC)."""
    deploy_block: Annotated[int, Field(ge=0)] = 0
    """The first block to scan for the registry's events, when no ``deployment`` is given."""
    timeout: Annotated[float, Field(gt=0)] = 10.0
    """Seconds one JSON-RPC request may take."""
    receipt_timeout: Annotated[float, Field(gt=0)] = 120.0
    """Seconds to wait for a submitted transaction's receipt."""
    max_fee_gwei: Annotated[float, Field(ge=1e-9, allow_inf_nan=False)] | None = None
    """The most the attestor pays per gas, in gwei (none if unset): while the chain asks more,
    proofs wait in the outbox, and a stuck transaction is re-priced up to this and no further."""
    startup_wait: Annotated[float, Field(ge=0)] = 10.0
    """Seconds to wait at start for the RPC to answer; past that the daemon starts offline and
    runs the start-up checks at first contact."""

    @model_validator(mode="after")
    def _one_source(self) -> ChainSettings:
        if self.deployment is None and (self.registry is None or self.chain_id is None):
            raise ValueError("give either deployment, or both registry and chain_id")
        return self


class KeySettings(Section):
    """The attestor's key files (``attestor init`` writes them under ``dir``)."""

    dir: Path = Path("keys")
    """Directory of the key files (``attestor init --dir`` writes them); relative key paths are
    under it."""
    keystore: Path = Path("attestor-key.json")
    """The attestor's encrypted Ethereum (V3) keystore (its signing key; mode 0600)."""
    device_key: Path = Path("device-key.pem")
    """The device's encrypted Ed25519 key (PEM), which signs evidence envelopes."""
    device_cert: Path = Path("device-cert.pem")
    """The device certificate (PEM) issued by the site CA."""
    ca_cert: Path = Path("ca-cert.pem")
    """The site CA certificate (PEM) whose fingerprint the registry pins."""
    password_file: Path | None = None
    """A file whose first line is the keystores' passphrase (else ``keystore_password``, from
    the environment; with neither the daemon exits 3)."""


class IdentitySettings(Section):
    """Which device identity signs evidence: ``file`` (the Ed25519 device key under the
    operator's CA) or ``tpm`` (quotes by a TPM 2.0 attestation key certified by the TPM's
    manufacturer; ``attestor.tpm``). Certificate paths resolve under ``keys.dir``."""

    backend: Literal["file", "tpm"] = "file"
    """``file``: the Ed25519 device key signs evidence; ``tpm``: a TPM quote covers it."""
    tcti: str | None = Field(default=None, min_length=1, max_length=200)
    """How tpm2-tools reach the TPM (``swtpm:host=127.0.0.1,port=2321``,
    ``device:/dev/tpmrm0``); required with ``tpm``."""
    ak_handle: str = Field(default="0x81010002", pattern=r"^0x81[0-9a-fA-F]{6}$")
    """The persistent handle of the attestation key created under the endorsement key."""
    ak_cert: Path = Path("tpm-ak-cert.pem")
    """The AK's certificate (issued after credential activation against the EK)."""
    ek_cert: Path = Path("tpm-ek-cert.pem")
    """The TPM's endorsement-key certificate from its manufacturer."""
    ca_chain: Path = Path("tpm-ca-chain.pem")
    """The manufacturer's CA chain (PEM) up to the root whose fingerprint the registry pins."""

    @model_validator(mode="after")
    def _tcti_for_tpm(self) -> IdentitySettings:
        if self.backend == "tpm" and self.tcti is None:
            raise ValueError("backend 'tpm' needs tcti (e.g. 'swtpm:host=127.0.0.1,port=2321')")
        return self


class PublisherSettings(Section):
    """Batching and retry of on-chain publication."""

    batch_size: Annotated[int, Field(ge=1, le=200)] = 25
    """Proofs per ``submitAttestations`` transaction."""
    backoff_initial: Annotated[float, Field(gt=0)] = 1.0
    """Seconds before the first retry after a failed submission."""
    backoff_max: Annotated[float, Field(gt=0)] = 60.0
    """The most seconds between retries (the backoff doubles up to it)."""
    expiry_margin: Annotated[int, Field(ge=0)] = 15
    """Seconds before its expiry a proof is given up as too late to land (at most a quarter of
    its life)."""
    retention_days: Annotated[int, Field(ge=1)] = 30
    """Days final outbox rows (landed, refused, expired) are kept before pruning."""

    @model_validator(mode="after")
    def _cap_above_start(self) -> PublisherSettings:
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must not be below backoff_initial")
        return self


class HealthSettings(Section):
    """The heartbeat: a health proof every interval, living two intervals."""

    heartbeat_interval: Seconds = 30
    """Seconds between health proofs (each lives two intervals)."""


class PowerSettings(Refresh):
    grid: Text
    """The grid or balancing authority feeding the facility (the power domain)."""
    feeds: Annotated[int, Field(ge=1, le=16)]
    """Independent utility feeds."""
    ups: bool
    """Whether a UPS carries the load."""
    generator: bool
    """Whether a standby generator is installed."""
    ups_name: Text | None = None
    """The NUT UPS name to query with ``upsc`` (none: the UPS is not probed)."""
    upsc: str = "upsc"
    """The ``upsc`` program to run."""


class GeographySettings(Refresh):
    latitude_e6: Annotated[int, Field(ge=-90_000_000, le=90_000_000)]
    """Claimed latitude in micro-degrees (checked on-chain against signed round trips)."""
    longitude_e6: Annotated[int, Field(ge=-180_000_000, le=180_000_000)]
    """Claimed longitude in micro-degrees."""
    country: Annotated[str, Field(pattern=r"^[a-z]{2}$")]
    """ISO 3166 two-letter country code, lower case (the country domain)."""
    metro: Text
    """The metro area (the metro domain)."""
    lifetime: Seconds = 7 * DAY
    """Seconds a geography proof lives."""
    peer_retry_interval: Seconds = 300
    """Seconds before measuring again with a peer that did not answer (an answering peer is
    measured every ``interval``)."""


class NetworkSettings(Refresh):
    asns: Annotated[list[Asn], Field(min_length=1)]
    """Upstream ASNs (``AS3320``); the first is the network domain."""


class ProviderSettings(Refresh):
    name: Text
    """The hosting company (the provider domain)."""


class NodeSettings(Section):
    """A validator node at this facility; fields left out are read from this machine."""

    address: Address
    """The validator node's identity address (its key stays with the node)."""
    vendor: Text | None = None
    """Server vendor (none: read from this machine's DMI)."""
    model: Text | None = None
    """Server model (none: read from this machine's DMI)."""
    firmware: Text | None = None
    """Firmware version (none: read from this machine's DMI)."""
    cpu_model: Text | None = None
    """CPU model (none: read from /proc/cpuinfo)."""


class HardwareSettings(Refresh):
    nodes: list[NodeSettings] = []
    """The validator nodes at this facility, one ``[[hardware.nodes]]`` table each."""
    root: Path = Path("/")
    """Root of the file system the hardware probe reads (/sys, /proc); for tests."""


class PeerSettings(Section):
    facility: Name
    """The peer facility's name."""
    address: Endpoint
    """The peer's latency endpoint, ``host:port`` (UDP)."""


class LatencySettings(Section):
    """The challenge-response endpoint and the peers to measure. The responder answers only
    the hosts in ``allow`` (default: the peers' hosts; ``["*"]``: anyone), so that it cannot be
    used to reflect traffic at a spoofed address."""

    listen: Endpoint = "127.0.0.1:7400"
    """UDP ``host:port`` the challenge-response responder binds."""
    peers: list[PeerSettings] = []
    """The facilities to measure round trips with, ``{ facility, address }`` each."""
    samples: Annotated[int, Field(ge=1, le=50)] = 5
    """Round trips per measurement; the fastest is kept."""
    timeout: Annotated[float, Field(gt=0, le=10)] = 1.0
    """Seconds to wait for one response."""
    emulated_delay_us: dict[str, Annotated[int, Field(ge=0, le=1_000_000)]] = {}
    """Per challenger name, a one-way delay (microseconds) the responder adds, held twice: for
    emulating distance on one machine; declared in every answer."""
    allow: list[str] | None = None
    """Hosts the responder answers (none: the peers' hosts; ``["*"]``: anyone)."""


class HttpSettings(Section):
    listen: Endpoint = "127.0.0.1:9400"
    """TCP ``host:port`` of /metrics, /healthz and /latency (loopback by default)."""


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    """Least severe log level written."""
    format: Literal["json", "text"] = "json"
    """json: one object per line; text: key=value for people."""


class OutboxSettings(Section):
    synchronous: Literal["full", "normal"] = "full"
    """SQLite ``synchronous`` of the outbox: ``full`` survives power loss, ``normal`` only a
    crash."""


class Settings(DeployableSettings):
    """Everything one site's attestor needs; required facts have no default."""

    model_config = SettingsConfigDict(env_prefix="ATTESTOR_", use_attribute_docstrings=True)
    # key and identity file names are relative to keys.dir, not the file: ``_resolved`` does it
    paths_relative_to_file: ClassVar[bool] = False

    facility: Name
    """This site's facility name (its id is ``keccak256("facility:<name>")``)."""
    data_dir: Path
    """Where the outbox and state live."""
    keystore_password: CliSuppress[SecretStr | None] = None
    """The keystores' passphrase, from the environment only (``ATTESTOR_KEYSTORE_PASSWORD``);
    never a flag, and refused in the settings file."""
    chain: ChainSettings
    """Where the registry is."""
    keys: KeySettings = KeySettings()
    """The key files."""
    identity: IdentitySettings = IdentitySettings()
    """Which device identity signs evidence: the file key or a TPM."""
    publisher: PublisherSettings = PublisherSettings()
    """Batching and retry of publication."""
    outbox: OutboxSettings = OutboxSettings()
    """The durable outbox of signed proofs."""
    health: HealthSettings = HealthSettings()
    """The heartbeat."""
    power: PowerSettings
    """The power probe and its facts."""
    geography: GeographySettings
    """The claimed location."""
    network: NetworkSettings
    """The upstream networks."""
    provider: ProviderSettings
    """The hosting company."""
    hardware: HardwareSettings = HardwareSettings()
    """The validator nodes' hardware."""
    latency: LatencySettings = LatencySettings()
    """Round trips with peer sites."""
    http: HttpSettings = HttpSettings()
    """The local status endpoint."""
    log: LogSettings = LogSettings()
    """Logging."""

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
    if path is not None and path.is_file():  # before validation, which would echo the value
        try:
            in_file = "keystore_password" in tomllib.loads(path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            in_file = False  # the loader says what is wrong with the file
        if in_file:
            raise ConfigError(
                settings_source(path),
                [
                    "keystore_password: not in a settings file (such files are often readable "
                    "by others); use keys.password_file or ATTESTOR_KEYSTORE_PASSWORD"
                ],
            )
    settings = load_deployable(Settings, path, cli=cli, args=args)
    resolved = _resolved(settings, path.parent.resolve() if path is not None else Path.cwd())
    if resolved.chain.deployment is not None:
        try:
            Deployment.read(resolved.chain.deployment)
        except DeploymentFileError as exc:
            raise ConfigError(settings_source(path), [f"chain.deployment: {exc}"]) from None
    return resolved
