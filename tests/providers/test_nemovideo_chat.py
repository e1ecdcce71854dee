"""NemoVideo chat events: the pure parser (both wire forms) and the byte-stream adapter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aivideo_async._exceptions import RemoteDisconnected, StreamIdleTimeout, TotalTimeout
from aivideo_async.providers.nemovideo._chat import (
    ChatEvent,
    Heartbeat,
    StreamError,
    TextEvent,
    ToolCall,
    ToolResult,
    iter_chat_events,
    parse_chat_data,
)

INVOCATION = "e-6a0e4c1e-8f0e-4c55-9b8e-2d1f0a7b3c11"
ACTIONS: dict[str, Any] = {"stateDelta": {}, "artifactDelta": {}, "requestedAuthConfigs": {}}


def adk(parts: list[dict[str, Any]], role: str = "model", **extra: Any) -> dict[str, Any]:
    return {
        "content": {"parts": parts, "role": role},
        "invocationId": INVOCATION,
        "author": "nemo_agent",
        "actions": ACTIONS,
        "id": "q3Lm9TzA",
        "timestamp": 1773423600.12,
        **extra,
    }


# The emulator template of PROVIDER_APIS.md §3.4.
SAMPLE = [
    adk([{"text": "Sure, generating a 5-second sunset clip now."}]),
    adk(
        [
            {
                "functionCall": {
                    "id": "adk-1",
                    "name": "generate_video_with_seedance",
                    "args": {"prompt": "sunset timelapse", "duration": 5},
                }
            }
        ],
        longRunningToolIds=[],
    ),
    adk(
        [
            {
                "functionResponse": {
                    "id": "adk-1",
                    "name": "generate_video_with_seedance",
                    "response": {"status": "ok"},
                }
            }
        ],
        role="user",
    ),
    adk([{"text": "Your clip is ready. Want background music?"}]),
]
EXPECTED: list[ChatEvent] = [
    TextEvent(
        text="Sure, generating a 5-second sunset clip now.",
        author="nemo_agent",
        invocation_id=INVOCATION,
    ),
    ToolCall(
        name="generate_video_with_seedance",
        args={"prompt": "sunset timelapse", "duration": 5},
        call_id="adk-1",
        author="nemo_agent",
        invocation_id=INVOCATION,
    ),
    ToolResult(
        name="generate_video_with_seedance",
        result={"status": "ok"},
        call_id="adk-1",
        author="nemo_agent",
        invocation_id=INVOCATION,
    ),
    TextEvent(
        text="Your clip is ready. Want background music?",
        author="nemo_agent",
        invocation_id=INVOCATION,
    ),
]


def sse(events: Sequence[dict[str, Any] | str], ending: str = "\n") -> bytes:
    out = []
    for event in events:
        data = event if isinstance(event, str) else json.dumps(event)
        out.append(f"data: {data}{ending}{ending}")
    return "".join(out).encode()


# -- the pure parser -------------------------------------------------------------------


def test_adk_sample_stream() -> None:
    events = [e for obj in SAMPLE for e in parse_chat_data(json.dumps(obj))]
    assert events == EXPECTED
    assert events[0].raw["id"] == "q3Lm9TzA"  # type: ignore[union-attr]


def test_type_variant() -> None:
    lines = [
        {"type": "text", "content": "Working on it"},
        {"type": "tool_call", "name": "edit_multitrack", "args": {"op": "trim"}},
        {"type": "tool_result", "name": "edit_multitrack", "result": {"ok": True}},
        {"type": "heartbeat"},
        {"type": "error", "message": "quota"},
    ]
    events = [e for obj in lines for e in parse_chat_data(json.dumps(obj))]
    assert events == [
        TextEvent(text="Working on it"),
        ToolCall(name="edit_multitrack", args={"op": "trim"}),
        ToolResult(name="edit_multitrack", result={"ok": True}),
        Heartbeat(),
        StreamError(message="quota"),
    ]


def test_partial_thought_and_model_errors() -> None:
    partial = parse_chat_data(json.dumps(adk([{"text": "Su"}], partial=True)))
    assert partial == [
        TextEvent(text="Su", author="nemo_agent", partial=True, invocation_id=INVOCATION)
    ]
    thought = parse_chat_data(json.dumps(adk([{"text": "hmm", "thought": True}])))
    assert isinstance(thought[0], TextEvent)
    assert thought[0].thought
    error = parse_chat_data(
        json.dumps({"errorCode": "SAFETY", "errorMessage": "blocked", "author": "nemo_agent"})
    )
    assert error == [StreamError(message="blocked", code="SAFETY")]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("", [Heartbeat()]),
        ("   ", [Heartbeat()]),
        ('{"type": "heartbeat"}', [Heartbeat()]),
        ('{"error": "Session not found"}', [StreamError(message="Session not found")]),
        ('{"type": "mystery"}', []),
        ('{"type": "tool_call"}', []),  # no name: nothing usable
        ('{"content": {"parts": [{"inlineData": {"mimeType": "x", "data": ""}}]}}', []),
        ('{"content": {"parts": "nope"}}', []),
        ('{"actions": {}}', []),
    ],
)
def test_special_payloads(data: str, expected: list[ChatEvent]) -> None:
    assert parse_chat_data(data) == expected


@pytest.mark.parametrize("data", ["not json", "[1, 2]", '"text"', "{"])
def test_undecodable_data_is_a_non_fatal_stream_error(data: str) -> None:
    (event,) = parse_chat_data(data)
    assert isinstance(event, StreamError)
    assert not event.dropped


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "type",
                        "content",
                        "parts",
                        "text",
                        "functionCall",
                        "functionResponse",
                        "name",
                        "args",
                        "error",
                        "errorCode",
                        "partial",
                        "x",
                    ]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_parser_never_raises_on_any_json(value: Any) -> None:
    events = parse_chat_data(json.dumps(value))
    for event in events:
        assert isinstance(event, TextEvent | ToolCall | ToolResult | Heartbeat | StreamError)


# -- the stream adapter ------------------------------------------------------------------


async def chunks_of(body: bytes, sizes: Sequence[int] = (1 << 30,)) -> AsyncIterator[bytes]:
    i = 0
    k = 0
    while i < len(body):
        size = sizes[k % len(sizes)]
        yield body[i : i + size]
        i += size
        k += 1


async def collect(source: AsyncIterator[bytes], **kwargs: Any) -> list[ChatEvent]:
    kwargs.setdefault("idle_timeout", None)
    return [event async for event in iter_chat_events(source, **kwargs)]


@pytest.mark.anyio
@pytest.mark.parametrize("ending", ["\n", "\r", "\r\n"])
@pytest.mark.parametrize("sizes", [(1,), (1, 2, 3, 4, 5, 6, 7), (7,), (1 << 30,)])
async def test_fragments_and_line_endings(ending: str, sizes: tuple[int, ...]) -> None:
    body = b": ping" + ending.encode() * 2 + sse(SAMPLE, ending) + sse([""], ending)
    events = await collect(chunks_of(body, sizes))
    assert events == [Heartbeat(comment="ping"), *EXPECTED, Heartbeat()]


@pytest.mark.anyio
@given(cuts=st.lists(st.integers(1, 7), min_size=1, max_size=20))
async def test_any_fragmentation_gives_the_same_events(cuts: list[int]) -> None:
    body = sse(SAMPLE) + b": keep-alive\n\n"
    assert await collect(chunks_of(body, cuts)) == [*EXPECTED, Heartbeat(comment="keep-alive")]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "tail",
    [b'data: {"content": {"parts": [{"te', b"data: {}\n", b"data: {}\r", b"event: x\n"],
)
async def test_close_mid_event_is_a_dropped_stream_error(tail: bytes) -> None:
    events = await collect(chunks_of(sse(SAMPLE[:1]) + tail, (3,)))
    assert events[0] == EXPECTED[0]
    assert isinstance(events[-1], StreamError)
    assert events[-1].dropped
    assert len(events) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("tail", [b"", b": ping\n", b": ping\r\n\r\n", b"\n\n"])
async def test_clean_end_between_events_is_no_error(tail: bytes) -> None:
    events = await collect(chunks_of(sse(SAMPLE) + tail))
    assert [e for e in events if not isinstance(e, Heartbeat)] == EXPECTED


@pytest.mark.anyio
@pytest.mark.parametrize("error", [RemoteDisconnected("reset"), TotalTimeout("deadline")])
async def test_transport_loss_yields_one_dropped_error_and_ends(error: Exception) -> None:
    async def source() -> AsyncIterator[bytes]:
        yield sse(SAMPLE[:2])
        raise error

    events = await collect(source())
    assert events[:2] == EXPECTED[:2]
    assert len(events) == 3
    assert isinstance(events[2], StreamError)
    assert events[2].dropped
    assert str(error.args[0]) in events[2].message


@pytest.mark.anyio
async def test_idle_timeout_raises_and_heartbeats_keep_it_alive() -> None:
    # Real time is the thing under test here, so the timeout is tiny and real.
    release = anyio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield sse(SAMPLE[:1])
        await release.wait()
        yield b""  # pragma: no cover - never reached

    with pytest.raises(StreamIdleTimeout):
        await collect(stalled(), idle_timeout=0.05)

    async def beating() -> AsyncIterator[bytes]:
        for _ in range(6):
            await anyio.sleep(0.02)
            yield b": hb\n\n"
        yield sse(SAMPLE[3:])

    events = await collect(beating(), idle_timeout=0.1)
    assert events[-1] == EXPECTED[3]
    assert events[:-1] == [Heartbeat(comment="hb")] * 6


@pytest.mark.anyio
async def test_heartbeats_only_for_too_long_times_out_on_the_injected_clock() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    async def source() -> AsyncIterator[bytes]:
        yield sse(SAMPLE[:1])
        for _ in range(5):
            now[0] += 200.0
            yield b": hb\n\n"

    seen: list[ChatEvent] = []

    async def drain() -> None:
        async for event in iter_chat_events(
            source(), idle_timeout=None, heartbeat_only_timeout=600.0, clock=clock
        ):
            seen.append(event)

    with pytest.raises(StreamIdleTimeout, match="only heartbeats"):
        await drain()
    # 200, 400 and 600 s of heartbeats are fine; 800 s is too long.
    assert seen == [EXPECTED[0], *[Heartbeat(comment="hb")] * 3]
