"""``redundancy-api`` as users run it: a real uvicorn process, its docs, its logs, its settings
from a file and flags handed to several workers, and its bad starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from tests.integration.api.conftest import ApiWorld, LiveServer, serving

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
    "/venue",
    "/metrics",
}


def json_lines(log: Path) -> list[dict[str, Any]]:
    """The JSON log lines of a server's output (its start-up banner on stdout is plain text)."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_serves_every_endpoint_over_http(live_server: LiveServer) -> None:
    with requests.Session() as http:
        for path in ("/facilities", "/scores", "/committee", "/health", "/batches"):
            response = http.get(live_server.url + path, timeout=30)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == "application/json"
        assert http.get(live_server.url + "/scores/what-if?fail=power:ercot").json()["live"]
        metrics = http.get(live_server.url + "/metrics").text
        assert metrics.startswith("# HELP") and "api_chain_block" in metrics


def test_openapi_lists_every_endpoint_and_docs_load_nothing_from_elsewhere(
    live_server: LiveServer,
) -> None:
    with requests.Session() as http:
        schema = http.get(live_server.url + "/openapi.json", timeout=30).json()
        assert set(schema["paths"]) == PATHS
        for name in ("FacilityPublic", "FacilitiesPublic", "ScoresPublic", "BatchPublic"):
            assert name in schema["components"]["schemas"]
        docs = http.get(live_server.url + "/docs").text
        assert "swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
        bundle = http.get(live_server.url + "/static-offline-docs/swagger-ui-bundle.js")
        assert bundle.status_code == 200
        page = http.get(live_server.url + "/")
        assert (
            page.status_code == 200
            and "default-src 'self'" in page.headers["content-security-policy"]
        )


def test_the_api_and_uvicorn_log_json_lines(live_server: LiveServer) -> None:
    events = json_lines(live_server.log)
    by_logger = {e["logger"]: e for e in events}
    assert "Uvicorn running on " + live_server.url in by_logger["uvicorn.error"]["event"]
    assert by_logger["api.chain"]["event"].startswith("connected to chain 31337")
    assert all({"ts", "level", "logger", "event"} <= set(e) for e in events)
    assert "uvicorn.access" not in by_logger  # the access log is off by default


def test_two_workers_serve_the_settings_of_a_file_and_repeated_flags(
    tmp_path: Path, api_world: ApiWorld
) -> None:
    config = tmp_path / "api.toml"
    config.write_text(
        f'deployment = "{api_world.path}"\nrpc_url = "{api_world.rpc_url}"\n'
        'cors_origins = ["https://from-the-file.example"]\nlog_format = "text"\n'
    )
    flags = ["--cors-origins", "https://a.example", "--cors-origins", "https://b.example"]
    args = ["--config", str(config), "--workers", "2", "--log-format", "json", *flags]
    with serving(tmp_path / "api.log", *args) as server:
        for origin in ("https://a.example", "https://b.example"):
            for _ in range(6):  # new connections, spread over both workers
                response = requests.get(server.url + "/scores", headers={"Origin": origin})
                assert response.status_code == 200
                assert response.headers["access-control-allow-origin"] == origin
        file_only = {"Origin": "https://from-the-file.example"}
        assert (
            "access-control-allow-origin"
            not in requests.get(server.url + "/scores", headers=file_only).headers
        )
    # each worker process set up the JSON logging itself (flags over the file's "text")
    started = [e for e in json_lines(server.log) if "Started server process" in e["event"]]
    assert len(started) == 2, server.log.read_text()


def test_a_bad_deployment_file_is_one_line_and_exit_2(tmp_path: Path, api_world: ApiWorld) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"chain_id": 31337}')
    for args, words in (
        (["--deployment", str(tmp_path / "missing.json")], "not found"),
        (["--deployment", str(broken)], "lacks field(s)"),
        (["--deployment", str(api_world.path), "--port", "70000"], "port"),
        ([], "deployment: Field required"),
        (["--config", str(tmp_path / "absent.toml")], "absent.toml: file not found"),
    ):
        proc = subprocess.run(
            [API, "--rpc-url", api_world.rpc_url, *args], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and words in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
