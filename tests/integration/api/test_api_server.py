"""``redundancy-api`` as users run it: a real uvicorn process, its docs and its bad starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.integration.api.conftest import ApiWorld, LiveServer

API = str(Path(sys.executable).parent / "redundancy-api")
PATHS = {
    "/facilities",
    "/facilities/{facility}",
    "/validators",
    "/validators/{address}",
    "/committee",
    "/scores",
    "/scores/what-if",
    "/attestations",
    "/attestations/{tx}/{index}",
    "/attestations/{tx}/{index}/verify",
    "/latency",
    "/batches",
    "/health",
    "/metrics",
}


def test_serves_every_endpoint_over_http(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        for path in ("/facilities", "/scores", "/committee", "/health", "/batches"):
            response = http.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == "application/json"
        assert http.get("/scores/what-if?fail=power:ercot").json()["live"]
        assert http.get("/metrics").text.startswith("# HELP")
        assert "api_chain_block" in http.get("/metrics").text


def test_openapi_lists_every_endpoint_and_docs_load_nothing_from_elsewhere(
    live_server: LiveServer,
) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        schema = http.get("/openapi.json").json()
        assert set(schema["paths"]) == PATHS
        for name in ("FacilityPublic", "FacilitiesPublic", "ScoresPublic", "BatchPublic"):
            assert name in schema["components"]["schemas"]
        docs = http.get("/docs").text
        assert "swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
        assert http.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
        page = http.get("/")
        assert (
            page.status_code == 200
            and "default-src 'self'" in page.headers["content-security-policy"]
        )


def test_a_bad_deployment_file_is_one_line_and_exit_2(tmp_path: Path, api_world: ApiWorld) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"chain_id": 31337}')
    for args, words in (
        (["--deployment", str(tmp_path / "missing.json")], "not found"),
        (["--deployment", str(broken)], "lacks field(s)"),
        (["--deployment", str(api_world.path), "--port", "70000"], "port"),
        ([], "deployment"),
    ):
        proc = subprocess.run(
            [API, "--rpc-url", api_world.rpc_url, *args], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and words in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
