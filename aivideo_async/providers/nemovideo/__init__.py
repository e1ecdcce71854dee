"""
NemoVideo: the async client, its chat events and the draft/timeline helpers.

Example:
    >>> from aivideo_async.providers.nemovideo import timeline_summary
    >>> print(timeline_summary({"t": [{"tt": 0, "sg": [{"d": 10000, "title": "Sunset"}]}]}))
    Draft: 10s, 1 track
    Video: Sunset (0-10s)
"""

from __future__ import annotations

from ._chat import ChatEvent as ChatEvent
from ._chat import Heartbeat as Heartbeat
from ._chat import StreamError as StreamError
from ._chat import TextEvent as TextEvent
from ._chat import ToolCall as ToolCall
from ._chat import ToolResult as ToolResult
from ._chat import iter_chat_events as iter_chat_events
from ._chat import parse_chat_data as parse_chat_data
from ._client import ChatStream as ChatStream
from ._client import NemoVideo as NemoVideo
from ._draft import Draft as Draft
from ._draft import Segment as Segment
from ._draft import Track as Track
from ._draft import draft_fingerprint as draft_fingerprint
from ._draft import parse_draft as parse_draft
from ._draft import timeline_summary as timeline_summary
from ._wire import AnonymousToken as AnonymousToken
from ._wire import ClaimToken as ClaimToken
from ._wire import Credits as Credits
from ._wire import RenderStatus as RenderStatus
from ._wire import SessionInfo as SessionInfo
from ._wire import SessionState as SessionState
from ._wire import UploadedFile as UploadedFile
from ._wire import UploadResult as UploadResult
from ._wire import parse_render_status as parse_render_status

__all__ = [
    "AnonymousToken",
    "ChatEvent",
    "ChatStream",
    "ClaimToken",
    "Credits",
    "Draft",
    "Heartbeat",
    "NemoVideo",
    "RenderStatus",
    "Segment",
    "SessionInfo",
    "SessionState",
    "StreamError",
    "TextEvent",
    "ToolCall",
    "ToolResult",
    "Track",
    "UploadResult",
    "UploadedFile",
    "draft_fingerprint",
    "iter_chat_events",
    "parse_chat_data",
    "parse_draft",
    "parse_render_status",
    "timeline_summary",
]
