"""
:class:`JobHandle`, the awaitable future of one tracked job, and :class:`JobUpdate`.

A handle is cheap on purpose: the scheduler may track 100k of them in one
process (target: under 1 KB each), so it has ``__slots__``, creates its
:class:`anyio.Event` only when someone waits, keeps a list of update
subscribers only when someone subscribed, and owns no task. The scheduler
keeps its bookkeeping for the job in the handle's private ``_s_*`` slots, so
one object per job is all it costs (STYLE #16: modelled on anyio's
``Future``/``TaskHandle``).
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Final, Protocol

import anyio
import attrs

from .._exceptions import (
    InvalidInput,
    JobCancelled,
    JobError,
    JobFailed,
    JobNotFound,
    JobTimeout,
)
from .._models import JobResult, JobState, JobStatus
from .._types import Sleep, anyio_sleep

if TYPE_CHECKING:
    from .._config import PollPolicy
    from ._scheduler import Scheduler

__all__ = ["JobHandle", "JobUpdate"]

logger = logging.getLogger("aivideo_async.jobs")


@attrs.frozen(kw_only=True)
class JobUpdate:
    """
    One state or progress change of a job, as :meth:`JobHandle.updates` (one
    job) and :meth:`Orchestrator.updates` (every job) yield it.

    Attributes:
        handle_key: the journal key of the job.
        job_id: the provider's job id.
        state: the mapped state after the change.
        progress: fraction done in ``[0, 1]``, or ``None`` when not reported.
        raw_status: the provider's own status string.
        at: the scheduler clock time of the observation.
        provider: the provider name (``""`` when built by hand without one).
        outcome: on a job's last update, how its handle ended
            (``"succeeded"``, ``"failed"``, ``"cancelled"``, ``"timed_out"``,
            ``"not_found"``); ``None`` before. An ending the provider did not
            report (a deadline, a local cancel, a 404) comes as an update of
            its own, with the last state the provider reported.

    Example:
        >>> u = JobUpdate(handle_key="k", job_id="j1", state=JobState.RUNNING,
        ...               progress=0.45, raw_status="inference_working", at=12.0)
        >>> u.state.value, u.progress
        ('running', 0.45)
    """

    handle_key: str
    job_id: str
    state: JobState
    progress: float | None
    raw_status: str
    at: float
    provider: str = ""
    outcome: str | None = None


class UpdateStream(Protocol):
    """
    What ``updates()`` returns (:meth:`JobHandle.updates`,
    :meth:`Orchestrator.updates`): an async iterator of :class:`JobUpdate`
    that may be closed early with :meth:`aclose`.

    Example::

        stream = orch.updates()
        async for update in stream:
            if update.state.is_terminal:
                break
        await stream.aclose()  # unsubscribe: nothing more is buffered for it
    """

    def __aiter__(self) -> UpdateStream: ...

    async def __anext__(self) -> JobUpdate: ...

    async def aclose(self) -> None:
        """Unsubscribe; the iterator then ends."""
        ...


class _Phase(enum.IntEnum):
    # Where the scheduler holds the job; see Scheduler for the meaning.
    SCHEDULED = 0
    READY = 1
    IN_FLIGHT = 2
    DONE = 3


class _Subscriber:
    """The buffer of one :meth:`JobHandle.updates` (or ``Scheduler.updates``) consumer."""

    __slots__ = ("__weakref__", "buffer", "event")

    def __init__(self) -> None:
        self.buffer: deque[JobUpdate] = deque()
        self.event: anyio.Event | None = None

    def push(self, update: JobUpdate | None) -> None:
        if update is not None:
            self.buffer.append(update)
        if self.event is not None:
            self.event.set()
            self.event = None


class _UpdateStream:
    """The async iterator :meth:`JobHandle.updates` returns (subscribed at creation)."""

    __slots__ = ("_handle", "_sub")

    def __init__(self, handle: JobHandle) -> None:
        self._handle = handle
        self._sub: _Subscriber | None = None
        if not handle.done():
            self._sub = _Subscriber()
            if handle._subs is None:
                handle._subs = []
            handle._subs.append(self._sub)

    def __aiter__(self) -> _UpdateStream:
        return self

    async def __anext__(self) -> JobUpdate:
        sub = self._sub
        while sub is not None:
            if sub.buffer:
                return sub.buffer.popleft()
            if self._handle.done():
                break
            if sub.event is None:
                sub.event = anyio.Event()
            await sub.event.wait()
        await self.aclose()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Unsubscribe; the iterator then ends."""
        sub, self._sub = self._sub, None
        subs = self._handle._subs
        if sub is not None and subs is not None and sub in subs:
            subs.remove(sub)


