"""
AIVideoMaker wire layer: attrs models, the §4.3 payload contract, pure ``build_*`` / ``parse_*``.

No IO here (STYLE #4). Facts: PROVIDER_APIS.md §4.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import attrs
from yarl import URL

from ..._exceptions import (
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
from ..._models import JobResult, JobState, JobStatus
from ..._session import _is_loopback, validate_path_id
from .._base import JobSpec
from .._common import make_converter, structure

__all__ = [
    "webhook_job_id",
    "PROVIDER",
    "DEFAULT_BASE_URL",
    "ENV_API_KEY",
    "MODELS",
    "DURATIONS",
    "ASPECT_RATIOS",
    "MAX_LV_PROMPTS",
    "STATUS_MAP",
    "TaskOutput",
    "Task",
    "validate_model",
    "validate_payload",
    "validate_image",
    "build_generate",
    "build_text_to_video",
    "build_image_to_video",
    "build_long_video",
    "parse_created",
    "parse_task",
    "parse_tasks",
    "parse_status",
    "parse_cancel",
    "map_status",
    "task_status",
    "parse_timestamp",
    "input_matches",
    "map_error",
]

PROVIDER: Final = "aivideomaker"
DEFAULT_BASE_URL: Final = "https://aivideomaker.ai"
ENV_API_KEY: Final = "AIVIDEO_API_KEY"

MODELS: Final = ("t2v", "i2v", "lv", "t2v_v3", "i2v_v3")
"""The model whitelist of the husu skill and the official page (§4.1)."""

DURATIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "t2v": ("5", "8"),
    "i2v": ("5", "8"),
    "t2v_v3": ("5", "10", "15", "20"),
    "i2v_v3": ("5", "10", "15", "20"),
}
"""Allowed ``duration`` strings per model (``lv`` takes none: 5 s per prompt)."""

ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1")
"""Allowed ``aspectRatio`` values of the text models."""

MAX_LV_PROMPTS: Final = 6

STATUS_MAP: Final[Mapping[str, JobState]] = {
    "SUBMITTED": JobState.QUEUED,
    "PROGRESS": JobState.RUNNING,
    "COMPLETED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "CANCEL": JobState.CANCELED,
    # Spellings no source shows but a later API version might send.
    "CANCELED": JobState.CANCELED,
    "CANCELLED": JobState.CANCELED,
}
"""Task statuses (§4.2) and their :class:`JobState`."""

_TEXT_MODELS: Final = frozenset({"t2v", "t2v_v3"})
_IMAGE_MODELS: Final = frozenset({"i2v", "i2v_v3"})

_converter = make_converter()


def _raw() -> Any:
    """The ``raw`` field: the JSON object as received (see :mod:`.._common`)."""
    return attrs.field(factory=dict, repr=False, eq=False)


# ---------------------------------------------------------------------------
# Response models


@attrs.frozen(kw_only=True)
class TaskOutput:
    """
    A finished task's ``output``. The video URL is under ``videoUrl`` or ``url``
    (CONFLICT, §4.2); :attr:`best_url` picks ``videoUrl`` first.

    Example:
        >>> parse_task({"id": "t1", "status": "COMPLETED",
        ...             "output": {"url": "https://cdn/t1.mp4"}}).output.best_url
        'https://cdn/t1.mp4'
    """

    video_url: str | None = None
    url: str | None = None
    raw: Mapping[str, Any] = _raw()

    @property
    def best_url(self) -> str | None:
        """
        ``videoUrl``, else ``url``, else ``None``.

        Example:
            >>> TaskOutput(url="https://cdn/a.mp4").best_url
            'https://cdn/a.mp4'
        """
        return self.video_url or self.url


@attrs.frozen(kw_only=True)
class Task:
    """
    A task of ``GET /api/v1/tasks/{taskId}`` or of the tasks list.

    Attributes:
        id: the task id (sent as ``id``; ``taskId`` is accepted too).
        status: raw status (``SUBMITTED``, ``PROGRESS``, ``COMPLETED``, ``FAILED``, ``CANCEL``).
        model: the model path segment (``t2v`` ...).
        input: the create body as the server stored it (images become R2 URLs).
        output: set once ``COMPLETED``.
        created_at, completed_at: ISO timestamps as sent.
        raw: the object as received.

    Example:
        >>> t = parse_task({"id": "t1", "status": "PROGRESS", "model": "t2v",
        ...                 "input": {"prompt": "x"}, "output": None})
        >>> t.id, t.status, t.output
        ('t1', 'PROGRESS', None)
    """

    id: str
    status: str
    model: str | None = None
    input: Mapping[str, Any] | None = None
    output: TaskOutput | None = None
    created_at: str | None = None
    completed_at: str | None = None
    message: str | None = None
    raw: Mapping[str, Any] = _raw()


@attrs.frozen(kw_only=True)
class _TaskWire:
    id: str | None = None
    task_id: str | None = None
    status: str
    model: str | None = None
    input: Mapping[str, Any] | None = None
    output: TaskOutput | None = None
    created_at: str | None = None
    completed_at: str | None = None
    message: Any = None
    raw: Mapping[str, Any] = _raw()


@attrs.frozen(kw_only=True)
class _TaskListWire:
    tasks: list[_TaskWire]


@attrs.frozen(kw_only=True)
class _Created:
    status: str | None = None
    task_id: str | None = None
    id: str | None = None
    message: Any = None
    raw: Mapping[str, Any] = _raw()


@attrs.frozen(kw_only=True)
class _StatusWire:
    status: str
    progress: Any = None
    message: Any = None
    raw: Mapping[str, Any] = _raw()


# ---------------------------------------------------------------------------
# Validation (§4.3)

_DATA_URI = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,(?P<data>.+)$", re.S)


def validate_model(model: object) -> str:
    """
    Check ``model`` against the whitelist.

    Raises:
        InvalidInput: not one of :data:`MODELS`.

    Example:
        >>> validate_model("t2v_v3")
        't2v_v3'
        >>> try:
        ...     validate_model("sora")
        ... except InvalidInput as err:
        ...     print(err.field, err.value, "|", err.expected)
        model sora | one of t2v, i2v, lv, t2v_v3, i2v_v3
    """
    if not isinstance(model, str) or model not in MODELS:
        raise InvalidInput(
            field="model", value=model, expected="one of " + ", ".join(MODELS), provider=PROVIDER
        )
    return model


def validate_image(value: object, *, field: str = "image") -> str:
    """
    Check an image reference: an ``https://`` URL or ``data:image/...;base64,...``.

    Raises:
        InvalidInput: anything else (``http://``, a local path, bad base64).

    Example:
        >>> validate_image("https://example.com/a.jpg")
        'https://example.com/a.jpg'
        >>> validate_image("data:image/png;base64,iVBORw0KGgo=")[:15]
        'data:image/png;'
    """
    expected = "an https:// URL or a data:image/<type>;base64,<data> URI"
    if not isinstance(value, str):
        raise InvalidInput(field=field, value=value, expected=expected, provider=PROVIDER)
    if (
        value.startswith("https://")
        and len(value) > len("https://")
        and not any(ch.isspace() for ch in value)
    ):
        return value
    match = _DATA_URI.match(value)
    if match is not None:
        try:
            base64.b64decode(match.group("data"), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(
                field=field,
                value=value,
                expected="valid base64 after 'base64,'",
                provider=PROVIDER,
            ) from None
        return value
    raise InvalidInput(field=field, value=value, expected=expected, provider=PROVIDER)


def _duration(model: str, value: object) -> str:
    allowed = DURATIONS[model]
    text: str | None = None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        text = str(int(value))
    if text not in allowed:
        raise InvalidInput(
            field="duration",
            value=value,
            expected=f"one of {', '.join(allowed)} (seconds) for model {model}",
            provider=PROVIDER,
        )
    return text


def _prompt(value: object, *, required: bool, field: str = "prompt") -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        expected = "a non-empty string" if required else "a non-empty string or None"
        raise InvalidInput(field=field, value=value, expected=expected, provider=PROVIDER)
    return value


def _aspect(value: object) -> str:
    if not isinstance(value, str) or value not in ASPECT_RATIOS:
        raise InvalidInput(
            field="aspect_ratio",
            value=value,
            expected="one of " + ", ".join(ASPECT_RATIOS),
            provider=PROVIDER,
        )
    return value


def _lv_prompts(value: object) -> list[str]:
    expected = f"a list of 1 to {MAX_LV_PROMPTS} non-empty strings (one per 5 s segment)"
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInput(field="prompt", value=value, expected=expected, provider=PROVIDER)
    prompts = list(value)
    if not 1 <= len(prompts) <= MAX_LV_PROMPTS:
        raise InvalidInput(field="prompt", value=value, expected=expected, provider=PROVIDER)
    for index, item in enumerate(prompts):
        _prompt(item, required=True, field=f"prompt[{index}]")
    return prompts


def validate_payload(model: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """
    Check a wire body against the §4.3 contract of ``model``; return it normalised.

    ``duration`` may be given as an int; it is sent as the string the model
    takes. Unknown keys are rejected (the emulator and the API would ignore or
    refuse them; a typo such as ``aspect_ratio`` should not pass silently).

    Raises:
        InvalidInput: naming the field, the value and the allowed values.

    Example:
        >>> validate_payload("t2v", {"prompt": "a city", "aspectRatio": "16:9", "duration": 8})
        {'prompt': 'a city', 'aspectRatio': '16:9', 'duration': '8'}
        >>> try:
        ...     validate_payload("t2v_v3", {"prompt": "a", "aspectRatio": "1:1", "duration": "8"})
        ... except InvalidInput as err:
        ...     print(err.field, err.value, "|", err.expected)
        duration 8 | one of 5, 10, 15, 20 (seconds) for model t2v_v3
    """
    model = validate_model(model)
    if not isinstance(payload, Mapping):
        raise InvalidInput(
            field="payload", value=payload, expected="a JSON object", provider=PROVIDER
        )
    if model in _TEXT_MODELS:
        allowed_keys = {"prompt", "aspectRatio", "duration"}
    elif model in _IMAGE_MODELS:
        allowed_keys = {"image", "prompt", "duration"}
    else:
        allowed_keys = {"image", "prompt"}
    unknown = sorted(set(payload) - allowed_keys)
    if unknown:
        raise InvalidInput(
            field=unknown[0],
            value=payload[unknown[0]],
            expected=f"no such field for model {model}; fields: {', '.join(sorted(allowed_keys))}",
            provider=PROVIDER,
        )
    body: dict[str, Any] = {}
    if model in _TEXT_MODELS:
        body["prompt"] = _prompt(payload.get("prompt"), required=True)
        body["aspectRatio"] = _aspect(payload.get("aspectRatio"))
        body["duration"] = _duration(model, payload.get("duration"))
    elif model in _IMAGE_MODELS:
        body["image"] = validate_image(payload.get("image"))
        body["prompt"] = _prompt(payload.get("prompt"), required=False)
        body["duration"] = _duration(model, payload.get("duration"))
    else:
        body["image"] = validate_image(payload.get("image"))
        body["prompt"] = _lv_prompts(payload.get("prompt"))
    return body


# ---------------------------------------------------------------------------
# Builders


def _validate_webhook(webhook_url: object) -> str | None:
    if webhook_url is None:
        return None
    if isinstance(webhook_url, str) and not any(ch.isspace() for ch in webhook_url):
        if webhook_url.startswith("https://"):
            return webhook_url
        # Plain http only to this machine (the emulator, tests; RELIABILITY #40).
        host = URL(webhook_url).host if webhook_url.startswith("http://") else None
        if host is not None and _is_loopback(host):
            return webhook_url
    raise InvalidInput(
        field="webhook_url",
        value=webhook_url,
        expected="an https:// URL (http:// only to a loopback host)",
        provider=PROVIDER,
    )


def webhook_job_id(body: object) -> str | None:
    """
    The task id a status callback names (its task-detail JSON: ``id`` or
    ``taskId``), or ``None`` when the body names no valid id. Nothing else in
    the body is read: a callback is a hint to poll, not a status.

    Example:
        >>> webhook_job_id({"id": "cktask0001", "status": "COMPLETED"})
        'cktask0001'
        >>> webhook_job_id({"id": "../etc"}) is None, webhook_job_id("x") is None
        (True, True)
    """
    if not isinstance(body, Mapping):
        return None
    for field in ("id", "taskId"):
        value = body.get(field)
        if isinstance(value, str):
            try:
                return validate_path_id(field, value)
            except InvalidInput:
                return None
    return None


def build_generate(
    model: str, payload: Mapping[str, Any], *, webhook_url: str | None = None
) -> JobSpec:
    """
    The spec of ``POST /api/v1/generate/{model}`` for any whitelisted model.

    The payload is checked by :func:`validate_payload` before the spec exists,
    so nothing invalid is ever sent. ``webhook_url`` goes in the ``webhookUrl``
    header.

    Example:
        >>> spec = build_generate("t2v", {"prompt": "a city", "aspectRatio": "9:16",
        ...                               "duration": "5"})
        >>> spec.endpoint, spec.kind, spec.payload["duration"]
        ('POST /api/v1/generate/t2v', 'video', '5')
    """
    body = validate_payload(model, payload)
    meta: dict[str, Any] = {"model": model}
    webhook = _validate_webhook(webhook_url)
    if webhook is not None:
        meta["headers"] = {"webhookUrl": webhook}
    return JobSpec(
        provider=PROVIDER,
        kind="video",
        method="POST",
        path=f"/api/v1/generate/{model}",
        payload=body,
        meta=meta,
    )


def build_text_to_video(
    *,
    prompt: str,
    aspect_ratio: str = "16:9",
    duration: int | str = 5,
    model: str = "t2v",
    webhook_url: str | None = None,
) -> JobSpec:
    """
    Text to video with ``t2v`` (5 or 8 s) or ``t2v_v3`` (5, 10, 15 or 20 s).

    Example:
        >>> build_text_to_video(prompt="a sunset", duration=8).payload
        {'prompt': 'a sunset', 'aspectRatio': '16:9', 'duration': '8'}
    """
    if model not in _TEXT_MODELS:
        raise InvalidInput(
            field="model", value=model, expected="one of t2v, t2v_v3", provider=PROVIDER
        )
    payload = {"prompt": prompt, "aspectRatio": aspect_ratio, "duration": duration}
    return build_generate(model, payload, webhook_url=webhook_url)


def build_image_to_video(
    *,
    image: str,
    prompt: str | None = None,
    duration: int | str = 5,
    model: str = "i2v",
    webhook_url: str | None = None,
) -> JobSpec:
    """
    Image to video with ``i2v`` (5 or 8 s) or ``i2v_v3`` (5, 10, 15 or 20 s).

    ``prompt`` is sent as ``null`` when not given (the documented form).

    Example:
        >>> build_image_to_video(image="https://example.com/f.jpg", duration="10",
        ...                      model="i2v_v3").payload
        {'image': 'https://example.com/f.jpg', 'prompt': None, 'duration': '10'}
    """
    if model not in _IMAGE_MODELS:
        raise InvalidInput(
            field="model", value=model, expected="one of i2v, i2v_v3", provider=PROVIDER
        )
    payload = {"image": image, "prompt": prompt, "duration": duration}
    return build_generate(model, payload, webhook_url=webhook_url)


def build_long_video(
    *, image: str, prompts: Sequence[str], webhook_url: str | None = None
) -> JobSpec:
    """
    A long video (``lv``): a first frame and 1-6 segment prompts, 5 s each.

    Example:
        >>> build_long_video(image="https://example.com/f.jpg",
        ...                  prompts=["wide shot", "push in"]).payload["prompt"]
        ['wide shot', 'push in']
    """
    return build_generate("lv", {"image": image, "prompt": prompts}, webhook_url=webhook_url)


# ---------------------------------------------------------------------------
# Parsers


def _obj(body: object, endpoint: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise DecodeError(
            f"expected a JSON object, got {type(body).__name__}",
            path="$",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    return body


def parse_created(body: object, *, endpoint: str = "POST /api/v1/generate/{model}") -> str:
    """
    The task id of a create answer: ``taskId``, or ``id`` (CONFLICT, §4.2).

    Raises:
        DecodeError: neither is a non-empty string (path ``$.taskId``).

    Example:
        >>> parse_created({"status": "SUBMITTED", "taskId": "ck1"})
        'ck1'
        >>> parse_created({"status": "SUBMITTED", "id": "ck2"})
        'ck2'
    """
    created = structure(_converter, body, _Created, provider=PROVIDER, endpoint=endpoint)
    job_id = created.task_id or created.id
    if not job_id:
        raise DecodeError(
            "the create answer has no task id (neither taskId nor id)",
            path="$.taskId",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    return job_id


def _task(wire: _TaskWire, endpoint: str, path: str) -> Task:
    task_id = wire.id or wire.task_id
    if not task_id:
        raise DecodeError(
            "task has no id (neither id nor taskId)",
            path=f"{path}.id",
            provider=PROVIDER,
            endpoint=endpoint,
        )
    message = wire.message if isinstance(wire.message, str) else None
    return Task(
        id=task_id,
        status=wire.status,
        model=wire.model,
        input=wire.input,
        output=wire.output,
        created_at=wire.created_at,
        completed_at=wire.completed_at,
        message=message,
        raw=wire.raw,
    )


def parse_task(body: object, *, endpoint: str = "GET /api/v1/tasks/{taskId}") -> Task:
    """
    ``GET /api/v1/tasks/{taskId}``.

    Example:
        >>> parse_task({"taskId": "t9", "status": "SUBMITTED"}).id
        't9'
    """
    wire = structure(_converter, body, _TaskWire, provider=PROVIDER, endpoint=endpoint)
    return _task(wire, endpoint, "$")


def parse_tasks(body: object, *, endpoint: str = "GET /api/v1/tasks") -> list[Task]:
    """
    ``GET /api/v1/tasks`` (newest first).

    Example:
        >>> [t.id for t in parse_tasks({"tasks": [{"id": "a", "status": "CANCEL"}]})]
        ['a']
    """
    wire = structure(_converter, body, _TaskListWire, provider=PROVIDER, endpoint=endpoint)
    return [_task(item, endpoint, f"$.tasks[{i}]") for i, item in enumerate(wire.tasks)]


def parse_cancel(body: object, *, endpoint: str = "PUT /api/v1/tasks/{taskId}/cancel") -> str:
    """
    ``PUT /api/v1/tasks/{taskId}/cancel`` -> the status it reports (ASSUMED ``CANCEL``).

    Example:
        >>> parse_cancel({"status": "CANCEL"})
        'CANCEL'
    """
    return structure(_converter, body, _StatusWire, provider=PROVIDER, endpoint=endpoint).status


def _progress(value: object) -> float | None:
    # No source documents progress for AIVideoMaker; read it if it ever appears.
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip().rstrip("%")
        try:
            number = float(value) / 100.0
        except ValueError:
            return None
    elif isinstance(value, int | float):
        number = float(value)
        number = number / 100.0 if number > 1 else number
    else:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return min(number, 1.0)


def map_status(
    status: str,
    *,
    job_id: str,
    output: TaskOutput | None = None,
    message: str | None = None,
    progress: object = None,
    raw: Mapping[str, Any] | None = None,
) -> JobStatus:
    """
    Map a task status to a :class:`JobStatus`; unknown values are ``RUNNING``
    with ``known=False`` (RELIABILITY #29).

    A ``COMPLETED`` status with an ``output`` gets a result whose ``url`` is
    ``output.videoUrl`` or ``output.url``.

    Example:
        >>> map_status("PROGRESS", job_id="t1").state
        <JobState.RUNNING: 'running'>
        >>> map_status("CANCEL", job_id="t1").state
        <JobState.CANCELED: 'canceled'>
        >>> map_status("WEIRD", job_id="t1").known
        False
    """
    state = STATUS_MAP.get(status)
    known = state is not None
    if state is None:
        state = JobState.RUNNING
    result = None
    if state is JobState.SUCCEEDED:
        result = JobResult(
            provider=PROVIDER,
            kind="video",
            job_id=job_id,
            url=output.best_url if output is not None else None,
            raw=raw or {},
        )
    parsed_progress = 1.0 if state is JobState.SUCCEEDED else _progress(progress)
    if state is JobState.FAILED and message is None:
        message = status
    return JobStatus(
        state=state,
        raw_status=status,
        progress=parsed_progress,
        message=message,
        result=result,
        known=known,
        raw=raw or {},
    )


def task_status(task: Task) -> JobStatus:
    """
    The :class:`JobStatus` of a task object (detail or list item).

    Example:
        >>> s = task_status(parse_task({"id": "t1", "status": "COMPLETED",
        ...                             "output": {"videoUrl": "https://cdn/a.mp4"}}))
        >>> s.state, s.result.url
        (<JobState.SUCCEEDED: 'succeeded'>, 'https://cdn/a.mp4')
    """
    return map_status(
        task.status,
        job_id=task.id,
        output=task.output,
        message=task.message,
        progress=task.raw.get("progress"),
        raw=task.raw,
    )


def parse_status(
    body: object, *, job_id: str, endpoint: str = "GET /api/v1/tasks/{taskId}/status"
) -> JobStatus:
    """
    ``GET /api/v1/tasks/{taskId}/status`` (``{"status": ...}`` only).

    A ``COMPLETED`` status here has no output yet: the client then reads the
    task detail for the URL.

    Example:
        >>> parse_status({"status": "SUBMITTED"}, job_id="t1").state
        <JobState.QUEUED: 'queued'>
    """
    wire = structure(
        _converter, _obj(body, endpoint), _StatusWire, provider=PROVIDER, endpoint=endpoint
    )
    message = wire.message if isinstance(wire.message, str) else None
    return map_status(
        wire.status, job_id=job_id, message=message, progress=wire.progress, raw=wire.raw
    )


def parse_timestamp(value: str | None) -> float | None:
    """
    An ISO 8601 timestamp as epoch seconds (naive means UTC); ``None`` if unreadable.

    Example:
        >>> parse_timestamp("2026-03-19T08:00:00.000Z")
        1773907200.0
        >>> parse_timestamp("yesterday") is None
        True
    """
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def input_matches(spec_payload: Mapping[str, Any], task_input: Mapping[str, Any] | None) -> bool:
    """
    Whether a task's echoed ``input`` is the body ``spec_payload`` sent.

    Every field must be equal, except an image sent as a data URI: the server
    stores it as an R2 URL, so it can only be required to be present.

    Example:
        >>> sent = {"image": "data:image/png;base64,AAAA", "prompt": ["a"]}
        >>> input_matches(sent, {"image": "https://r2/x.png", "prompt": ["a"]})
        True
        >>> input_matches(sent, {"image": "https://r2/x.png", "prompt": ["b"]})
        False
    """
    if task_input is None:
        return False
    for key, sent in spec_payload.items():
        if key == "image" and isinstance(sent, str) and sent.startswith("data:"):
            if not task_input.get("image"):
                return False
            continue
        echoed = task_input.get(key)
        if sent is None and echoed is None:
            continue
        if isinstance(sent, list | tuple) and isinstance(echoed, list | tuple):
            if list(sent) != list(echoed):
                return False
            continue
        if echoed != sent:
            return False
    return True


# ---------------------------------------------------------------------------
# Errors

_CREDITS = re.compile(r"insufficient\s+credit|not\s+enough\s+credit", re.I)
_CREATE = re.compile(r"^POST /api/v1/generate/")
_CANCEL = re.compile(r"^PUT /api/v1/tasks/[^ ]+/cancel$")


def _body_message(body: object) -> str | None:
    if isinstance(body, Mapping):
        for key in ("message", "error", "errorMessage"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def map_error(
    *,
    status: int,
    body: object,
    endpoint: str,
    text: str = "",
    retry_after: float | None = None,
) -> APIStatusError | None:
    """
    The exception for an AIVideoMaker response, or ``None`` when it is not an error.

    The error body is ``{"status": "FAILED", "message": ...}``; on a create or
    cancel it is an error even with HTTP 200 (§4.4). On the task endpoints a
    ``FAILED`` status with 200 is the job's state, not an error. Credits
    messages and 402 are :class:`InsufficientCredits`; 401/403 are
    :class:`AuthenticationError` (the skill's ``AUTH_FAILED``); 429 is
    :class:`RateLimited` with ``Retry-After``; a refused cancel is
    :class:`Conflict`.

    Example:
        >>> type(map_error(status=200, body={"status": "FAILED", "message": "Insufficient credits"},
        ...                endpoint="POST /api/v1/generate/t2v")).__name__
        'InsufficientCredits'
        >>> map_error(status=200, body={"status": "FAILED"},
        ...           endpoint="GET /api/v1/tasks/t1/status") is None
        True
        >>> map_error(status=429, body=None, endpoint="GET /api/v1/tasks",
        ...           retry_after=2.0).retry_after
        2.0
    """
    ok = 200 <= status < 300
    is_create = bool(_CREATE.match(endpoint))
    is_cancel = bool(_CANCEL.match(endpoint))
    envelope_failed = (
        isinstance(body, Mapping)
        and body.get("status") == "FAILED"
        and "id" not in body
        and "taskId" not in body
    )
    if ok and not (envelope_failed and (is_create or is_cancel)):
        return None
    message = _body_message(body) or (text.strip()[:200] if text else "") or f"HTTP {status}"
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "status_code": status,
        "endpoint": endpoint,
        "body": body,
    }
    if status == 402 or _CREDITS.search(message):
        return InsufficientCredits(message, **common)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, **common)
    if status >= 500:
        return ServerError(message, **common)
    if status in (401, 403):
        return AuthenticationError(message, **common)
    if status == 404:
        return NotFound(message, **common)
    if is_cancel and (ok or status in (400, 409, 422)):
        return Conflict(f"{message} (a task can only be cancelled while SUBMITTED)", **common)
    if status == 409:
        return Conflict(message, **common)
    if status == 405:
        return BadRequest(f"{message} (method not allowed)", **common)
    return BadRequest(message, **common)


# Resolve string annotations now, while ``__module__`` still names this module:
# the package re-exports some models with ``__module__ = "aivideo_async"``, where
# cattrs could no longer resolve them lazily.
for _cls in (TaskOutput, Task, _TaskWire, _TaskListWire, _Created, _StatusWire):
    attrs.resolve_types(_cls)
del _cls
