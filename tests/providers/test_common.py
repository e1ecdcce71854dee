"""The shared wire conventions: converter factory, strict decoding, JSON paths, ``raw``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aivideo_async._exceptions import DecodeError, MissingCredential
from aivideo_async._secret import Secret
from aivideo_async.providers._common import (
    make_converter,
    resolve_api_key,
    sniff_media_type,
    structure,
    to_camel,
    unstructure,
    wire_name,
)


@attrs.frozen
class Output:
    video_url: str | None = None
    url: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen
class Task:
    id: str
    created_at: str
    progress: float | None = None
    done: bool = False
    output: Output | None = None
    tags: list[str] = attrs.field(factory=list)
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen
class Listing:
    tasks: list[Task]


@attrs.frozen
class Body:
    avatar_id: str
    im2vid_full: bool | None = attrs.field(default=None, metadata=wire_name("im2vid_full"))
    voice_id: str | None = None


def _decode(data: Any, cls: type[Any]) -> Any:
    return structure(make_converter(), data, cls, provider="demo", endpoint="GET /demo")


def test_converters_are_fresh_and_not_the_global_one() -> None:
    a, b = make_converter(), make_converter()
    assert a is not b
    assert a is not cattrs.global_converter


def test_camel_case_and_explicit_wire_names_on_unstructure() -> None:
    body = Body(avatar_id="a1", im2vid_full=False, voice_id="v1")
    assert unstructure(make_converter(), body) == {
        "avatarId": "a1",
        "im2vid_full": False,
        "voiceId": "v1",
    }


def test_unstructure_omits_defaults() -> None:
    assert unstructure(make_converter(), Body(avatar_id="a1")) == {"avatarId": "a1"}


def test_snake_case_naming_can_be_chosen() -> None:
    conv = make_converter(naming=None)
    assert unstructure(conv, Body(avatar_id="a1")) == {"avatar_id": "a1"}


def test_unknown_fields_are_kept_in_raw_at_every_level() -> None:
    data = {
        "id": "t1",
        "createdAt": "2026-01-01T00:00:00Z",
        "newField": {"x": 1},
        "output": {"videoUrl": "https://cdn/x.mp4", "size": 5},
    }
    task = _decode(data, Task)
    assert task.created_at == "2026-01-01T00:00:00Z"
    assert task.raw["newField"] == {"x": 1}
    assert task.output == Output(video_url="https://cdn/x.mp4")
    assert task.output.raw["size"] == 5


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"createdAt": "x"}, "$.id"),
        ({"id": 5, "createdAt": "x"}, "$.id"),
        ({"id": "t", "createdAt": "x", "progress": "45%"}, "$.progress"),
        ({"id": "t", "createdAt": "x", "done": "true"}, "$.done"),
        ({"id": "t", "createdAt": "x", "output": "https://x"}, "$.output"),
        ({"id": "t", "createdAt": "x", "output": {"videoUrl": 7}}, "$.output.videoUrl"),
        ({"id": "t", "createdAt": "x", "tags": "abc"}, "$.tags"),
        ({"id": "t", "createdAt": "x", "tags": ["a", 1]}, "$.tags[1]"),
        (["not", "an", "object"], "$"),
    ],
)
def test_missing_or_mistyped_fields_name_the_wire_path(data: Any, path: str) -> None:
    with pytest.raises(DecodeError) as info:
        _decode(data, Task)
    err = info.value
    assert err.path == path
    assert err.provider == "demo"
    assert err.endpoint == "GET /demo"
    assert path in str(err)
    assert err.__cause__ is not None


def test_nested_list_path_uses_wire_names_and_keeps_cattrs_cause() -> None:
    data = {"tasks": [{"id": "a", "createdAt": "x"}, {"id": "b"}]}
    with pytest.raises(DecodeError) as info:
        _decode(data, Listing)
    assert info.value.path == "$.tasks[1].createdAt"
    assert isinstance(info.value.__cause__, cattrs.ClassValidationError)


def test_every_problem_is_listed_in_the_message() -> None:
    with pytest.raises(DecodeError) as info:
        _decode({"id": 1, "createdAt": 2}, Task)
    assert info.value.path == "$.id"
    assert "$.createdAt" in str(info.value)


def test_int_is_accepted_for_float_fields() -> None:
    assert _decode({"id": "t", "createdAt": "x", "progress": 1}, Task).progress == 1.0


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["id", "createdAt", "progress", "output", "tags", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(_json)
def test_any_json_decodes_or_raises_decode_error(data: Any) -> None:
    # Totality: no cattrs, Key or Type error ever escapes the boundary.
    outcome: Any
    try:
        outcome = _decode(data, Task)
    except DecodeError as err:
        outcome = err
    if isinstance(outcome, DecodeError):
        assert outcome.path is not None
        assert outcome.path.startswith("$")
    else:
        assert isinstance(outcome, Task)
        assert outcome.raw is data


@given(st.from_regex(r"[a-z]{1,6}(_[a-z0-9]{1,6}){0,3}", fullmatch=True))
def test_to_camel_removes_underscores_and_keeps_letters(name: str) -> None:
    camel = to_camel(name)
    assert "_" not in camel
    assert camel.lower() == name.replace("_", "")
    assert camel[0] == name[0]


@given(
    st.builds(
        Body,
        avatar_id=st.text(max_size=8),
        im2vid_full=st.none() | st.booleans(),
        voice_id=st.none() | st.text(max_size=8),
    )
)
def test_request_models_round_trip_through_json(body: Body) -> None:
    conv = make_converter()
    wire = json.loads(json.dumps(unstructure(conv, body)))
    assert structure(conv, wire, Body, provider="demo", endpoint="POST /demo") == body


def test_resolve_api_key_prefers_the_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PROVIDER_KEY", "from-env")
    assert resolve_api_key("given", variable="DEMO_PROVIDER_KEY").get_secret_value() == "given"
    assert resolve_api_key(None, variable="DEMO_PROVIDER_KEY").get_secret_value() == "from-env"
    secret = Secret("s")
    assert resolve_api_key(secret, variable="DEMO_PROVIDER_KEY") is secret


@pytest.mark.parametrize("value", [None, ""])
def test_resolve_api_key_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    monkeypatch.delenv("DEMO_PROVIDER_KEY", raising=False)
    with pytest.raises(MissingCredential) as info:
        resolve_api_key(value, variable="DEMO_PROVIDER_KEY")
    assert info.value.variable == "DEMO_PROVIDER_KEY"
    assert "DEMO_PROVIDER_KEY" in str(info.value)


@pytest.mark.parametrize(
    ("head", "media"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"ID3\x04\x00\x00\x00", "audio/mpeg"),
        (b"\xff\xfb\x90\x00", "audio/mpeg"),
        (b"OggS\x00\x02", "audio/ogg"),
        (b"\x00\x00\x00\x20ftypM4A \x00", "audio/mp4"),
        (b"\x00\x00\x00\x20ftypisom\x00", "video/mp4"),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_sniff_media_type(head: bytes, media: str | None) -> None:
    assert sniff_media_type(head) == media


_REWRITE_SCRIPT = """
from aivideo_async.providers.aivideomaker import _wire as avm
from aivideo_async.providers.miraflow import _wire as mf
for cls in (mf.Avatar, mf._AvatarList, avm.Task, avm.TaskOutput, avm._TaskWire):
    cls.__module__ = "aivideo_async"
assert mf.parse_avatars({"avatars": [{"id": "a", "name": "b"}]})[0].id == "a"
task = avm.parse_task({"id": "t", "status": "COMPLETED", "output": {"url": "https://x"}})
assert task.output is not None
print("ok")
"""


def test_wire_models_survive_a_module_rewrite() -> None:
    # aivideo_async/__init__.py rewrites __module__ of re-exported classes (STYLE #1);
    # decoding must not depend on resolving annotations in that namespace. A fresh
    # interpreter, so that no earlier decode has resolved the annotations already.
    done = subprocess.run(
        [sys.executable, "-c", _REWRITE_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
