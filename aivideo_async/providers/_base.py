"""
The contract between provider clients and the orchestrator.

A :class:`JobSpec` describes one create call (no IO until it is submitted). A
:class:`JobBackend` is what a provider client offers the orchestrator: send a
create exactly once, poll, optionally poll many at once, cancel and reconcile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from .._config import PollPolicy
from .._models import JobStatus

__all__ = ["JobSpec", "JobBackend"]


@attrs.frozen(kw_only=True)
class JobSpec:
    """
    A description of one create call; building it does no IO.

    Attributes:
        provider: provider name (``"miraflow"``).
        kind: job kind, which also selects the status endpoint (``"video"``).
        method: HTTP method of the create (``"POST"``).
        path: create path (``"/api/video/create"``), without query string.
        payload: the wire body exactly as it will be sent (JSON-serialisable;
            multipart specs carry their form fields here). Journaled, or hashed.
        client_job_id: a job id chosen by the client before sending (NemoVideo
            render ids), so a lost create can be checked; ``None`` otherwise.
        match_tag: a short tag embedded in the payload (e.g. in Miraflow's
            ``name``) that lets :meth:`JobBackend.find_submission` find a job
            whose create answer was lost; ``None`` when unused.
        poll_policy: overrides the orchestrator's poll policy for this job.
        meta: free-form data for the backend (not sent).
        origin: the client that built the spec (set by the provider clients'
            builders; not journaled, not compared). An orchestrator with no
            backend for :attr:`provider` registers it on submit.

    Example:
        >>> spec = JobSpec(provider="miraflow", kind="image", method="POST",
        ...                path="/api/image/generate", payload={"prompt": "a cat"})
        >>> spec.endpoint
        'POST /api/image/generate'
    """

    provider: str
    kind: str
    method: str
    path: str
    payload: Mapping[str, Any]
    client_job_id: str | None = None
    match_tag: str | None = None
    poll_policy: PollPolicy | None = None
    meta: Mapping[str, Any] = attrs.field(factory=dict)
    origin: JobBackend | None = attrs.field(default=None, eq=False, repr=False)

    def built_by(self, origin: JobBackend) -> JobSpec:
        """
        This spec with :attr:`origin` set (what a client's builder returns).

        Example:
            >>> from aivideo_async import Miraflow
            >>> mira = Miraflow("k")
            >>> spec = JobSpec(provider="miraflow", kind="image", method="POST",
            ...                path="/api/image/generate", payload={"prompt": "a cat"})
            >>> spec.origin is None, spec.built_by(mira).origin is mira
            (True, True)
        """
        return attrs.evolve(self, origin=origin)

    @property
    def endpoint(self) -> str:
        """``"METHOD path"``, as errors and the journal show it."""
        return f"{self.method} {self.path}"


@runtime_checkable
class JobBackend(Protocol):
    """
    What a provider client offers the orchestrator.

    ``create`` sends exactly one request and never retries; its errors are the
    session layer's (``RequestNotSent`` means provably not sent; anything else
    after the first byte is ambiguous). ``poll`` is idempotent and may retry.

    A backend may also define ``bind_key(spec, key) -> JobSpec`` (optional, so
    not part of this protocol's check): the orchestrator calls it with the
    journal key before journaling, so a backend can tie what it sends to the
    key (Miraflow derives the match tag in a video's name from it). It must
    be pure and deterministic: the same spec and key give the same spec.
    Likewise optional, ``remember(spec, job_id) -> None`` is called when the
    orchestrator tracks a job it did not create in this process (``resume``,
    ``reconcile``), so a backend can learn what its own ``create`` would have
    noted (Miraflow: the match tag that lets its list call answer for the job).
    And ``find_submissions(requests) -> list[str | None]``, optional too: many
    ``find_submission`` lookups at once, ``requests`` being ``(spec, since)``
    pairs and the answer one id or ``None`` per pair, in order.
    :meth:`Orchestrator.reconcile` uses it to read a list endpoint once for
    every lost create of the provider, not once per create.

    Example:
        >>> import aivideo_async as av
        >>> class Fake:
        ...     provider = "fake"
        ...     async def create(self, spec): return "job-1"
        ...     async def poll(self, kind, job_id): ...
        ...     async def poll_many(self, kind, job_ids): return None
        ...     def supports_cancel(self, kind): return False
        ...     async def cancel(self, kind, job_id): ...
        ...     async def find_submission(self, spec, *, since): return None
        >>> isinstance(Fake(), av.JobBackend)
        True
    """

    @property
    def provider(self) -> str:
        """Provider name, matching :attr:`JobSpec.provider`."""
        ...

    async def create(self, spec: JobSpec) -> str:
        """Send the create call of ``spec`` once; return the provider's job id."""
        ...

    async def poll(self, kind: str, job_id: str) -> JobStatus:
        """Return the current status of one job."""
        ...

    async def poll_many(self, kind: str, job_ids: Sequence[str]) -> Mapping[str, JobStatus] | None:
        """
        Return statuses for many jobs in as few calls as the API allows, or
        ``None`` when the provider has no list endpoint for ``kind``. Jobs
        missing from the answer are polled one by one.
        """
        ...

    def supports_cancel(self, kind: str) -> bool:
        """Whether ``cancel`` can reach the provider for jobs of ``kind``."""
        ...

    async def cancel(self, kind: str, job_id: str) -> None:
        """Ask the provider to cancel a job."""
        ...

    async def find_submission(self, spec: JobSpec, *, since: float) -> str | None:
        """
        Look for a job that ``spec`` may have created (at wall time >= ``since``,
        epoch seconds); return its id, or ``None`` if it cannot be found or the
        provider offers no way to look.
        """
        ...
