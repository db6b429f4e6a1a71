"""Access control: every owner-only function, called by anyone but the owner, is refused.

The functions are found by reading the sources: every function declared with the ``onlyOwner``
modifier in ``contracts/*.sol`` or in a base contract they inherit (OpenZeppelin's
``Ownable2Step``: ``transferOwnership``), so a new one is covered without editing this file.
For each, Hypothesis draws arguments from its ABI types and a caller that is not the owner: a
random funded key, the pending owner (a transfer started, not accepted), a facility's attestor,
another development account. The call, estimated and mined unestimated, must revert with
``OwnableUnauthorizedAccount(caller)``, log nothing and change nothing in the contract; the
owner, the pending owner, the policies and the records its arguments name read the same after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3

from devnet.localchain import LocalChain
from redundancy.chain import ContractClient, merged_abi
from redundancy.deployment import deploy
from redundancy.domains import facility_id
from redundancy.registry import RegistryClient
from redundancy.selector import SelectorClient
from tests.adversarial import tally
from tests.adversarial.conftest import dev_account
from tests.adversarial.mutations import ORDER, matches
from tests.adversarial.rawtx import refusals, rpc

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
NODE_MODULES = ROOT / "node_modules"

# ---------------------------------------------------------------------- reading the sources

SERVED_THROUGH = {
    extension: client.CONTRACT_NAME
    for client in (RegistryClient, SelectorClient)
    for extension in client.EXTENSIONS
}
"""Extension contracts (reached through a deployed contract's fallback) -> that contract."""


def full_abi(contract: str) -> list[dict[str, Any]]:
    """The ABI callable on a deployed contract: its own and its extensions'."""
    return merged_abi([contract] + [e for e, on in SERVED_THROUGH.items() if on == contract])


_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_IMPORT = re.compile(r'^\s*import\s+\{[^}]*\}\s+from\s+"([^"]+)"\s*;', re.M)
_CONTRACT = re.compile(r"^\s*(abstract\s+)?contract\s+(\w+)(?:\s+is\s+([^{]+))?\{", re.M)
_FUNCTION = re.compile(r"\bfunction\s+(\w+)\s*\(([^)]*)\)([^{;]*)[{;]")


@dataclass(frozen=True)
class OwnerOnly:
    """A function guarded by ``onlyOwner``, as declared: name, parameter count, where."""

    contract: str  # the deployed contract it is callable on
    name: str
    params: int
    declared_in: str

    def __str__(self) -> str:
        return f"{self.contract}.{self.name}"


@dataclass
class _Source:
    abstract: bool
    bases: list[str]
    guarded: list[tuple[str, int]]  # (name, parameter count) declared here with onlyOwner


def _resolve(importer: Path, target: str) -> Path:
    return NODE_MODULES / target if target.startswith("@") else (importer.parent / target)


def _read(path: Path, into: dict[str, _Source], seen: set[Path]) -> None:
    path = path.resolve()
    if path in seen:
        return
    seen.add(path)
    text = _COMMENT.sub("", path.read_text())
    for target in _IMPORT.findall(text):
        _read(_resolve(path, target), into, seen)
    heads = list(_CONTRACT.finditer(text))
    for i, head in enumerate(heads):
        body = text[head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        guarded = [
            (m.group(1), len([p for p in m.group(2).split(",") if p.strip()]))
            for m in _FUNCTION.finditer(body)
            if re.search(r"\bonlyOwner\b", m.group(3))
        ]
        bases = [b.strip().split("(")[0].strip() for b in (head.group(3) or "").split(",")]
        into[head.group(2)] = _Source(bool(head.group(1)), [b for b in bases if b], guarded)


def owner_only_functions() -> list[OwnerOnly]:
    """Every ``onlyOwner`` function of every deployable contract in contracts/, inherited ones
    included (the most derived declaration of each name and arity)."""
    sources: dict[str, _Source] = {}
    seen: set[Path] = set()
    own = sorted(CONTRACTS.glob("*.sol"))
    for path in own:
        _read(path, sources, seen)
    ours = {m.group(2) for p in own for m in _CONTRACT.finditer(_COMMENT.sub("", p.read_text()))}
    found: list[OwnerOnly] = []
    seen_on: set[tuple[str, str, int]] = set()
    for name in sorted(ours):
        if sources[name].abstract:
            continue
        # an extension's functions run on the contract that delegates to it, and only there
        deployed = SERVED_THROUGH.get(name, name)
        functions: dict[tuple[str, int], str] = {}
        queue = [name]
        while queue:  # most derived first: a base's declaration never replaces an override
            current = queue.pop(0)
            for key in sources[current].guarded:
                functions.setdefault(key, current)
            queue += [b for b in sources[current].bases if b in sources]
        for (f, n), where in sorted(functions.items()):
            if (deployed, f, n) not in seen_on:
                seen_on.add((deployed, f, n))
                found.append(OwnerOnly(deployed, f, n, where))
    return found


OWNER_ONLY = owner_only_functions()


def test_the_sources_declare_the_known_owner_only_functions() -> None:
    names = {str(f) for f in OWNER_ONLY}
    assert OWNER_ONLY, "no onlyOwner function found in contracts/: the parser is broken"
    assert {
        "RedundancyRegistry.setFreshnessPolicy",
        "RedundancyRegistry.registerFacility",
        "RedundancyRegistry.setCaFingerprint",
        "RedundancyRegistry.setTpmManufacturerCa",
        "RedundancyRegistry.deactivateFacility",
        "RedundancyRegistry.reactivateFacility",
        "RedundancyRegistry.renounceOwnership",
        "RedundancyRegistry.transferOwnership",
        "CommitteeSelector.setDiversityPolicy",
        "CommitteeSelector.setGeographyPolicy",
        "CommitteeSelector.setLandmark",
        "CommitteeSelector.removeLandmark",
        "CommitteeSelector.transferOwnership",
    } <= names, names
    # functions guarded otherwise (or not at all) are not taken for owner-only ones
    assert not {"RedundancyRegistry.submitAttestation", "RedundancyRegistry.rotateAttestor"} & names
    transfer = next(f for f in OWNER_ONLY if str(f) == "RedundancyRegistry.transferOwnership")
    assert transfer.declared_in == "Ownable2Step"


# ------------------------------------------------------------------ arguments from the ABI


def abi_values(item: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of one ABI parameter type, as web3 encodes them."""
    kind: str = item["type"]
    if kind.endswith("]"):
        inner, _, size = kind[:-1].rpartition("[")
        element = abi_values({**item, "type": inner})
        if size:
            return st.lists(element, min_size=int(size), max_size=int(size))
        return st.lists(element, max_size=4)
    if kind == "tuple":
        return st.tuples(*(abi_values(c) for c in item["components"]))
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: Web3.to_checksum_address(b))
    if kind == "bool":
        return st.booleans()
    if kind == "string":
        return st.text(max_size=64)
    if kind == "bytes":
        return st.binary(max_size=256)
    if kind.startswith("bytes"):
        n = int(kind[5:])
        return st.binary(min_size=n, max_size=n)
    if kind.startswith("uint"):
        return st.integers(0, (1 << int(kind[4:] or 256)) - 1)
    if kind.startswith("int"):
        bits = int(kind[3:] or 256)
        return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    raise AssertionError(f"no strategy for ABI type {kind}")


def _signature(item: dict[str, Any]) -> str:
    def canonical(p: dict[str, Any]) -> str:
        kind: str = p["type"]
        if kind.startswith("tuple"):
            return "(" + ",".join(canonical(c) for c in p["components"]) + ")" + kind[5:]
        return kind

    return f"{item['name']}({','.join(canonical(p) for p in item['inputs'])})"


def abi_of(function: OwnerOnly) -> dict[str, Any]:
    (item,) = [
        i
        for i in full_abi(function.contract)
        if i.get("type") == "function"
        and i["name"] == function.name
        and len(i["inputs"]) == function.params
    ]
    return item


# ------------------------------------------------------------------------------- the chain


@dataclass
class Bench:
    w3: Web3
    clients: dict[str, ContractClient]
    callers: list[LocalAccount]  # non-owners with a role of some kind
    owner: str
    pending: str


@pytest.fixture(scope="module")
def bench(chain: LocalChain, w3: Web3, owner: LocalAccount) -> Bench:
    dep = deploy(w3, owner)
    registry = RegistryClient(w3, dep.registry, owner)
    selector = SelectorClient(w3, dep.selector, owner)
    attestor, pending = dev_account(chain, 3), dev_account(chain, 6)
    registry.register_facility(facility_id("acl1"), attestor.address, bytes(32))
    for client in (registry, selector):
        client.tx.send(client.contract.functions.transferOwnership(pending.address), owner)
    callers = [attestor, pending, dev_account(chain, 1), dev_account(chain, 9)]
    clients: dict[str, ContractClient] = {
        "RedundancyRegistry": registry,
        "CommitteeSelector": selector,
    }
    return Bench(w3, clients, callers, owner.address, pending.address)


def _view(client: ContractClient, name: str, *args: Any) -> Any:
    try:
        return client.tx.call(client.contract.functions[name](*args).call)
    except Exception as exc:  # a view that refuses these arguments: its refusal is its state
        return f"{type(exc).__name__}: {exc}"


def observed(client: ContractClient, args: tuple[Any, ...]) -> list[Any]:
    """What the call could have changed, read back: owner, pending owner, every policy, and
    every view of one ``bytes32`` (a facility's record, status, landmark) at each bytes32
    argument."""
    abi = full_abi(type(client).CONTRACT_NAME)
    views = [i for i in abi if i.get("type") == "function" and i["stateMutability"] == "view"]
    out = [_view(client, "owner"), _view(client, "pendingOwner")]
    out += [
        _view(client, i["name"]) for i in views if not i["inputs"] and i["name"].endswith("Policy")
    ]
    ids = [a for a in args if isinstance(a, bytes) and len(a) == 32]
    for item in views:
        if [p["type"] for p in item["inputs"]] == ["bytes32"]:
            out += [_view(client, item["name"], i) for i in ids]
    return out


strangers = st.integers(1, ORDER - 1).map(lambda k: Account.from_key(k.to_bytes(32, "big")))


@pytest.mark.parametrize("function", OWNER_ONLY, ids=str)
@tally.timeout("access", 1 / len(OWNER_ONLY))
@tally.profile("access", 1 / len(OWNER_ONLY))
@given(data=st.data())
def test_an_owner_only_function_called_by_anyone_else_is_refused_and_changes_nothing(
    bench: Bench, function: OwnerOnly, data: st.DataObject
) -> None:
    client = bench.clients[function.contract]
    item = abi_of(function)
    args = data.draw(st.tuples(*(abi_values(p) for p in item["inputs"])), label="arguments")
    caller: LocalAccount = data.draw(st.sampled_from(bench.callers) | strangers, label="caller")
    assert caller.address not in (bench.owner,), "the owner is not an attacker"
    rpc(bench.w3, "anvil_setBalance", caller.address, hex(10**18))
    before = observed(client, args)
    fn = client.contract.get_function_by_signature(_signature(item))(*args)
    expected = ("OwnableUnauthorizedAccount", {"account": caller.address.lower()})
    for err in refusals(client, fn, caller):
        assert matches(err, expected), (function, err)
    assert observed(client, args) == before
    tally.count("access")
