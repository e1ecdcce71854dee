"""
Typed events of NemoVideo's chat stream (``POST /run_sse``) and their pure parser.

The wire format is ambiguous (CONFLICT §2.4), so both forms are read:

* the ``type`` variant (NV-REF44): ``{"type": "text", "content": ...}``,
  ``{"type": "tool_call", "name", "args"}``, ``{"type": "tool_result", "name",
  "result"}``, ``{"type": "heartbeat"}``;
* ADK ``Event`` JSON (camelCase, §3.3): ``content.parts[]`` with ``text``,
  ``functionCall`` or ``functionResponse``, plus ``partial``, ``author``,
  ``errorCode``/``errorMessage``.

An empty ``data:``, an SSE comment and ``{"type": "heartbeat"}`` are heartbeats;
``{"error": ...}`` is a stream error. One ADK event with several parts yields
several typed events, in order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any, TypeAlias

import attrs

from ..._exceptions import ReadTimeout, RequestMaybeSent, StreamIdleTimeout
from ..._sse import SSEComment, aiter_sse
from ..._types import Clock, monotonic_clock

__all__ = [
    "TextEvent",
    "ToolCall",
    "ToolResult",
    "Heartbeat",
    "StreamError",
    "ChatEvent",
    "parse_chat_data",
    "iter_chat_events",
]

logger = logging.getLogger("aivideo_async.nemovideo")


@attrs.frozen(kw_only=True)
class TextEvent:
    """
    Text from the agent, to show the user.

    Attributes:
        text: the text (a chunk when ``partial``).
        author: the ADK ``author`` (``"nemo_agent"``), if given.
        partial: ``True`` for a streaming chunk that later text completes.
        thought: ``True`` for a model "thought" part (not meant for the user).
        invocation_id: ADK ``invocationId``, the same for a whole run.
        raw: the event JSON unchanged.

    Example:
        >>> TextEvent(text="Sure, generating now.", author="nemo_agent")
        TextEvent(text='Sure, generating now.', author='nemo_agent', partial=False, thought=False, invocation_id=None)
    """  # noqa: E501

    text: str
    author: str | None = None
    partial: bool = False
    thought: bool = False
    invocation_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class ToolCall:
    """
    The agent called a tool (consume silently; the state changes later).

    Attributes:
        name: the tool (``generate_video_with_seedance``, ``edit_multitrack`` ...).
        args: its arguments.
        call_id: ADK ``functionCall.id``, which the matching :class:`ToolResult` repeats.
        author, invocation_id, raw: as for :class:`TextEvent`.

    Example:
        >>> ToolCall(name="edit_multitrack", args={"op": "trim"}).name
        'edit_multitrack'
    """

    name: str
    args: Mapping[str, Any] = attrs.field(factory=dict)
    call_id: str | None = None
    author: str | None = None
    invocation_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class ToolResult:
    """
    A tool finished.

    Attributes:
        name: the tool.
        result: what it returned (ADK ``functionResponse.response``).
        call_id: the id of the :class:`ToolCall` it answers.
        author, invocation_id, raw: as for :class:`TextEvent`.

    Example:
        >>> ToolResult(name="generate_video_with_seedance", result={"status": "ok"}).result
        {'status': 'ok'}
    """

    name: str
    result: Any = None
    call_id: str | None = None
    author: str | None = None
    invocation_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class Heartbeat:
    """
    A keep-alive during long work (an SSE comment, an empty ``data:`` or
    ``{"type": "heartbeat"}``). Keep waiting.

    Attributes:
        comment: the comment text when it came as an SSE comment.

    Example:
        >>> Heartbeat()
        Heartbeat(comment=None)
    """

    comment: str | None = None


@attrs.frozen(kw_only=True)
class StreamError:
    """
    The stream reported an error, or ended abnormally.

    Attributes:
        message: what went wrong.
        code: the ADK ``errorCode`` when given.
        dropped: ``True`` when the connection was lost (the chat iterator ends
            after yielding it; the request is never re-sent, see
            :meth:`NemoVideo.wait_for_state_change`); ``False`` for an error
            event the server sent.
        raw: the event JSON, when there was one.

    Example:
        >>> StreamError(message="connection reset", dropped=True).dropped
        True
    """

    message: str
    code: str | None = None
    dropped: bool = False
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


ChatEvent: TypeAlias = TextEvent | ToolCall | ToolResult | Heartbeat | StreamError
"""Any event :meth:`NemoVideo.chat` yields."""


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _parse_typed(obj: Mapping[str, Any]) -> list[ChatEvent]:
    kind = obj.get("type")
    author = _str_or_none(obj.get("author"))
    if kind == "heartbeat":
        return [Heartbeat()]
    if kind == "text":
        content = obj.get("content", obj.get("text"))
        if isinstance(content, str):
            return [TextEvent(text=content, author=author, raw=obj)]
    elif kind == "tool_call":
        name = obj.get("name")
        if isinstance(name, str):
            return [
                ToolCall(
                    name=name,
                    args=_as_mapping(obj.get("args")),
                    call_id=_str_or_none(obj.get("id")),
                    author=author,
                    raw=obj,
                )
            ]
    elif kind == "tool_result":
        name = obj.get("name")
        if isinstance(name, str):
            return [
                ToolResult(
                    name=name,
                    result=obj.get("result"),
                    call_id=_str_or_none(obj.get("id")),
                    author=author,
                    raw=obj,
                )
            ]
    elif kind == "error":
        message = obj.get("message", obj.get("error", obj.get("content")))
        return [
            StreamError(
                message=message if isinstance(message, str) else "error event",
                code=_str_or_none(obj.get("code")),
                raw=obj,
            )
        ]
    logger.debug("ignoring chat event of unknown or malformed type %r", kind)
    return []


def _parse_adk(obj: Mapping[str, Any]) -> list[ChatEvent]:
    events: list[ChatEvent] = []
    author = _str_or_none(obj.get("author"))
    invocation_id = _str_or_none(obj.get("invocationId"))
    partial = obj.get("partial") is True
    parts = _as_mapping(obj.get("content")).get("parts")
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Mapping):
            continue
        call = part.get("functionCall")
        response = part.get("functionResponse")
        text = part.get("text")
        if isinstance(call, Mapping) and isinstance(call.get("name"), str):
            events.append(
                ToolCall(
                    name=call["name"],
                    args=_as_mapping(call.get("args")),
                    call_id=_str_or_none(call.get("id")),
                    author=author,
                    invocation_id=invocation_id,
                    raw=obj,
                )
            )
        elif isinstance(response, Mapping) and isinstance(response.get("name"), str):
            events.append(
                ToolResult(
                    name=response["name"],
                    result=response.get("response"),
                    call_id=_str_or_none(response.get("id")),
                    author=author,
                    invocation_id=invocation_id,
                    raw=obj,
                )
            )
        elif isinstance(text, str):
            events.append(
                TextEvent(
                    text=text,
                    author=author,
                    partial=partial,
                    thought=part.get("thought") is True,
                    invocation_id=invocation_id,
                    raw=obj,
                )
            )
        # inlineData, executableCode ... carry nothing a chat caller acts on.
    code, message = obj.get("errorCode"), obj.get("errorMessage")
    if code is not None or message is not None:
        events.append(
            StreamError(
                message=message if isinstance(message, str) else f"model error {code}",
                code=str(code) if code is not None else None,
                raw=obj,
            )
        )
    return events


def parse_chat_data(data: str) -> list[ChatEvent]:
    """
    Turn the ``data`` of one SSE event into typed chat events.

    Empty data is a :class:`Heartbeat`. Data that is not a JSON object is
    reported as a non-fatal :class:`StreamError` (the stream goes on). JSON of
    no known form gives no event (it is logged at DEBUG).

    Example:
        >>> parse_chat_data('{"type": "tool_call", "name": "edit_multitrack", "args": {}}')
        [ToolCall(name='edit_multitrack', args={}, call_id=None, author=None, invocation_id=None)]
        >>> [type(e).__name__ for e in parse_chat_data(
        ...     '{"content": {"parts": [{"text": "Sure."}, {"functionCall": '
        ...     '{"id": "adk-1", "name": "edit_multitrack", "args": {"duration": 5}}}],'
        ...     ' "role": "model"}, "author": "nemo_agent"}')]
        ['TextEvent', 'ToolCall']
        >>> parse_chat_data("")
        [Heartbeat(comment=None)]
        >>> parse_chat_data('{"error": "boom"}')
        [StreamError(message='boom', code=None, dropped=False)]
    """
    if not data.strip():
        return [Heartbeat()]
    try:
        obj = json.loads(data)
    except ValueError:
        return [StreamError(message=f"undecodable event data: {data[:80]!r}")]
    if not isinstance(obj, Mapping):
        return [StreamError(message=f"event data is not a JSON object: {data[:80]!r}")]
    if "type" in obj:
        return _parse_typed(obj)
    if "content" not in obj and "error" in obj:
        error = obj["error"]
        return [
            StreamError(
                message=error if isinstance(error, str) else json.dumps(error)[:200],
                raw=obj,
            )
        ]
    return _parse_adk(obj)


# ---------------------------------------------------------------------------
# The stream adapter: bytes in, typed events out (no aiohttp here)


class _TailTracker:
    """
    Pass chunks through, remembering the end of the body.

    The SSE decoder discards an unterminated event at the end of the stream, as
    the spec says; a chat that was cut off there must still be reported, so
    the last bytes are kept to tell "ended between events" from "ended inside one".
    """

    __slots__ = ("_chunks", "_tail", "seen")

    _KEEP = 512

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = chunks
        self._tail = b""
        self.seen = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            self.seen += len(chunk)
            self._tail = (self._tail + chunk)[-self._KEEP :]
            yield chunk

    @property
    def ended_mid_event(self) -> bool:
        """Whether the body ended inside a line or inside a block holding fields."""
        if not self.seen:
            return False
        text = self._tail.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not text.endswith(b"\n"):
            return True  # inside a line
        lines = text[:-1].split(b"\n")
        # Walk back over the lines of the last, unterminated block: comments
        # alone are fine (a heartbeat without its blank line), fields are not.
        for line in reversed(lines):
            if not line:
                return False
            if not line.startswith(b":"):
                return True
        return False  # nothing but comments since the last event


async def iter_chat_events(
    chunks: AsyncIterable[bytes],
    *,
    idle_timeout: float | None,
    heartbeat_only_timeout: float | None = None,
    clock: Clock = monotonic_clock,
) -> AsyncIterator[ChatEvent]:
    """
    Decode a ``/run_sse`` body into typed chat events.

    SSE comments and empty ``data:`` become :class:`Heartbeat`. A connection
    lost mid-stream (reset, truncation, the overall deadline) or a body that
    ends inside an event yields one ``StreamError(dropped=True)`` and ends.

    Args:
        chunks: the body as it arrives.
        idle_timeout: seconds with no byte at all (heartbeats count as activity).
        heartbeat_only_timeout: seconds with nothing but heartbeats before
            giving up (NemoVideo: "after 10 minutes of heartbeats only, assume
            a timeout"); ``None`` disables it.
        clock: the monotonic clock for ``heartbeat_only_timeout``.

    Raises:
        StreamIdleTimeout: ``idle_timeout`` or ``heartbeat_only_timeout`` passed
            (a read timeout of the transport counts as idle, too).
        SSELimitExceeded: a line or an event is over the decoder's limits.

    Example:
        Over any async byte source (plain block; it needs an event loop)::

            async for event in iter_chat_events(resp.iter_bytes(), idle_timeout=300):
                if isinstance(event, TextEvent):
                    print(event.text)
    """
    tracker = _TailTracker(chunks)
    last_content = clock()
    try:
        async for item in aiter_sse(tracker, idle_timeout=idle_timeout, include_comments=True):
            events: list[ChatEvent] = (
                [Heartbeat(comment=item.text)]
                if isinstance(item, SSEComment)
                else parse_chat_data(item.data)
            )
            for event in events:
                if isinstance(event, Heartbeat):
                    if (
                        heartbeat_only_timeout is not None
                        and clock() - last_content > heartbeat_only_timeout
                    ):
                        raise StreamIdleTimeout(
                            f"only heartbeats on the chat stream for {heartbeat_only_timeout} s",
                            provider="nemovideo",
                        )
                else:
                    last_content = clock()
                yield event
    except StreamIdleTimeout:
        raise
    except ReadTimeout as exc:
        raise StreamIdleTimeout(
            f"chat stream idle: {exc.message}", provider=exc.provider, endpoint=exc.endpoint
        ) from exc
    except RequestMaybeSent as exc:
        yield StreamError(message=f"chat stream lost: {exc.message}", dropped=True)
        return
    if tracker.ended_mid_event:
        yield StreamError(message="chat stream closed in the middle of an event", dropped=True)
