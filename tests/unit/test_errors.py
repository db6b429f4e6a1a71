"""Error messages that end up in logs carry no secrets."""

from __future__ import annotations

import pytest

from redundancy.errors import ChainUnreachableError, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("http://[::1]:8545/", "http://[::1]:8545"),
        ("https://mainnet.example/v3/0123456789abcdef", "https://mainnet.example/..."),
        ("https://user:secret@rpc.example/", "https://rpc.example/..."),
        ("wss://rpc.example:443?apikey=0123", "wss://rpc.example:443/..."),
        ("not a url", "<unparseable URL>"),
        ("http://rpc.example:99999", "<unparseable URL>"),
    ],
)
def test_an_rpc_url_is_shown_without_path_query_or_user(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_an_unreachable_endpoint_names_its_host_not_its_key() -> None:
    exc = ChainUnreachableError("https://rpc.example/v3/0123456789abcdef", "timed out")
    assert str(exc) == "RPC endpoint https://rpc.example/... is unreachable: timed out"
    assert "0123456789abcdef" not in str(exc)
    assert exc.rpc_url.endswith("0123456789abcdef")  # kept for the caller, not printed


def test_an_unreachable_endpoint_keeps_the_key_out_of_the_reason_too() -> None:
    """requests' own messages carry the URL or its path: "401 Client Error: Unauthorized for
    url: https://host/v3/<key>", "Max retries exceeded with url: /v3/<key> (Caused by ...)"."""
    key = "0123456789abcdef"
    for reason in (
        f"HTTPError: 401 Client Error: Unauthorized for url: https://rpc.example/v3/{key}",
        f"SSLError: HTTPSConnectionPool(host='rpc.example', port=443): Max retries exceeded "
        f"with url: /v3/{key} (Caused by SSLError('bad handshake'))",
    ):
        exc = ChainUnreachableError(f"https://rpc.example/v3/{key}", reason)
        assert key not in str(exc) and key not in exc.reason, str(exc)
        assert "rpc.example" in str(exc)
