"""
aivideo_async: an asyncio client for AI video and image generation APIs.

Creates are sent at most once and journaled; many jobs are tracked by one
shared scheduler; results come back through awaitable handles.

Example:
    >>> import aivideo_async as av
    >>> av.JobState.SUCCEEDED.is_terminal
    True
"""

from __future__ import annotations

from ._backoff import RetryBudget as RetryBudget
from ._backoff import compute_delay as compute_delay
from ._backoff import parse_retry_after as parse_retry_after
from ._config import DEFAULT_CREATE_TIMEOUTS as DEFAULT_CREATE_TIMEOUTS
from ._config import DEFAULT_IMAGE_POLL_POLICY as DEFAULT_IMAGE_POLL_POLICY
from ._config import DEFAULT_LIMITS as DEFAULT_LIMITS
from ._config import DEFAULT_POLL_POLICY as DEFAULT_POLL_POLICY
from ._config import DEFAULT_RETRY_POLICY as DEFAULT_RETRY_POLICY
from ._config import DEFAULT_TIMEOUTS as DEFAULT_TIMEOUTS
from ._config import Limits as Limits
from ._config import PollPolicy as PollPolicy
from ._config import RetryPolicy as RetryPolicy
from ._config import Timeouts as Timeouts
from ._exceptions import AIVideoError as AIVideoError
from ._exceptions import APIStatusError as APIStatusError
from ._exceptions import AuthenticationError as AuthenticationError
from ._exceptions import BadRequest as BadRequest
from ._exceptions import Conflict as Conflict
from ._exceptions import ConnectError as ConnectError
from ._exceptions import DecodeError as DecodeError
from ._exceptions import DownloadError as DownloadError
from ._exceptions import InsufficientCredits as InsufficientCredits
from ._exceptions import InvalidInput as InvalidInput
from ._exceptions import JobCancelled as JobCancelled
from ._exceptions import JobError as JobError
from ._exceptions import JobFailed as JobFailed
from ._exceptions import JobNotFound as JobNotFound
from ._exceptions import JobTimeout as JobTimeout
from ._exceptions import MediaTooLarge as MediaTooLarge
from ._exceptions import MissingCredential as MissingCredential
from ._exceptions import NotFound as NotFound
from ._exceptions import PaymentRequired as PaymentRequired
from ._exceptions import PoolTimeout as PoolTimeout
from ._exceptions import ProtocolError as ProtocolError
from ._exceptions import RateLimited as RateLimited
from ._exceptions import ReadTimeout as ReadTimeout
from ._exceptions import RemoteDisconnected as RemoteDisconnected
from ._exceptions import RequestMaybeSent as RequestMaybeSent
from ._exceptions import RequestNotSent as RequestNotSent
from ._exceptions import ResponseTooLarge as ResponseTooLarge
from ._exceptions import ServerError as ServerError
from ._exceptions import SessionNotFound as SessionNotFound
from ._exceptions import SSELimitExceeded as SSELimitExceeded
from ._exceptions import StreamIdleTimeout as StreamIdleTimeout
from ._exceptions import SubmissionNotSent as SubmissionNotSent
from ._exceptions import SubmissionOutcomeUnknown as SubmissionOutcomeUnknown
from ._exceptions import TLSError as TLSError
from ._exceptions import TotalTimeout as TotalTimeout
from ._exceptions import TransportError as TransportError
from ._exceptions import UnexpectedContentType as UnexpectedContentType
from ._exceptions import UnexpectedRedirect as UnexpectedRedirect
from ._exceptions import UnsupportedMedia as UnsupportedMedia
from ._models import JobResult as JobResult
from ._models import JobState as JobState
from ._models import JobStatus as JobStatus
from ._secret import Secret as Secret
from ._session import Auth as Auth
from ._session import BearerAuth as BearerAuth
from ._session import HeaderKeyAuth as HeaderKeyAuth
from ._session import Response as Response
from ._session import ResponseInfo as ResponseInfo
from ._session import Session as Session
from ._session import StreamResponse as StreamResponse
from ._sse import ServerSentEvent as ServerSentEvent
from ._sse import SSEComment as SSEComment
from ._sse import SSEDecoder as SSEDecoder
from ._sse import aiter_sse as aiter_sse
from ._types import NOT_GIVEN as NOT_GIVEN
from ._types import NotGiven as NotGiven
from ._version import __version__ as __version__
from .jobs import ErrorInfo as ErrorInfo
from .jobs import JobHandle as JobHandle
from .jobs import JobOutcome as JobOutcome
from .jobs import JobUpdate as JobUpdate
from .jobs import Journal as Journal
from .jobs import JournalEntry as JournalEntry
from .jobs import MemoryJournal as MemoryJournal
from .jobs import Orchestrator as Orchestrator
from .jobs import ProviderLimits as ProviderLimits
from .jobs import ReconcileOutcome as ReconcileOutcome
from .jobs import ReconcileResult as ReconcileResult
from .jobs import SQLiteJournal as SQLiteJournal
from .jobs import SubmissionState as SubmissionState
from .jobs import UpdateStream as UpdateStream
from .providers._base import JobBackend as JobBackend
from .providers._base import JobSpec as JobSpec
from .providers.aivideomaker import AIVideoMaker as AIVideoMaker
from .providers.miraflow import Miraflow as Miraflow
from .providers.nemovideo import ChatStream as ChatStream
from .providers.nemovideo import Heartbeat as Heartbeat
from .providers.nemovideo import NemoVideo as NemoVideo
from .providers.nemovideo import StreamError as StreamError
from .providers.nemovideo import TextEvent as TextEvent
from .providers.nemovideo import ToolCall as ToolCall
from .providers.nemovideo import ToolResult as ToolResult
from .providers.nemovideo import timeline_summary as timeline_summary

