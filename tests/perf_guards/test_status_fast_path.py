"""
The hand-written fast path of Miraflow's status parsing gives exactly what the
cattrs model gives.

``map_status`` reads a plain ``dict`` directly and sends anything else (another
``Mapping``, a field of an unusual type) through the cattrs model. Passing the
same body as a read-only ``MappingProxyType`` forces the cattrs path, so every
generated body is parsed both ways and compared: the same ``JobStatus`` (and
result, and raw body), or the same ``DecodeError``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aivideo_async._exceptions import DecodeError
from aivideo_async._models import JobStatus
from aivideo_async.providers.miraflow import _wire

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
_statuses = st.sampled_from(sorted(_wire.STATUS_MAP)) | st.text(max_size=20)
_progress = st.sampled_from(["45%", "100%", "0%", " 7.5 % ", "12", "soon", ""]) | _json
_maybe_str = st.none() | st.text(max_size=12)

_bodies = st.fixed_dictionaries(
    {},
    optional={
        "status": _statuses | _json,
        "progress": _progress,
        "videoId": _maybe_str | _json,
        "downloadUrl": _maybe_str | _json,
        "error": _maybe_str | _json,
        "message": _maybe_str | _json,
        "result": st.sampled_from(["success", "error"]),
    },
).flatmap(
    lambda d: st.dictionaries(st.text(max_size=8), _json, max_size=2).map(lambda x: {**x, **d})
)


def _both(body: dict[str, Any], kind: str) -> tuple[Any, Any]:
    out: list[Any] = []
    for shape in (body, MappingProxyType(body)):
        try:
            out.append(_wire.map_status(shape, kind=kind, job_id="j1"))
        except DecodeError as err:
            out.append(err)
    return out[0], out[1]


def _same(fast: JobStatus, slow: JobStatus) -> None:
    assert fast == slow
    # ``raw`` is excluded from equality: compare it (and the result's) directly.
    assert fast.raw == dict(slow.raw)
    if fast.result is not None:
        assert slow.result is not None
        assert fast.result == slow.result
        assert fast.result.raw == dict(slow.result.raw)
        assert fast.result.url == slow.result.url
        assert fast.result.media_id == slow.result.media_id


@given(body=_bodies, kind=st.sampled_from(["video", "image", "job"]))
def test_fast_status_path_matches_the_cattrs_path(body: dict[str, Any], kind: str) -> None:
    fast, slow = _both(body, kind)
    if isinstance(slow, DecodeError):
        assert isinstance(fast, DecodeError)
        assert (str(fast), fast.path, fast.endpoint, fast.provider) == (
            str(slow),
            slow.path,
            slow.endpoint,
            slow.provider,
        )
    else:
        assert isinstance(fast, JobStatus)
        _same(fast, slow)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "$.status"),
        ({"status": 3}, "$.status"),
        ({"status": "inference_complete", "videoId": 7}, "$.videoId"),
        ({"status": "inference_complete", "downloadUrl": ["x"]}, "$.downloadUrl"),
    ],
)
def test_unusual_bodies_still_raise_the_cattrs_decode_error(
    body: dict[str, Any], path: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        _wire.parse_video_status(body, job_id="j1")
    assert caught.value.path == path
    assert caught.value.endpoint == "GET /api/video/{id}/status"


def test_the_fast_path_keeps_the_body_as_raw() -> None:
    body = {"status": "inference_complete", "videoId": "v9", "extra": 1}
    status = _wire.parse_video_status(body, job_id="j1")
    assert status.raw is body
    assert status.result is not None
    assert status.result.raw is body
    assert status.result.media_id == "v9"


@given(
    text=st.text(max_size=12)
    | st.from_regex(r"\s*[0-9]{1,3}(\.[0-9]{1,2})?\s*%?\s*", fullmatch=True)
)
def test_cached_progress_text_equals_the_uncached_parse(text: str) -> None:
    uncached = _wire._percent_text.__wrapped__(text)
    assert _wire.parse_progress(text) == uncached
    assert _wire.parse_progress(text) == uncached  # a cache hit gives the same