_TERMINAL_NAMES: Final = {
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "TIMED_OUT": "timed_out",
    "NOT_FOUND": "not_found",
}


class JobHandle:
    """
    The awaitable future of one job: ``await handle`` gives its :class:`JobResult`.

    A handle that did not succeed raises its outcome instead: :class:`JobFailed`
    (the provider said so, with its message), :class:`JobCancelled`,
    :class:`JobTimeout` (the deadline passed; the remote job was left alone) or
    :class:`JobNotFound` (RELIABILITY #27); each carries ``job_id``, ``key`` and
    ``provider``. Cancelling the task that awaits a handle cancels the wait
    only, never the job: only :meth:`cancel` does that.

    Handles come from ``Orchestrator.submit`` or ``Scheduler.track``; one already
    finished (read back from a journal) from :meth:`resolved`.

    Attributes:
        provider: provider name.
        kind: job kind (``"video"``, ``"image"`` ...).
        job_id: the provider's job id.
        key: the journal key.
        status: the latest :class:`JobStatus` observed, or ``None`` before the first poll.

    Example:
        >>> h = JobHandle.resolved(provider="miraflow", kind="video", job_id="j1", key="row-1",
        ...                        result=JobResult(provider="miraflow", kind="video", job_id="j1"))
        >>> h
        <JobHandle miraflow/video key='row-1' job_id='j1' state=succeeded>
        >>> h.done(), h.handle_status
        (True, <Status.SUCCEEDED: 'succeeded'>)

    In a task (``async`` code)::

        result = await handle                     # or: await handle.wait(timeout=60)
        async for update in handle.updates():     # every change from now on
            print(update.state, update.progress)
    """

    class Status(enum.Enum):
        """
        Where a handle stands: ``PENDING`` (queued or not yet seen), ``RUNNING``,
        or one of the final outcomes.

        Example:
            >>> JobHandle.Status.TIMED_OUT.is_terminal
            True
        """

        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        TIMED_OUT = "timed_out"
        NOT_FOUND = "not_found"

        @property
        def is_terminal(self) -> bool:
            """Whether the handle is resolved."""
            return self.name in _TERMINAL_NAMES

    __slots__ = (  # noqa: RUF023 - grouped: public, handle state, scheduler bookkeeping
        "provider",
        "kind",
        "job_id",
        "key",
        "status",
        "_hstatus",
        "_result",
        "_error",
        "_event",
        "_subs",
        "_callbacks",
        "_scheduler",
        "_s_phase",
        "_s_seq",
        "_s_due",
        "_s_created",
        "_s_deadline",
        "_s_policy",
        "_s_attempt",
        "_s_errors",
        "_s_changed",
        "_s_prog",
        "_s_flags",
        "__weakref__",
    )

    provider: str
    kind: str
    job_id: str
    key: str
    status: JobStatus | None
    # Set by Scheduler.track; unset on handles built by resolved().
    _s_due: float
    _s_created: float
    _s_deadline: float | None
    _s_policy: PollPolicy
    _s_attempt: int
    _s_errors: int
    _s_changed: float
    _s_prog: tuple[float, float] | None
    _s_flags: int

    def __init__(self, *, provider: str, kind: str, job_id: str, key: str) -> None:
        self.provider = provider
        self.kind = kind
        self.job_id = job_id
        self.key = key
        self.status = None
        self._hstatus = JobHandle.Status.PENDING
        self._result: JobResult | None = None
        self._error: JobError | None = None
        self._event: anyio.Event | None = None
        self._subs: list[_Subscriber] | None = None
        self._callbacks: list[Callable[[JobHandle], None]] | None = None
        self._scheduler: Scheduler | None = None
        self._s_phase = _Phase.SCHEDULED
        self._s_seq = 0

    @classmethod
    def resolved(
        cls,
        *,
        provider: str,
        kind: str,
        job_id: str,
        key: str,
        result: JobResult | None = None,
        error: BaseException | None = None,
    ) -> JobHandle:
        """
        Build a handle that is already finished (e.g. read back from a journal).

        Give exactly one of ``result`` (succeeded) or ``error`` (its type picks
        the status: :class:`JobFailed`, :class:`JobCancelled`, :class:`JobTimeout`,
        :class:`JobNotFound`; any other error counts as failed).

        Raises:
            InvalidInput: both or neither of ``result`` and ``error`` given.

        Example:
            >>> h = JobHandle.resolved(provider="aivideomaker", kind="task", job_id="t1",
            ...                        key="k", error=JobTimeout("deadline", job_id="t1"))
            >>> h.handle_status.value
            'timed_out'
        """
        if (result is None) == (error is None):
            raise InvalidInput(
                field="result/error",
                value=(result, error),
                expected="exactly one of result or error",
            )
        handle = cls(provider=provider, kind=kind, job_id=job_id, key=key)
        if result is not None:
            handle._resolve(JobHandle.Status.SUCCEEDED, result=result)
        else:
            assert error is not None
            job_error = _as_job_error(error, handle)
            handle._resolve(_status_of(job_error), error=job_error)
        return handle

    # -- reading ----------------------------------------------------------------

    @property
    def handle_status(self) -> JobHandle.Status:
        """The handle's :class:`Status` (pending, running, or the outcome)."""
        return self._hstatus

    def done(self) -> bool:
        """
        Whether the job is resolved (a result or an outcome error is set).

        Example:
            >>> JobHandle(provider="p", kind="k", job_id="j", key="k").done()
            False
        """
        return self._hstatus.is_terminal

    def result_nowait(self) -> JobResult:
        """
        Return the result now, or raise the outcome error.

        Raises:
            RuntimeError: the job is not finished yet.

        Example:
            >>> r = JobResult(provider="p", kind="k", job_id="j")
            >>> JobHandle.resolved(provider="p", kind="k", job_id="j", key="x",
            ...                    result=r).result_nowait() is r
            True
        """
        if self._result is not None:
            return self._result
        if self._error is not None:
            raise self._error.with_traceback(None)
        raise RuntimeError(f"{self!r} is not finished")

    async def wait(self, timeout: float | None = None) -> JobResult:
        """
        Wait for the job and return its result (or raise its outcome error).

        Args:
            timeout: seconds to wait at most (measured by the scheduler's sleep);
                ``None`` waits as long as the job runs. A timeout ends this wait
                only: the job keeps being tracked.

        Raises:
            TimeoutError: ``timeout`` passed before the job finished.
            JobFailed, JobCancelled, JobTimeout, JobNotFound: the job's outcome.

        Example::

            try:
                result = await handle.wait(timeout=30)
            except TimeoutError:
                ...  # still running; await it again later
        """
        if not self.done():
            event = self._event
            if event is None:
                event = self._event = anyio.Event()
            if timeout is None:
                await event.wait()
            else:
                await _wait_with_timeout(event, timeout, self._sleep())
                if not self.done():
                    raise TimeoutError(f"{self!r} did not finish within {timeout} s")
        return self.result_nowait()

    def __await__(self) -> Generator[Any, None, JobResult]:
        return self.wait().__await__()

    def add_done_callback(self, fn: Callable[[JobHandle], None]) -> None:
        """
        Call ``fn(handle)`` once, synchronously, when the handle is resolved.

        On a handle that is already done, ``fn`` runs now. Errors raised by
        ``fn`` are logged, never propagated. This lets ``as_completed`` and
        ``gather`` follow 100k handles without a task per handle.

        Example:
            >>> done = []
            >>> h = JobHandle(provider="p", kind="k", job_id="j", key="x")
            >>> h.add_done_callback(done.append)
            >>> h._resolve(JobHandle.Status.CANCELLED, error=JobCancelled("stop"))
            True
            >>> done == [h]
            True
        """
        if self.done():
            _call(fn, self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(fn)

    def remove_done_callback(self, fn: Callable[[JobHandle], None]) -> None:
        """
        Forget a callback given to :meth:`add_done_callback` (no error if absent).

        Example:
            >>> h = JobHandle(provider="p", kind="k", job_id="j", key="x")
            >>> h.add_done_callback(print); h.remove_done_callback(print)
        """
        if self._callbacks is not None and fn in self._callbacks:
            self._callbacks.remove(fn)

    def updates(self) -> UpdateStream:
        """
        Return an async iterator of every state or progress change from now on.

        Each call subscribes a new consumer, and every consumer sees every
        update observed after its subscription. The iterator ends when the job
        finishes (after the update for a provider-reported final state); on a
        finished handle it is empty. ``aclose()`` on it unsubscribes early.

        Example::

            async for update in handle.updates():
                print(f"{update.state.value} {update.progress or 0:.0%}")
        """
        return _UpdateStream(self)

    async def cancel(self, *, remote: bool = False) -> None:
        """
        Stop tracking the job; awaiting it then raises :class:`JobCancelled`.

        Args:
            remote: also ask the provider to cancel the job, which only some
                providers and kinds allow (AIVideoMaker tasks while queued).
                With ``remote=False`` the remote job keeps running (and billing).

        Raises:
            InvalidInput: ``remote=True`` for a provider or kind that cannot cancel.
            APIStatusError, TransportError: the provider refused or could not be
                reached; the job is then still tracked.

        A finished handle is left as it is (final states are sticky).

        Example::

            await handle.cancel()              # stop waiting; the render goes on
            await handle.cancel(remote=True)   # ask the provider to stop it too
        """
        if self.done():
            return
        scheduler = self._scheduler
        if scheduler is None:
            if remote:
                raise InvalidInput(
                    field="remote",
                    value=True,
                    expected="False: this handle is not attached to a scheduler",
                    provider=self.provider,
                )
            self._resolve(
                JobHandle.Status.CANCELLED,
                error=JobCancelled(
                    "cancelled locally", job_id=self.job_id, key=self.key, provider=self.provider
                ),
            )
            return
        await scheduler._cancel(self, remote=remote)

    # -- repr ---------------------------------------------------------------------

    def __repr__(self) -> str:
        if self.done() or self.status is None:
            state = self._hstatus.value
        else:
            state = self.status.state.value
        progress = ""
        status = self.status
        if not self.done() and status is not None and status.progress is not None:
            progress = f" {status.progress:.0%}"
        return (
            f"<JobHandle {self.provider}/{self.kind} key={self.key!r} "
            f"job_id={self.job_id!r} state={state}{progress}>"
        )

    # -- used by the scheduler ----------------------------------------------------

    def _sleep(self) -> Sleep:
        scheduler = self._scheduler
        return scheduler._sleep if scheduler is not None else anyio_sleep

    def _publish(self, update: JobUpdate) -> None:
        subs = self._subs
        if subs:
            for sub in subs:
                sub.push(update)

    def _resolve(
        self,
        status: JobHandle.Status,
        *,
        result: JobResult | None = None,
        error: JobError | None = None,
    ) -> bool:
        """Set the outcome once; return ``False`` if the handle was already done."""
        if self.done():
            return False
        self._hstatus = status
        self._result = result
        self._error = error
        self._s_phase = _Phase.DONE
        event, self._event = self._event, None
        if event is not None:
            event.set()
        subs, self._subs = self._subs, None
        if subs:
            for sub in subs:
                sub.push(None)
        callbacks, self._callbacks = self._callbacks, None
        if callbacks:
            for fn in callbacks:
                _call(fn, self)
        return True


def _call(fn: Callable[[JobHandle], None], handle: JobHandle) -> None:
    try:
        fn(handle)
    except Exception:
        logger.exception("done callback %r of %r failed", fn, handle)


async def _wait_with_timeout(event: anyio.Event, timeout: float, sleep: Sleep) -> None:
    # The timer goes through the injected sleep so fake clocks drive it too.
    async with anyio.create_task_group() as tg:

        async def timer() -> None:
            await sleep(max(0.0, timeout))
            tg.cancel_scope.cancel()

        tg.start_soon(timer)
        await event.wait()
        tg.cancel_scope.cancel()


def _status_of(error: JobError) -> JobHandle.Status:
    if isinstance(error, JobCancelled):
        return JobHandle.Status.CANCELLED
    if isinstance(error, JobTimeout):
        return JobHandle.Status.TIMED_OUT
    if isinstance(error, JobNotFound):
        return JobHandle.Status.NOT_FOUND
    return JobHandle.Status.FAILED


def _as_job_error(error: BaseException, handle: JobHandle) -> JobError:
    if isinstance(error, JobError):
        if error.job_id is None:
            error.job_id = handle.job_id
        if error.key is None:
            error.key = handle.key
        if error.provider is None:
            error.provider = handle.provider
        return error
    wrapped = JobFailed(
        str(error) or type(error).__name__,
        job_id=handle.job_id,
        key=handle.key,
        provider=handle.provider,
    )
    wrapped.__cause__ = error
    return wrapped
