"""
The job layer: the submission journal, the poll scheduler, job handles and the
orchestrator that ties them together (ARCHITECTURE §4.1-4.3).

Example:
    >>> from aivideo_async.jobs import MemoryJournal, SubmissionState
    >>> SubmissionState.UNKNOWN.settled
    True
"""

from __future__ import annotations

from ._handle import JobHandle as JobHandle
from ._handle import JobUpdate as JobUpdate
from ._handle import UpdateStream as UpdateStream
from ._journal import SCHEMA_VERSION as SCHEMA_VERSION
from ._journal import ErrorInfo as ErrorInfo
from ._journal import JobOutcome as JobOutcome
from ._journal import Journal as Journal
from ._journal import JournalEntry as JournalEntry
from ._journal import MemoryJournal as MemoryJournal
from ._journal import SQLiteJournal as SQLiteJournal
from ._journal import SubmissionState as SubmissionState
from ._journal import check_outcome as check_outcome
from ._journal import check_transition as check_transition
from ._journal import payload_digest as payload_digest
from ._orchestrator import Orchestrator as Orchestrator
from ._orchestrator import ReconcileOutcome as ReconcileOutcome
from ._orchestrator import ReconcileResult as ReconcileResult
from ._scheduler import ProviderLimits as ProviderLimits
from ._scheduler import Scheduler as Scheduler

__all__ = [
    "SCHEMA_VERSION",
    "ErrorInfo",
    "JobHandle",
    "JobOutcome",
    "JobUpdate",
    "UpdateStream",
    "Journal",
    "JournalEntry",
    "MemoryJournal",
    "Orchestrator",
    "ProviderLimits",
    "ReconcileOutcome",
    "ReconcileResult",
    "SQLiteJournal",
    "Scheduler",
    "SubmissionState",
    "check_outcome",
    "check_transition",
    "payload_digest",
]
