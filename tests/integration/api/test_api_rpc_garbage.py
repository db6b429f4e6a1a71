"""An RPC endpoint (or a proxy in front of it) that answers 200 with something that is not a
JSON-RPC object: web3 let the decoding error (a ``ValueError``) through, so the API answered
500 and the keeper's loop ended. Found by review; both now treat it as an unreachable chain."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from eth_account import Account
from fastapi.testclient import TestClient
from web3 import Web3

from api.app import create_app
from keeper.watcher import GasBound, Keeper
from redundancy.chain import web3_for
from redundancy.errors import ChainUnreachableError
from redundancy.selector import SelectorClient
from tests.integration.api.conftest import ApiWorld, api_settings

GARBAGE = {
    "html": b"<html><body>502 Bad Gateway</body></html>",
    "not utf-8": b"\xff\xfe{",
    "nested": b"[" * 100_000,
    "a number": b"7",
}
WRONG_RESULT = b'{"jsonrpc":"2.0","id":0,"result":"zz"}'
"""JSON-RPC, but not what the call returns: web3's formatter raises a plain ValueError."""


class Proxy:
    """Forwards JSON-RPC to anvil, or answers ``reply`` to the methods in ``methods``."""

    def __init__(self, upstream: str) -> None:
        self.methods: set[str] = set()
        self.reply = GARBAGE["html"]
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                method = json.loads(body).get("method")
                if method in proxy.methods or "*" in proxy.methods:
                    out = proxy.reply
                else:
                    headers = {"Content-Type": "application/json"}
                    out = requests.post(upstream, data=body, headers=headers, timeout=10).content
                self.send_response(200)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def proxy(api_world: ApiWorld) -> Iterator[Proxy]:
    p = Proxy(api_world.rpc_url)
    yield p
    p.server.shutdown()


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_a_reply_that_is_not_json_rpc_is_an_unreachable_chain(proxy: Proxy, kind: str) -> None:
    w3 = web3_for(proxy.url)
    assert w3.eth.block_number > 0
    proxy.methods, proxy.reply = {"*"}, GARBAGE[kind]
    with pytest.raises(ChainUnreachableError, match="is unreachable: the reply is not"):
        w3.eth.block_number  # noqa: B018


def test_the_api_answers_503_not_500(proxy: Proxy, api_world: ApiWorld, w3: Web3) -> None:
    settings = api_settings(api_world.path, proxy.url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        proxy.methods = {"eth_call"}
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]  # a block not cached
        deadline = time.monotonic() + 10
        while (answer := client.get("/committee")).status_code == 200:
            assert time.monotonic() < deadline, "the API never saw the new block"
            time.sleep(0.1)
        assert answer.status_code == 503, answer.text
        assert "the reply is not JSON" in answer.text
        proxy.methods = set()


def test_the_keeper_loop_goes_on_through_garbage_replies(
    proxy: Proxy, api_world: ApiWorld, caplog: pytest.LogCaptureFixture
) -> None:
    account = Account.create()
    kw3 = web3_for(proxy.url)
    selector = SelectorClient(kw3, api_world.deployment.selector, account)
    keeper = Keeper(kw3, selector, account, GasBound(8_000_000), poll_interval=0.02)
    keeper.retry_interval = 0.02
    proxy.methods = {"*"}
    failed: list[BaseException] = []
    flip = threading.Timer(0.5, lambda: setattr(proxy, "reply", WRONG_RESULT))
    flip.start()  # halfway through the outage: JSON, but a wrong result

    def loop() -> None:
        try:
            keeper.run()
        except BaseException as exc:  # the loop used to end with JSONDecodeError
            failed.append(exc)

    thread = threading.Thread(target=loop, daemon=True)
    with caplog.at_level("INFO", logger="keeper"):
        thread.start()
        time.sleep(1.0)
        during = caplog.text
        proxy.methods = set()  # the endpoint heals
        time.sleep(1.0)
        keeper.stopped = True
        thread.join(timeout=10)
    assert not thread.is_alive() and failed == []
    assert "chain.unreachable" in during and "keeper.decision" not in during
    assert "keeper.chain_error" in during  # the wrong result: logged, and the loop went on
    assert "keeper.decision" in caplog.text  # it read the chain again once the replies were JSON
