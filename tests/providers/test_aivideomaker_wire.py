"""AIVideoMaker wire layer, pure: the §4.3 contract, parsing variants, status and error mapping."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aivideo_async._exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequest,
    Conflict,
    DecodeError,
    InsufficientCredits,
    InvalidInput,
    NotFound,
    RateLimited,
    ServerError,
)
from aivideo_async._models import JobState
from aivideo_async.providers.aivideomaker import _wire as w

PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGAAAAAF"
    "AAFm5Td6AAAAAElFTkSuQmCC"
)
URL = "https://example.com/first-frame.jpg"


# --- the contract --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "payload", "expected"),
    [
        (
            "t2v",
            {"prompt": "city", "aspectRatio": "16:9", "duration": "8"},
            {"prompt": "city", "aspectRatio": "16:9", "duration": "8"},
        ),
        (
            "t2v",
            {"prompt": "city", "aspectRatio": "1:1", "duration": 5},
            {"prompt": "city", "aspectRatio": "1:1", "duration": "5"},
        ),
        (
            "t2v_v3",
            {"prompt": "city", "aspectRatio": "9:16", "duration": 20},
            {"prompt": "city", "aspectRatio": "9:16", "duration": "20"},
        ),
        (
            "i2v",
            {"image": URL, "duration": "8"},
            {"image": URL, "prompt": None, "duration": "8"},
        ),
        (
            "i2v_v3",
            {"image": PNG, "prompt": "zoom", "duration": 15.0},
            {"image": PNG, "prompt": "zoom", "duration": "15"},
        ),
        (
            "lv",
            {"image": PNG, "prompt": ["a", "b", "c", "d", "e", "f"]},
            {"image": PNG, "prompt": ["a", "b", "c", "d", "e", "f"]},
        ),
    ],
)
def test_valid_payloads_are_normalised(model: str, payload: dict[str, Any], expected: Any) -> None:
    assert w.validate_payload(model, payload) == expected


@pytest.mark.parametrize(
    ("model", "payload", "field", "allowed"),
    [
        ("t2v", {"prompt": "x", "aspectRatio": "16:9", "duration": "10"}, "duration", "5, 8"),
        ("t2v", {"prompt": "x", "aspectRatio": "16:9", "duration": 8.5}, "duration", "5, 8"),
        ("t2v", {"prompt": "x", "aspectRatio": "16:9", "duration": True}, "duration", "5, 8"),
        ("t2v", {"prompt": "x", "aspectRatio": "16:9"}, "duration", "5, 8"),
        ("i2v", {"image": URL, "duration": "10"}, "duration", "5, 8"),
        (
            "t2v_v3",
            {"prompt": "x", "aspectRatio": "16:9", "duration": "8"},
            "duration",
            "5, 10, 15, 20",
        ),
        ("i2v_v3", {"image": URL, "duration": 25}, "duration", "5, 10, 15, 20"),
        ("t2v", {"prompt": "x", "aspectRatio": "4:3", "duration": "5"}, "aspect_ratio", "16:9"),
        ("t2v", {"prompt": "", "aspectRatio": "1:1", "duration": "5"}, "prompt", "non-empty"),
        ("t2v", {"aspectRatio": "1:1", "duration": "5"}, "prompt", "non-empty"),
        ("i2v", {"image": URL, "prompt": 3, "duration": "5"}, "prompt", "non-empty"),
        ("lv", {"image": URL, "prompt": []}, "prompt", "1 to 6"),
        ("lv", {"image": URL, "prompt": ["p"] * 7}, "prompt", "1 to 6"),
        ("lv", {"image": URL, "prompt": "one string"}, "prompt", "1 to 6"),
        ("lv", {"image": URL, "prompt": ["ok", " "]}, "prompt[1]", "non-empty"),
        ("lv", {"prompt": ["a"]}, "image", "https://"),
        ("i2v", {"image": "http://example.com/a.jpg", "duration": "5"}, "image", "https://"),
        ("i2v", {"image": "/tmp/a.jpg", "duration": "5"}, "image", "https://"),
        ("i2v", {"image": "data:text/plain;base64,aGk=", "duration": "5"}, "image", "data:image"),
        ("i2v", {"image": "data:image/png;base64,@@@", "duration": "5"}, "image", "base64"),
        ("i2v", {"image": URL, "duration": "5", "aspectRatio": "16:9"}, "aspectRatio", "image"),
        (
            "t2v",
            {"prompt": "x", "aspect_ratio": "16:9", "duration": "5"},
            "aspect_ratio",
            "aspectRatio",
        ),
    ],
)
def test_each_violation_names_field_value_and_allowed(
    model: str, payload: dict[str, Any], field: str, allowed: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        w.validate_payload(model, payload)
    err = info.value
    assert err.field == field
    assert allowed in err.expected
    assert err.provider == "aivideomaker"


@pytest.mark.parametrize("model", ["sora", "minimax", "T2V", "", None])
def test_model_whitelist(model: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        w.build_generate(model, {"prompt": "x"})
    assert info.value.field == "model"
    assert info.value.value == model
    assert "t2v, i2v, lv, t2v_v3, i2v_v3" in info.value.expected


@given(model=st.sampled_from(["t2v", "i2v", "t2v_v3", "i2v_v3"]), seconds=st.integers(-5, 40))
def test_duration_accepted_exactly_when_allowed(model: str, seconds: int) -> None:
    payload: dict[str, Any] = {"duration": seconds}
    if model.startswith("t2v"):
        payload |= {"prompt": "x", "aspectRatio": "16:9"}
    else:
        payload |= {"image": URL}
    if str(seconds) in w.DURATIONS[model]:
        body = w.validate_payload(model, payload)
        assert body["duration"] == str(seconds)
        assert isinstance(body["duration"], str)
    else:
        with pytest.raises(InvalidInput) as info:
            w.validate_payload(model, payload)
        assert info.value.field == "duration"
        assert info.value.value == seconds


@given(st.lists(st.text(min_size=1).filter(str.strip), min_size=0, max_size=9))
def test_lv_prompt_count(prompts: list[str]) -> None:
    if 1 <= len(prompts) <= 6:
        assert w.build_long_video(image=URL, prompts=prompts).payload["prompt"] == prompts
    else:
        with pytest.raises(InvalidInput):
            w.build_long_video(image=URL, prompts=prompts)


def test_builders() -> None:
    t = w.build_text_to_video(prompt="sunset", aspect_ratio="9:16", duration=10, model="t2v_v3")
    assert t.endpoint == "POST /api/v1/generate/t2v_v3"
    assert t.payload == {"prompt": "sunset", "aspectRatio": "9:16", "duration": "10"}
    assert t.meta["model"] == "t2v_v3"
    i = w.build_image_to_video(image=PNG, prompt=None, duration=5)
    assert i.endpoint == "POST /api/v1/generate/i2v"
    assert i.payload == {"image": PNG, "prompt": None, "duration": "5"}
    lv = w.build_long_video(image=URL, prompts=("a", "b"))
    assert lv.endpoint == "POST /api/v1/generate/lv"
    assert lv.payload == {"image": URL, "prompt": ["a", "b"]}
    hooked = w.build_text_to_video(prompt="x", webhook_url="https://hooks.example/cb")
    assert hooked.meta["headers"] == {"webhookUrl": "https://hooks.example/cb"}


def test_builder_model_families_and_webhook() -> None:
    with pytest.raises(InvalidInput) as info:
        w.build_text_to_video(prompt="x", model="i2v")
    assert info.value.field == "model"
    with pytest.raises(InvalidInput) as info:
        w.build_image_to_video(image=URL, model="lv")
    assert info.value.field == "model"
    with pytest.raises(InvalidInput) as info:
        w.build_text_to_video(prompt="x", webhook_url="http://insecure/cb")
    assert info.value.field == "webhook_url"


# --- parsing -------------------------------------------------------------------------------


def test_created_accepts_task_id_or_id() -> None:
    full = {
        "status": "SUBMITTED",
        "taskId": "ck1",
        "responseUrl": "https://aivideomaker.ai/api/v1/tasks/ck1",
        "statusUrl": "https://aivideomaker.ai/api/v1/tasks/ck1/status",
        "cancelUrl": "https://aivideomaker.ai/api/v1/tasks/ck1/cancel",
    }
    assert w.parse_created(full) == "ck1"
    assert w.parse_created({"status": "SUBMITTED", "id": "ck2"}) == "ck2"
    for bad in ({"status": "SUBMITTED"}, {"taskId": ""}, {"taskId": 5}):
        with pytest.raises(DecodeError) as info:
            w.parse_created(bad)
        assert info.value.path == "$.taskId"


@pytest.mark.parametrize(
    "output",
    [
        {"videoUrl": "https://cdn/t.mp4"},
        {"url": "https://cdn/t.mp4"},
        {"videoUrl": "https://cdn/t.mp4", "url": "https://cdn/other.mp4"},
    ],
)
def test_output_video_url_or_url(output: dict[str, str]) -> None:
    task = w.parse_task({"id": "t", "status": "COMPLETED", "output": output})
    status = w.task_status(task)
    assert status.result is not None
    assert status.result.url == "https://cdn/t.mp4"


def test_task_detail_keeps_everything() -> None:
    body = {
        "id": "ck1",
        "createdAt": "2026-03-19T08:00:00.000Z",
        "model": "t2v",
        "input": {"prompt": "A cinematic sunset", "aspectRatio": "16:9", "duration": "8"},
        "output": None,
        "status": "PROGRESS",
        "completedAt": None,
        "creditsCharged": 8,
    }
    task = w.parse_task(body)
    assert (task.id, task.model, task.status, task.output) == ("ck1", "t2v", "PROGRESS", None)
    assert task.input == body["input"]
    assert task.raw["creditsCharged"] == 8
    assert w.parse_timestamp(task.created_at) == 1773907200.0


def test_tasks_list_and_path_of_a_bad_item() -> None:
    tasks = w.parse_tasks(
        {"tasks": [{"id": "a", "status": "SUBMITTED"}, {"taskId": "b", "status": "COMPLETED"}]}
    )
    assert [t.id for t in tasks] == ["a", "b"]
    with pytest.raises(DecodeError) as info:
        w.parse_tasks({"tasks": [{"id": "a", "status": "SUBMITTED"}, {"id": "b"}]})
    assert info.value.path == "$.tasks[1].status"
    with pytest.raises(DecodeError) as info:
        w.parse_tasks({"tasks": [{"id": "a", "status": "SUBMITTED"}, {"status": "FAILED"}]})
    assert info.value.path == "$.tasks[1].id"
    with pytest.raises(DecodeError) as info:
        w.parse_tasks({"items": []})
    assert info.value.path == "$.tasks"


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("SUBMITTED", JobState.QUEUED),
        ("PROGRESS", JobState.RUNNING),
        ("COMPLETED", JobState.SUCCEEDED),
        ("FAILED", JobState.FAILED),
        ("CANCEL", JobState.CANCELED),
    ],
)
def test_every_documented_status_maps(raw: str, state: JobState) -> None:
    status = w.parse_status({"status": raw}, job_id="t1")
    assert (status.state, status.raw_status, status.known) == (state, raw, True)


@given(st.text(max_size=20))
def test_status_mapping_is_total(raw: str) -> None:
    status = w.map_status(raw, job_id="t")
    assert status.known == (raw in w.STATUS_MAP)
    assert status.state is w.STATUS_MAP.get(raw, JobState.RUNNING)
    assert status.raw_status == raw


def test_status_body_decode_errors() -> None:
    with pytest.raises(DecodeError) as info:
        w.parse_status({"state": "PROGRESS"}, job_id="t")
    assert info.value.path == "$.status"
    with pytest.raises(DecodeError) as info:
        w.parse_status(["PROGRESS"], job_id="t")
    assert info.value.path == "$"


def test_cancel_answer() -> None:
    assert w.parse_cancel({"status": "CANCEL"}) == "CANCEL"


def test_input_matching_for_reconciliation() -> None:
    sent = {"prompt": "city", "aspectRatio": "16:9", "duration": "8"}
    assert w.input_matches(sent, dict(sent))
    assert not w.input_matches(sent, {**sent, "duration": "5"})
    assert not w.input_matches(sent, None)
    i2v = {"image": PNG, "prompt": None, "duration": "5"}
    assert w.input_matches(i2v, {"image": "https://r2.example/x.png", "duration": "5"})
    assert not w.input_matches(i2v, {"duration": "5"})
    url = {"image": URL, "prompt": None, "duration": "5"}
    assert not w.input_matches(url, {"image": "https://other/x.jpg", "duration": "5"})


@given(st.text(max_size=30))
def test_timestamp_parsing_never_raises(text: str) -> None:
    value = w.parse_timestamp(text)
    assert value is None or isinstance(value, float)


# --- errors --------------------------------------------------------------------------------

CREATE = "POST /api/v1/generate/t2v"
CANCEL = "PUT /api/v1/tasks/t1/cancel"
STATUS = "GET /api/v1/tasks/t1/status"


def _failed(message: str) -> dict[str, str]:
    return {"status": "FAILED", "message": message}


@pytest.mark.parametrize(
    ("status", "body", "endpoint", "cls"),
    [
        (200, _failed("Insufficient credits"), CREATE, InsufficientCredits),
        (402, _failed("Insufficient credits"), CREATE, InsufficientCredits),
        (402, None, CREATE, InsufficientCredits),
        (200, _failed("Invalid payload"), CREATE, BadRequest),
        (400, _failed("Invalid duration"), CREATE, BadRequest),
        (401, _failed("Invalid API key"), CREATE, AuthenticationError),
        (403, _failed("Forbidden"), STATUS, AuthenticationError),
        (404, _failed("Task not found"), STATUS, NotFound),
        (429, _failed("Too many requests"), STATUS, RateLimited),
        (500, _failed("oops"), CREATE, ServerError),
        (503, None, STATUS, ServerError),
        (400, _failed("Task cannot be cancelled"), CANCEL, Conflict),
        (409, _failed("Task is PROGRESS"), CANCEL, Conflict),
        (200, _failed("Task cannot be cancelled"), CANCEL, Conflict),
        (405, _failed("Method not allowed"), "POST /api/v1/tasks/t1/cancel", BadRequest),
    ],
)
def test_error_mapping(status: int, body: object, endpoint: str, cls: type[APIStatusError]) -> None:
    """RELIABILITY #14, #18: FAILED on HTTP 200 is an error; credits: InsufficientCredits."""
    err = w.map_error(status=status, body=body, endpoint=endpoint, retry_after=2.0)
    assert type(err) is cls
    assert err.status_code == status
    assert err.endpoint == endpoint
    assert err.provider == "aivideomaker"
    if isinstance(err, RateLimited):
        assert err.retry_after == 2.0
    if isinstance(body, dict):
        assert body["message"] in err.message


