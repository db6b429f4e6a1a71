"""The compiled engine (mypyc) and the pure-Python reference: both load as asked, and they agree
on every result and every state hash, on random logs and on a long generated one.

Each implementation runs in its own worker process (``devnet.enginediff``): they are the same
modules, so one process holds only one of them. The build under test is the one the package's
install made (``setup.py``); a missing or stale build fails these tests, it never makes them
compare the reference with itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from devnet.enginediff import Worker, checked_hash, compare, first_difference
from devnet.loggen import BENCHMARK, generate
from tests.unit.test_engine_properties import LISTINGS, logs
from tests.unit.validator_support import FUNDS, accepted, deposit, funded_engine, sell
from validator.engine.codec import encode_message
from validator.engine.messages import Deposit, Message
from validator.engine.primitives import AccountId, Cash
from validator.native import COMPILED_DIR, stale_reason

ROOT = Path(__file__).resolve().parents[2]
SETUP: list[Message] = [
    *LISTINGS[:3],
    *(deposit(name, FUNDS) for name in ("alice", "bob", "carol")),
    Deposit(AccountId("dave"), Cash(1500)),
]
"""The start of ``test_engine_properties``: three listings, four funded accounts."""


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[Worker, Worker]]:
    pure, compiled = Worker("pure"), Worker("compiled")
    yield pure, compiled
    pure.close()
    compiled.close()


def lines_of(log: list[Message]) -> list[bytes]:
    return [encode_message(msg) for msg in log]


@given(log=logs)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_compiled_and_pure_agree_on_every_result_and_state_hash_of_random_logs(
    workers: tuple[Worker, Worker], log: list[Message]
) -> None:
    lines = lines_of([*SETUP, *log])
    pure, compiled = (worker.run(lines, every=5, reset=True) for worker in workers)
    assert (pure.implementation, compiled.implementation) == ("pure", "compiled")
    assert len(pure.results) == len(lines)
    assert len(pure.hashes) == len(range(5, len(lines), 5)) + 1  # and after the last input
    assert first_difference(pure, compiled) is None


def test_a_difference_would_be_named_by_its_input() -> None:
    """The comparison itself: one different result line is reported with its position."""
    from devnet.enginediff import Outcome

    a = Outcome("pure", ["x", "y", "z"], [(3, "h")])
    b = Outcome("compiled", ["x", "Y", "z"], [(3, "h")])
    assert first_difference(a, b, 10) == "input 12: pure gave y, compiled gave Y"
    c = Outcome("compiled", ["x", "y", "z"], [(3, "other")])
    assert first_difference(a, c) == "state hash after input 3: pure h, compiled other"


def test_compiled_and_pure_agree_on_a_long_generated_log(tmp_path: Path) -> None:
    """A whole venue life: listings, deposits and withdrawals, bad input, expiries settled and
    relisted, then the benchmark's order flow over 200 series and 2,000 accounts."""
    path = tmp_path / "log.jsonl"
    log = generate(60_000, seed=21)
    path.write_bytes(b"\n".join(lines_of(log)) + b"\n")
    inputs, checkpoints, difference = compare(path, every=1000, batch=20_000)
    assert difference is None
    assert (inputs, checkpoints) == (60_000, 60)
    flow = tmp_path / "flow.jsonl"
    flow.write_bytes(b"\n".join(lines_of(generate(40_000, seed=22, profile=BENCHMARK))) + b"\n")
    assert compare(flow, every=1000, batch=20_000) == (40_000, 40, None)


@pytest.mark.slow
def test_compiled_and_pure_agree_on_a_million_benchmark_inputs(tmp_path: Path) -> None:
    path = tmp_path / "flow.jsonl"
    path.write_bytes(b"\n".join(lines_of(generate(1_000_000, seed=1, profile=BENCHMARK))) + b"\n")
    assert compare(path, every=10_000, batch=50_000) == (1_000_000, 100, None)


# ------------------------------------------------------------- choosing the implementation


def _loaded(choice: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VALIDATOR_ENGINE"}
    if choice is not None:
        env["VALIDATOR_ENGINE"] = choice
    script = (
        "import json, validator.engine as e, validator.engine.orders as o, "
        "validator.engine.messages as m\n"
        "print(json.dumps([e.IMPLEMENTATION, o.__file__, m.__file__]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )


def test_the_install_built_the_compiled_engine_from_the_current_sources() -> None:
    assert stale_reason() is None


@pytest.mark.parametrize(
    ("choice", "implementation"), [(None, "compiled"), ("compiled", "compiled"), ("pure", "pure")]
)
def test_the_environment_chooses_the_implementation(
    choice: str | None, implementation: str
) -> None:
    done = _loaded(choice)
    assert done.returncode == 0, done.stderr
    loaded, orders, messages = json.loads(done.stdout)
    assert loaded == implementation
    assert orders.endswith(".py") == (implementation == "pure")
    assert messages.endswith("messages.py")  # shared by both: never compiled


def test_an_unknown_choice_is_one_clear_error() -> None:
    done = _loaded("fast")
    assert done.returncode != 0
    assert "VALIDATOR_ENGINE='fast': must be one of auto, compiled, pure" in done.stderr


def test_a_build_older_than_its_sources_is_never_used(tmp_path: Path) -> None:
    stale = tmp_path / "_compiled"
    stale.mkdir()
    manifest = json.loads((COMPILED_DIR / "manifest.json").read_text())
    for name in os.listdir(COMPILED_DIR):
        (stale / name).symlink_to(COMPILED_DIR / name)
    (stale / "manifest.json").unlink()
    manifest["sources"]["orders.py"] = "0" * 64
    (stale / "manifest.json").write_text(json.dumps(manifest))
    assert stale_reason(stale) == "sources changed since the build: orders.py"
    (stale / "manifest.json").unlink()
    assert stale_reason(stale) == f"no compiled engine in {stale}"


def test_the_engine_diff_catches_a_change_the_kept_snapshot_missed() -> None:
    """``devnet.enginediff`` checks every state hash it compares against a snapshot written from
    scratch: a change the engine did not mark (made here behind its back) is an error there."""
    engine = funded_engine()
    accepted(engine.apply(sell("bob", 1, 50, 3)))
    assert checked_hash(engine) == engine.state_hash().hex()
    engine._state.accounts_by_id[AccountId("bob")].cash += 1
    with pytest.raises(ValueError, match="kept up to date differs from the one written from"):
        checked_hash(engine)
