"""NemoVideo wire layer: pure build/parse, the three render shapes, status and error mapping."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aivideo_async._exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequest,
    DecodeError,
    InsufficientCredits,
    InvalidInput,
    MediaTooLarge,
    PaymentRequired,
    RateLimited,
    SessionNotFound,
    UnsupportedMedia,
)
from aivideo_async._models import JobState
from aivideo_async.providers.nemovideo._draft import (
    draft_fingerprint,
    parse_draft,
    timeline_summary,
)
from aivideo_async.providers.nemovideo._wire import (
    RenderStatus,
    build_claim_token_body,
    build_create_session_body,
    build_render_body,
    build_run_sse_body,
    build_upload_urls_body,
    check_upload_file,
    map_error,
    new_render_id,
    parse_anonymous_token,
    parse_claim_token,
    parse_credits,
    parse_render_status,
    parse_render_submit,
    parse_session_info,
    parse_session_state,
    parse_upload_result,
    render_job_status,
    validate_render_id,
)

DRAFT = {
    "d": 5000,
    "m": {"title": "Sunset", "width": 1920, "height": 1080},
    "t": [{"tt": 0, "sg": [{"d": 5000}]}, {"tt": 1, "sg": [{"d": 5000}]}],
}


# -- envelopes and models -------------------------------------------------------


def test_anonymous_token_is_a_secret_and_redacted_in_raw() -> None:
    body = {
        "code": 0,
        "message": "success",
        "data": {
            "token": "nmv_usr_AbCdEf123",
            "credits": 100,
            "user_id": "anon_3f9a",
            "expires_at": "2026-03-26T00:00:00Z",
            "extra": 1,
        },
    }
    token = parse_anonymous_token(body)
    assert token.token.get_secret_value() == "nmv_usr_AbCdEf123"
    assert (token.credits, token.user_id, token.expires_at) == (
        100,
        "anon_3f9a",
        "2026-03-26T00:00:00Z",
    )
    assert token.raw["extra"] == 1
    assert "nmv_usr_AbCdEf123" not in repr(token)
    assert "nmv_usr_AbCdEf123" not in repr(dict(token.raw))


def test_claim_token_builds_the_claim_link_and_hides_the_token() -> None:
    claim = parse_claim_token({"code": 0, "data": {"claim_token": "clm_x/1", "expires_in": 604800}})
    assert claim.expires_in == 604800
    assert claim.claim_url("https://nemovideo.com/") == (
        "https://nemovideo.com/workspace/claim?ct=clm_x%2F1"
    )
    assert "clm_x" not in repr(claim)


def test_session_info_and_unknown_fields_kept() -> None:
    info = parse_session_info(
        {"code": 0, "data": {"task_id": "task_8c1d", "session_id": "55", "user_id": "u", "n": 2}}
    )
    assert (info.task_id, info.session_id, info.user_id) == ("task_8c1d", "55", "u")
    assert info.raw["n"] == 2


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"task_id": "t"}, "$.data.session_id"),
        ({"task_id": "t", "session_id": 5529798706024415232}, "$.data.session_id"),
        ({"task_id": 1, "session_id": "5"}, "$.data.task_id"),
    ],
)
def test_session_info_missing_or_mistyped_names_the_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_session_info({"code": 0, "data": data})
    assert info.value.path == path
    assert info.value.__cause__ is not None


def test_envelope_without_data_is_a_decode_error() -> None:
    with pytest.raises(DecodeError) as info:
        parse_credits({"code": 0, "message": "ok"})
    assert info.value.path == "$.data"


def test_credits_and_upload_result() -> None:
    credits = parse_credits({"code": 0, "data": {"available": 60, "frozen": 40, "total": 100}})
    assert (credits.available, credits.frozen, credits.total) == (60, 40, 100)
    with pytest.raises(DecodeError) as info:
        parse_credits({"code": 0, "data": {"available": "60", "frozen": 40, "total": 100}})
    assert info.value.path == "$.data.available"
    upload = parse_upload_result(
        {
            "code": 0,
            "data": {
                "files": [
                    {
                        "filename": "a.mp4",
                        "file_type": "video",
                        "cdn_url": "https://cdn/a.mp4",
                        "duration": 5,
                        "width": 1920,
                        "height": 1080,
                        "fps": 30,
                        "hash": "abc",
                    }
                ],
                "session_state_applied": True,
            },
        }
    )
    assert upload.files[0].duration == 5.0
    assert upload.files[0].fps == 30.0
    assert upload.session_state_applied is True
    with pytest.raises(DecodeError) as info:
        parse_upload_result({"code": 0, "data": {"files": [{"filename": "a.mp4"}]}})
    assert info.value.path == "$.data.files[0].cdn_url"


def test_session_state_parses_the_draft() -> None:
    state = parse_session_state(
        {
            "code": 0,
            "data": {
                "session_id": "55",
                "task_id": "task_8c1d",
                "task_name": "project",
                "state": {
                    "video_infos": [],
                    "canvas_config": {"width": 1920, "height": 1080},
                    "generated_media": [],
                    "draft": DRAFT,
                },
            },
        }
    )
    assert state.draft.is_exportable
    assert state.draft.meta["title"] == "Sunset"
    assert [t.kind for t in state.draft.tracks] == ["Video", "Audio"]
    assert state.canvas_config == {"width": 1920, "height": 1080}


def test_session_state_bad_draft_names_the_path() -> None:
    with pytest.raises(DecodeError) as info:
        parse_session_state(
            {"code": 0, "data": {"session_id": "55", "state": {"draft": {"t": [{"sg": {}}]}}}}
        )
    assert info.value.path == "$.data.state.draft.t[0].sg"


def test_state_fingerprint_tracks_content_not_key_order() -> None:
    def state(draft: dict[str, Any]) -> Any:
        return parse_session_state({"code": 0, "data": {"session_id": "1", "state": draft}})

    a = state({"draft": {"t": [], "d": 1}})
    b = state({"d": None, "draft": {"d": 1, "t": []}} | {"d": None})
    assert state({"draft": {"d": 1, "t": []}}).fingerprint == a.fingerprint
    assert b.fingerprint != a.fingerprint  # an extra key in state is a change
    assert state({"draft": {"d": 2, "t": []}}).fingerprint != a.fingerprint


# -- builders ---------------------------------------------------------------------


def test_builders() -> None:
    assert build_create_session_body("project", "zh-CN") == {
        "task_name": "project",
        "language": "zh-CN",
    }
    assert build_claim_token_body("t", "s") == {"task_id": "t", "session_id": "s"}
    assert build_run_sse_body("55", "hi") == {
        "app_name": "nemo_agent",
        "user_id": "me",
        "session_id": "55",
        "new_message": {"parts": [{"text": "hi"}]},
    }
    assert build_upload_urls_body(["https://x.example/a.mp4"]) == {
        "urls": ["https://x.example/a.mp4"],
        "source_type": "url",
    }


def test_render_body_uses_camel_session_id_and_sends_the_draft_verbatim() -> None:
    draft = {**DRAFT, "unknown": {"keep": True}}
    body = build_render_body(render_id="render_abc", session_id="55", draft=draft)
    assert body == {
        "id": "render_abc",
        "sessionId": "55",
        "draft": draft,
        "output": {"format": "mp4", "quality": "high"},
    }
    assert "session_id" not in body
    no_output = build_render_body(
        render_id="render_abc", session_id="55", draft=draft, output_format=None, quality=None
    )
    assert "output" not in no_output


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"draft": {"t": []}}, "draft"),
        ({"draft": {"t": [{"tt": 0, "sg": []}]}}, "draft"),
        ({"draft": {}}, "draft"),
        ({"render_id": "render_../x"}, "render_id"),
        ({"render_id": "job_1"}, "render_id"),
        ({"session_id": ""}, "session_id"),
    ],
)
def test_render_body_validation(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"render_id": "render_1", "session_id": "55", "draft": DRAFT} | kwargs
    with pytest.raises(InvalidInput) as info:
        build_render_body(**args)
    assert info.value.field == field


def test_new_render_ids_are_unique_and_valid() -> None:
    ids = {new_render_id() for _ in range(100)}
    assert len(ids) == 100
    for rid in ids:
        assert validate_render_id(rid) == rid


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: build_run_sse_body("55", ""), "text"),
        (lambda: build_run_sse_body("55", "   "), "text"),
        (lambda: build_create_session_body(""), "task_name"),
        (lambda: build_upload_urls_body([]), "urls"),
        (lambda: build_upload_urls_body("https://x/a.mp4"), "urls"),
        (lambda: build_upload_urls_body(["ftp://x/a.mp4"]), "urls[0]"),
        (lambda: build_upload_urls_body(["https://ok/a", "http://evil.example/a"]), "urls[1]"),
        (lambda: build_upload_urls_body(["/relative.mp4"]), "urls[0]"),
    ],
)
def test_builder_validation_names_the_field(call: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        call()
    assert info.value.field == field


def test_check_upload_file() -> None:
    """RELIABILITY #15: an upload's type and size are checked locally first."""
    assert check_upload_file("a.MOV", 1) == "video"
    assert check_upload_file("a.jpeg", 1) == "image"
    assert check_upload_file("a.m4a", 1) == "audio"
    with pytest.raises(InvalidInput, match="at most 10 bytes") as info:
        check_upload_file("a.mp4", 11, max_bytes=10, field="files[2]")
    assert info.value.field == "files[2]"
    with pytest.raises(InvalidInput, match="non-empty"):
        check_upload_file("a.mp4", 0)
    with pytest.raises(InvalidInput, match=r"\.mp4"):
        check_upload_file("mp4", 5)


