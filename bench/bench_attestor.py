"""Attestor benchmark: signing rate, publish throughput with batching, idle daemon cost.

    python bench/bench_attestor.py [--runs 5] [--idle-seconds 60] [--idle-windows 3] [--json]

1. Signing, in-process: (a) EIP-712 signing alone over a ready evidence document; (b) the
   signing path: device-signed envelope + EIP-712 signature + outbox write, one SQLite commit per
   round of six proofs as the daemon does (synchronous=full); (c) the same with one commit per
   proof (full and normal); (d) with the health probe's host reads in front. Median of --runs.
2. Publishing, against a real anvil (automine): 200 proofs drained from the outbox by the
   publisher with batch sizes 1, 10, 25 and 50; proofs per second and gas per proof.
3. Idle daemon: two real ``attestor run`` processes (fra1 and ams1, peered, production-strength
   keystores) on a 10 s heartbeat; fra1's CPU and RSS read from /proc over --idle-windows windows
   of --idle-seconds each, after a warm-up. Median window; peak RSS since start (VmHWM).

4. Device identity, ``tpm`` against ``file``: envelopes quoted by a real swtpm (tpm2-tools, with
   their process start-ups and context flushes) and Ed25519 envelopes, per second; and the core
   verifier's rate for each (``--tpm-n`` quotes; ``--tpm-only`` runs just this part).

Two CPU cores are shared with other work: figures are medians, and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from eth_account import Account

from attestor.issuer import Issuer
from attestor.keys import CA_CERT, DEVICE_CERT, DEVICE_KEY, init_site, load_device_identity
from attestor.metrics import Metrics
from attestor.outbox import Outbox
from attestor.probes import Observation
from attestor.probes.health import DaemonStatus, HealthProbe
from attestor.publisher import Publisher
from attestor.registry_link import RegistryLink, Target
from attestor.settings import load_settings
from devnet.attestors import fund
from devnet.examples import example_site
from devnet.localchain import LocalChain, start_chain
from devnet.ports import free_port, free_udp_port
from devnet.siteconfig import site_toml
from redundancy.chain import connect
from redundancy.deployment import deploy
from redundancy.domains import Dimension, Kind, domain_id, facility_id
from redundancy.eip712 import Signer
from redundancy.keystore import load_account
from redundancy.proofs import make_proof, registry_domain_separator
from redundancy.registry import RegistryClient

GOAL_SIGN = 5_000
GOAL_IDLE_CPU_PCT = 1.0
GOAL_IDLE_RSS_MB = 100
PASSWORD = "bench passphrase"
ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ sites


def site_config(
    root: Path,
    name: str,
    rpc_url: str,
    deployment: Path,
    heartbeat: int,
    peer: tuple[str, int],
    latency_port: int,
    kdf_iterations: int | None = 1024,
) -> tuple[Path, str, bytes]:
    """Keys and a TOML config for an example site (its facts from examples/<name>.toml);
    (config, attestor, CA fingerprint). ``kdf_iterations=None`` makes a production-strength
    keystore (scrypt n = 2**18)."""
    keys = root / name / "keys"
    keys.mkdir(parents=True)
    (keys / "password").write_text(PASSWORD + "\n")
    (keys / "password").chmod(0o600)
    made = init_site(name, keys, PASSWORD, kdf_iterations=kdf_iterations)
    config = root / name / "site.toml"
    config.write_text(
        site_toml(
            example_site(name).facility,
            rpc_url=rpc_url,
            deployment=deployment,
            http_port=free_port(),
            latency_port=latency_port,
            heartbeat=heartbeat,
            peers=dict([peer]),
        )
    )
    return config, made.address, bytes.fromhex(made.ca_fingerprint)


def deployed(chain: LocalChain, root: Path) -> tuple[Any, Any, RegistryClient, Path]:
    w3 = connect(chain.rpc_url)
    owner = Account.from_key(chain.dev_keys[0])
    dep = deploy(w3, owner)
    path = root / "deployment.json"
    dep.write(path)
    return w3, owner, RegistryClient(w3, dep.registry, owner), path


# ---------------------------------------------------------------------------- signing


def health_observation(now: int) -> Observation:
    body = {
        "load1Milli": 120,
        "load5Milli": 90,
        "load15Milli": 80,
        "cpuCount": 2,
        "memAvailableMiB": 1800,
        "diskFreeMiB": 81_000,
        "diskTotalMiB": 258_000,
        "clockSynced": True,
        "clockOffsetMicros": -42,
        "clockMaxErrorMicros": 1200,
        "chainReachable": True,
        "chainHead": 123_456,
        "lastPublishedSequence": 4_242,
        "outboxDepth": 1,
        "uptimeSeconds": 86_400,
    }
    return Observation(Kind.HEALTH, body, now)


def rate(n: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return n / (time.perf_counter() - started)


def bench_signing(runs: int, n: int, work: Path) -> dict[str, float]:
    keys = work / "sign-keys"
    init_site("fra1", keys, PASSWORD, kdf_iterations=1024)
    identity = load_device_identity(keys / DEVICE_KEY, keys / DEVICE_CERT, keys / CA_CERT, PASSWORD)
    signer = Signer(os.urandom(32))
    ds = os.urandom(32)
    fid = facility_id("fra1")
    now = int(time.time())
    obs = health_observation(now)
    results: dict[str, list[float]] = {}

    def issuer(sync: str, tag: str) -> Issuer:
        box = Outbox(
            work / f"{tag}.sqlite", attestor=signer.address, domain_separator=ds, synchronous=sync
        )
        return Issuer("fra1", fid, identity, signer, ds, box)

    evidence = issuer("full", "ev").envelope(obs)

    health_proof = partial(
        make_proof,
        signer,
        ds,
        facility_id=fid,
        kind=Kind.HEALTH,
        issued_at=now,
        expires_at=now + 60,
    )

    def eip712_only() -> None:
        for i in range(n):
            health_proof(evidence=evidence, sequence=i + 1)

    def envelope_and_eip712() -> None:
        iss = issuer("full", "x")
        for i in range(n):
            health_proof(evidence=iss.envelope(obs), sequence=i + 1)

    probe = HealthProbe(work, lambda: DaemonStatus(1, 1, 0, 1))

    for r in range(runs):
        cases: dict[str, tuple[Callable[[], None], int]] = {
            "eip712_only": (eip712_only, n),
            "envelope_eip712": (envelope_and_eip712, n),
        }
        per_round = issuer("full", f"round{r}")
        cases["path_commit_per_round_full"] = (
            lambda iss=per_round: [iss.issue([(obs, 60)] * 6) for _ in range(n // 6)],
            n // 6 * 6,
        )
        bulk = issuer("full", f"bulk{r}")
        cases["path_commit_per_100_full"] = (
            lambda iss=bulk: [iss.issue([(obs, 60)] * 100) for _ in range(n // 100)],
            n // 100 * 100,
        )
        per_proof_full = issuer("full", f"ppf{r}")
        cases["path_commit_per_proof_full"] = (
            lambda iss=per_proof_full: [iss.issue([(obs, 60)]) for _ in range(n // 4)],
            n // 4,
        )
        per_proof_normal = issuer("normal", f"ppn{r}")
        cases["path_commit_per_proof_normal"] = (
            lambda iss=per_proof_normal: [iss.issue([(obs, 60)]) for _ in range(n // 4)],
            n // 4,
        )
        with_probe = issuer("full", f"probe{r}")
        cases["path_with_health_probe"] = (
            lambda iss=with_probe: [
                iss.issue([(probe.observe(now), 60) for _ in range(6)]) for _ in range(n // 6)
            ],
            n // 6 * 6,
        )
        for name, (run, count) in cases.items():
            results.setdefault(name, []).append(rate(count, run))  # type: ignore[arg-type]
    return {name: statistics.median(values) for name, values in results.items()}


# ------------------------------------------------------------------------- device identity


def bench_identity(n: int, work: Path) -> dict[str, float]:
    """Envelopes per second quoted by a swtpm vs signed by the Ed25519 file key, and the core
    verifier's rate for each kind."""
    from attestor.tpm import TpmIdentity
    from devnet.swtpm import AK_HANDLE, Manufacturer, start_tpm
    from redundancy.devicecert import fingerprint, parse_envelope, verify_envelope
    from redundancy.tpmquote import TpmContext, tpm_hardware_domain, verify_tpm_envelope

    keys = work / "id-keys"
    init_site("fra1", keys, PASSWORD, kdf_iterations=1024)
    identity = load_device_identity(keys / DEVICE_KEY, keys / DEVICE_CERT, keys / CA_CERT, PASSWORD)
    manufacturer = Manufacturer(work / "manufacturer")
    tpm = start_tpm("fra1", manufacturer, "bench-firmware", directory=work / "tpm")
    try:
        now = int(time.time()) + 60
        block = (os.urandom(32), now - 10)
        quoting = TpmIdentity(
            tpm.tpm.tcti, AK_HANDLE, tpm.ak_cert, tpm.ek_cert, tpm.ca_chain, lambda: (1, block[0])
        )
        obs = health_observation(now)
        ds, signer = os.urandom(32), Signer(os.urandom(32))
        box = Outbox(work / "id.sqlite", attestor=signer.address, domain_separator=ds)
        file_issuer = Issuer("fra1", facility_id("fra1"), identity, signer, ds, box)
        tpm_issuer = Issuer("fra1", facility_id("fra1"), identity, signer, ds, box, tpm=quoting)
        file_env: list[bytes] = []
        tpm_env: list[bytes] = []
        file_rate = rate(
            n * 20, lambda: file_env.extend(file_issuer.envelope(obs) for _ in range(n * 20))
        )
        tpm_rate = rate(n, lambda: tpm_env.extend(tpm_issuer.envelope(obs) for _ in range(n)))
        certs = {fingerprint(c): c for c in (tpm.ak_cert, tpm.ek_cert, *tpm.ca_chain)}
        pins = {manufacturer.root_fingerprint}
        docs = [parse_envelope(e) for e in tpm_env]
        pcr0 = bytes.fromhex(docs[0]["tpm"]["pcrs"]["0"])
        ctx = TpmContext(certs.get, pins, {1: block}.get, now, "health", tpm_hardware_domain(pcr0))
        assert all(r.ok for r in verify_tpm_envelope(docs[0], ctx))

        def verify_tpm() -> None:
            for doc in docs:
                verify_tpm_envelope(doc, ctx)

        ca_fp = fingerprint(identity.ca_cert)

        def verify_file() -> None:
            for env in file_env:
                verify_envelope(env, identity.cert, identity.ca_cert, ca_fp)

        return {
            "file_envelopes_per_s": file_rate,
            "tpm_envelopes_per_s": tpm_rate,
            "file_verifications_per_s": rate(len(file_env), verify_file),
            "tpm_verifications_per_s": rate(len(docs), verify_tpm),
            "tpm_evidence_bytes": float(len(tpm_env[0])),
            "file_evidence_bytes": float(len(file_env[0])),
        }
    finally:
        tpm.tpm.stop()


