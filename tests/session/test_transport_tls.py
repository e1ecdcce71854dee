"""
A certificate the client cannot verify (RELIABILITY #7): a real TLS server on
loopback with a self-signed certificate for 127.0.0.1.

The certificate and its key below are a test fixture made for this file only
(``openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes
-days 36500 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost``);
no client trusts it unless told to, which is the point.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import anyio
import pytest

from aivideo_async._config import RetryPolicy
from aivideo_async._exceptions import TLSError
from aivideo_async._secret import Secret
from aivideo_async._session import HeaderKeyAuth, Session

from .conftest import API_KEY, ServeRaw, read_request

pytestmark = pytest.mark.anyio

CERT = """\
-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIURugTE4JGfQ7Rn3Ai+YNbKfki/2wwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyMjAzMDkzM1oYDzIxMjYxMDI5
MDMwOTMzWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAR6eBtbe/OIvBHtGSBJQs4yhKNq2OLBWY/CvuY3BUGIlEoQv5CYzQtF
beA6n2virc7nBxLH6Fbn5jvWLp7YxmgCo28wbTAdBgNVHQ4EFgQUydZolz5BtaYm
UoRVuYUs/M0yuMQwHwYDVR0jBBgwFoAUydZolz5BtaYmUoRVuYUs/M0yuMQwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwCgYIKoZI
zj0EAwIDRwAwRAIgb7VTfn+EgJcqstXYheuCCad1rpUJRYUuM3m46oDtXBUCIB0y
E+KRLHuPz1Uhu9C7qZLgcaEzS5EkPoZ1Ohd84A2X
-----END CERTIFICATE-----
"""

KEY = """\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgaey49t4Ppmk0MP/n
A6EasJJv2sIvRhUoOd1Oz3AFOrShRANCAAR6eBtbe/OIvBHtGSBJQs4yhKNq2OLB
WY/CvuY3BUGIlEoQv5CYzQtFbeA6n2virc7nBxLH6Fbn5jvWLp7YxmgC
-----END PRIVATE KEY-----
"""


class TLSServer:
    """Counts TCP connections, TLS handshakes that failed, and requests served."""

    def __init__(self, tmp_path: Path) -> None:
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        cert.write_text(CERT)
        key.write_text(KEY)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.cert = cert
        self.connections = 0
        self.failed_handshakes = 0
        self.requests: list[bytes] = []
        self._failed = asyncio.Event()

    async def handshakes_settled(self) -> None:
        """Wait until the server has seen every failed handshake end (it lags the client)."""
        with anyio.fail_after(5):
            while self.failed_handshakes < self.connections:
                await self._failed.wait()
                self._failed.clear()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await writer.start_tls(self.context)
        except (ssl.SSLError, ConnectionError):
            self.failed_handshakes += 1
            self._failed.set()
            return
        self.requests.append(await read_request(reader))
        body = b'{"jobId": "j1"}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()


async def test_untrusted_certificate_is_tls_error_not_sent_reliability_7(
    serve_raw: ServeRaw, tmp_path: Path
) -> None:
    """
    RELIABILITY #7: the server's certificate does not verify: TLSError with
    request_sent False, the certificate error as the cause, one handshake,
    no request (and no key) reaching the server, never retried, even for a GET.
    """
    server = TLSServer(tmp_path)
    base = (await serve_raw(server.handle)).replace("http://", "https://")
    retry = RetryPolicy(attempts=3)
    auth = HeaderKeyAuth("x-api-key", Secret(API_KEY))
    async with Session(provider="p", base_url=base, auth=auth, retry=retry) as session:
        for method in ("POST", "GET"):
            with pytest.raises(TLSError) as caught:
                await session.request(method, "/v1/jobs", json={} if method == "POST" else None)
            err = caught.value
            assert err.request_sent is False
            assert isinstance(err.__cause__, aiohttp.ClientConnectorCertificateError)
            assert "certificate" in str(err).lower()
            assert API_KEY not in str(err)
    await server.handshakes_settled()
    assert server.connections == server.failed_handshakes == 2  # one per call: no retry
    assert server.requests == []

    # Control: the same server works for a client told to trust this certificate,
    # so what failed above was verification, not the server.
    trusting = ssl.create_default_context(cafile=str(server.cert))
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting)) as http,
        Session(provider="p", base_url=base, auth=auth, session=http) as session,
    ):
        response = await session.request("POST", "/v1/jobs", json={})
    assert response.json() == {"jobId": "j1"}
    assert len(server.requests) == 1
