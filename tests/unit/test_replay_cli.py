"""The replay and log-generator scripts, run as subprocesses on generated logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devnet.loggen import generate
from validator.engine import Engine
from validator.engine.hashchain import HashChain

ROOT = Path(__file__).resolve().parents[2]
INPUTS = 6000


def run(script: str, *args: str, hash_seed: str = "0") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": hash_seed}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("logs") / "log.jsonl"
    done = run("genlog.py", str(INPUTS), str(path), "--seed", "11")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {INPUTS} inputs to {path} (seed 11, profile replay)"
    return path


def test_replay_prints_the_state_hash_and_a_summary(log_file: Path) -> None:
    done = run("replay.py", str(log_file), "--verify-snapshot")
    assert done.returncode == 0, done.stderr
    fields = {line[:26].strip(): line[26:] for line in done.stdout.splitlines()}
    assert fields["inputs"] == str(INPUTS)
    assert len(fields["state hash"]) == 64
    assert len(fields["chain head"]) == 64
    assert fields["conserved"] == "yes"
    assert fields["snapshot restores"] == "yes"
    assert int(fields["fills"].split()[0]) > 0


def test_replay_matches_an_in_process_run(log_file: Path) -> None:
    summary = json.loads(run("replay.py", str(log_file), "--json").stdout)
    engine, chain = Engine(), HashChain()
    for msg in generate(INPUTS, seed=11):
        chain.link(msg, engine.apply(msg))
    assert summary["state_hash"] == engine.state_hash().hex()
    assert summary["chain_head"] == chain.head.hex()


def test_replay_hashes_do_not_depend_on_the_hash_seed(log_file: Path) -> None:
    outputs = [
        json.loads(
            run("replay.py", str(log_file), "--json", "--every", "2000", hash_seed=seed).stdout
        )
        for seed in ("0", "1", "random")
    ]
    assert len(outputs[0]["checkpoints"]) == INPUTS // 2000
    assert outputs[0] == outputs[1] == outputs[2]


def test_snapshot_out_writes_a_restorable_snapshot(log_file: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "snap.json"
    summary = json.loads(
        run("replay.py", str(log_file), "--json", "--snapshot-out", str(snapshot)).stdout
    )
    assert Engine.restore(snapshot.read_bytes()).state_hash().hex() == summary["state_hash"]


def test_missing_log_is_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    done = run("replay.py", str(missing))
    assert done.returncode == 2
    assert done.stderr == f"replay: {missing}: cannot read: No such file or directory\n"
    assert done.stdout == ""


def test_malformed_line_is_named_by_file_and_line_number(log_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = log_file.read_bytes().splitlines(keepends=True)[:5]
    bad.write_bytes(b"".join([*lines, b'{"type":"deposit","account":"a","amount":1.5}\n']))
    done = run("replay.py", str(bad))
    assert done.returncode == 2
    assert done.stderr == f"replay: {bad}:6: field 'amount': must be an integer\n"


@pytest.mark.parametrize(("content", "reason"), [(b"\n", "empty line"), (b"{}\n", "field 'type'")])
def test_bad_first_line_is_reported_without_a_traceback(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    done = run("replay.py", str(bad))
    assert done.returncode == 2
    assert done.stderr.startswith(f"replay: {bad}:1: {reason}")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_genlog_is_deterministic_and_can_write_to_stdout(log_file: Path) -> None:
    done = run("genlog.py", str(INPUTS), "-", "--seed", "11")
    assert done.returncode == 0
    assert done.stdout.encode() == log_file.read_bytes()


def test_genlog_reports_an_unwritable_output(tmp_path: Path) -> None:
    done = run("genlog.py", "10", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert done.returncode == 2
    assert done.stderr.startswith("genlog: cannot write")
    assert "Traceback" not in done.stderr
