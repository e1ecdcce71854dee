"""
:class:`Orchestrator`: submit each create at most once, journal it, track the job.

The create path (ARCHITECTURE §4.1, RELIABILITY #1-#12, #23)::

    key in journal?  -- yes --> existing handle, or the recorded outcome re-raised (no call)
        | no
    planned --> sending (fsynced) --> ONE backend.create(spec)
        ok                  --> accepted(job_id) (fsynced) --> handle tracked by the scheduler
        RequestNotSent      --> not_sent  --> SubmissionNotSent (resubmitted only by policy)
        429                 --> rejected, provider paused, wait max(Retry-After, 30 s),
                                attempt 2 once; a second 429 raises RateLimited
        insufficient credits --> rejected, and new creates of that provider are
                                blocked (no call) for ``credits_block`` seconds or
                                until unblock_creates(); polls go on (RELIABILITY #14)
        4xx / body error    --> rejected  --> the typed APIStatusError
        anything ambiguous  --> unknown   --> SubmissionOutcomeUnknown (never resent)
        (timeout after sending, reset, 5xx, garbled/HTML/oversize 2xx, cancellation)

Writes after the create are shielded from cancellation (RELIABILITY #9), so a
cancelled submit still leaves the journal telling the truth.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import socket
import time
import uuid
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Literal, Self, overload

import anyio
import anyio.lowlevel
import attrs

from .. import _exceptions
from .._backoff import compute_delay
from .._config import DEFAULT_POLL_POLICY, PollPolicy
from .._exceptions import (
    AIVideoError,
    APIStatusError,
    InsufficientCredits,
    InvalidInput,
    JobCancelled,
    JobError,
    JobFailed,
    JobNotFound,
    JobTimeout,
    RateLimited,
    RequestNotSent,
    ServerError,
    SubmissionNotSent,
    SubmissionOutcomeUnknown,
    TLSError,
)
from .._models import JobResult
from .._session import _SendWatch, _watch_sends
from .._types import Clock, RandomSource, Sleep, anyio_sleep, jitter_random, monotonic_clock
from ..providers._base import JobBackend, JobSpec
from ._handle import JobHandle, UpdateStream
from ._journal import (
    ErrorInfo,
    JobOutcome,
    Journal,
    JournalEntry,
    MemoryJournal,
    SQLiteJournal,
    StorePayload,
    SubmissionState,
)
from ._scheduler import ProviderLimits, Scheduler

__all__ = ["Orchestrator", "ReconcileOutcome", "ReconcileResult"]

logger = logging.getLogger("aivideo_async.jobs")

S = SubmissionState

RATE_LIMIT_MIN_WAIT: Final = 30.0
"""The shortest wait after a 429 on a create before attempt 2 (RELIABILITY #12)."""

_OUTCOMES: Final[Mapping[JobHandle.Status, JobOutcome]] = {
    JobHandle.Status.SUCCEEDED: JobOutcome.SUCCEEDED,
    JobHandle.Status.FAILED: JobOutcome.FAILED,
    JobHandle.Status.CANCELLED: JobOutcome.CANCELED,
    JobHandle.Status.TIMED_OUT: JobOutcome.TIMED_OUT,
    JobHandle.Status.NOT_FOUND: JobOutcome.NOT_FOUND,
}


class ReconcileOutcome(enum.Enum):
    """
    What :meth:`Orchestrator.reconcile` concluded for one ``unknown`` entry.

    Example:
        >>> ReconcileOutcome.FOUND.value
        'found'
    """

    FOUND = "found"
    """The provider has the job: the entry is now ``accepted`` and tracked."""
    NOT_FOUND = "not_found"
    """The provider shows no such job (yet); the entry stays ``unknown``."""
    CONFLICT = "conflict"
    """The job found already belongs to another key; left ``unknown`` for a human."""
    ERROR = "error"
    """Looking failed (network, provider error); stays ``unknown``, try again later."""
    NO_BACKEND = "no_backend"
    """No backend is registered for the entry's provider."""


_Lookup = tuple[str | None, str | None]  # (job id found, error) of one lost create
_NO_BACKEND: Final[_Lookup] = (None, "no backend")


@attrs.frozen(kw_only=True)
class ReconcileResult:
    """
    The result of reconciling one ``unknown`` journal entry.

    Attributes:
        key: the journal key.
        provider: its provider.
        outcome: a :class:`ReconcileOutcome`.
        job_id: the job found (``FOUND``, ``CONFLICT``).
        handle: the tracked handle (``FOUND``).
        error: why it failed (``ERROR``, ``CONFLICT``), without secrets.

    Example:
        >>> r = ReconcileResult(key="k", provider="miraflow", outcome=ReconcileOutcome.NOT_FOUND)
        >>> r.resolved
        False
    """

    key: str
    provider: str
    outcome: ReconcileOutcome
    job_id: str | None = None
    handle: JobHandle | None = attrs.field(default=None, repr=False, eq=False)
    error: str | None = None

    @property
    def resolved(self) -> bool:
        """Whether the entry left ``unknown`` (it is ``accepted`` now)."""
        return self.outcome is ReconcileOutcome.FOUND


class _KeyLocks:
    """One lock per key, dropped when nobody holds or waits for it (100k keys stay cheap)."""

    __slots__ = ("_locks",)

    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = anyio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class _Resend(Exception):
    """Internal: the attempt ended in a way that allows one more journaled attempt."""

    def __init__(self, entry: JournalEntry, cause: AIVideoError) -> None:
        super().__init__()
        self.entry = entry
        self.cause = cause


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AIVideoError):
        return f"{type(exc).__name__}: {exc.message}" if exc.message else type(exc).__name__
    return type(exc).__name__