# -- render status: the three shapes (CONFLICT §2.3 #9) ------------------------------

SHAPE_A = {
    "id": "render_1",
    "status": "completed",
    "progress": 100,
    "output": {"url": "https://cdn/r.mp4", "duration": 5.0, "size": 1048576},
}
SHAPE_B = {
    "success": True,
    "data": {
        "id": "render_1",
        "status": "completed",
        "progress": 100,
        "outputUrl": "https://cdn/r.mp4",
        "createdAt": 1773423613616,
        "completedAt": 1773423713616,
    },
}
SHAPE_C = {
    "taskId": "render_1",
    "status": "completed",
    "progress": 100,
    "output": {"url": "https://cdn/r.mp4", "duration": 5.0, "size": 1048576},
}


@pytest.mark.parametrize("body", [SHAPE_A, SHAPE_B, SHAPE_C], ids=["a", "b", "c"])
def test_render_status_three_shapes_agree(body: dict[str, Any]) -> None:
    status = parse_render_status(body)
    assert (status.render_id, status.status, status.progress, status.url) == (
        "render_1",
        "completed",
        100.0,
        "https://cdn/r.mp4",
    )
    job = status.job_status
    assert job.state is JobState.SUCCEEDED
    assert job.result is not None
    assert job.result.url == "https://cdn/r.mp4"
    assert job.result.job_id == "render_1"


