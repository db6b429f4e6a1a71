"""The order path's etcd calls over gRPC (hand-encoded messages, ``validator.node.etcdwire``)
against a real etcd cluster: the same requests through etcd's JSON gateway give the same answers,
and a failed attempt says truly whether the request may have reached a member (the sequencer's
"refused" versus "outcome unknown" rests on it)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devnet.etcdcluster import ETCD, EtcdCluster, start_cluster
from devnet.ports import free_port
from validator.node import etcdwire
from validator.node.errors import EtcdUnavailableError
from validator.node.etcd import EtcdClient, EtcdCompactedError, KeyValue, Transport


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with start_cluster(["fra1", "ams1", "dal1"], tmp_path_factory.mktemp("etcd")) as c:
        yield c


async def _write(client: EtcdClient, key: bytes, value: bytes) -> tuple[int, bytes | None]:
    loop = asyncio.get_running_loop()
    return await client.create_or_read(key, value, hedge_after=0.5, until=loop.time() + 5)


async def _watched(
    client: EtcdClient, start: bytes, end: bytes, rev: int, n: int
) -> list[KeyValue]:
    got: list[KeyValue] = []
    async with asyncio.timeout(5):
        async for kv in client.watch(start, end, rev):
            got.append(kv)
            if len(got) == n:
                return got
    return got


def test_create_if_absent_answers_the_same_over_grpc_and_json(cluster: EtcdCluster) -> None:
    async def run() -> dict[Transport, list[tuple[int, bytes | None]]]:
        out: dict[Transport, list[tuple[int, bytes | None]]] = {}
        for transport in ("grpc", "json"):
            client = EtcdClient(cluster.endpoints, transport=transport)
            try:
                key = b"/t/txn/" + transport.encode()
                big = bytes(range(256)) * 2_000  # 512 KB, every byte value
                out[transport] = [
                    await _write(client, key, big),  # created
                    await _write(client, key, big),  # found: an earlier attempt of ours
                    await _write(client, key, b"other"),  # found: someone else's value
                ]
            finally:
                await client.aclose()
        return out

    out = asyncio.run(run())
    for transport, (created, again, other) in out.items():
        assert created[0] > 0 and created[1] == bytes(range(256)) * 2_000, transport
        assert again == created, transport  # same revision, same bytes
        assert other == created, transport  # the stored value, not ours
    assert out["grpc"][0][0] != out["json"][0][0]  # two writes, two revisions


def test_a_write_below_the_floor_is_refused_alike_over_grpc_and_json(
    cluster: EtcdCluster,
) -> None:
    """The chunk write's guard: created only while the floor key's value is below the bound;
    refused (no key, (0, None)) once the floor reached it, and when the floor key is missing
    (etcd fails a value comparison on a missing key). ``raise_to`` only ever raises."""

    async def run() -> dict[Transport, list[tuple[int, bytes | None]]]:
        out: dict[Transport, list[tuple[int, bytes | None]]] = {}
        for transport in ("grpc", "json"):
            client = EtcdClient(cluster.endpoints, transport=transport)
            floor = b"/t/floor/" + transport.encode()
            key = b"/t/guarded/" + transport.encode() + b"/"

            async def write(
                n: int, client: EtcdClient = client, key: bytes = key, floor: bytes = floor
            ) -> tuple[int, bytes | None]:
                return await client.create_or_read(
                    key + b"%020d" % n,
                    b"chunk",
                    hedge_after=0.5,
                    until=asyncio.get_running_loop().time() + 5,
                    floor=(floor, b"%020d" % n),
                )

            try:
                results = [await write(1)]  # no floor key: refused
                await client.raise_to(floor, b"%020d" % 5)
                await client.raise_to(floor, b"%020d" % 3)  # never lowered
                results += [await write(5), await write(6)]  # at the floor: refused; above: ok
                stored = await client.get(floor)
                assert stored is not None and stored.value == b"%020d" % 5
                out[transport] = results
            finally:
                await client.aclose()
        return out

    for transport, (missing, at, above) in asyncio.run(run()).items():
        assert missing == (0, None), transport
        assert at == (0, None), transport
        assert above[0] > 0 and above[1] == b"chunk", transport


def test_watch_over_grpc_delivers_what_the_json_watch_does_and_skips_deletes(
    cluster: EtcdCluster,
) -> None:
    async def run() -> tuple[list[KeyValue], list[KeyValue], int]:
        client = EtcdClient(cluster.endpoints, transport="json")
        try:
            first = await client.put(b"/t/watch/a", b"1")
            await client.put(b"/t/watch/b", b"\x00\xff" * 40_000)
            await client.delete_keys([b"/t/watch/a"])
            await client.put(b"/t/watch/c", b"")
            await client.put(b"/t/watchx", b"outside the range")
            by_json = await _watched(client, b"/t/watch/", b"/t/watch0", first, 3)
            grpc_client = EtcdClient(cluster.endpoints, transport="grpc")
            try:
                by_grpc = await _watched(grpc_client, b"/t/watch/", b"/t/watch0", first, 3)
            finally:
                await grpc_client.aclose()
            return by_json, by_grpc, first
        finally:
            await client.aclose()

    by_json, by_grpc, first = asyncio.run(run())
    assert by_grpc == by_json
    assert [(kv.key, kv.mod_revision - first) for kv in by_grpc] == [
        (b"/t/watch/a", 0),
        (b"/t/watch/b", 1),
        (b"/t/watch/c", 3),  # the delete at +2 is filtered out
    ]
    assert by_grpc[1].value == b"\x00\xff" * 40_000 and by_grpc[2].value == b""


def test_a_grpc_watch_from_a_compacted_revision_says_so(cluster: EtcdCluster) -> None:
    async def run() -> str:
        client = EtcdClient(cluster.endpoints, transport="grpc")
        try:
            rev = await client.put(b"/t/compact/a", b"1")
            await client.put(b"/t/compact/a", b"2")
            await client.compact(rev + 1)
            with pytest.raises(EtcdCompactedError) as caught:
                await _watched(client, b"/t/compact/", b"/t/compact0", rev, 1)
            return str(caught.value)
        finally:
            await client.aclose()

    assert "compacted up to" in asyncio.run(run())


def test_a_grpc_write_to_a_killed_member_is_known_not_to_have_reached_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Connection refused: nothing was sent, so the sequencer may say "refused" for sure."""
    with start_cluster(["fra1", "ams1", "dal1"], tmp_path_factory.mktemp("etcd")) as c:
        c.kill("fra1")

        async def run() -> EtcdUnavailableError:
            client = EtcdClient([c.member("fra1").client_url], transport="grpc")
            try:
                with pytest.raises(EtcdUnavailableError) as caught:
                    loop = asyncio.get_running_loop()
                    await client.create_or_read(b"k", b"v", hedge_after=0.2, until=loop.time() + 1)
                return caught.value
            finally:
                await client.aclose()

        error = asyncio.run(run())
        assert error.maybe_applied is False, error
        assert "Connection refused" in str(error)