# Refusals after which no job exists and a later try may succeed (resubmit_refused).
_REFUSALS: Final = frozenset({"InsufficientCredits", "PaymentRequired", "RateLimited"})


def _rebuild_rejection(entry: JournalEntry) -> APIStatusError:
    info = entry.error or ErrorInfo(type="APIStatusError", message="rejected")
    cls = getattr(_exceptions, info.type, None)
    if not (isinstance(cls, type) and issubclass(cls, APIStatusError)):
        cls = APIStatusError
    kwargs: dict[str, Any] = {
        "provider": entry.provider,
        "status_code": info.status_code,
        "body_code": info.body_code,
        "endpoint": entry.endpoint,
    }
    if issubclass(cls, RateLimited):
        kwargs["retry_after"] = info.retry_after
    error: APIStatusError = cls(info.message, **kwargs)
    return error


def _resolved_from_journal(entry: JournalEntry) -> JobHandle:
    assert entry.job_id is not None
    assert entry.outcome is not None
    common: dict[str, Any] = {"job_id": entry.job_id, "key": entry.key, "provider": entry.provider}
    message = entry.outcome_message or entry.outcome.value
    error: JobError | None = None
    result: JobResult | None = None
    match entry.outcome:
        case JobOutcome.SUCCEEDED:
            result = JobResult(
                provider=entry.provider,
                kind=entry.kind,
                job_id=entry.job_id,
                url=entry.result_url,
                media_id=entry.media_id,
            )
        case JobOutcome.FAILED:
            error = JobFailed(message, **common)
        case JobOutcome.CANCELED:
            error = JobCancelled(message, **common)
        case JobOutcome.TIMED_OUT:
            error = JobTimeout(message, **common)
        case JobOutcome.NOT_FOUND:
            error = JobNotFound(message, **common)
    return JobHandle.resolved(
        provider=entry.provider,
        kind=entry.kind,
        job_id=entry.job_id,
        key=entry.key,
        result=result,
        error=error,
    )


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > 255 or not key.isprintable():
        raise InvalidInput(
            field="key", value=key, expected="a non-empty printable str of at most 255 characters"
        )
    return key


