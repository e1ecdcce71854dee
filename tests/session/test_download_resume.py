"""
Session.download resumes a reset download with Range + If-Range (RELIABILITY #34).

Every server here is a raw loopback socket server so the test decides exactly
when the connection drops and what each (ranged) answer says.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import Callable

import pytest
from aiohttp import web

from aivideo_async._config import RetryPolicy
from aivideo_async._exceptions import DownloadError, RemoteDisconnected
from aivideo_async._secret import Secret
from aivideo_async._session import HeaderKeyAuth, Session

from .conftest import API_KEY, RecordingSleep, Serve, ServeRaw, read_request

pytestmark = pytest.mark.anyio

VIDEO = bytes(range(256)) * 1000  # 256 000 bytes
HALF = len(VIDEO) // 2
NEW_VIDEO = b"re-rendered" * 20_000  # what the URL serves after the file changed

Headers = dict[str, str]


def parse_headers(request: bytes) -> Headers:
    head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def answer(status: str, headers: Headers, body: bytes) -> bytes:
    head = [f"HTTP/1.1 {status}", "Content-Type: video/mp4", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


RESUMABLE: Headers = {"ETag": '"v1"', "Accept-Ranges": "bytes"}


def full(body: bytes = VIDEO, headers: Headers | None = None) -> tuple[str, Headers]:
    return "200 OK", {"Content-Length": str(len(body)), **(headers or {})}


def part(start: int, body: bytes = VIDEO, etag: str = '"v1"') -> tuple[str, Headers]:
    return "206 Partial Content", {
        "Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}",
        "Content-Length": str(len(body) - start),
        "ETag": etag,
    }


def range_start(headers: Headers) -> int | None:
    value = headers.get("range")
    if value is None:
        return None
    assert value.startswith("bytes="), value
    assert value.endswith("-"), value
    return int(value[len("bytes=") : -1])


class Origin:
    """
    A file server whose first answer is cut after ``HALF`` bytes.

    The cut happens only once the client has written those bytes (the test's
    progress callback sets ``consumed``), so the resume offset is exact.
    ``later`` answers every following request.
    """

    def __init__(self, first: tuple[str, Headers], later: Callable[[Headers], bytes]) -> None:
        self.first = first
        self.later = later
        self.requests: list[Headers] = []
        self.consumed = asyncio.Event()

    def progress(self, done: int, total: int | None) -> None:
        if done >= HALF:
            self.consumed.set()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers = parse_headers(await read_request(reader))
        self.requests.append(headers)
        if len(self.requests) == 1:
            status, extra = self.first
            writer.write(answer(status, extra, VIDEO[:HALF]))
            await writer.drain()
            await self.consumed.wait()
            writer.transport.abort()  # reset mid-body
            return
        writer.write(self.later(headers))
        await writer.drain()


def session_for(base: str, sleep: RecordingSleep, attempts: int = 6) -> Session:
    return Session(provider="p", base_url=base, sleep=sleep, retry=RetryPolicy(attempts=attempts))


def leftovers(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def serve_rest(headers: Headers) -> bytes:
    """A well-behaved origin: the part asked for, or the whole file."""
    start = range_start(headers)
    if start is None:
        return answer(*full(headers=RESUMABLE), VIDEO)
    return answer(*part(start), VIDEO[start:])


async def test_reset_mid_download_resumes_with_range_and_if_range_reliability_34(
    serve_raw: ServeRaw, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #34: the retry asks for bytes=HALF- against the ETag and appends the 206."""
    origin = Origin(full(headers=RESUMABLE), serve_rest)
    base = await serve_raw(origin)
    dest = tmp_path / "v.mp4"
    seen: list[tuple[int, int | None]] = []

    def progress(done: int, total: int | None) -> None:
        seen.append((done, total))
        origin.progress(done, total)

    async with session_for(base, fake_sleep) as session:
        await session.download(f"{base}/v.mp4", dest, absolute=True, progress=progress)
    assert len(origin.requests) == 2
    first, second = origin.requests
    assert range_start(first) is None
    assert first["accept-encoding"] == "identity"  # byte offsets must be of the file itself
    assert range_start(second) == HALF
    assert second["if-range"] == '"v1"'
    assert dest.read_bytes() == VIDEO
    assert leftovers(tmp_path) == ["v.mp4"]
    assert len(fake_sleep.calls) == 1
    # progress continues from the bytes already on disk, never counting them twice
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1] == (len(VIDEO), len(VIDEO))