@pytest.mark.parametrize(
    ("body", "endpoint"),
    [
        ({"status": "FAILED"}, STATUS),
        ({"id": "t1", "status": "FAILED", "message": "moderation"}, "GET /api/v1/tasks/t1"),
        ({"tasks": []}, "GET /api/v1/tasks"),
        ({"status": "SUBMITTED", "taskId": "t1"}, CREATE),
        ({"status": "CANCEL"}, CANCEL),
    ],
)
def test_ok_answers_and_failed_jobs_are_not_errors(body: object, endpoint: str) -> None:
    assert w.map_error(status=200, body=body, endpoint=endpoint) is None


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 30),
    st.floats(allow_nan=True),
    st.sampled_from(["5", "8", "10", "16:9", "1:1", URL, PNG, "http://x/y.png", ""]),
    st.text(max_size=6),
    st.lists(st.text(max_size=4), max_size=8),
)


@given(
    st.sampled_from([*w.MODELS, "bogus"]),
    st.dictionaries(
        st.sampled_from(["prompt", "aspectRatio", "duration", "image", "extra"]),
        _values,
        max_size=5,
    ),
)
def test_validation_is_total(model: str, payload: dict[str, Any]) -> None:
    # Any input either normalises to a body that passes again unchanged, or is an
    # InvalidInput; no other exception escapes.
    outcome: dict[str, Any] | InvalidInput
    try:
        outcome = w.validate_payload(model, payload)
    except InvalidInput as err:
        outcome = err
    if isinstance(outcome, InvalidInput):
        assert outcome.field
        assert outcome.expected
    else:
        assert w.validate_payload(model, outcome) == outcome
        if "duration" in outcome:
            assert outcome["duration"] in w.DURATIONS[model]


