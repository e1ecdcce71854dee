"""Session.download: atomic writes, caps, content types, redirects without credentials."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Mapping

import anyio
import pytest
from aiohttp import web

from aivideo_async._config import Limits, RetryPolicy
from aivideo_async._exceptions import (
    DownloadError,
    PaymentRequired,
    RemoteDisconnected,
    ResponseTooLarge,
    UnexpectedContentType,
    UnexpectedRedirect,
)
from aivideo_async._secret import Secret
from aivideo_async._session import HeaderKeyAuth, Session

from .conftest import API_KEY, RecordingSleep, Serve, ServeRaw, read_request

pytestmark = pytest.mark.anyio

VIDEO = bytes(range(256)) * 1000  # 256 000 bytes


def leftovers(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def make_session(base: str, key: Secret, sleep: RecordingSleep, **kwargs: object) -> Session:
    return Session(
        provider="p",
        base_url=base,
        auth=HeaderKeyAuth("x-api-key", key),
        headers={"X-Skill-Source": "tests"},
        sleep=sleep,
        **kwargs,  # type: ignore[arg-type]
    )


def video_app(
    seen: list[Mapping[str, str]], content_type: str = "video/mp4", body: bytes = VIDEO
) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    app.router.add_get("/v/{name}", handler)
    app.router.add_get("/api/video/{id}/download", handler)
    return app


async def test_absolute_download_is_atomic_with_progress_and_no_auth(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    seen: list[Mapping[str, str]] = []
    base = await serve(video_app(seen))
    progress: list[tuple[int, int | None]] = []
    dest = tmp_path / "out.mp4"
    async with make_session(base, key, fake_sleep) as session:
        path = await session.download(
            f"{base}/v/1.mp4?X-Amz-Signature=sig",
            dest,
            absolute=True,
            progress=lambda done, total: progress.append((done, total)),
            content_types=("video/",),
        )
    assert path == dest
    assert dest.read_bytes() == VIDEO
    assert leftovers(tmp_path) == ["out.mp4"]
    assert progress[-1] == (len(VIDEO), len(VIDEO))
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    headers = {k.lower() for k in seen[0]}
    assert "x-api-key" not in headers
    assert "x-skill-source" not in headers


async def test_api_path_download_sends_auth_and_validates_id(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    seen: list[Mapping[str, str]] = []
    base = await serve(video_app(seen))
    async with make_session(base, key, fake_sleep) as session:
        await session.download(
            "/api/video/{id}/download", tmp_path / "a.mp4", path_params={"id": "vid-1"}
        )
    assert seen[0]["x-api-key"] == API_KEY
    assert (tmp_path / "a.mp4").read_bytes() == VIDEO


async def test_reset_mid_body_leaves_no_file_and_no_temp_reliability_34_36(
    serve_raw: ServeRaw, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #34/#36: a reset mid-body restarts; when it keeps failing nothing is left."""
    requests = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await read_request(reader)
        requests += 1
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 100000\r\n\r\n"
            + b"x" * 5000
        )
        await writer.drain()
        writer.transport.abort()  # RST mid-body

    base = await serve_raw(handler)
    dest = tmp_path / "out.mp4"
    async with make_session(base, key, fake_sleep, retry=RetryPolicy(attempts=3)) as session:
        with pytest.raises(RemoteDisconnected):
            await session.download(f"{base}/v.mp4", dest, absolute=True)
    assert requests >= 3  # restarted from scratch each time
    assert len(fake_sleep.calls) == 2
    assert leftovers(tmp_path) == []


