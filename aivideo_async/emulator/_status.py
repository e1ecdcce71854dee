"""
Provider status strings computed from a :class:`~._state.Job` at a time.

Example:
    >>> from aivideo_async.emulator._state import Job
    >>> j = Job("j", "miraflow", "video", "k", created=0.0, duration=10.0, fails=False)
    >>> status_of(j, 1.0), status_of(j, 4.5), miraflow_progress(j, 4.5), status_of(j, 10.0)
    ('inference_started', 'inference_working', '45%', 'inference_complete')
    >>> a = Job("t", "aivideomaker", "t2v", "k", created=0.0, duration=10.0, fails=True)
    >>> status_of(a, 1.0), status_of(a, 5.0), status_of(a, 11.0)
    ('SUBMITTED', 'PROGRESS', 'FAILED')
"""

from __future__ import annotations

from ._state import Job

__all__ = ["miraflow_progress", "render_progress", "status_of"]

_MIRAFLOW = {
    "queued": "inference_started",
    "running": "inference_working",
    "succeeded": "inference_complete",
    "cancelled": "inference_failed",
}
_AVM = {
    "queued": "SUBMITTED",
    "running": "PROGRESS",
    "succeeded": "COMPLETED",
    "failed": "FAILED",
    "cancelled": "CANCEL",
}
_RENDER = {
    "queued": "pending",
    "running": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "failed",
}


def status_of(job: Job, now: float) -> str:
    """The provider's own status string for ``job`` at emulator time ``now``."""
    phase = job.phase(now)
    if job.provider == "miraflow":
        if phase == "failed":
            # Miraflow has two failure statuses; which one was drawn at create time.
            return str(job.data.get("fail_status", "inference_failed"))
        return _MIRAFLOW[phase]
    if job.provider == "aivideomaker":
        return _AVM[phase]
    return _RENDER[phase]


def miraflow_progress(job: Job, now: float) -> str:
    """Miraflow's progress string, e.g. ``"45%"`` (capped at 99% until complete)."""
    return f"{min(99, int(job.fraction(now) * 100))}%"


def render_progress(job: Job, now: float) -> int:
    """NemoVideo render progress 5..100 (5 while pending, as the submit reports)."""
    phase = job.phase(now)
    if phase == "succeeded":
        return 100
    if phase == "queued":
        return 5
    return max(5, min(99, int(job.fraction(now) * 100)))
