"""Settings of one site's validator node and gateway, loaded like every deployable's
(``redundancy.settings``): a TOML file (``--config node.toml``, with a ``[chain]`` table), then
``VALIDATOR_*`` environment variables (``VALIDATOR_NODE_ID``, ``VALIDATOR_CHAIN__RPC_URL``), then
the ``validator`` command's flags (``--node-id``, ``--chain.rpc-url``), each overriding the one
before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import CliSuppress, SettingsConfigDict

from redundancy.jsonlog import LogFormat
from redundancy.settings import DeployableSettings
from redundancy.sitecondition import Condition


class ChainSettings(BaseModel):
    """Where settlement batches go. The node key signs batches; the submitter pays gas."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    rpc_url: str
    """JSON-RPC endpoint of the chain."""
    settlement: str
    """Address of the SettlementLedger contract."""
    selector: str
    """Address of the CommitteeSelector contract."""
    registry: str
    """Address of the RedundancyRegistry contract."""
    submit_grace: float = Field(default=5.0, gt=0)
    """Seconds each node after the first in a batch's submission rotation waits (times its
    place) before it commits the batch itself: one submission per batch when all are healthy."""
    confirmations: int = Field(default=0, ge=0)
    """Blocks a batch's commit must be under before the node counts it settled: only then does
    it delete its signature and let its held snapshot (and the log) move past the batch, so a
    reorganisation that undoes a commit finds it signed again at once. 0 on a dev chain; on a
    chain that can reorganise, at least its usual reorganisation depth."""
    max_fee_gwei: float | None = Field(default=None, ge=1e-9, allow_inf_nan=False)
    """The most the submitter pays per gas, in gwei (none if unset): while the chain asks more,
    batches wait (signed, in etcd), and a stuck commit is re-priced up to this and no further."""
    node_keystore: Path | None = None
    """Encrypted keystore of the node key, which signs batches."""
    node_password_file: Path | None = None
    """File holding the node keystore's passphrase."""
    dev_node_key: CliSuppress[str | None] = Field(default=None, repr=False)
    """Hex private key, for local dev chains only (production: ``node_keystore``); from the file
    or the environment only, never a command-line flag (``ps`` would show it)."""
    submitter_keystore: Path | None = None
    """Encrypted keystore of the account that submits batches and pays their gas."""
    submitter_password_file: Path | None = None
    """File holding the submitter keystore's passphrase."""
    dev_submitter_key: CliSuppress[str | None] = Field(default=None, repr=False)
    """Hex private key, for local dev chains only (production: ``submitter_keystore``); from the
    file or the environment only, never a command-line flag."""

    @model_validator(mode="after")
    def _keys_given(self) -> ChainSettings:
        for role in ("node", "submitter"):
            keystore = getattr(self, f"{role}_keystore") and getattr(self, f"{role}_password_file")
            if not keystore and getattr(self, f"dev_{role}_key") is None:
                raise ValueError(
                    f"the {role} key needs {role}_keystore and {role}_password_file "
                    f"(or dev_{role}_key on a local dev chain)"
                )
        return self