@given(
    st.integers(100, 599),
    st.one_of(st.none(), st.dictionaries(st.sampled_from(["status", "message", "id"]), _values)),
    st.sampled_from([CREATE, CANCEL, STATUS, "GET /api/v1/tasks"]),
)
def test_error_mapping_is_total(status: int, body: Any, endpoint: str) -> None:
    err = w.map_error(status=status, body=body, endpoint=endpoint)
    if not 200 <= status < 300:
        assert isinstance(err, APIStatusError)
    if err is not None:
        assert err.status_code == status
        assert err.provider == "aivideomaker"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.example/cb", True),
        ("http://127.0.0.1:8123/cb", True),
        ("http://localhost/cb", True),
        ("http://[::1]:9/cb", True),
        ("http://hooks.example/cb", False),
        ("http://10.0.0.1/cb", False),
        ("ftp://127.0.0.1/cb", False),
        ("https://hooks.example/c b", False),
        (42, False),
    ],
)
def test_webhook_urls_are_https_or_loopback_http(url: object, ok: bool) -> None:
    if ok:
        spec = w.build_text_to_video(prompt="x", webhook_url=url)  # type: ignore[arg-type]
        assert spec.meta["headers"] == {"webhookUrl": url}
    else:
        with pytest.raises(InvalidInput) as info:
            w.build_text_to_video(prompt="x", webhook_url=url)  # type: ignore[arg-type]
        assert info.value.field == "webhook_url"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"id": "cktask0001", "status": "COMPLETED"}, "cktask0001"),
        ({"taskId": "cktask0002"}, "cktask0002"),
        ({"id": "../../etc/passwd"}, None),
        ({"id": "a/b"}, None),
        ({"id": 7}, None),
        ({"status": "COMPLETED"}, None),
        (["cktask0001"], None),
        ("cktask0001", None),
        (None, None),
    ],
)
def test_a_callback_names_a_task_id_or_nothing(body: object, expected: str | None) -> None:
    assert w.webhook_job_id(body) == expected
