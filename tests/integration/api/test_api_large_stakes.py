"""Finding 6 of issue 12: a stake of 2^96 wei or more used to be accepted, after which every
``selectCommittee()`` reverted and ``/scores`` could not follow the committee. The registry now
refuses it where it is deposited, so the largest stake it holds still selects and scores."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from web3 import Web3

from devnet.world import ValidatorSpec
from redundancy.errors import ContractRevertError
from tests.integration.api.conftest import DAL1, ApiWorld, wait_synced
from tests.integration.conftest import advance_time

MAX_STAKE = 2**96 - 1
WHALE = ValidatorSpec("v-whale", "dal1", MAX_STAKE, ("dell", "poweredge r760", "1.6"))


def test_a_stake_above_the_cap_is_refused_and_the_largest_one_selects_and_scores(
    client: TestClient, api_world: ApiWorld, w3: Web3
) -> None:
    world, registry = api_world.world, api_world.world.registry
    assert registry.contract.functions.MAX_STAKE().call() == MAX_STAKE
    world.submit([world.hardware_proof(WHALE)], api_world.relayer)
    whale = WHALE.account()
    w3.provider.make_request("anvil_setBalance", [whale.address, hex(4 * MAX_STAKE)])  # type: ignore[arg-type]
    with pytest.raises(ContractRevertError) as deposit:
        registry.register_validator(DAL1.facility_id, WHALE.node(), MAX_STAKE + 1, sender=whale)
    assert (deposit.value.error_name, deposit.value.args_by_name) == (
        "RegistryStakeTooLarge",
        {"stake": MAX_STAKE + 1, "maxStake": MAX_STAKE},
    )
    assert whale.address not in registry.validator_addresses()
    registry.register_validator(DAL1.facility_id, WHALE.node(), MAX_STAKE - 1, sender=whale)
    registry.increase_stake(1, sender=whale)
    with pytest.raises(ContractRevertError) as increase:
        registry.increase_stake(1, sender=whale)
    assert (increase.value.error_name, increase.value.args_by_name) == (
        "RegistryStakeTooLarge",
        {"stake": MAX_STAKE + 1, "maxStake": MAX_STAKE},
    )
    assert registry.validator_info(whale.address).stake == MAX_STAKE
    advance_time(w3, 61)  # past the shortest epoch
    api_world.selector.select_committee()
    committee = api_world.selector.current_committee()
    assert committee.epoch == 2 and whale.address in committee.members
    wait_synced(client, w3)
    for path in ("/scores", "/committee", f"/validators/{whale.address}", "/validators"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
    body = client.get("/scores").json()
    assert body["epoch"] == 2 and int(body["total_stake_wei"]) > MAX_STAKE