def print_identity(ident: dict[str, float]) -> None:
    print("\ndevice identity: evidence envelopes per second (in-process, one at a time)")
    print("  backend   sign/quote/s   verify/s   evidence bytes")
    for b in ("file", "tpm"):
        print(
            f"  {b:7}   {ident[f'{b}_envelopes_per_s']:>12,.1f}   "
            f"{ident[f'{b}_verifications_per_s']:>8,.0f}   {ident[f'{b}_evidence_bytes']:>6.0f}"
        )


# ------------------------------------------------------------------------- publishing


def bench_publish(runs: int, proofs: int, work: Path) -> list[dict[str, float]]:
    rows = []
    with start_chain("anvil") as chain:
        for batch in (1, 10, 25, 50):
            rates, gas = [], []
            for r in range(runs):
                root = work / f"pub-{batch}-{r}"
                root.mkdir()
                w3, owner, registry, dep_path = deployed(chain, root)
                config, address, ca = site_config(
                    root, "fra1", chain.rpc_url, dep_path, 30, ("ams1", 1), free_udp_port()
                )
                registry.register_facility(facility_id("fra1"), address, ca)
                fund(w3, owner, [address], 10**20)
                settings = load_settings(config)
                settings = settings.model_copy(
                    update={
                        "publisher": settings.publisher.model_copy(update={"batch_size": batch})
                    }
                )
                keys = settings.keys.dir
                account = load_account(keys / "attestor-key.json", PASSWORD)
                identity = load_device_identity(
                    keys / DEVICE_KEY, keys / DEVICE_CERT, keys / CA_CERT, PASSWORD
                )
                chain_id, reg, first = settings.registry_target()
                ds = registry_domain_separator(chain_id, reg)
                box = Outbox(root / "o.sqlite", attestor=account.address, domain_separator=ds)
                link = RegistryLink(
                    Target(chain.rpc_url, chain_id, reg, first, 10, 60),
                    settings,
                    account,
                    identity,
                    facility_id("fra1"),
                    ds,
                )
                link.client()  # certificates published before timing
                publisher = Publisher(box, link, settings.publisher, Metrics(), lambda k, s: None)
                issuer = Issuer(
                    "fra1", facility_id("fra1"), identity, Signer(bytes(account.key)), ds, box
                )
                now = int(time.time())
                power = Observation(
                    Kind.POWER,
                    {"grid": "x", "feeds": 2, "ups": True, "generator": True},
                    now,
                    domain_id=domain_id(Dimension.POWER, "x"),
                )
                issuer.issue([(power, 3600)] * proofs)
                start_block = w3.eth.block_number
                started = time.perf_counter()
                while publisher.step() == 0.0:
                    pass
                elapsed = time.perf_counter() - started
                assert box.depth() == 0 and registry.last_sequence(account.address) == proofs
                used = sum(
                    int(w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"])
                    for b in range(start_block + 1, w3.eth.block_number + 1)
                    for tx in w3.eth.get_block(b, full_transactions=True)["transactions"]
                )
                rates.append(proofs / elapsed)
                gas.append(used / proofs)
                box.close()
            rows.append(
                {
                    "batch_size": batch,
                    "proofs_per_s": statistics.median(rates),
                    "gas_per_proof": statistics.median(gas),
                    "evidence_bytes": len(issuer.envelope(power)),
                }
            )
    return rows


# ------------------------------------------------------------------------------- idle


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_memory_mb(pid: int) -> tuple[float, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def bench_idle(seconds: float, windows: int, warmup: float, work: Path) -> dict[str, Any]:
    with start_chain("anvil") as chain:
        w3, owner, registry, dep_path = deployed(chain, work)
        ports = {"fra1": free_udp_port(), "ams1": free_udp_port()}
        configs = {}
        for name, peer in (("fra1", "ams1"), ("ams1", "fra1")):
            config, address, ca = site_config(
                work, name, chain.rpc_url, dep_path, 10, (peer, ports[peer]), ports[name], None
            )
            registry.register_facility(facility_id(name), address, ca)
            fund(w3, owner, [address], 10**20)
            configs[name] = config
        procs = {
            name: subprocess.Popen(
                [sys.executable, "-m", "attestor", "run", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=(work / f"{name}.log").open("wb"),
                cwd=ROOT,
            )
            for name, config in configs.items()
        }
        try:
            pid = procs["fra1"].pid
            time.sleep(warmup)
            samples = []
            for _ in range(windows):
                cpu0, t0 = proc_cpu_seconds(pid), time.monotonic()
                time.sleep(seconds)
                cpu1, t1 = proc_cpu_seconds(pid), time.monotonic()
                rss, hwm = proc_memory_mb(pid)
                samples.append(
                    {"cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0), "rss_mb": rss, "peak_rss_mb": hwm}
                )
            fresh = not registry.facility_status(facility_id("fra1")).stale
        finally:
            for p in procs.values():
                p.send_signal(signal.SIGTERM)
            for p in procs.values():
                p.wait(timeout=30)
    return {
        "windows": samples,
        "cpu_pct": statistics.median(s["cpu_pct"] for s in samples),
        "rss_mb": statistics.median(s["rss_mb"] for s in samples),
        "peak_rss_mb": max(s["peak_rss_mb"] for s in samples),
        "site_fresh": fresh,
    }


# ------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per signing/publish case")
    parser.add_argument("--sign-n", type=int, default=6_000, help="proofs per signing run")
    parser.add_argument("--publish-n", type=int, default=200, help="proofs per publish run")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="idle window length")
    parser.add_argument("--idle-windows", type=int, default=3, help="idle windows")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring")
    parser.add_argument("--tpm-n", type=int, default=40, help="TPM quotes to time")
    parser.add_argument("--tpm-only", action="store_true", help="only the device-identity part")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    if args.tpm_only:
        work = Path(tempfile.mkdtemp(prefix="bench-attestor-"))
        try:
            ident = bench_identity(args.tpm_n, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps({"identity": ident}, indent=1)) if args.json else print_identity(ident)
        return 0
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    work = Path(tempfile.mkdtemp(prefix="bench-attestor-"))
    try:
        signing = bench_signing(args.runs, args.sign_n, work)
        publishing = bench_publish(max(1, (args.runs + 1) // 2), args.publish_n, work)
        idle = bench_idle(args.idle_seconds, args.idle_windows, args.warmup, work)
        ident = bench_identity(args.tpm_n, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        report = {"signing": signing, "publishing": publishing, "idle": idle, "identity": ident}
        print(json.dumps({**report, "load_before": load_before}, indent=1))
        return 0
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"attestor benchmark (medians; {os.cpu_count()} CPUs shared; load average "
        f"{' '.join(load_before)} before, {' '.join(load_after)} after)\n"
    )
    print("signing, proofs/s                                         median    goal")
    labels = {
        "eip712_only": "EIP-712 signature only (ready evidence)",
        "envelope_eip712": "device envelope + EIP-712",
        "path_commit_per_round_full": "envelope + EIP-712 + outbox, commit/6 proofs, full",
        "path_commit_per_100_full": "envelope + EIP-712 + outbox, commit/100 proofs, full",
        "path_commit_per_proof_full": "envelope + EIP-712 + outbox, commit/proof, full",
        "path_commit_per_proof_normal": "envelope + EIP-712 + outbox, commit/proof, normal",
        "path_with_health_probe": "health probe reads + the above, commit/6 proofs",
    }
    for key, label in labels.items():
        print(f"  {label:54} {signing[key]:>7,.0f}  >= {GOAL_SIGN:,}")
    print(f"\npublishing {args.publish_n} proofs through the publisher to anvil (automine)")
    print("  batch size   proofs/s   gas/proof   (evidence bytes)")
    for row in publishing:
        print(
            f"  {row['batch_size']:>10}   {row['proofs_per_s']:>8,.0f}   "
            f"{row['gas_per_proof']:>9,.0f}   ({row['evidence_bytes']})"
        )
    print(
        f"\nidle daemon, 10 s heartbeat, one peer; {args.idle_windows} x {args.idle_seconds:.0f} s "
        f"after {args.warmup:.0f} s warm-up (from /proc of the real process)"
    )
    print(
        f"  CPU   {idle['cpu_pct']:.2f} % of a core   (goal < {GOAL_IDLE_CPU_PCT} %)  windows: "
        + ", ".join(f"{w['cpu_pct']:.2f}" for w in idle["windows"])
    )
    print(
        f"  RSS   {idle['rss_mb']:.1f} MB   (goal < {GOAL_IDLE_RSS_MB} MB); peak since start "
        f"{idle['peak_rss_mb']:.1f} MB (the keystore's scrypt, n = 2**18, at start-up)"
    )
    print(f"  site fresh at the end: {idle['site_fresh']}")
    print_identity(ident)
    return 0


if __name__ == "__main__":
    sys.exit(main())
