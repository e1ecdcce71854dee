"""
Provider-neutral job models: :class:`JobState`, :class:`JobStatus`, :class:`JobResult`.

Every provider maps its own status strings onto these (its raw status and
progress are kept), so the orchestrator and user code handle one vocabulary.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["JobState", "JobStatus", "JobResult"]


class JobState(enum.Enum):
    """
    The one lifecycle every provider's statuses map onto.

    Example:
        >>> JobState.SUCCEEDED.is_terminal
        True
        >>> JobState("running")
        <JobState.RUNNING: 'running'>
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        """``True`` for ``SUCCEEDED``, ``FAILED`` and ``CANCELED``."""
        # Identity tests: Enum.__hash__ is Python code, and this runs on every poll.
        return self is JobState.SUCCEEDED or self is JobState.FAILED or self is JobState.CANCELED


@attrs.frozen(kw_only=True)
class JobResult:
    """
    What a succeeded job produced.

    Attributes:
        provider: ``"miraflow"``, ``"nemovideo"`` or ``"aivideomaker"``.
        kind: the job kind (``"video"``, ``"image"``, ``"render"``, ``"task"`` ...).
        job_id: the provider's job id.
        url: a download URL when the provider gave one (may be signed and expire).
        media_id: a provider id of the output when it differs from the job id
            (Miraflow's ``videoId``).
        raw: the provider's last status body, unchanged.

    Example:
        >>> r = JobResult(provider="miraflow", kind="video", job_id="j1", media_id="v1")
        >>> r.download_id
        'v1'
    """

    provider: str
    kind: str
    job_id: str
    url: str | None = None
    media_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def download_id(self) -> str:
        """The id to download with: ``media_id`` when present, else ``job_id``."""
        return self.media_id or self.job_id


@attrs.frozen(kw_only=True)
class JobStatus:
    """
    One observation of a job.

    Attributes:
        state: the mapped :class:`JobState`.
        raw_status: the provider's own status string (``"inference_working"``).
        progress: fraction done in ``[0, 1]`` where the provider reports it.
        message: the provider's failure message, if any.
        result: set when ``state`` is ``SUCCEEDED``.
        retry_after: a server hint, in seconds, for the next poll.
        known: ``False`` when ``raw_status`` was not recognised (then ``state``
            is ``RUNNING`` and the anomaly is logged; RELIABILITY #29).
        raw: the status body, unchanged.

    Example:
        >>> s = JobStatus(state=JobState.RUNNING, raw_status="inference_working", progress=0.45)
        >>> s.is_terminal, s.progress
        (False, 0.45)
    """

    state: JobState
    raw_status: str
    progress: float | None = None
    message: str | None = None
    result: JobResult | None = None
    retry_after: float | None = None
    known: bool = True
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def is_terminal(self) -> bool:
        """Whether ``state`` is terminal."""
        return self.state.is_terminal
