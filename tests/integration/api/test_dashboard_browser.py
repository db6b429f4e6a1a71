"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
facilities on the map coloured by freshness, RTT lines, stake bars, score and class; it follows
new blocks, loads nothing from outside the server, and leaves a screenshot artifact."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Route, sync_playwright
from web3 import Web3

from redundancy.domains import Kind
from tests.integration.api.conftest import AMS1, DAL1, FRA1, NRT1, ApiWorld, LiveServer

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("API_TEST_ARTIFACTS", ROOT / "artifacts-out"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium() -> str:
    found = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if found is None:  # fail, not skip: CI must run this test
        pytest.fail("Chromium not found: ./scripts/bootstrap.sh installs the Debian package")
    return found


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[BrowserContext, list[str]]]:
    """A fresh Chromium profile; every request off the loopback API server is refused and kept."""
    outside: list[str] = []
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium(),
            args=FLAGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )

        def guard(route: Route) -> None:
            if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        try:
            yield context, outside
        finally:
            context.close()


def markers(page: Page) -> dict[str, str]:
    return page.eval_on_selector_all(
        "#facilities-layer .site",
        "els => Object.fromEntries(els.map(e => [e.dataset.name, e.dataset.freshness]))",
    )


def test_dashboard_shows_facilities_links_stake_and_score_and_follows_blocks(
    browser: tuple[BrowserContext, list[str]],
    live_server: LiveServer,
    api_world: ApiWorld,
    w3: Web3,
) -> None:
    context, outside = browser
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(live_server.url + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)

    assert markers(page) == {
        "fra1": "fresh",
        "ams1": "fresh",
        "dal1": "fresh",
        "nrt1": "fresh",
        "lon1": "stale",
    }
    assert page.locator("#map path.land").count() == 1  # the outline shipped with the package
    # nrt1 claims Tokyo but its two-sided RTT to the landmark ams1 puts it within 150 km of it:
    # flagged on-chain, so ringed; no other facility is
    assert page.locator(".site[data-name=nrt1] circle.ring").count() == 1
    assert page.locator("#map circle.ring").count() == 1
    title = page.text_content(".site[data-name=nrt1] circle.facility title") or ""
    assert "geography flagged" in title
    nrt1 = page.inner_text(f"#facilities tr[data-id='0x{NRT1.facility_id.hex()}']")
    assert "flagged: RTT contradicts claim (landmark ams1)" in nrt1
    assert page.locator(".site[data-name=fra1] circle.disc").count() == 1  # around ams1
    links = page.eval_on_selector_all("#links line", "els => els.map(e => e.getAttribute('class'))")
    assert sorted(links) == ["link bad", "link ok", "link ok"]
    assert page.inner_text("#score") == "0"
    assert page.inner_text("#weakest") == "hardware"
    assert page.inner_text("#class") == "active-active"
    rows = page.eval_on_selector_all(".bar-row", "els => els.map(e => e.dataset.dimension)")
    assert rows == ["facility", "metro", "country", "power", "network", "provider", "hardware"]
    assert page.locator(".bar-row[data-dimension=facility] .seg").count() == 4
    assert page.locator(".third").count() == 7
    assert page.locator("#facilities tbody tr").count() == 5
    assert page.locator("#facilities .pill.identity.file").count() == 5  # no facility has a TPM
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    page.fill("#whatif-input", "power:ercot, country:de")
    page.click("#whatif button")
    page.wait_for_selector("#whatif-result:not(:empty)")
    assert "HALTS" in page.inner_text("#whatif-result")

    # a new block: the owner deactivates fra1, and the page redraws it as stale on its own
    api_world.world.registry.deactivate_facility(FRA1.facility_id)
    block = w3.eth.block_number
    page.wait_for_selector(f"body[data-block='{block}']", timeout=20_000)
    assert markers(page)["fra1"] == "stale"
    assert "deactivated" in page.inner_text(f"#facilities tr[data-id='0x{FRA1.facility_id.hex()}']")
    page.screenshot(path=str(ARTIFACTS / "dashboard-after-deactivation.png"), full_page=True)

    # ams1's UPS goes on battery: its next heartbeat says so, and the page marks it degraded
    world = api_world.world
    assert page.locator("#map .facility.degraded").count() == 0
    world.health_bodies["ams1"] = {"upsStatus": "OB", "clockSynced": True}
    try:
        world.submit(world.facility_proofs(AMS1, [Kind.HEALTH]), api_world.relayer)
    finally:
        del world.health_bodies["ams1"]
    page.wait_for_selector(f"body[data-block='{w3.eth.block_number}']", timeout=20_000)
    assert page.locator(".site[data-name=ams1] circle.facility.degraded").count() == 1
    assert page.locator("#map .facility.degraded").count() == 1
    row = page.inner_text(f"#facilities tr[data-id='0x{AMS1.facility_id.hex()}']")
    assert "degraded" in row and "ups-on-battery" in row
    page.screenshot(path=str(ARTIFACTS / "dashboard-degraded.png"), full_page=True)

    # dal1 binds its proofs to a TPM attestation key: its row says TPM, the others file key
    ak = hashlib.sha256(b"dal1's AK certificate").digest()
    world.registry.set_tpm_identity(DAL1.facility_id, ak)
    try:
        page.wait_for_selector(f"body[data-block='{w3.eth.block_number}']", timeout=20_000)
        dal1 = f"#facilities tr[data-id='0x{DAL1.facility_id.hex()}']"
        assert page.inner_text(f"{dal1} .pill.identity") == "TPM"
        assert ak.hex() in (page.get_attribute(f"{dal1} .pill.identity", "title") or "")
        assert page.locator("#facilities .pill.identity.file").count() == 4
    finally:
        world.registry.set_tpm_identity(DAL1.facility_id, bytes(32))

    assert outside == [] and errors == []


def test_docs_work_offline(
    browser: tuple[BrowserContext, list[str]], live_server: LiveServer
) -> None:
    context, outside = browser
    page = context.new_page()
    page.goto(live_server.url + "/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert page.locator(".swagger-ui .opblock").count() == 15
    assert outside == []