async def test_download_restart_after_reset_succeeds_reliability_34(
    serve_raw: ServeRaw, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #34: restart after a reset; the final file is complete and alone."""
    requests = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await read_request(reader)
        requests += 1
        head = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: %d\r\n"
        writer.write(head % len(VIDEO) + b"Connection: close\r\n\r\n")
        if requests <= 2:
            writer.write(VIDEO[:1000])
            await writer.drain()
            writer.transport.abort()
            return
        writer.write(VIDEO)
        await writer.drain()

    base = await serve_raw(handler)
    dest = tmp_path / "out.mp4"
    async with make_session(base, key, fake_sleep) as session:
        await session.download(f"{base}/v.mp4", dest, absolute=True)
    assert dest.read_bytes() == VIDEO
    assert leftovers(tmp_path) == ["out.mp4"]


@pytest.mark.parametrize("chunked", [False, True])
async def test_download_over_cap_is_aborted_and_removed_reliability_37(
    serve: Serve,
    key: Secret,
    fake_sleep: RecordingSleep,
    tmp_path: pathlib.Path,
    chunked: bool,
) -> None:
    """RELIABILITY #37: over the size cap -> ResponseTooLarge; no file, no temp file."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        if not chunked:
            resp.content_length = len(VIDEO)
        await resp.prepare(request)
        try:
            await resp.write(VIDEO)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    app = web.Application()
    app.router.add_get("/v.mp4", handler)
    base = await serve(app)
    dest = tmp_path / "out.mp4"
    async with make_session(
        base, key, fake_sleep, limits=Limits(max_download_bytes=10_000)
    ) as session:
        with pytest.raises(ResponseTooLarge) as caught:
            await session.download(f"{base}/v.mp4", dest, absolute=True)
    assert caught.value.limit == 10_000
    assert leftovers(tmp_path) == []
    assert fake_sleep.calls == []  # not retried


async def test_non_video_content_type_is_refused_reliability_37(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #37: a non-video Content-Type is refused and nothing is written."""
    base = await serve(video_app([], content_type="text/html", body=b"<html>expired</html>"))
    async with make_session(base, key, fake_sleep) as session:
        with pytest.raises(UnexpectedContentType) as caught:
            await session.download(
                f"{base}/v/1.mp4", tmp_path / "o.mp4", absolute=True, content_types=("video/",)
            )
        # the default refuses HTML too
        with pytest.raises(UnexpectedContentType):
            await session.download(f"{base}/v/1.mp4", tmp_path / "o.mp4", absolute=True)
    assert caught.value.content_type == "text/html"
    assert leftovers(tmp_path) == []


async def test_redirect_to_cdn_followed_without_credentials_reliability_35(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #35: the CDN hop gets neither the key nor custom headers."""
    cdn_seen: list[Mapping[str, str]] = []
    cdn = await serve(video_app(cdn_seen))
    api_seen: list[Mapping[str, str]] = []

    async def api(request: web.Request) -> web.Response:
        api_seen.append(dict(request.headers))
        raise web.HTTPFound(f"{cdn}/v/1.mp4?X-Amz-Signature=sig")

    app = web.Application()
    app.router.add_get("/api/video/{id}/download", api)
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        await session.download(
            "/api/video/{id}/download", tmp_path / "v.mp4", path_params={"id": "v1"}
        )
    assert api_seen[0]["x-api-key"] == API_KEY
    assert len(cdn_seen) == 1
    lowered = {k.lower() for k in cdn_seen[0]}
    assert "x-api-key" not in lowered
    assert "x-skill-source" not in lowered
    assert "authorization" not in lowered
    assert (tmp_path / "v.mp4").read_bytes() == VIDEO


async def test_redirect_to_plain_http_elsewhere_is_refused_reliability_35(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #35: https only (plain http only for loopback)."""

    async def api(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://cdn.example/v.mp4?sig=1")

    app = web.Application()
    app.router.add_get("/dl", api)
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        with pytest.raises(UnexpectedRedirect) as caught:
            await session.download("/dl", tmp_path / "v.mp4")
    assert caught.value.location == "http://cdn.example/v.mp4"
    assert leftovers(tmp_path) == []


async def test_redirect_loop_is_limited_reliability_35(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #35: a redirect limit."""
    hops = 0

    async def loop(request: web.Request) -> web.Response:
        nonlocal hops
        hops += 1
        raise web.HTTPFound("/loop")

    app = web.Application()
    app.router.add_get("/loop", loop)
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        with pytest.raises(UnexpectedRedirect):
            await session.download("/loop", tmp_path / "v.mp4")
    assert hops == 6  # the first request and five redirects


async def test_expired_signed_url_403_is_payment_required_status_reliability_33(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #33: S3's XML 403 surfaces with status 403 so the caller can refetch."""

    async def expired(request: web.Request) -> web.Response:
        return web.Response(
            status=403,
            text="<Error><Code>AccessDenied</Code></Error>",
            content_type="application/xml",
        )

    app = web.Application()
    app.router.add_get("/v.mp4", expired)
    base = await serve(app)
    async with make_session(base, key, fake_sleep) as session:
        with pytest.raises(PaymentRequired) as caught:
            await session.download(
                f"{base}/v.mp4?X-Amz-Expires=1", tmp_path / "v.mp4", absolute=True
            )
    assert caught.value.status_code == 403
    assert "X-Amz" not in str(caught.value)
    assert leftovers(tmp_path) == []


async def test_unwritable_destination_is_download_error_reliability_36(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #36: cannot write -> DownloadError; nothing left behind."""
    base = await serve(video_app([]))
    # The parent "folder" is a regular file: no folder can be created there, even as root.
    (tmp_path / "not-a-dir").write_bytes(b"x")
    async with make_session(base, key, fake_sleep) as session:
        with pytest.raises(DownloadError):
            await session.download(
                f"{base}/v/1.mp4", tmp_path / "not-a-dir" / "v.mp4", absolute=True
            )
    assert leftovers(tmp_path) == ["not-a-dir"]


async def test_failing_progress_callback_removes_the_temp_file_reliability_36(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #36: ANY failure removes the temp file, a caller's exception included."""
    base = await serve(video_app([]))

    def boom(done: int, total: int | None) -> None:
        raise KeyError("caller bug")

    async with make_session(base, key, fake_sleep) as session:
        with pytest.raises(KeyError):
            await session.download(
                f"{base}/v/1.mp4", tmp_path / "v.mp4", absolute=True, progress=boom
            )
    assert leftovers(tmp_path) == []


async def test_existing_file_is_replaced_only_by_a_complete_download(
    serve_raw: ServeRaw, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """The final path only ever holds a verified file (RELIABILITY #34)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 9999\r\n\r\npartial"
        )
        await writer.drain()

    base = await serve_raw(handler)
    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"old complete file")
    async with make_session(base, key, fake_sleep, retry=RetryPolicy(attempts=1)) as session:
        with pytest.raises(RemoteDisconnected):
            await session.download(f"{base}/v.mp4", dest, absolute=True)
    assert dest.read_bytes() == b"old complete file"
    assert leftovers(tmp_path) == ["v.mp4"]


async def test_cancelled_download_removes_the_temp_file_reliability_36(
    serve_raw: ServeRaw, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #36/#9: cancellation mid-body is a failure too: no file, no temp file."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 100000\r\n\r\n"
            + b"x" * 1000
        )
        await writer.drain()
        await asyncio.Event().wait()  # never finishes; cancelled at teardown

    base = await serve_raw(handler)
    temp_seen: list[str] = []
    async with make_session(base, key, fake_sleep) as session:
        with anyio.CancelScope() as scope:

            def cancel_after_first_chunk(done: int, total: int | None) -> None:
                temp_seen.extend(leftovers(tmp_path))
                scope.cancel()

            await session.download(
                f"{base}/v.mp4",
                tmp_path / "v.mp4",
                absolute=True,
                progress=cancel_after_first_chunk,
            )
    assert scope.cancelled_caught
    assert len(temp_seen) == 1
    assert temp_seen[0].endswith(".part")  # the temp file existed mid-download...
    assert leftovers(tmp_path) == []  # ...and is gone after the cancellation