class SiteSettings(BaseModel):
    """The site watch (``validator.node.sitewatch``): what makes this site degraded, and how
    often to look. A degraded site's node moves etcd leadership away and its gateway takes no new
    orders."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    ups: str | None = None
    """This site's UPS as NUT names it (``ups@host:port``, what ``upsc`` takes); None: no UPS
    reading (the other conditions still count)."""
    ups_timeout: float = Field(default=1.0, gt=0)
    """Seconds upsd may take to answer one poll."""
    react_to: list[Condition] = ["ups", "clock", "disk"]
    """The families of reasons the venue reacts to: ``ups`` (on battery, low battery), ``clock``
    (kernel clock unsynchronised), ``disk`` (data disk nearly full)."""
    poll_interval: float = Field(default=0.25, gt=0)
    """Seconds between two looks."""
    disk_path: Path | None = None
    """The disk to watch (default: ``data_dir``'s)."""


NodeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
"""A node id: 1-64 letters, digits, ``.``, ``_`` or ``-`` (it ends etcd keys such as
``/venue/roots/<chunk>/<node>``: a ``/`` in it would make one node's keys match another's)."""


class Settings(DeployableSettings):
    """One node's and its gateway's settings; ``chain`` absent: no settlement batches."""

    model_config = SettingsConfigDict(env_prefix="VALIDATOR_", use_attribute_docstrings=True)

    node_id: NodeId
    """This node's id (its site), one of ``committee``."""
    etcd_endpoints: list[str] = Field(min_length=1)
    """This site's etcd member first; the others are used when it does not answer."""
    committee: list[NodeId] = Field(min_length=1)
    """Node ids of every node: root majorities and log compaction are over these."""
    data_dir: Path
    """Where the node keeps its snapshots."""
    host: str = "127.0.0.1"
    """Address the node and the gateway bind (loopback by default)."""
    node_port: int = Field(default=0, ge=0, le=65535)
    """TCP port of the node's read API (0: any free port)."""
    gateway_port: int = Field(default=0, ge=0, le=65535)
    """TCP port of the gateway (0: any free port)."""
    etcd_timeout: float = Field(default=1.5, gt=0)
    """Seconds one etcd request may take before the next endpoint is tried."""
    etcd_transport: Literal["grpc", "json"] = "grpc"
    """How the order path reaches etcd (the gateway's chunk writes, the node's watch): gRPC, or
    etcd's JSON gateway (the same answers; etcd spends a third more CPU per order on it in the
    whole venue, 2.7 times per large chunk alone; kept for A/B measurements). Other etcd calls
    always use the JSON gateway."""
    snapshot_every: int = Field(default=200, ge=1)
    """Chunks between snapshots; a multiple of ``batch_every``."""
    batch_every: int = Field(default=50, ge=1)
    """Chunks per settlement batch (and state-root comparison)."""
    max_chunk_messages: int = Field(default=5_000, ge=1)
    """The most messages a gateway puts in one chunk (one etcd write)."""
    max_inflight_writes: int = Field(default=2, ge=1)
    """Chunks a gateway has in flight to etcd at once."""
    pipeline_min_messages: int = Field(default=1, ge=1)
    """With a chunk write in flight, the fewest waiting messages for which a gateway starts
    another; fewer wait until no write is in flight, or until the newest has been out for
    ``write_attempt_timeout``. Across distance a commit waits for round trips and even one
    message is worth another write (1). On one host or a LAN a commit costs CPU rather than
    distance, and a second transaction for a message or two only splits the same orders into
    more, slower transactions: 64 there (what the harness uses for sites on one host)."""
    max_queued_messages: int = Field(default=100_000, ge=1)
    """The most messages a gateway holds waiting for etcd beyond those in flight; a request past
    it is refused at once (503, never committed), so an etcd outage under a steady flow cannot
    grow the gateway's memory without bound (a request larger than it is still taken when
    nothing waits)."""
    transfer_request_ids: bool = True
    """Whether the gateway logs a deposit or withdrawal that carries a ``request_id``. During a
    rolling upgrade from a version whose nodes do not read the field (a line holding one would
    be malformed to them, and they would diverge), set it false on every gateway until every
    node runs the new version: such a transfer is then refused (400 naming ``request_id``,
    nothing logged) and a client sends it without one."""
    log_compression: Literal["zstd", "zlib"] = "zstd"
    """How the gateway compresses the chunks it writes to the log: Zstandard (level 1), or zlib
    (level 1, the format before it; nodes read both). During a rolling upgrade from a version
    whose nodes read only zlib (they would skip a Zstandard chunk the others apply, and
    diverge), set ``zlib`` on every gateway until every node runs the new version."""
    write_deadline: float = Field(default=3.0, gt=0)
    """How long a gateway retries a chunk write etcd has not confirmed before it settles the
    write's fate (fences its key) and answers 503 (never committed) or 504 (outcome unknown)."""
    write_attempt_timeout: float = Field(default=0.2, gt=0)
    """How long one member may take to confirm a chunk write before the same write goes to the
    next member (to the same key, so at most once in the log): bounds how long a leader's death,
    or a paused or cut-off member, stalls writes beyond the election itself."""
    write_settle_timeout: float = Field(default=1.0, gt=0)
    """How long a gateway tries, after ``write_deadline``, to fence the key of a write it gives up
    on before it answers 504 (outcome unknown)."""
    gc_first_threshold: int = Field(default=10_000, ge=700, le=1_000_000)
    """Allocations between two of CPython's youngest-generation collections in the node and
    the gateway (Python's default is 700). A node applies the log a slice of hundreds of inputs
    at a time, and at 700 every collection found the slice's results alive and moved them to
    older generations, whose growth then set off full collections over the engine's whole
    state: with requests of 5,000 orders the three nodes spent 0.84-0.95 s of a benchmark run
    collecting at 700 and 0.14-0.20 s at 10,000 (``bench/bench_nodes.py``). Nothing is left
    uncollected: the older generations keep their thresholds."""
    log_retention: float = Field(default=10.0, gt=0)
    """Seconds a log key outlives the last snapshot that needs it (longer than a gateway's
    ``write_deadline``, so a retried write always finds its key)."""
    peers: list[str] = Field(default_factory=list)
    """Read-API URLs of other nodes, asked in order for their held snapshot when this node's
    log position has been compacted away (a new or replaced machine); a snapshot is taken only
    if most of the committee published its state root."""
    settle_hold_chunks: int = Field(default=1_000, ge=0)
    """With a settler: how far (in chunks) behind its newest snapshot a node holds the one at
    or before the ledger's last committed batch and publishes that position (the committee keeps
    the log from there, and a peer catching up is given it), so that a node that catches up by
    snapshot replays, and signs, every batch the ledger still lacks: with three equal stakes
    each needs every node. Further behind (the chain down for long), the newest: the log must
    not fill etcd's space quota (a chunk is at most ``max_chunk_messages`` messages,
    compressed: about 70 KB at 5,000, so 1,000 chunks are ~70 MB). 0: always the newest."""
    divergence_resyncs: int = Field(default=3, ge=0)
    """How many times a node whose state root differs from the committee's sets its snapshots
    aside and re-syncs from a peer's snapshot the committee vouches for (``peers``) before it
    stays stopped; 0: it stops at the first divergence and waits for a person."""
    chain: ChainSettings | None = None
    """Where settlement batches go (the ``[chain]`` table); absent: none are settled."""
    site: SiteSettings | None = None
    """The site watch (the ``[site]`` table); absent: the venue does not react to this site's
    condition."""
    venue_directory: Path | None = None
    """The venue directory (JSON: each site's name, facility id and etcd peer and client URLs):
    with ``chain``, the node makes the voting etcd members follow the on-chain committee, one
    change at a time (``validator.node.membership``); absent: the membership is left alone."""
    membership_interval: float = Field(default=2.0, gt=0)
    """Seconds between two membership checks against the committee."""
    learn_members_every: float = Field(default=0.0, ge=0)
    """Seconds between two looks at etcd's member list, adding members not in
    ``etcd_endpoints`` (a site the venue took in since start-up) to the endpoints the node and
    the gateway try; 0: only the configured endpoints."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Least severe log level written."""
    log_format: LogFormat = "json"
    """json: one object per line on stderr; text: key=value for people."""

    @model_validator(mode="after")
    def _snapshots_on_batch_boundaries(self) -> Settings:
        if self.snapshot_every % self.batch_every:
            raise ValueError("snapshot_every must be a multiple of batch_every")
        settled = self.write_deadline + self.write_settle_timeout
        if self.log_retention <= settled + self.etcd_timeout:
            raise ValueError(
                "log_retention must exceed write_deadline + write_settle_timeout + etcd_timeout"
            )
        if self.node_id not in self.committee:
            raise ValueError(f"node_id {self.node_id!r} is not in committee {self.committee}")
        return self