class Orchestrator:
    """
    Submits creates at most once through a durable journal and tracks the jobs
    with one shared scheduler.

    Args:
        journal: a :class:`Journal`, or a path for a :class:`SQLiteJournal`, or
            ``None`` for a :class:`MemoryJournal` (nothing survives the process).
            A journal given as an object is opened if needed and left open on
            exit (its owner closes it); one made from a path or ``None`` is
            closed on exit.
        backends: the provider backends (more with :meth:`register`, at any time).
        poll_policy: the default poll policy (a spec's own policy wins).
        provider_limits: poll budgets per provider name; a provider whose
            client is registered later (or on its first submit) gets its
            budget then.
        max_in_flight: most polls in flight over all providers.
        resubmit_not_sent: allow a create that provably never left
            (``not_sent``) to be sent again as a new journaled attempt: up to
            ``not_sent_attempts`` times within one :meth:`submit`, and when the
            key is submitted again. Off by default: even "not sent" is the
            caller's decision (RELIABILITY #6). TLS failures are never resent (#7).
        not_sent_attempts: attempts in all within one submit, with the policy on.
        resubmit_refused: when a key whose create the provider refused for
            credits, plan or rate (``InsufficientCredits``, ``PaymentRequired``,
            ``RateLimited``: no job was created) is submitted again, send it as
            a new journaled attempt instead of raising the recorded refusal:
            the re-run of a batch after a top-up. Not while the provider's
            creates are blocked (``credits_block``). Off by default.
        rate_limit_max_wait: the longest wait for attempt 2 after a 429 on a
            create; a longer ``Retry-After`` raises :class:`RateLimited` at once.
        credits_block: after a create is refused for insufficient credits, new
            creates of that provider raise :class:`InsufficientCredits` without
            any call for this many seconds (on ``clock``), or until
            :meth:`unblock_creates`; polling goes on (RELIABILITY #14).
        reconcile_skew: seconds subtracted from an entry's send time when asking a
            provider for jobs created since then (clock skew allowance).
        lease_seconds: lease length on entries this orchestrator works on (only
            a shared, multi-process journal looks at leases).
        store_payload: with a path ``journal``: keep payloads in full or hashed.
        clock, sleep, rng: the time and randomness seam; ``sleep`` also times
            the 429 wait. ``wall_clock`` stamps journal entries (epoch seconds).

    Re-runs are idempotent only with your own keys: ``submit(spec)`` without a
    key uses a fresh UUID, so running the same script twice creates twice. Pass
    a key derived from your own data (``key=f"campaign-7/row-{n}"``) and a re-run
    returns the existing job without sending anything.

    Example:
        Typical use (IO, so not run here)::

            async with Orchestrator(journal="jobs.sqlite", backends=[mira]) as orch:
                await orch.resume()                       # after a restart
                handle = await orch.submit(spec, key="campaign-7/row-12")
                result = await handle
    """

    def __init__(
        self,
        *,
        journal: Journal | str | os.PathLike[str] | None = None,
        backends: Sequence[JobBackend] = (),
        poll_policy: PollPolicy = DEFAULT_POLL_POLICY,
        provider_limits: Mapping[str, ProviderLimits] | None = None,
        max_in_flight: int = 64,
        resubmit_not_sent: bool = False,
        not_sent_attempts: int = 3,
        resubmit_refused: bool = False,
        rate_limit_max_wait: float = 300.0,
        credits_block: float = 600.0,
        reconcile_skew: float = 5.0,
        lease_seconds: float = 3600.0,
        store_payload: StorePayload = "full",
        clock: Clock = monotonic_clock,
        wall_clock: Callable[[], float] = time.time,
        sleep: Sleep = anyio_sleep,
        rng: RandomSource = jitter_random,
        scheduler_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._owns_journal = not isinstance(journal, Journal)
        if journal is None:
            self.journal: Journal = MemoryJournal(
                store_payload=store_payload, wall_clock=wall_clock
            )
        elif isinstance(journal, str | os.PathLike):
            self.journal = SQLiteJournal(
                journal, store_payload=store_payload, wall_clock=wall_clock
            )
        elif isinstance(journal, Journal):
            self.journal = journal
        else:
            raise InvalidInput(
                field="journal", value=journal, expected="a Journal, a path, or None"
            )
        if isinstance(not_sent_attempts, bool) or not isinstance(not_sent_attempts, int):
            raise InvalidInput(
                field="not_sent_attempts", value=not_sent_attempts, expected="an int >= 1"
            )
        if not_sent_attempts < 1:
            raise InvalidInput(
                field="not_sent_attempts", value=not_sent_attempts, expected="an int >= 1"
            )
        self._backends: dict[str, JobBackend] = {}
        self._scheduler: Scheduler | None = None
        for backend in backends:
            self.register(backend)
        self._poll_policy = poll_policy
        self._provider_limits = dict(provider_limits or {})
        self._max_in_flight = max_in_flight
        self._resubmit_not_sent = resubmit_not_sent
        self._not_sent_attempts = not_sent_attempts
        self._resubmit_refused = resubmit_refused
        self._rate_limit_max_wait = float(rate_limit_max_wait)
        checked: object = credits_block  # callers may pass anything
        if (
            isinstance(checked, bool)
            or not isinstance(checked, int | float)
            or not 0 <= checked < float("inf")
        ):
            raise InvalidInput(
                field="credits_block", value=credits_block, expected="a finite number >= 0"
            )
        self._credits_block = float(credits_block)
        # provider -> (clock time the block ends, the refusal that set it)
        self._credits_blocked: dict[str, tuple[float, InsufficientCredits]] = {}
        self._reconcile_skew = float(reconcile_skew)
        self._lease_seconds = float(lease_seconds)
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._rng = rng
        self._scheduler_options = dict(scheduler_options or {})
        self._locks = _KeyLocks()
        # The handle of each key while anyone holds it: a repeated submit returns
        # the same object, and a finished job is not tracked a second time while
        # its outcome is still on its way to the journal.
        self._handles: weakref.WeakValueDictionary[str, JobHandle] = weakref.WeakValueDictionary()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._stack: contextlib.AsyncExitStack | None = None
        self._opened_journal = False
        self._stats = dict.fromkeys(
            (
                "submits",
                "creates",
                "accepted",
                "rejected",
                "not_sent",
                "unknown",
                "existing",
                "rate_limit_waits",
                "credits_blocked",
                "resubmitted_refused",
            ),
            0,
        )
        self._warned_other_client: set[str] = set()

    def __repr__(self) -> str:
        state = "running" if self._scheduler is not None else "stopped"
        return f"<Orchestrator {state} providers={sorted(self._backends)} journal={self.journal!r}>"

    # -- lifecycle ------------------------------------------------------------------

    def _warn_other_client(self, provider: str) -> None:
        if provider in self._warned_other_client:
            return
        self._warned_other_client.add(provider)
        logger.warning(
            "%s: a spec built by another %s client than the registered one is sent through "
            "the registered one (its key and settings); one backend serves each provider",
            provider,
            provider,
        )

    def register(self, backend: JobBackend) -> None:
        """
        Add a provider backend, before or inside ``async with`` (any time
        before the first submit to that provider). Registering the same
        backend again does nothing.

        Raises:
            InvalidInput: not a :class:`JobBackend`, or a second backend for
                one provider.

        Example::

            async with Orchestrator("jobs.sqlite") as orch:
                orch.register(mira)
                handle = await orch.submit(mira.image(prompt="a red fox"))
        """
        if not isinstance(backend, JobBackend):
            raise InvalidInput(field="backend", value=backend, expected="a JobBackend")
        current = self._backends.get(backend.provider)
        if current is backend:
            return
        if current is not None:
            raise InvalidInput(
                field="backend",
                value=backend.provider,
                expected="one backend per provider name",
            )
        if self._scheduler is not None:
            # Running: the scheduler starts polling for this provider too.
            self._scheduler.add_backend(
                backend.provider, backend, self._provider_limits.get(backend.provider)
            )
        self._backends[backend.provider] = backend

    @property
    def scheduler(self) -> Scheduler:
        """The running scheduler (only inside ``async with``)."""
        if self._scheduler is None:
            raise RuntimeError(
                "the Orchestrator is not running; use `async with Orchestrator(...)`"
            )
        return self._scheduler

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("this Orchestrator is already running")
        async with contextlib.AsyncExitStack() as stack:
            await self.journal.open()
            if self._owns_journal:
                stack.push_async_callback(self.journal.aclose)
            later = sorted(set(self._provider_limits) - set(self._backends))
            if later:
                logger.info(
                    "provider_limits for %s: no client registered yet; applied when one is",
                    ", ".join(later),
                )
            scheduler = Scheduler(
                backends=self._backends,
                poll_policy=self._poll_policy,
                provider_limits={
                    name: limits
                    for name, limits in self._provider_limits.items()
                    if name in self._backends
                },
                max_in_flight=self._max_in_flight,
                on_terminal=self._on_terminal,
                clock=self._clock,
                sleep=self._sleep,
                rng=self._rng,
                **self._scheduler_options,
            )
            await stack.enter_async_context(scheduler)
            stack.callback(self._stopped)
            self._scheduler = scheduler
            self._stack = stack.pop_all()
        return self

    def _stopped(self) -> None:
        self._scheduler = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the scheduler (unfinished jobs stay in the journal) and close the journal."""
        stack, self._stack = self._stack, None
        if stack is None:
            return
        await stack.__aexit__(exc_type, exc, tb)

    def stats(self) -> Mapping[str, int]:
        """
        Counters: ``submits``, ``creates`` (calls to ``backend.create``),
        ``accepted``, ``rejected``, ``not_sent``, ``unknown``, ``existing`` (keys
        answered from the journal without a call), ``rate_limit_waits``,
        ``credits_blocked`` (submits refused without a call while a provider is
        out of credits, RELIABILITY #14).

        Example:
            >>> Orchestrator().stats()["creates"]
            0
        """
        return dict(self._stats)

    # -- submit ----------------------------------------------------------------------

    async def submit(self, spec: JobSpec, *, key: str | None = None) -> JobHandle:
        """
        Send the create of ``spec`` at most once and return the job's handle.

        The create goes through the backend registered for ``spec.provider``;
        with none, through the client that built the spec
        (:attr:`JobSpec.origin`), which is registered from then on.

        Args:
            spec: what to create (from a provider client).
            key: your request key (at most 255 printable characters). A key
                already in the journal returns the existing job or re-raises the
                recorded outcome **without any call**. ``None``: a fresh UUID
                (then a re-run of your script creates again; pass your own key
                to make re-runs idempotent).

        Returns:
            The :class:`JobHandle`, tracked by the scheduler (already resolved
            when the journal holds the job's outcome).

        Raises:
            SubmissionOutcomeUnknown: the create may or may not have happened
                (never resent; see :meth:`reconcile`).
            SubmissionNotSent: the create provably never left.
            RateLimited: 429 on the create, twice (RELIABILITY #12).
            InsufficientCredits: the provider refused the create for credits,
                or refused an earlier one and creates are blocked (no call,
                RELIABILITY #14; see :meth:`unblock_creates`).
            APIStatusError: the provider rejected the create (its typed subclass).
            InvalidInput: bad key, no backend for the provider (and no
                ``spec.origin``), a payload the journal refuses, or a key
                reused with a different payload.

        Example::

            handle = await orch.submit(mira.video(...), key="campaign-7/row-12")
        """
        self._stats["submits"] += 1
        scheduler = self.scheduler
        key = uuid.uuid4().hex if key is None else _check_key(key)
        backend = self._backends.get(spec.provider)
        origin = spec.origin
        if backend is None and origin is not None and origin.provider == spec.provider:
            # The client that built the spec: registered on first use.
            self.register(origin)
            backend = origin
        elif backend is not None and origin is not None and origin is not backend:
            self._warn_other_client(spec.provider)
        if backend is None:
            raise InvalidInput(
                field="spec.provider",
                value=spec.provider,
                expected=f"a registered provider, one of {sorted(self._backends)}",
            )
        bind_key = getattr(backend, "bind_key", None)
        if bind_key is not None:
            # The backend ties what it sends to the key (Miraflow's match tag),
            # before anything is journaled.
            spec = bind_key(spec, key)
        planned = JournalEntry.planned(
            spec,
            key=key,
            now=self._wall(),
            owner=self.owner,
            lease_until=self._wall() + self._lease_seconds,
        )
        async with self._locks.hold(key):
            blocked = self._credits_refusal(spec)
            if blocked is not None:
                # Out of credits: no create may be sent, and a new key is not
                # journaled (it stays free for after the top-up). A key already
                # journaled still answers from the journal.
                known = await self.journal.get(key)
                if known is not None:
                    answer = await self._existing(known, planned, new_attempt=False)
                    if isinstance(answer, JobHandle):
                        return answer
                self._stats["credits_blocked"] += 1
                raise blocked
            # A new key goes planned -> sending in one durable write (shielded:
            # a cancel must not leave us unsure whether it happened).
            with anyio.CancelScope(shield=True):
                entry, created = await self.journal.add(planned, sending=True)
            if not created:
                answer = await self._existing(entry, planned)
                if isinstance(answer, JobHandle):
                    return answer
                entry = answer
            return await self._send(scheduler, backend, spec, entry)

    async def submit_many(
        self,
        items: Iterable[tuple[JobSpec, str | None]],
        *,
        concurrency: int = 8,
    ) -> list[JobHandle | AIVideoError]:
        """
        :meth:`submit` every ``(spec, key)`` pair, at most ``concurrency``
        creates in flight, and return one outcome per pair, in order: its
        handle, or the library error its submit raised (a refusal, an unknown
        outcome, bad input...). One failure does not stop the others, and
        every create keeps its at-most-once guarantee (a re-run with the same
        keys sends nothing twice). ``concurrency`` workers in all, however
        many pairs: no task per pair.

        Raises:
            InvalidInput: ``concurrency`` is not a positive int.

        Example::

            outcomes = await orch.submit_many((avm.text_to_video(prompt=p), f"row-{i}")
                                              for i, p in enumerate(prompts))
            handles = [o for o in outcomes if isinstance(o, JobHandle)]
            results = await orch.gather(handles, return_exceptions=True)
        """
        checked: object = concurrency  # callers may pass anything
        if isinstance(checked, bool) or not isinstance(checked, int) or checked < 1:
            raise InvalidInput(field="concurrency", value=concurrency, expected="an int >= 1")
        pairs = list(items)
        out: list[JobHandle | AIVideoError | None] = [None] * len(pairs)
        todo = iter(enumerate(pairs))

        async def worker() -> None:
            for i, (spec, key) in todo:  # shared: each pair is taken once
                try:
                    out[i] = await self.submit(spec, key=key)
                except AIVideoError as exc:
                    out[i] = exc

        async with anyio.create_task_group() as tg:
            for _ in range(min(concurrency, len(pairs))):
                tg.start_soon(worker)
        done: list[JobHandle | AIVideoError] = []
        for outcome in out:
            assert outcome is not None  # every pair was taken; other errors propagated
            done.append(outcome)
        return done

    def updates(self) -> UpdateStream:
        """
        Return an async iterator of every state or progress change of every
        job this orchestrator tracks, from now on: one stream for a dashboard
        or a progress log, instead of one ``handle.updates()`` per job. Each
        :class:`JobUpdate` carries its ``provider`` and journal key. It ends
        when the orchestrator stops; ``aclose()`` unsubscribes early.

        Example::

            async def log_progress(orch: Orchestrator) -> None:
                async for u in orch.updates():
                    print(f"{u.provider} {u.handle_key}: {u.state.value} {u.progress or 0:.0%}")
        """
        return self.scheduler.updates()

    def poke(self, provider: str, job_id: str) -> bool:
        """
        Poll a tracked job now rather than at its next scheduled time: call it
        from your webhook endpoint when the provider says a job changed. The
        callback's content is not trusted (anyone can post to a URL): only the
        poll that follows says what happened, within the provider's budget.

        Returns:
            ``True`` if the job was waiting for its next poll; ``False`` for a
            job this orchestrator does not track (or no longer: finished), or
            one already being polled.

        Example::

            async def on_callback(request: web.Request) -> web.Response:
                task_id = avm.webhook_job_id(await request.json())
                if task_id is not None:
                    orch.poke("aivideomaker", task_id)
                return web.Response(status=204)
        """
        return self.scheduler.poll_now(provider, job_id)

    def unblock_creates(self, provider: str) -> None:
        """
        Allow creates of ``provider`` again after an insufficient-credits refusal
        (you topped up); otherwise they are allowed again ``credits_block``
        seconds after the refusal (RELIABILITY #14).

        Example:
            >>> Orchestrator().unblock_creates("miraflow")  # not blocked: nothing to do
        """
        self._credits_blocked.pop(provider, None)

    def _credits_refusal(self, spec: JobSpec) -> InsufficientCredits | None:
        """The error for a create of ``spec`` while its provider is out of credits."""
        blocked = self._credits_blocked.get(spec.provider)
        if blocked is None:
            return None
        until, cause = blocked
        left = until - self._clock()
        if left <= 0:
            # Half-open: the next create goes out; a new refusal blocks again.
            del self._credits_blocked[spec.provider]
            return None
        error = InsufficientCredits(
            f"creates of {spec.provider} are blocked for {left:.0f} s more after an "
            f"insufficient-credits refusal ({cause.message or 'no message'}); nothing "
            "was sent. Top up, then call Orchestrator.unblock_creates()",
            provider=spec.provider,
            endpoint=spec.endpoint,
            body_code=cause.body_code,
        )
        return error

    async def _existing(
        self, entry: JournalEntry, planned: JournalEntry, *, new_attempt: bool = True
    ) -> JobHandle | JournalEntry:
        """
        Answer a key that is already journaled, without any call: its handle, a
        PLANNED entry to send (a leftover plan, or a new attempt allowed by
        policy), or the recorded outcome raised.
        """
        if (entry.payload_hash, entry.provider, entry.endpoint) != (
            planned.payload_hash,
            planned.provider,
            planned.endpoint,
        ):
            raise InvalidInput(
                field="key",
                value=entry.key,
                expected="a key not already used for a different request (journaled: "
                f"{entry.provider} {entry.endpoint}, payload {entry.payload_hash[:12]})",
            )
        self._stats["existing"] += 1
        match entry.state:
            case S.ACCEPTED:
                return self._handle_for(entry)
            case S.PLANNED:
                # Planned but never sending: no byte left for it (sending is fsynced
                # before the first byte), so it is safe to send now.
                return entry
            case S.REJECTED:
                refused = entry.error is not None and entry.error.type in _REFUSALS
                if not (new_attempt and self._resubmit_refused and refused):
                    raise _rebuild_rejection(entry)
                self._stats["resubmitted_refused"] += 1
                return await self._next_attempt(entry)
            case S.NOT_SENT:
                if not self._resubmit_not_sent:
                    raise SubmissionNotSent(
                        f"submission {entry.key!r} was not sent"
                        + (f" ({entry.error.type})" if entry.error else "")
                        + "; resubmitting needs resubmit_not_sent=True or a new key",
                        key=entry.key,
                        provider=entry.provider,
                        endpoint=entry.endpoint,
                    )
                return await self._next_attempt(entry)
            case S.SENDING | S.UNKNOWN:
                # SENDING here is a create in flight in a process that stopped (or
                # another live worker's): its outcome is unknown. Never resend.
                raise SubmissionOutcomeUnknown(
                    f"the create for key {entry.key!r} is {entry.state.value} in the journal"
                    "; it is never resent (see Orchestrator.reconcile)",
                    key=entry.key,
                    provider=entry.provider,
                    endpoint=entry.endpoint,
                )
        raise AssertionError(entry.state)  # pragma: no cover

    def _handle_for(self, entry: JournalEntry) -> JobHandle:
        assert entry.job_id is not None
        known = self._handles.get(entry.key)
        if known is not None and known.job_id == entry.job_id:
            return known
        if entry.outcome is not None and entry.outcome.final:
            return self._remember(_resolved_from_journal(entry))
        return self._track(entry)

    def _remember(self, handle: JobHandle) -> JobHandle:
        self._handles[handle.key] = handle
        return handle

    def _track(self, entry: JournalEntry) -> JobHandle:
        assert entry.job_id is not None
        if entry.match_tag is not None:
            # A job from the journal (resume, reconcile): tell its backend what
            # it would know had it created the job in this process.
            remember = getattr(self._backends.get(entry.provider), "remember", None)
            if remember is not None:
                remember(entry.to_spec(), entry.job_id)
        handle = self.scheduler.track(
            provider=entry.provider,
            kind=entry.kind,
            job_id=entry.job_id,
            key=entry.key,
            created_at=self._created_at(entry),
            policy=entry.poll_policy,
        )
        return self._remember(handle)

    def _created_at(self, entry: JournalEntry) -> float | None:
        # Journal times are wall clock; the scheduler counts on its monotonic clock.
        if entry.outcome is JobOutcome.TIMED_OUT:
            return None  # a resumed timed-out job gets a fresh deadline (RELIABILITY #30)
        since = entry.accepted_at or entry.sent_at
        if since is None:
            return None
        return self._clock() - max(0.0, self._wall() - since)

    async def _send(
        self, scheduler: Scheduler, backend: JobBackend, spec: JobSpec, entry: JournalEntry
    ) -> JobHandle:
        rate_limited_once = False
        not_sent = 0
        while True:
            try:
                return await self._attempt(scheduler, backend, spec, entry)
            except _Resend as resend:
                cause = resend.cause
                if isinstance(cause, RateLimited):
                    wait = max(cause.retry_after or 0.0, RATE_LIMIT_MIN_WAIT)
                    if rate_limited_once or wait > self._rate_limit_max_wait:
                        raise cause from None
                    rate_limited_once = True
                    self._stats["rate_limit_waits"] += 1
                    with contextlib.suppress(InvalidInput):
                        scheduler.pause_provider(spec.provider, wait, reason="429 on create")
                    # Plan attempt 2 before waiting: a crash during the wait leaves a
                    # plan (safe to send later), not a rejection.
                    entry = await self._next_attempt(resend.entry)
                    logger.info(
                        "429 on create for key %r: waiting %.1f s, then attempt %d",
                        entry.key,
                        wait,
                        entry.attempt,
                    )
                    await self._sleep(wait)
                    continue
                not_sent += 1
                if (
                    not self._resubmit_not_sent
                    or isinstance(cause, TLSError)
                    or not_sent >= self._not_sent_attempts
                ):
                    raise SubmissionNotSent(
                        f"submission {entry.key!r} was not sent: {_describe(cause)}",
                        key=entry.key,
                        provider=spec.provider,
                        endpoint=spec.endpoint,
                    ) from cause
                entry = await self._next_attempt(resend.entry)
                await self._sleep(
                    compute_delay(not_sent - 1, base=0.5, cap=5.0, jitter=True, rng=self._rng)
                )

    async def _next_attempt(self, entry: JournalEntry) -> JournalEntry:
        """``entry`` (rejected or not sent: no job exists) back to planned, as its next attempt."""
        return await self.journal.transition(
            entry.key,
            S.PLANNED,
            attempt=entry.attempt + 1,
            owner=self.owner,
            lease_until=self._wall() + self._lease_seconds,
        )

    async def _settle(
        self, key: str, state: SubmissionState, error: BaseException, message: str | None = None
    ) -> JournalEntry | None:
        """Record an attempt's end, shielded from cancellation (RELIABILITY #9)."""
        with anyio.CancelScope(shield=True):
            try:
                return await self.journal.transition(
                    key, state, error=ErrorInfo.from_exception(error, message=message)
                )
            except Exception:
                # The entry stays `sending`, which resume() turns into `unknown`:
                # still never resent.
                logger.exception("could not journal %s for key %r", state.value, key)
                return None
        return None  # pragma: no cover - a shield never swallows the exits above

    async def _attempt(
        self, scheduler: Scheduler, backend: JobBackend, spec: JobSpec, entry: JournalEntry
    ) -> JobHandle:
        key = entry.key
        if entry.state is S.PLANNED:
            # `sending` must be on disk before the first byte; the write is shielded
            # so that a cancel cannot leave us unsure whether it happened.
            with anyio.CancelScope(shield=True):
                entry = await self.journal.transition(
                    key,
                    S.SENDING,
                    owner=self.owner,
                    lease_until=self._wall() + self._lease_seconds,
                )
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except anyio.get_cancelled_exc_class() as exc:
            await self._settle(key, S.NOT_SENT, exc, "cancelled before sending")
            self._stats["not_sent"] += 1
            raise
        started = self._clock()
        self._stats["creates"] += 1
        watch = _SendWatch()
        try:
            with _watch_sends(watch):
                job_id = await backend.create(spec)
        except anyio.get_cancelled_exc_class() as exc:
            if watch.provably_unsent:
                # Cancelled while waiting for a connection: no byte left (as #8).
                await self._settle(key, S.NOT_SENT, exc, "cancelled before sending")
                self._stats["not_sent"] += 1
            else:
                await self._settle(key, S.UNKNOWN, exc, "cancelled mid-call")
                self._stats["unknown"] += 1
            raise
        except RequestNotSent as exc:
            settled = await self._settle(key, S.NOT_SENT, exc)
            self._stats["not_sent"] += 1
            if settled is None:
                raise self._unknown(spec, key, started, exc) from exc
            raise _Resend(settled, exc) from exc
        except RateLimited as exc:
            settled = await self._settle(key, S.REJECTED, exc)
            self._stats["rejected"] += 1
            if settled is None:
                raise
            raise _Resend(settled, exc) from exc
        except APIStatusError as exc:
            if isinstance(exc, ServerError) or (exc.status_code or 0) >= 500:
                # A gateway may have forwarded it (RELIABILITY #17).
                await self._settle(key, S.UNKNOWN, exc)
                self._stats["unknown"] += 1
                raise self._unknown(spec, key, started, exc) from exc
            if isinstance(exc, InsufficientCredits) and self._credits_block > 0:
                # A credits breaker: every other create would be refused too (and
                # may be billed attempts); polls of accepted jobs go on.
                self._credits_blocked[spec.provider] = (
                    self._clock() + self._credits_block,
                    exc,
                )
                logger.warning(
                    "%s: insufficient credits on a create; new creates blocked for %.0f s "
                    "(Orchestrator.unblock_creates to lift it)",
                    spec.provider,
                    self._credits_block,
                )
            await self._settle(key, S.REJECTED, exc)
            self._stats["rejected"] += 1
            raise
        except InvalidInput as exc:
            # Refused locally (an id that cannot go in a URL ...): nothing was sent.
            await self._settle(key, S.NOT_SENT, exc)
            self._stats["not_sent"] += 1
            raise
        except BaseException as exc:
            # RequestMaybeSent, ProtocolError (truncated, HTML, oversize, bad JSON),
            # anything unexpected: bytes may have reached the provider.
            await self._settle(key, S.UNKNOWN, exc)
            self._stats["unknown"] += 1
            if not isinstance(exc, Exception):
                raise
            raise self._unknown(spec, key, started, exc) from exc
        returned: object = job_id  # a backend bug must not pass for a job id
        if not isinstance(returned, str) or not returned:
            bad = _exceptions.ProtocolError(
                f"create returned no job id ({type(returned).__name__})",
                provider=spec.provider,
                endpoint=spec.endpoint,
            )
            await self._settle(key, S.UNKNOWN, bad)
            self._stats["unknown"] += 1
            raise self._unknown(spec, key, started, bad) from bad
        with anyio.CancelScope(shield=True):
            try:
                entry = await self.journal.transition(key, S.ACCEPTED, job_id=job_id)
            except Exception as exc:
                logger.exception("could not journal accepted(%s) for key %r", job_id, key)
                raise self._unknown(spec, key, started, exc) from exc
        self._stats["accepted"] += 1
        handle = scheduler.track(
            provider=spec.provider,
            kind=spec.kind,
            job_id=job_id,
            key=key,
            created_at=started,
            policy=spec.poll_policy,
        )
        return self._remember(handle)

    def _unknown(
        self, spec: JobSpec, key: str, started: float, cause: BaseException
    ) -> SubmissionOutcomeUnknown:
        return SubmissionOutcomeUnknown(
            f"outcome of the create for key {key!r} is unknown ({_describe(cause)}); "
            "it is never resent: see Orchestrator.reconcile",
            key=key,
            elapsed=max(0.0, self._clock() - started),
            provider=spec.provider,
            status_code=getattr(cause, "status_code", None),
            endpoint=spec.endpoint,
        )

    # -- recovery --------------------------------------------------------------------

    async def resume(self, *, limit: int | None = None) -> list[JobHandle]:
        """
        Re-attach after a restart: turn creates left ``sending`` by a stopped
        process into ``unknown`` (RELIABILITY #10; never resent), then track
        every accepted job without a final outcome (a timed-out one gets a fresh
        deadline) and return their handles. Entries left ``planned`` (a 429
        wait cut short: nothing was sent) are sent by the next submit of their key.

        Example::

            async with Orchestrator(journal="jobs.sqlite", backends=[mira]) as orch:
                for handle in await orch.resume():
                    print(handle)
        """
        self.scheduler  # noqa: B018 - raises unless running
        interrupted = await self.journal.mark_interrupted(self.owner)
        if interrupted:
            logger.warning(
                "%d create(s) were in flight when a previous process stopped; "
                "marked unknown, never resent (reconcile() may find them)",
                len(interrupted),
            )
        entries = await self.journal.claim(
            self.owner, lease_seconds=self._lease_seconds, limit=limit
        )
        return [self._track(entry) for entry in entries]

    async def reconcile(self) -> list[ReconcileResult]:
        """
        Try to resolve every ``unknown`` entry through its backend's
        :meth:`~aivideo_async.JobBackend.find_submission` (client-chosen ids,
        list endpoints, match tags). A job found becomes ``accepted`` and is
        tracked; otherwise the entry stays ``unknown``. A job id already
        journaled under another key is never taken twice (``CONFLICT``).

        Example::

            for r in await orch.reconcile():
                print(r.key, r.outcome.value, r.job_id)
        """
        scheduler = self.scheduler
        entries = await self.journal.query(state=S.UNKNOWN)
        found = await self._look_up(entries)
        results: list[ReconcileResult] = []
        for entry in entries:
            async with self._locks.hold(entry.key):
                results.append(await self._reconcile_one(scheduler, entry, found[entry.key]))
        return results

    async def _look_up(self, entries: Sequence[JournalEntry]) -> dict[str, _Lookup]:
        """
        Ask each provider about its lost creates: in one call where the backend
        has ``find_submissions`` (one list read for all), else one by one.
        """
        by_provider: dict[str, list[JournalEntry]] = {}
        for entry in entries:
            by_provider.setdefault(entry.provider, []).append(entry)
        found: dict[str, _Lookup] = {}
        for provider, group in by_provider.items():
            backend = self._backends.get(provider)
            if backend is None:
                found.update((e.key, _NO_BACKEND) for e in group)
                continue
            requests = [
                (e.to_spec(), (e.sent_at or e.created_at) - self._reconcile_skew) for e in group
            ]
            many = getattr(backend, "find_submissions", None)
            if many is not None:
                try:
                    ids: Sequence[str | None] = await many(requests)
                except AIVideoError as exc:
                    found.update((e.key, (None, _describe(exc))) for e in group)
                else:
                    found.update(
                        (e.key, (job_id, None)) for e, job_id in zip(group, ids, strict=True)
                    )
                continue
            for entry, (spec, since) in zip(group, requests, strict=True):
                try:
                    found[entry.key] = (await backend.find_submission(spec, since=since), None)
                except AIVideoError as exc:
                    found[entry.key] = (None, _describe(exc))
        return found

    async def _reconcile_one(
        self, scheduler: Scheduler, entry: JournalEntry, lookup: _Lookup
    ) -> ReconcileResult:
        common: dict[str, Any] = {"key": entry.key, "provider": entry.provider}
        if lookup is _NO_BACKEND:
            return ReconcileResult(outcome=ReconcileOutcome.NO_BACKEND, **common)
        job_id, error = lookup
        if error is not None:
            return ReconcileResult(outcome=ReconcileOutcome.ERROR, error=error, **common)
        if job_id is None:
            return ReconcileResult(outcome=ReconcileOutcome.NOT_FOUND, **common)
        owners = [
            e.key
            for e in await self.journal.query(provider=entry.provider, job_id=job_id)
            if e.key != entry.key
        ]
        if owners:
            return ReconcileResult(
                outcome=ReconcileOutcome.CONFLICT,
                job_id=job_id,
                error=f"job {job_id!r} is already journaled for key {owners[0]!r}",
                **common,
            )
        with anyio.CancelScope(shield=True):
            accepted = await self.journal.transition(entry.key, S.ACCEPTED, job_id=job_id)
        # The job was created when it was sent, not now: deadlines count from then.
        handle = self._track(attrs.evolve(accepted, accepted_at=accepted.sent_at))
        return ReconcileResult(
            outcome=ReconcileOutcome.FOUND, job_id=job_id, handle=handle, **common
        )

    async def jobs(
        self,
        *,
        state: SubmissionState | None = None,
        provider: str | None = None,
        unfinished: bool | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """
        Query the journal (oldest first).

        Example::

            lost = await orch.jobs(state=SubmissionState.UNKNOWN)
        """
        return await self.journal.query(
            state=state, provider=provider, unfinished=unfinished, limit=limit
        )

    # -- scheduler hook ------------------------------------------------------------------

    async def _on_terminal(self, handle: JobHandle) -> None:
        outcome = _OUTCOMES.get(handle.handle_status)
        if outcome is None:  # pragma: no cover - the scheduler only calls on terminal
            return
        url = media_id = message = None
        try:
            result = handle.result_nowait()
        except JobError as exc:
            message = exc.message or None
        except Exception:  # pragma: no cover - defensive: never break the scheduler
            logger.exception("terminal handle %r has no readable outcome", handle)
            return
        else:
            url, media_id = result.url, result.media_id
        # Shielded: once the hook runs, the outcome reaches the journal even if the
        # scheduler is being shut down (otherwise resume() would poll it again).
        with anyio.CancelScope(shield=True):
            try:
                await self.journal.record_outcome(
                    handle.key, outcome, result_url=url, media_id=media_id, message=message
                )
            except Exception:
                logger.exception("could not journal the outcome of %r", handle)

    # -- batch helpers -----------------------------------------------------------------

    async def as_completed(self, handles: Iterable[JobHandle]) -> AsyncGenerator[JobHandle, None]:
        """
        Yield each handle as it finishes (succeeded or not), whatever the order given.

        Read the outcome with ``await handle`` (immediate) or ``handle.result_nowait()``.

        Example::

            async for handle in orch.as_completed(handles):
                try:
                    video = await handle
                except JobFailed as exc:
                    print(handle.key, "failed:", exc)
        """
        unique = list(dict.fromkeys(handles))
        if not unique:
            return
        # One buffered stream and a done-callback per handle: no task per handle,
        # so following 100k handles costs a list, not 100k tasks.
        send, receive = anyio.create_memory_object_stream[JobHandle](len(unique))

        def push(handle: JobHandle) -> None:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                send.send_nowait(handle)

        try:
            with receive, send:
                for handle in unique:
                    handle.add_done_callback(push)
                for _ in range(len(unique)):
                    yield await receive.receive()
        finally:
            for handle in unique:
                handle.remove_done_callback(push)

    @overload
    async def gather(
        self, handles: Iterable[JobHandle], *, return_exceptions: Literal[False] = False
    ) -> list[JobResult]: ...

    @overload
    async def gather(
        self, handles: Iterable[JobHandle], *, return_exceptions: Literal[True]
    ) -> list[JobResult | JobError]: ...

    async def gather(
        self, handles: Iterable[JobHandle], *, return_exceptions: bool = False
    ) -> list[JobResult] | list[JobResult | JobError]:
        """
        Wait for every handle; return the results in the order given.

        Args:
            return_exceptions: put each failed job's :class:`JobError` in its
                place instead of raising the first one that occurs.

        Raises:
            JobError: the first job to end without a result (unless
                ``return_exceptions``); the other jobs keep being tracked.

        Example::

            results = await orch.gather(handles, return_exceptions=True)
            failed = [r for r in results if isinstance(r, JobError)]
        """
        given = list(handles)
        places: dict[int, list[int]] = {}
        for i, handle in enumerate(given):
            places.setdefault(id(handle), []).append(i)
        out: list[JobResult | JobError | None] = [None] * len(given)
        async with contextlib.aclosing(self.as_completed(given)) as finished:
            async for handle in finished:
                value: JobResult | JobError
                try:
                    value = handle.result_nowait()
                except JobError as exc:
                    if not return_exceptions:
                        raise
                    value = exc
                for i in places[id(handle)]:
                    out[i] = value
        done = [v for v in out if v is not None]
        return done
