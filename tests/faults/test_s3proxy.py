"""The fault proxy itself: it forwards requests byte for byte (so SigV4 signatures stay valid), and each
kind of fault reaches the S3 client as the failure it stands for."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tests.faults.s3proxy import S3FaultProxy
from tests.fixtures.s3 import REGION, S3Bucket, make_s3_storage
from worker.errors import ObjectExists, StorageUnavailable

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]


class Capture:
    """An upstream that records each raw request and answers ``200`` with an empty body."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                conn.sendall(b'HTTP/1.1 200 OK\r\nETag: "abc"\r\nContent-Length: 0\r\n\r\n')

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def capture() -> Iterator[Capture]:
    server = Capture()
    yield server
    server.close()


def _client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's test credentials
        config=Config(request_checksum_calculation="when_required", s3={"addressing_style": "path"},
                      retries={"max_attempts": 1, "mode": "standard"}))


def _signature_holds(raw: bytes) -> bool:
    """Recompute the SigV4 signature of a captured request over the headers it says it signed."""
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    authorization = headers["authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    claimed = authorization.split("Signature=")[1].strip()
    request = AWSRequest(method=method, url=f"http://{headers['host']}{target}",
                         headers={name: headers[name] for name in signed}, data=body)
    request.context["timestamp"] = headers["x-amz-date"]
    auth = S3SigV4Auth(Credentials("testing", "testing"), "s3", REGION)
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request) == claimed


def test_requests_are_forwarded_byte_for_byte_and_stay_signed(capture: Capture) -> None:
    with S3FaultProxy(capture.url, record=True) as proxy:
        signed_host = urlsplit(proxy.url).netloc
        client = _client(proxy.url)
        client.put_object(Bucket="some-bucket", Key="a b/ü/original.wav", Body=b"RIFF" + bytes(range(256)) * 40,
                          Metadata={"sha256": "0" * 64, "recording-id": "x/y"}, IfNoneMatch="*",
                          ContentType="audio/wav")
        client.list_objects_v2(Bucket="some-bucket", Prefix="a b/", MaxKeys=7)
        client.close()
    # exactly what the client sent, less the ``Expect: 100-continue`` line the proxy answered itself
    assert b"Expect: 100-continue\r\n" in proxy.received[0]
    assert len(capture.requests) == 2
    assert [raw.replace(b"Expect: 100-continue\r\n", b"") for raw in proxy.received] == capture.requests
    first = capture.requests[0]
    assert f"Host: {signed_host}".encode() in first  # the host the client signed
    assert all(_signature_holds(raw) for raw in capture.requests)
    # the check can fail: one changed byte of a signed header breaks the signature
    assert not _signature_holds(first.replace(b"x-amz-meta-recording-id: x/y", b"x-amz-meta-recording-id: x/z"))


def test_each_fault_reaches_the_client_as_what_it_stands_for(s3_bucket: S3Bucket, fault_seed: int) -> None:
    with S3FaultProxy(s3_bucket.endpoint_url, seed=fault_seed) as proxy:
        proxied = S3Bucket(s3_bucket.name, proxy.url, s3_bucket.client)
        patient = make_s3_storage(proxied, read_timeout=0.5, connect_timeout=1, max_attempts=2)
        strict = make_s3_storage(proxied, read_timeout=0.5, connect_timeout=1, max_attempts=0)
        try:
            # 503 SlowDown then 500 on the first two tries: the third (botocore's retry) goes through
            proxy.add("slowdown", method="PUT", path="/one", first=1)
            proxy.add("error500", method="PUT", path="/one", first=1)
            patient.put_bytes("one", b"1", content_type="text/plain")
            assert s3_bucket.client.get_object(Bucket=s3_bucket.name, Key="recordings/one")["Body"].read() == b"1"
            # the answer is lost after the store applied the write: the retry meets its own object
            proxy.add("error500", method="PUT", path="/two", first=1, after=True)
            with pytest.raises(ObjectExists):
                patient.put_bytes("two", b"2", content_type="text/plain")
            # no answer within the read timeout, then one cut mid-request: retried, then written once
            proxy.add("hang", method="PUT", path="/three", first=1, hang=5)
            proxy.add("close", method="PUT", path="/three", first=1)
            patient.put_bytes("three", b"3" * 1000, content_type="text/plain")
            # a body cut mid-read is fetched again, even with no botocore retry (it stops at the headers)
            proxy.add("close", method="GET", path="/three", first=2, after=True)
            assert strict.read_bytes("three") == b"3" * 1000
            # with no retry left (botocore counts retries, not attempts), each fault is the store being unavailable
            for action in ("error503", "hang", "close"):
                proxy.add(action, method="GET", path="/one", first=1, hang=5)
                with pytest.raises(StorageUnavailable):
                    strict.read_bytes("one")
        finally:
            patient.close()
            strict.close()
        faults = [(e.method, e.path.rsplit("/", 1)[-1], e.action) for e in proxy.log if e.action]
    assert faults == [("PUT", "one", "slowdown"), ("PUT", "one", "error500"), ("PUT", "two", "error500"),
                      ("PUT", "three", "hang"), ("PUT", "three", "close"), ("GET", "three", "close"),
                      ("GET", "three", "close"), ("GET", "one", "error503"),
                      ("GET", "one", "hang"), ("GET", "one", "close")]