def test_render_status_shape_details() -> None:
    a = parse_render_status(SHAPE_A)
    assert (a.duration, a.size) == (5.0, 1048576)
    b = parse_render_status(SHAPE_B)
    assert (b.created_at, b.completed_at) == (1773423613616.0, 1773423713616.0)
    coded = parse_render_status({"code": 0, "data": {"id": "render_2", "status": "pending"}})
    assert coded.render_id == "render_2"
    assert parse_render_status({"status": "pending"}, render_id="render_9").render_id == "render_9"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"id": "render_1", "progress": 5}, "$.status"),
        ({"success": True, "data": {"id": "render_1"}}, "$.data.status"),
        ({"id": "render_1", "status": 5}, "$.status"),
        ({"id": "render_1", "status": "pending", "progress": "5%"}, "$.progress"),
        ({"taskId": 7, "status": "pending"}, "$.taskId"),
        ({"id": "r", "status": "completed", "output": {"url": 1}}, "$.output.url"),
        ({"success": True, "data": {"status": "done", "outputUrl": 3}}, "$.data.outputUrl"),
        ({"status": "pending"}, "$.id"),
    ],
)
def test_render_status_decode_errors_name_the_path(body: dict[str, Any], path: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_render_status(body)
    assert info.value.path == path


def test_render_status_failure_envelopes() -> None:
    with pytest.raises(APIStatusError, match="nope"):
        parse_render_status({"success": False, "message": "nope", "data": {}})
    with pytest.raises(SessionNotFound):
        parse_render_status({"code": 1002, "message": "session not found", "data": None})


@pytest.mark.parametrize(
    ("raw", "progress", "state", "fraction", "known"),
    [
        ("pending", 5, JobState.QUEUED, 0.05, True),
        ("processing", 45, JobState.RUNNING, 0.45, True),
        ("completed", 100, JobState.SUCCEEDED, 1.0, True),
        ("completed", None, JobState.SUCCEEDED, 1.0, True),
        ("failed", 30, JobState.FAILED, 0.3, True),
        ("cancelled", None, JobState.CANCELED, None, True),
        ("PROCESSING", 150, JobState.RUNNING, 1.0, True),
        ("exploding", -3, JobState.RUNNING, 0.0, False),
    ],
)
def test_status_mapping(
    raw: str, progress: float | None, state: JobState, fraction: float | None, known: bool
) -> None:
    status = render_job_status(
        RenderStatus(render_id="render_1", status=raw, progress=progress, error="boom")
    )
    assert (status.state, status.progress, status.known, status.raw_status) == (
        state,
        fraction,
        known,
        raw,
    )
    assert (status.message == "boom") is (state is JobState.FAILED)
    assert (status.result is not None) is (state is JobState.SUCCEEDED)


def test_failed_render_keeps_the_error_message() -> None:
    status = parse_render_status(
        {"id": "render_1", "status": "failed", "error": {"message": "draft invalid"}}
    )
    assert status.job_status.message == "draft invalid"


@given(
    rid=st.from_regex(r"render_[A-Za-z0-9_-]{1,40}", fullmatch=True),
    status=st.sampled_from(["pending", "processing", "completed", "failed"]),
    progress=st.one_of(st.none(), st.integers(0, 100), st.floats(0, 100)),
    url=st.one_of(st.none(), st.just("https://cdn.example/x.mp4")),
    shape=st.sampled_from("abc"),
    extra=st.dictionaries(st.text(min_size=1, max_size=8), st.integers(), max_size=3),
)
def test_render_shapes_property(
    rid: str, status: str, progress: float | None, url: str | None, shape: str, extra: Any
) -> None:
    """Whatever the shape, the same facts come out, and unknown keys never hurt."""
    core: dict[str, Any] = {"status": status}
    if progress is not None:
        core["progress"] = progress
    if shape == "a":
        body: dict[str, Any] = {**extra, **core, "id": rid}
        if url:
            body["output"] = {"url": url}
    elif shape == "b":
        inner = {**extra, **core, "id": rid}
        if url:
            inner["outputUrl"] = url
        body = {"success": True, "data": inner}
    else:
        body = {**extra, **core, "taskId": rid}
        if url:
            body["output"] = {"url": url}
    parsed = parse_render_status(json.loads(json.dumps(body)))
    assert (parsed.render_id, parsed.status, parsed.url) == (rid, status, url)
    job = parsed.job_status
    assert job.progress is None or 0.0 <= job.progress <= 1.0
    assert job.known


def test_render_submit() -> None:
    ok = {"success": True, "data": {"id": "render_1", "status": "pending", "progress": 5}}
    assert parse_render_submit(ok, render_id="render_1") == "render_1"
    assert parse_render_submit({"id": "render_1", "status": "pending"}, render_id="render_1")
    assert parse_render_submit({"code": 0, "data": {}}, render_id="render_1") == "render_1"
    with pytest.raises(DecodeError, match="render_2"):
        parse_render_submit({"success": True, "data": {"id": "render_2"}}, render_id="render_1")
    with pytest.raises(APIStatusError):
        parse_render_submit({"success": False, "message": "duplicate id"}, render_id="render_1")


# -- error mapping -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (1001, AuthenticationError),
        (1002, SessionNotFound),
        (2001, InsufficientCredits),
        (4001, UnsupportedMedia),
        (4002, MediaTooLarge),
    ],
)
@pytest.mark.parametrize("http", [200, 400, 401, 404, 500])
def test_body_codes_win_over_http_status(code: int, cls: type[Exception], http: int) -> None:
    """RELIABILITY #14, #15, #18: body codes (2001, 4001, 4002 ...) win over HTTP status."""
    body = {"code": code, "message": "m", "data": None}
    err = map_error(status=http, body=body, endpoint="GET /api/x")
    assert type(err) is cls
    assert err is not None
    assert err.body_code == code
    assert err.status_code == http
    assert err.provider == "nemovideo"
    assert err.endpoint == "GET /api/x"


