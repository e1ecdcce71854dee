"""
Result files and the emulator's own S3-like storage (signed URLs).

Images are real PNGs built here; videos are a real 2-second H.264/AAC MP4
shipped as package data (``sample.mp4``, generated once with ffmpeg; nothing
needs ffmpeg at run time). Downloads honour a single ``Range`` and send an
``ETag``, so a client can resume.

Signed URLs carry ``X-Amz-Date``, ``X-Amz-Expires`` and an HMAC
``X-Amz-Signature`` over method, path, date, expiry (and the content type for
uploads); a bad signature or an expired URL is a 403 with an S3 XML error.

Example:
    >>> data = png(4, 2, seed=1)
    >>> data[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    >>> sample_mp4()[4:8]
    b'ftyp'
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib.resources
import re
import struct
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from ._wire import s3_error

if TYPE_CHECKING:
    from ._state import EmulatorState

__all__ = [
    "ASPECT_SIZES",
    "check_signed",
    "png",
    "sample_mp4",
    "serve_bytes",
    "signed_url",
]

ASPECT_SIZES = {
    "1:1": (64, 64),
    "16:9": (128, 72),
    "9:16": (72, 128),
    "4:3": (96, 72),
    "3:4": (72, 96),
}
"""PNG size per aspect ratio (small: these are test fixtures, not art)."""

_DATE_FMT = "%Y%m%dT%H%M%SZ"


@functools.cache
def sample_mp4() -> bytes:
    """The bundled MP4 (H.264 160x90, 2 s, with an AAC track), about 14 KB."""
    return importlib.resources.files(__package__).joinpath("sample.mp4").read_bytes()


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png(width: int, height: int, *, seed: int = 0) -> bytes:
    """
    A valid RGB PNG of ``width`` x ``height``: a gradient tinted by ``seed``.

    Example:
        >>> import struct
        >>> struct.unpack(">II", png(3, 5)[16:24])
        (3, 5)
    """
    tint = seed % 256
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            rows += bytes(((x * 255) // max(1, width - 1), (y * 255) // max(1, height - 1), tint))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows)))
        + _chunk(b"IEND", b"")
    )


def _sign(state: EmulatorState, method: str, path: str, date: str, expires: int, ctype: str) -> str:
    msg = f"{method}\n{path}\n{date}\n{expires}\n{ctype}".encode()
    return hmac.new(state.signing_key, msg, hashlib.sha256).hexdigest()


def signed_url(
    state: EmulatorState,
    base: str,
    method: str,
    path: str,
    ttl: float,
    content_type: str = "",
) -> str:
    """
    Return an absolute signed URL for ``method path``, valid ``ttl`` seconds.

    Example:
        >>> from aivideo_async.emulator._state import EmulatorConfig, EmulatorState
        >>> url = signed_url(EmulatorState(EmulatorConfig()), "http://h", "GET", "/s3/x", 60)
        >>> url.startswith("http://h/s3/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=")
        True
    """
    date = datetime.fromtimestamp(int(state.wall()), UTC).strftime(_DATE_FMT)
    expires = max(1, int(ttl))
    sig = _sign(state, method, path, date, expires, content_type)
    signed = "host;content-type" if content_type else "host"
    return (
        f"{base}{quote(path)}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={date}"
        f"&X-Amz-Expires={expires}&X-Amz-SignedHeaders={quote(signed)}&X-Amz-Signature={sig}"
    )


def check_signed(
    state: EmulatorState, request: web.Request, content_type: str = ""
) -> web.Response | None:
    """Return a 403 S3 error if ``request``'s signature is wrong or expired, else None."""
    q = request.query
    date = q.get("X-Amz-Date", "")
    sig = q.get("X-Amz-Signature", "")
    try:
        expires = int(q.get("X-Amz-Expires", ""))
        issued = datetime.strptime(date, _DATE_FMT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return s3_error(403, "AccessDenied", "Query-string authentication requires parameters")
    expected = _sign(state, request.method, request.path, date, expires, content_type)
    if not hmac.compare_digest(sig, expected):
        return s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided",
        )
    if state.wall() > issued + expires:
        return s3_error(403, "AccessDenied", "Request has expired")
    return None


_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def serve_bytes(request: web.Request, data: bytes, content_type: str) -> web.Response:
    """
    Serve ``data`` with an ``ETag``, ``Accept-Ranges`` and single-range support.

    A satisfiable ``Range: bytes=a-b`` gets a 206 with ``Content-Range``; an
    unsatisfiable one a 416.
    """
    etag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
    headers: dict[str, Any] = {"ETag": etag, "Accept-Ranges": "bytes"}
    header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if header and (if_range is None or if_range == etag):
        m = _RANGE.match(header.strip())
        size = len(data)
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else size - 1
            else:  # suffix range: the last N bytes
                start = max(0, size - int(m.group(2)))
                end = size - 1
            end = min(end, size - 1)
            if start > end or start >= size:
                headers["Content-Range"] = f"bytes */{size}"
                return web.Response(status=416, headers=headers)
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            return web.Response(
                body=data[start : end + 1], status=206, content_type=content_type, headers=headers
            )
    return web.Response(body=data, content_type=content_type, headers=headers)


def base_url(request: web.Request) -> str:
    """The scheme and host the client used, e.g. ``http://127.0.0.1:8765``."""
    return f"{request.scheme}://{request.host}"