@pytest.mark.parametrize(
    "first",
    [
        full(headers={"Accept-Ranges": "bytes"}),  # no ETag
        full(headers={"ETag": 'W/"v1"', "Accept-Ranges": "bytes"}),  # weak ETag
        full(headers={"ETag": '"v1"'}),  # no Accept-Ranges
        full(headers={"ETag": '"v1"', "Accept-Ranges": "none"}),
    ],
    ids=["no-etag", "weak-etag", "no-accept-ranges", "accept-ranges-none"],
)
async def test_without_strong_etag_and_byte_ranges_a_reset_restarts_reliability_34(
    serve_raw: ServeRaw,
    fake_sleep: RecordingSleep,
    tmp_path: pathlib.Path,
    first: tuple[str, Headers],
) -> None:
    """RELIABILITY #34: no strong validator or no byte ranges -> restart from zero."""
    origin = Origin(first, serve_rest)
    base = await serve_raw(origin)
    dest = tmp_path / "v.mp4"
    async with session_for(base, fake_sleep) as session:
        await session.download(f"{base}/v.mp4", dest, absolute=True, progress=origin.progress)
    assert len(origin.requests) == 2
    assert "range" not in origin.requests[1]
    assert "if-range" not in origin.requests[1]
    assert dest.read_bytes() == VIDEO