def test_unknown_codes_are_errors_on_2xx_and_defer_to_the_http_status_otherwise() -> None:
    err = map_error(status=200, body={"code": 9999, "message": "m"}, endpoint="GET /x")
    assert type(err) is APIStatusError
    assert err.body_code == 9999
    # The emulator (and plausibly the API) repeats the HTTP status as the code.
    assert map_error(status=404, body={"code": 404, "message": "m"}, endpoint="GET /x") is None
    assert isinstance(
        map_error(status=402, body={"code": 402, "message": "m"}, endpoint="GET /x"),
        PaymentRequired,
    )
    assert isinstance(
        map_error(status=429, body={"code": 429, "message": "m"}, endpoint="GET /x"),
        RateLimited,
    )


def test_http_status_mapping() -> None:
    assert map_error(status=200, body={"code": 0, "data": {}}, endpoint="GET /x") is None
    assert map_error(status=200, body=None, endpoint="GET /x") is None
    assert map_error(status=404, body={"detail": "Session not found"}, endpoint="GET /x") is None
    assert map_error(status=500, body=None, endpoint="GET /x") is None  # the session's default
    paid = map_error(status=402, body=None, endpoint="POST /api/render/proxy/lambda")
    assert isinstance(paid, PaymentRequired)
    assert "X-Skill" in paid.message
    limited = map_error(status=429, body=None, endpoint="GET /x", retry_after=30.0)
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 30.0
    missing_id = map_error(status=400, body=None, endpoint="POST /api/auth/anonymous-token")
    assert isinstance(missing_id, BadRequest)
    assert "X-Client-Id" in missing_id.message
    # 402 is a plan restriction, not credits: never InsufficientCredits without code 2001.
    assert not isinstance(paid, InsufficientCredits)


