"""Fixtures shared by every test folder: the real local chain."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from devnet.localchain import LocalChain, start_chain
from devnet.swtpm import Manufacturer, ProvisionedTpm, check_tools, start_tpm

# No Hypothesis deadline anywhere (tests that need other settings still set them): a case's
# wall time on a loaded machine (a full collection of the suite's heap, another process on the
# core) says nothing about the code, and one case over the 200 ms default fails the test as
# "Unreliable test timings" even though every assertion held.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")


@pytest.fixture(scope="session")
def anvil_chain() -> Iterator[LocalChain]:
    """A real anvil on a free loopback port, for the whole session."""
    with start_chain("anvil") as chain:
        yield chain


@pytest.fixture(scope="session")
def tpm_manufacturer(tmp_path_factory: pytest.TempPathFactory) -> Manufacturer:
    """A TPM manufacturer's local CA (swtpm_localca), shared by every software TPM of the run.
    swtpm, swtpm-tools and tpm2-tools are required (scripts/bootstrap.sh installs them): a
    missing tool fails the test, it never skips."""
    check_tools()
    return Manufacturer(tmp_path_factory.mktemp("tpm-manufacturer"))


@pytest.fixture(scope="session")
def soft_tpms(
    tpm_manufacturer: Manufacturer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ProvisionedTpm]]:
    """Three running software TPMs: fra1 and ams1 run the same firmware image, lon1 another."""
    images = {"fra1": "acme-uefi-2.19.1", "ams1": "acme-uefi-2.19.1", "lon1": "acme-uefi-2.20.0"}
    started: dict[str, ProvisionedTpm] = {}
    try:
        for site, image in images.items():
            started[site] = start_tpm(
                site, tpm_manufacturer, image, directory=tmp_path_factory.mktemp(f"tpm-{site}")
            )
        yield started
    finally:
        for tpm in started.values():
            tpm.tpm.stop()