async def test_a_200_to_the_range_request_restarts_from_zero_reliability_34(
    serve_raw: ServeRaw, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #34: If-Range failed (the file changed): the 200 body replaces the part."""

    def changed(headers: Headers) -> bytes:
        assert range_start(headers) == HALF
        return answer(*full(NEW_VIDEO, {"ETag": '"v2"', "Accept-Ranges": "bytes"}), NEW_VIDEO)

    origin = Origin(full(headers=RESUMABLE), changed)
    base = await serve_raw(origin)
    dest = tmp_path / "v.mp4"
    async with session_for(base, fake_sleep) as session:
        await session.download(f"{base}/v.mp4", dest, absolute=True, progress=origin.progress)
    assert len(origin.requests) == 2
    assert dest.read_bytes() == NEW_VIDEO  # not the old half followed by the new file


BAD_PARTS: dict[str, Callable[[int], tuple[str, Headers]]] = {
    "changed-etag": lambda start: part(start, etag='"v2"'),
    "wrong-start": lambda start: part(start - 1000),
    "other-length": lambda start: part(start, VIDEO + b"x"),
    "not-to-the-end": lambda start: (
        "206 Partial Content",
        {
            "Content-Range": f"bytes {start}-{start + 99}/{len(VIDEO)}",
            "Content-Length": "100",
        },
    ),
    "no-content-range": lambda start: ("206 Partial Content", {}),
    "416": lambda start: ("416 Range Not Satisfiable", {"Content-Length": "0"}),
}


@pytest.mark.parametrize("kind", sorted(BAD_PARTS))
async def test_a_part_that_does_not_match_is_not_appended_reliability_34(
    serve_raw: ServeRaw, fake_sleep: RecordingSleep, tmp_path: pathlib.Path, kind: str
) -> None:
    """RELIABILITY #34: a 206 for another file, offset or length -> the whole file again."""

    def bad_then_whole(headers: Headers) -> bytes:
        start = range_start(headers)
        if start is None:
            return answer(*full(), VIDEO)
        status, extra = BAD_PARTS[kind](start)
        body = b"" if status.startswith("416") else VIDEO[start : start + 100]
        return answer(status, extra, body)

    origin = Origin(full(headers=RESUMABLE), bad_then_whole)
    base = await serve_raw(origin)
    dest = tmp_path / "v.mp4"
    async with session_for(base, fake_sleep) as session:
        await session.download(f"{base}/v.mp4", dest, absolute=True, progress=origin.progress)
    assert [range_start(h) for h in origin.requests] == [None, HALF, None]
    assert dest.read_bytes() == VIDEO
    assert leftovers(tmp_path) == ["v.mp4"]
    assert len(fake_sleep.calls) == 1  # the re-request is part of the same retry


async def test_a_part_that_ends_early_without_error_is_resumed_again_reliability_34(
    serve_raw: ServeRaw, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """
    RELIABILITY #34: the length from Content-Range is checked, not just trusted.

    The 206 has no Content-Length and is delimited by closing the connection,
    so aiohttp sees a clean end after a quarter of the file; the final path
    must not receive that short file. The next try resumes where it stopped.
    """
    quarter = len(VIDEO) // 4

    def short_then_rest(headers: Headers) -> bytes:
        start = range_start(headers)
        assert start is not None
        if start == HALF:
            status, extra = part(start)
            del extra["Content-Length"]
            return answer(status, extra, VIDEO[start : start + quarter])
        return answer(*part(start), VIDEO[start:])

    origin = Origin(full(headers=RESUMABLE), short_then_rest)
    base = await serve_raw(origin)
    dest = tmp_path / "v.mp4"
    async with session_for(base, fake_sleep) as session:
        await session.download(f"{base}/v.mp4", dest, absolute=True, progress=origin.progress)
    assert [range_start(h) for h in origin.requests] == [None, HALF, HALF + quarter]
    assert dest.read_bytes() == VIDEO


async def test_a_short_part_is_never_moved_into_place_reliability_34(
    serve_raw: ServeRaw, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #34/#36: when resuming keeps failing, nothing is left behind."""

    def always_short(headers: Headers) -> bytes:
        start = range_start(headers)
        assert start is not None
        status, extra = part(start)
        del extra["Content-Length"]
        return answer(status, extra, VIDEO[start : start + 10])

    origin = Origin(full(headers=RESUMABLE), always_short)
    base = await serve_raw(origin)
    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"previous complete file")
    async with session_for(base, fake_sleep, attempts=3) as session:
        with pytest.raises(RemoteDisconnected) as caught:
            await session.download(f"{base}/v.mp4", dest, absolute=True, progress=origin.progress)
    assert f"of {len(VIDEO)} bytes" in str(caught.value)
    assert [range_start(h) for h in origin.requests] == [None, HALF, HALF + 10]
    assert dest.read_bytes() == b"previous complete file"
    assert leftovers(tmp_path) == ["v.mp4"]


async def test_an_unasked_for_part_is_refused(
    serve_raw: ServeRaw, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """A 206 with a slice of the file to a request without Range is not a download."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        extra = {"Content-Range": f"bytes 0-99/{len(VIDEO)}", "Content-Length": "100"}
        writer.write(answer("206 Partial Content", extra, VIDEO[:100]))
        await writer.drain()

    base = await serve_raw(handler)
    async with session_for(base, fake_sleep) as session:
        with pytest.raises(DownloadError) as caught:
            await session.download(f"{base}/v.mp4", tmp_path / "v.mp4", absolute=True)
    assert caught.value.status_code == 206
    assert leftovers(tmp_path) == []


async def test_resume_through_a_redirect_sends_no_credentials_and_logs_no_secret_reliability_35_39(
    serve: Serve,
    serve_raw: ServeRaw,
    key: Secret,
    fake_sleep: RecordingSleep,
    tmp_path: pathlib.Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """
    RELIABILITY #34/#35/#39: the retry goes back through the API (with the key),
    which redirects to the CDN again; only the CDN hop carries the Range, no hop
    to the CDN carries the key, and no log line shows the key or the signature.
    """
    caplog.set_level(logging.DEBUG)
    cdn = Origin(full(headers=RESUMABLE), serve_rest)
    cdn_base = await serve_raw(cdn)
    api_keys: list[str | None] = []

    async def api(request: web.Request) -> web.Response:
        api_keys.append(request.headers.get("x-api-key"))
        raise web.HTTPFound(f"{cdn_base}/v.mp4?X-Amz-Signature=sig-SECRET-123")

    app = web.Application()
    app.router.add_get("/api/video/{id}/download", api)
    base = await serve(app)
    dest = tmp_path / "v.mp4"
    async with Session(
        provider="p", base_url=base, auth=HeaderKeyAuth("x-api-key", key), sleep=fake_sleep
    ) as session:
        await session.download(
            "/api/video/{id}/download", dest, path_params={"id": "v1"}, progress=cdn.progress
        )
    assert dest.read_bytes() == VIDEO
    assert api_keys == [API_KEY, API_KEY]
    assert [range_start(h) for h in cdn.requests] == [None, HALF]
    assert all("x-api-key" not in h for h in cdn.requests)
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "following HTTP 302" in messages  # the hops were logged
    assert API_KEY not in messages
    assert "sig-SECRET-123" not in messages