def test_success_false_on_2xx_is_an_error() -> None:
    err = map_error(status=200, body={"success": False, "error": "bad"}, endpoint="POST /x")
    assert isinstance(err, APIStatusError)
    assert err.message == "bad"


# -- drafts and the timeline ----------------------------------------------------------


def test_timeline_summary_lines() -> None:
    text = timeline_summary(
        {
            "m": {"title": "Trip"},
            "t": [
                {"tt": 0, "sg": [{"d": 4000, "title": "Beach"}, {"d": 6000, "name": "Sunset"}]},
                {"tt": 1, "sg": [{"d": 10000}]},
                {"tt": 7, "sg": [{"st": 1000, "d": 2000, "text": "Day one"}]},
                {"tt": 3, "sg": []},
            ],
        }
    )
    assert text.splitlines() == [
        "Draft 'Trip': 10s, 4 tracks",
        "Video: Beach (0-4s)",
        "Video: Sunset (4-10s)",
        "Audio: clip 1 (0-10s)",
        "Text: Day one (1-3s)",
        "Track type 3: (empty)",
    ]


def test_draft_parse_is_lenient_on_undocumented_keys() -> None:
    draft = parse_draft({"t": [{"sg": [{"weird": [1, 2]}], "x": 1}], "y": {"z": 1}})
    assert draft.tracks[0].track_type is None
    assert draft.tracks[0].segments[0].duration_ms is None
    assert draft.is_exportable  # a segment exists, even without d
    assert draft.raw["y"] == {"z": 1}