__all__ = [
    "AIVideoError",
    "AIVideoMaker",
    "APIStatusError",
    "Auth",
    "AuthenticationError",
    "BadRequest",
    "BearerAuth",
    "ChatStream",
    "Conflict",
    "ConnectError",
    "DEFAULT_CREATE_TIMEOUTS",
    "DEFAULT_IMAGE_POLL_POLICY",
    "DEFAULT_LIMITS",
    "DEFAULT_POLL_POLICY",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_TIMEOUTS",
    "DecodeError",
    "DownloadError",
    "ErrorInfo",
    "HeaderKeyAuth",
    "Heartbeat",
    "InsufficientCredits",
    "InvalidInput",
    "JobBackend",
    "JobCancelled",
    "JobError",
    "JobFailed",
    "JobHandle",
    "JobNotFound",
    "JobOutcome",
    "JobResult",
    "JobSpec",
    "JobState",
    "JobStatus",
    "JobTimeout",
    "JobUpdate",
    "UpdateStream",
    "Journal",
    "JournalEntry",
    "Limits",
    "MediaTooLarge",
    "MemoryJournal",
    "Miraflow",
    "MissingCredential",
    "NOT_GIVEN",
    "NemoVideo",
    "NotFound",
    "NotGiven",
    "Orchestrator",
    "PaymentRequired",
    "PollPolicy",
    "PoolTimeout",
    "ProtocolError",
    "ProviderLimits",
    "RateLimited",
    "ReadTimeout",
    "ReconcileOutcome",
    "ReconcileResult",
    "RemoteDisconnected",
    "RequestMaybeSent",
    "RequestNotSent",
    "Response",
    "ResponseInfo",
    "ResponseTooLarge",
    "RetryBudget",
    "RetryPolicy",
    "SQLiteJournal",
    "SSEComment",
    "SSEDecoder",
    "SSELimitExceeded",
    "Secret",
    "ServerError",
    "ServerSentEvent",
    "Session",
    "SessionNotFound",
    "StreamError",
    "StreamIdleTimeout",
    "StreamResponse",
    "SubmissionNotSent",
    "SubmissionOutcomeUnknown",
    "SubmissionState",
    "TLSError",
    "TextEvent",
    "Timeouts",
    "ToolCall",
    "ToolResult",
    "TotalTimeout",
    "TransportError",
    "UnexpectedContentType",
    "UnexpectedRedirect",
    "UnsupportedMedia",
    "aiter_sse",
    "compute_delay",
    "parse_retry_after",
    "timeline_summary",
    "__version__",
]


def _rewrite_module() -> None:
    # Show public names as ``aivideo_async.X`` in reprs, tracebacks and docs (httpx does the same).
    import attrs

    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type) and attrs.has(obj):
            # Resolve string annotations while __module__ still points at the defining module;
            # cattrs and typing.get_type_hints look them up there.
            attrs.resolve_types(obj)
        if isinstance(obj, type) or callable(obj):
            try:
                obj.__module__ = __name__
            except (AttributeError, TypeError):  # pragma: no cover - builtins
                pass


_rewrite_module()
