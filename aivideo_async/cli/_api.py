"""
The one place where the command line imports the library.

The CLI uses only the public ``aivideo_async`` namespace and
``aivideo_async.emulator``. Names the package does not export yet are imported
here from their modules, so switching to ``aivideo_async.X`` is one edit.

Example:
    >>> from aivideo_async.cli._api import Orchestrator, JobState
    >>> JobState.SUCCEEDED.is_terminal
    True
"""

from __future__ import annotations

from aivideo_async import (
    AIVideoError,
    AIVideoMaker,
    APIStatusError,
    InvalidInput,
    JobError,
    JobHandle,
    JobResult,
    JobSpec,
    JobState,
    JobStatus,
    JournalEntry,
    Miraflow,
    MissingCredential,
    NemoVideo,
    Orchestrator,
    PollPolicy,
    ProviderLimits,
    ReconcileResult,
    RetryPolicy,
    Secret,
    SQLiteJournal,
    SubmissionNotSent,
    SubmissionOutcomeUnknown,
    SubmissionState,
    TextEvent,
    Timeouts,
    ToolCall,
    ToolResult,
    timeline_summary,
)
from aivideo_async.emulator import Emulator, EmulatorConfig, FaultRule
from aivideo_async.emulator import __main__ as emulator_main

# Not exported from aivideo_async yet (asked of the lead): switch these to
# `from aivideo_async import ...` once they are.
from aivideo_async.jobs import JobOutcome, ReconcileOutcome

__all__ = [
    "AIVideoError",
    "AIVideoMaker",
    "APIStatusError",
    "Emulator",
    "EmulatorConfig",
    "FaultRule",
    "InvalidInput",
    "JobError",
    "JobHandle",
    "JobOutcome",
    "JobResult",
    "JobSpec",
    "JobState",
    "JobStatus",
    "JournalEntry",
    "Miraflow",
    "MissingCredential",
    "NemoVideo",
    "Orchestrator",
    "PollPolicy",
    "ProviderLimits",
    "ReconcileOutcome",
    "ReconcileResult",
    "RetryPolicy",
    "SQLiteJournal",
    "Secret",
    "SubmissionNotSent",
    "SubmissionOutcomeUnknown",
    "SubmissionState",
    "TextEvent",
    "Timeouts",
    "ToolCall",
    "ToolResult",
    "emulator_main",
    "timeline_summary",
]