@pytest.mark.parametrize(
    ("draft", "path"),
    [
        ([], "$"),
        ({"t": [1]}, "$.t[0]"),
        ({"t": [{"tt": "0"}]}, "$.t[0].tt"),
        ({"t": [{"sg": [{"d": "5s"}]}]}, "$.t[0].sg[0].d"),
        ({"m": "x"}, "$.m"),
        ({"d": True}, "$.d"),
    ],
)
def test_draft_type_errors_name_the_path(draft: Any, path: str) -> None:
    with pytest.raises(DecodeError) as info:
        parse_draft(draft)
    assert info.value.path == path


_segments = st.lists(
    st.fixed_dictionaries(
        {"d": st.integers(0, 60_000)}, optional={"title": st.text(min_size=1, max_size=20)}
    ),
    max_size=4,
)
_drafts = st.fixed_dictionaries(
    {"t": st.lists(st.fixed_dictionaries({"tt": st.sampled_from([0, 1, 7]), "sg": _segments}))},
    optional={"d": st.integers(0, 120_000)},
)


@given(_drafts)
def test_timeline_property_one_line_per_segment(draft: dict[str, Any]) -> None:
    text = timeline_summary(draft)
    segments = sum(len(t["sg"]) or 1 for t in draft["t"])
    lines = text.splitlines()
    if not draft["t"]:
        assert lines == ["Empty draft: no tracks"]
    else:
        assert len(lines) == 1 + segments
        for line in lines[1:]:
            assert line.split(":", 1)[0] in {"Video", "Audio", "Text"}
    assert draft_fingerprint(draft) == draft_fingerprint(json.loads(json.dumps(draft)))


def test_a_failed_render_whose_error_says_cancelled_is_canceled() -> None:
    status = parse_render_status({"id": "render_1", "status": "failed", "error": "cancelled"})
    assert status.job_status.state is JobState.CANCELED
    other = parse_render_status({"id": "render_1", "status": "failed", "error": "render failed"})
    assert other.job_status.state is JobState.FAILED


_REWRITE_SCRIPT = """
from aivideo_async.providers.nemovideo import _wire as w
for cls in (w.SessionInfo, w.UploadedFile, w.UploadResult, w.Credits, w.RenderOutput):
    cls.__module__ = "aivideo_async"
assert w.parse_credits({"code": 0, "data": {"available": 1, "frozen": 0, "total": 1}}).total == 1
up = w.parse_upload_result({"code": 0, "data": {"files": [{"cdn_url": "https://c/a.mp4"}]}})
assert up.files[0].cdn_url == "https://c/a.mp4"
assert w.parse_render_status({"id": "render_1", "status": "completed",
                              "output": {"url": "https://c/r.mp4"}}).url == "https://c/r.mp4"
print("ok")
"""


def test_wire_models_survive_the_package_module_rewrite() -> None:
    # aivideo_async/__init__.py rewrites __module__ of re-exported classes; decoding
    # must not resolve annotations in that namespace. A fresh interpreter, so no
    # earlier decode has resolved them already.
    done = subprocess.run(
        [sys.executable, "-c", _REWRITE_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
