"""Miraflow wire layer, pure: models, builders, status and error mapping (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aivideo_async._config import DEFAULT_IMAGE_POLL_POLICY
from aivideo_async._exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequest,
    DecodeError,
    InsufficientCredits,
    InvalidInput,
    NotFound,
    PaymentRequired,
    RateLimited,
    ServerError,
)
from aivideo_async._models import JobState
from aivideo_async.providers.miraflow import _wire as w


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("inference_started", JobState.QUEUED),
        ("inference_working", JobState.RUNNING),
        ("inference_complete", JobState.SUCCEEDED),
        ("inference_failed", JobState.FAILED),
        ("inference_error", JobState.FAILED),
    ],
)
def test_every_documented_status_maps(raw: str, state: JobState) -> None:
    status = w.parse_video_status({"result": "success", "status": raw}, job_id="j1")
    assert status.state is state
    assert status.raw_status == raw
    assert status.known
    if state is JobState.FAILED:
        assert status.message == raw


@given(st.text(max_size=30))
def test_status_mapping_is_total(raw: str) -> None:
    status = w.map_status({"status": raw}, kind="video", job_id="j")
    assert status.raw_status == raw
    assert status.known == (raw in w.STATUS_MAP)
    assert status.state is w.STATUS_MAP.get(raw, JobState.RUNNING)
    assert (status.result is not None) == (status.state is JobState.SUCCEEDED)


def test_progress_and_video_id_are_kept() -> None:
    running = w.parse_video_status(
        {"result": "success", "status": "inference_working", "progress": "45%", "eta": 3},
        job_id="j1",
    )
    assert running.progress == pytest.approx(0.45)
    assert running.raw["eta"] == 3
    done = w.parse_video_status(
        {"result": "success", "status": "inference_complete", "videoId": "v1"}, job_id="j1"
    )
    assert done.result is not None
    assert (done.result.job_id, done.result.media_id, done.result.download_id) == ("j1", "v1", "v1")
    assert done.progress == 1.0


def test_video_without_video_id_downloads_by_job_id() -> None:
    done = w.parse_video_status({"status": "inference_complete"}, job_id="j1")
    assert done.result is not None
    assert done.result.download_id == "j1"


def test_failed_status_keeps_the_error_text() -> None:
    failed = w.parse_video_status(
        {"result": "success", "status": "inference_failed", "error": "face not detected"},
        job_id="j",
    )
    assert failed.message == "face not detected"


def test_image_status_result_carries_download_url() -> None:
    done = w.parse_image_status(
        {"result": "success", "status": "inference_complete", "downloadUrl": "https://s3/i.png"},
        job_id="j2",
    )
    assert done.result is not None
    assert (done.result.kind, done.result.url) == ("image", "https://s3/i.png")


def test_general_job_status_picks_kind_from_type() -> None:
    image = w.parse_job_status(
        {"status": "inference_complete", "type": "GEMINI_IMAGE", "downloadUrl": "https://x/i"},
        job_id="j",
    )
    video = w.parse_job_status({"status": "inference_complete", "type": "VIDEO"}, job_id="j")
    assert image.result is not None
    assert image.result.kind == "image"
    assert video.result is not None
    assert video.result.kind == "video"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"result": "success"}, "$.status"),
        ({"status": 3}, "$.status"),
        ({"status": "inference_complete", "videoId": 9}, "$.videoId"),
        ("inference_complete", "$"),
    ],
)
def test_bad_status_bodies_name_the_path(body: Any, path: str) -> None:
    with pytest.raises(DecodeError) as info:
        w.parse_video_status(body, job_id="j")
    assert info.value.path == path
    assert info.value.provider == "miraflow"


@given(st.integers(min_value=0, max_value=100))
def test_percent_strings_parse_to_fractions(n: int) -> None:
    assert w.parse_progress(f"{n}%") == pytest.approx(n / 100)
    assert w.parse_progress(str(n)) == pytest.approx(n / 100)


@given(st.one_of(st.text(), st.floats(), st.integers(), st.none(), st.booleans()))
def test_progress_parsing_is_total_and_bounded(value: object) -> None:
    result = w.parse_progress(value)
    assert result is None or 0.0 <= result <= 1.0


def test_created_needs_a_job_id() -> None:
    assert w.parse_created({"result": "success", "jobId": "cm1"}) == "cm1"
    for body in ({"result": "success"}, {"result": "success", "jobId": 5}, {"jobId": ""}):
        with pytest.raises(DecodeError) as info:
            w.parse_created(body)
        assert info.value.path == "$.jobId"


def test_avatars_keep_optional_and_unknown_fields() -> None:
    avatars = w.parse_avatars(
        {
            "avatars": [
                {"id": "a1", "name": "Ann", "createdAt": "2025-01-01T00:00:00Z"},
                {"id": "a2", "name": "Bo", "voiceId": "v1", "isPhoto": True, "tier": "pro"},
            ]
        }
    )
    assert [a.id for a in avatars] == ["a1", "a2"]
    assert avatars[0].voice_id is None
    assert (avatars[1].voice_id, avatars[1].is_photo) == ("v1", True)
    assert avatars[1].raw["tier"] == "pro"


def test_avatar_decode_error_names_the_item() -> None:
    with pytest.raises(DecodeError) as info:
        w.parse_avatars({"avatars": [{"id": "a1", "name": "A"}, {"id": "a2", "name": 7}]})
    assert info.value.path == "$.avatars[1].name"


@pytest.mark.parametrize("key", ["voices", "avatars"])
def test_voices_under_either_key(key: str) -> None:
    voices = w.parse_voices({key: [{"id": "v1", "name": "Calm", "createdAt": "x"}]})
    assert [(v.id, v.name) for v in voices] == [("v1", "Calm")]


def test_voices_errors_use_the_key_that_was_sent() -> None:
    with pytest.raises(DecodeError) as info:
        w.parse_voices({"avatars": [{"id": 1, "name": "x"}]})
    assert info.value.path == "$.avatars[0].id"
    with pytest.raises(DecodeError) as info:
        w.parse_voices({"items": []})
    assert info.value.path == "$.voices"


def test_videos_and_metadata() -> None:
    videos = w.parse_videos({"videos": [{"id": "v1", "name": "n", "sourceAvatarId": "a1"}]})
    assert videos[0].source_avatar_id == "a1"
    meta = w.parse_video_metadata(
        {"id": "v1", "name": "n", "downloadUrl": "https://s3/v1.mp4?X-Amz-Signature=s"}
    )
    assert meta.download_url == "https://s3/v1.mp4?X-Amz-Signature=s"


def test_media_models() -> None:
    upload = w.parse_media_upload({"mediaId": "m1", "uploadUrl": "https://s3/put"})
    assert (upload.media_id, upload.upload_url) == ("m1", "https://s3/put")
    assert w.parse_media_finalized({"success": True}) is True
    with pytest.raises(DecodeError) as info:
        w.parse_media_upload({"mediaId": "m1"})
    assert info.value.path == "$.uploadUrl"


# --- builders ------------------------------------------------------------------------------


def test_video_spec_wire_names_and_tag() -> None:
    spec = w.build_video(
        avatar_id="a1", name="Launch", text="Hi", voice_id="v1", im2vid_full=False, key="row-1"
    )
    tag = w.tag_for("row-1")
    assert spec.match_tag == tag
    assert spec.kind == "video"
    assert spec.endpoint == "POST /api/video/create"
    assert spec.payload == {
        "avatarId": "a1",
        "name": f"Launch #{tag}",
        "text": "Hi",
        "voiceId": "v1",
        "im2vid_full": False,
    }
    assert w.name_has_tag(spec.payload["name"], tag)


def test_untagged_specs_leave_the_name_alone() -> None:
    spec = w.build_video(avatar_id="a1", name="Launch", text="Hi", tag=False)
    assert spec.match_tag is None
    assert spec.payload["name"] == "Launch"


def test_tag_without_key_is_stable_for_equal_bodies_and_differs_otherwise() -> None:
    a = w.build_video(avatar_id="a1", name="n", text="one")
    b = w.build_video(avatar_id="a1", name="n", text="one")
    c = w.build_video(avatar_id="a1", name="n", text="two")
    assert a.match_tag == b.match_tag
    assert a.match_tag != c.match_tag


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_tags_are_short_stable_and_distinguish_keys(k1: str, k2: str) -> None:
    t1 = w.tag_for(k1)
    assert t1 == w.tag_for(k1)
    assert len(t1) == 12
    assert t1.isalnum()
    assert t1.islower()
    if k1 != k2:
        assert t1 != w.tag_for(k2)


def test_video_from_audio_spec_is_multipart() -> None:
    spec = w.build_video_from_audio(
        avatar_id="a1", name="n", media_id="m1", im2vid_full=True, tag=False
    )
    assert spec.payload == {"avatarId": "a1", "name": "n", "mediaId": "m1", "im2vid_full": True}
    assert spec.meta["encoding"] == "multipart"


def test_image_specs() -> None:
    gen = w.build_image(prompt="fox", name="f", aspect_ratio="4:3", negative_prompt="blur", seed=1)
    assert gen.kind == "image"
    assert gen.poll_policy == DEFAULT_IMAGE_POLL_POLICY
    assert gen.payload == {
        "prompt": "fox",
        "name": "f",
        "aspectRatio": "4:3",
        "negativePrompt": "blur",
        "seed": 1,
    }
    one = w.build_edit_image(prompt="p", reference_media_ids="m1")
    many = w.build_edit_image(prompt="p", reference_media_ids=("m1", "m2"))
    assert one.payload == {"prompt": "p", "referenceImageMediaId": "m1"}
    assert many.payload == {"prompt": "p", "referenceImageMediaIds": ["m1", "m2"]}
    inpaint = w.build_inpaint(original_media_id="m1", mask_media_id="m2", prompt="hat")
    assert inpaint.payload == {
        "originalImageMediaId": "m1",
        "maskImageMediaId": "m2",
        "prompt": "hat",
    }
    assert inpaint.endpoint == "POST /api/image/inpaint"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: w.build_video(avatar_id="", name="n", text="t"), "avatar_id"),
        (lambda: w.build_video(avatar_id="a", name="n", text="  "), "text"),
        (
            lambda: w.build_video(avatar_id="a", name="n", text="t", im2vid_full="yes"),  # type: ignore[arg-type]
            "im2vid_full",
        ),
        (lambda: w.build_image(prompt="p", aspect_ratio="2:1"), "aspect_ratio"),
        (lambda: w.build_image(prompt="p", seed=1.5), "seed"),  # type: ignore[arg-type]
        (lambda: w.build_image(prompt="p", seed=True), "seed"),
        (lambda: w.build_image(prompt=""), "prompt"),
        (lambda: w.build_edit_image(prompt="p", reference_media_ids=[]), "reference_media_ids"),
        (
            lambda: w.build_edit_image(prompt="p", reference_media_ids=["m", ""]),
            "reference_media_ids[1]",
        ),
        (
            lambda: w.build_inpaint(original_media_id="m", mask_media_id="", prompt="p"),
            "mask_media_id",
        ),
    ],
)
def test_builders_reject_bad_input_naming_the_field(call: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        call()
    assert info.value.field == field
    assert info.value.expected


def test_aspect_ratio_error_lists_allowed_values() -> None:
    with pytest.raises(InvalidInput) as info:
        w.build_image(prompt="p", aspect_ratio="21:9")
    assert info.value.value == "21:9"
    for ratio in w.ASPECT_RATIOS:
        assert ratio in info.value.expected


# --- errors --------------------------------------------------------------------------------


def _err(status: int, body: object, retry_after: float | None = None) -> Any:
    return w.map_error(
        status=status, body=body, endpoint="POST /api/video/create", retry_after=retry_after
    )


def _failure(message: str) -> dict[str, str]:
    return {"result": "failure", "error": message}


def test_success_answers_are_not_errors() -> None:
    assert _err(200, {"result": "success", "jobId": "j"}) is None
    assert _err(200, {"avatars": []}) is None


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (400, _failure("Insufficient credits"), InsufficientCredits),
        (200, _failure("insufficient credits for this video"), InsufficientCredits),
        (402, _failure("Not enough credits"), InsufficientCredits),
        (400, _failure("Missing required parameter: avatarId"), BadRequest),
        (200, _failure("Missing required parameter: avatarId"), BadRequest),
        (200, _failure("Avatar not found"), NotFound),
        (401, _failure("Invalid API key"), AuthenticationError),
        (401, None, AuthenticationError),
        (403, _failure("plan does not allow this"), PaymentRequired),
        (404, _failure("Video not found"), NotFound),
        (404, None, NotFound),
        (500, _failure("Internal error"), ServerError),
        (502, None, ServerError),
        (418, None, BadRequest),
    ],
)
def test_error_mapping(status: int, body: object, cls: type[APIStatusError]) -> None:
    """RELIABILITY #14, #18: a failure envelope on 200 is an error; credits: InsufficientCredits."""
    err = _err(status, body)
    assert type(err) is cls
    assert err.status_code == status
    assert err.provider == "miraflow"
    assert err.endpoint == "POST /api/video/create"
    if isinstance(body, dict):
        assert err.message == body["error"]
        assert err.body == body


def test_rate_limit_keeps_retry_after() -> None:
    err = _err(429, _failure("slow down"), retry_after=3.0)
    assert isinstance(err, RateLimited)
    assert err.retry_after == 3.0


@given(
    st.integers(100, 599),
    st.one_of(
        st.none(),
        st.text(max_size=10),
        st.dictionaries(
            st.sampled_from(["result", "error", "message", "jobId"]),
            st.one_of(st.none(), st.text(max_size=10), st.sampled_from(["failure", "success"])),
        ),
    ),
)
def test_error_mapping_is_total(status: int, body: Any) -> None:
    err = w.map_error(status=status, body=body, endpoint="GET /api/videos")
    failure = isinstance(body, dict) and body.get("result") == "failure"
    if failure or not 200 <= status < 300:
        assert isinstance(err, APIStatusError)
    else:
        assert err is None
    if err is not None:
        assert err.status_code == status
        assert err.message