def test_a_grpc_write_to_a_paused_member_may_have_reached_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """No answer: the request may sit in the member and commit later (settle, do not refuse)."""
    with start_cluster(["fra1", "ams1", "dal1"], tmp_path_factory.mktemp("etcd")) as c:
        c.pause("fra1")
        try:

            async def run() -> EtcdUnavailableError:
                client = EtcdClient([c.member("fra1").client_url], transport="grpc")
                try:
                    with pytest.raises(EtcdUnavailableError) as caught:
                        loop = asyncio.get_running_loop()
                        await client.create_or_read(
                            b"k", b"v", hedge_after=0.2, until=loop.time() + 0.6
                        )
                    return caught.value
                finally:
                    await client.aclose()

            error = asyncio.run(run())
        finally:
            c.resume("fra1")
        assert error.maybe_applied is True, error


def test_the_grpc_watch_moves_to_the_next_member_when_its_member_dies(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with start_cluster(["fra1", "ams1", "dal1"], tmp_path_factory.mktemp("etcd")) as c:

        async def run() -> tuple[str, str, KeyValue]:
            client = EtcdClient(c.endpoints, transport="grpc")
            try:
                rev = await client.put(b"/t/move/a", b"1")
                before = client.endpoint
                watch = client.watch(b"/t/move/", b"/t/move0", rev)
                assert (await anext(watch)).value == b"1"
                c.kill("fra1")
                with pytest.raises(EtcdUnavailableError):
                    async with asyncio.timeout(5):
                        await anext(watch)
                got = await _watched(client, b"/t/move/", b"/t/move0", rev, 1)
                return before, client.endpoint, got[0]
            finally:
                await client.aclose()

        before, after, kv = asyncio.run(run())
        assert before == c.member("fra1").client_url
        assert after != before
        assert (kv.key, kv.value) == (b"/t/move/a", b"1")


def test_a_grpc_watch_ends_when_its_member_loses_the_leader(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A member cut off from its peers is up but has nothing new to send: its watch asks for a
    leader ("hasleader"), so etcd ends it and the node moves to another member, where a watch
    without it would wait in silence for as long as the cut lasts."""
    with start_cluster(["fra1", "ams1", "dal1"], tmp_path_factory.mktemp("etcd")) as c:

        async def run() -> tuple[float, str, str]:
            client = EtcdClient(
                [c.member("dal1").client_url, c.member("fra1").client_url], transport="grpc"
            )
            try:
                rev = await client.put(b"/t/lead/a", b"1")
                watch = client.watch(b"/t/lead/", b"/t/lead0", rev)
                assert (await anext(watch)).value == b"1"
                c.pause("fra1")
                c.pause("ams1")  # dal1 alone: no quorum, no leader
                started = asyncio.get_running_loop().time()
                try:
                    with pytest.raises(EtcdUnavailableError) as caught:
                        async with asyncio.timeout(10):
                            await anext(watch)
                finally:
                    c.resume("fra1")
                    c.resume("ams1")
                return (
                    asyncio.get_running_loop().time() - started,
                    str(caught.value),
                    client.endpoint,
                )
            finally:
                await client.aclose()

        waited, why, endpoint = asyncio.run(run())
        assert "no leader" in why, why
        assert waited < 10
        assert endpoint == c.member("fra1").client_url


def test_wire_decoding_refuses_truncated_messages_and_skips_unknown_fields() -> None:
    with pytest.raises(etcdwire.WireError, match="truncated varint"):
        etcdwire.txn_answer(b"\x10")
    with pytest.raises(etcdwire.WireError, match="runs past the message"):
        etcdwire.txn_answer(b"\x0a\x05\x18")
    with pytest.raises(etcdwire.WireError, match="wire type 3"):
        etcdwire.watch_answer(b"\x0b")
    # TxnResponse{header{revision: 7}, succeeded: true} with an unknown varint field 9, an
    # unknown fixed64 field 10 and an unknown fixed32 field 12 around it
    header = b"\x0a\x02\x18\x07"
    raw = b"\x48\x01" + header + b"\x51" + b"\x00" * 8 + b"\x10\x01" + b"\x65" + b"\x00" * 4
    answer = etcdwire.txn_answer(raw)
    assert (answer.succeeded, answer.revision, answer.ranged) == (True, 7, [])
    # a negative int64 (ten-byte varint) reads back negative
    kv = etcdwire.key_value(memoryview(b"\x18" + b"\xff" * 9 + b"\x01"))
    assert kv.mod_revision == -1


def _tls_files(root: Path, ca_name: str = "test etcd CA") -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 it signed: (ca, cert, key) PEM files."""
    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: x509.Name | None, key: ec.EllipticCurvePrivateKey,
              signer: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:  # fmt: skip
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build(ca_name, None, ca_key, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build("127.0.0.1", ca.subject, key, ca_key, False)
    paths = root / "ca.pem", root / "cert.pem", root / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


_TLS_CLIENT = """
import asyncio, json, sys
from validator.node.errors import EtcdUnavailableError
from validator.node.etcd import EtcdClient

async def main(url):
    client = EtcdClient([url], transport="grpc")
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 15
    while True:  # until the member serves (the JSON gateway, over TLS)
        try:
            rev = await client.put(b"/t/tls/a", b"1")
            break
        except EtcdUnavailableError:
            if loop.time() > give_up:
                raise
            await asyncio.sleep(0.1)
    _, stored = await client.create_or_read(
        b"/t/tls/b", b"2", hedge_after=0.5, until=loop.time() + 5
    )
    watched = []
    async with asyncio.timeout(5):
        async for kv in client.watch(b"/t/tls/", b"/t/tls0", rev):
            watched.append([kv.key.decode(), kv.value.decode()])
            if len(watched) == 2:
                break
    await client.aclose()
    print(json.dumps([stored.decode(), watched]))

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.parametrize("trusted_in", ["file", "directory"])
def test_an_https_member_is_reached_over_grpc_with_tls_trusting_the_same_roots(
    tmp_path: Path, trusted_in: str
) -> None:
    """An operator who serves etcd's client port over TLS trusts its CA once for both
    transports: in ``SSL_CERT_FILE``, or in ``SSL_CERT_DIR`` beside a ``SSL_CERT_FILE`` that
    does not hold it (OpenSSL, so Python, trusts both)."""
    ca, cert, key = _tls_files(tmp_path)
    if trusted_in == "file":
        trust = {"SSL_CERT_FILE": str(ca)}
    else:
        (tmp_path / "other").mkdir()
        other, _, _ = _tls_files(tmp_path / "other", "another CA")
        certs = tmp_path / "certs"
        certs.mkdir()
        (certs / "venue-ca.pem").write_bytes(ca.read_bytes())
        digest = subprocess.run(
            ["openssl", "x509", "-hash", "-noout", "-in", str(ca)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        (certs / f"{digest}.0").symlink_to("venue-ca.pem")  # OpenSSL looks roots up by hash
        trust = {"SSL_CERT_FILE": str(other), "SSL_CERT_DIR": str(certs)}
    port, peer = free_port(), free_port()
    url = f"https://127.0.0.1:{port}"
    log = (tmp_path / "etcd.log").open("wb")
    cmd = [
        ETCD, "--name", "tls", "--data-dir", str(tmp_path / "data"),
        "--listen-client-urls", url, "--advertise-client-urls", url,
        "--cert-file", str(cert), "--key-file", str(key),
        "--listen-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"tls=http://127.0.0.1:{peer}", "--log-level", "error",
    ]  # fmt: skip
    member = subprocess.Popen(cmd, stdout=log, stderr=log)
    # the operator's setting, read when each library starts (aiohttp at import): a fresh process
    env = {**os.environ, **trust}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _TLS_CLIENT, url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        member.kill()
        member.wait()
        log.close()
    assert done.returncode == 0, done.stderr[-2000:]
    written, watched = json.loads(done.stdout)
    assert written == "2"  # created by the gRPC transaction, over TLS
    assert watched == [["/t/tls/a", "1"], ["/t/tls/b", "2"]]  # the gRPC watch, over TLS


def test_a_member_a_transatlantic_round_trip_away_is_dialled_within_the_write_deadline(
    tmp_path: Path,
) -> None:
    """gRPC core takes its minimum reconnect backoff as the deadline of every connection
    attempt; the client sets it high enough that a far member (here 150 ms each way through the
    harness's delaying relay, on loopback) is dialled at the first attempt, as at a failover to
    a far site, instead of each attempt timing out before etcd's HTTP/2 settings arrive."""
    with start_cluster(["solo"], tmp_path / "etcd") as c:
        port = int(c.member("solo").client_url.rsplit(":", 1)[1])
        config = {
            "site": "here",
            "control": str(tmp_path / "relay.sock"),
            "echo": ["127.0.0.1", free_port()],
            "links": [
                {
                    "peer": "solo",
                    "listen": "127.0.0.2",  # the far member as this site reaches it
                    "target": "127.0.0.1",
                    "tcp": [port],
                    "udp": [],
                    "out_us": 150_000,
                    "in_us": 150_000,
                }
            ],
        }
        (tmp_path / "relay.json").write_text(json.dumps(config))
        relay = subprocess.Popen(
            [sys.executable, "-m", "devnet.relay", str(tmp_path / "relay.json")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            assert relay.stdout is not None
            assert b"ready" in relay.stdout.readline()

            async def run() -> tuple[tuple[int, bytes | None], float]:
                client = EtcdClient([f"http://127.0.0.2:{port}"], transport="grpc")
                try:
                    loop = asyncio.get_running_loop()
                    started = loop.time()
                    written = await client.create_or_read(
                        b"/t/far", b"v", hedge_after=3.0, until=started + 3.0
                    )
                    return written, loop.time() - started
                finally:
                    await client.aclose()

            written, took = asyncio.run(run())
        finally:
            relay.kill()
            relay.wait()
    assert written[1] == b"v"
    # the handshakes (TCP, HTTP/2) and the write: about four round trips of 0.3 s
    assert took < 2.5, took
