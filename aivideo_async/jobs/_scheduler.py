"""
One poll scheduler for every tracked job (ARCHITECTURE §4.2).

Design, for 100k jobs in one process:

- **One heap, one driver.** Each live job has at most one heap entry
  ``(due, seq, handle)``: its next poll time, or its deadline if that comes
  first. The driver task pops due jobs into a per-provider, per-kind *ready*
  queue, dispatches them while budgets allow, and sleeps (through the injected
  ``sleep``) until the next due time, a token refill or a pause end; tracking
  an earlier job wakes it early. Jobs waiting in a ready queue keep their
  deadline in a second heap, so a starved budget never delays a ``JobTimeout``.
- **Bounded polls.** ``max_in_flight`` worker tasks take dispatched polls from
  a queue; no task per job. A provider has a concurrency cap and a token
  bucket (:class:`ProviderLimits`), taken at dispatch time. A worker that
  finishes a poll dispatches the next due one itself, so under load the
  driver sleeps.
- **Cadence vs errors.** After an answer the next poll follows the job's
  :class:`PollPolicy` (full-jitter exponential; with progress, a look shortly
  before the estimated end and one just after it; a server hint wins). Poll
  *errors* follow their own policy: a 429 pauses the whole provider for
  Retry-After (clamped to ``max_pause``, plus up to 10 % jitter) and halves its
  rate (AIMD, recovering per good poll); 5xx/transport errors are retried with
  backoff paid from the provider's :class:`RetryBudget` (an empty budget means
  the slow cadence), and consecutive failures open a circuit breaker that
  pauses the provider and sends one probe after a cool-down; a 401 pauses the
  provider. No job fails because its provider is rate limiting or down
  (RELIABILITY #24-#31); its deadline still ends it (``JobTimeout``, the
  remote job left alone).
- **Coalescing.** When the backend's ``poll_many`` answers (a list endpoint), a
  due job's poll becomes one list call that also refreshes the jobs of that
  provider and kind due next (up to ``batch_max``); jobs the list misses are
  polled one by one, and a list that rarely answers is only probed.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self

import anyio
import anyio.abc
import attrs

from .._backoff import RetryBudget, compute_delay
from .._config import DEFAULT_POLL_POLICY, DEFAULT_RETRY_POLICY, PollPolicy, RetryPolicy
from .._exceptions import (
    AuthenticationError,
    InvalidInput,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobTimeout,
    NotFound,
    RateLimited,
    ReadTimeout,
    TotalTimeout,
)
from .._models import JobResult, JobState, JobStatus
from .._types import Clock, RandomSource, Sleep, anyio_sleep, jitter_random, monotonic_clock
from ..providers._base import JobBackend
from ._handle import JobHandle, JobUpdate, UpdateStream, _Phase, _Subscriber

__all__ = ["ProviderLimits", "Scheduler"]


logger = logging.getLogger("aivideo_async.jobs")


def _rank(state: JobState) -> int:
    # Identity tests: Enum.__hash__ is Python code, and this runs on every poll.
    if state is JobState.RUNNING:
        return 1
    return 0 if state is JobState.QUEUED else 2


_FLAG_STUCK: Final = 1  # the stuck warning was logged
_FLAG_SINGLE: Final = 2  # a coalesced answer missed it: next poll is a single one
_FLAG_LATE: Final = 4  # tracked after its deadline: JobTimeout after one look, not before
_MIN_RATE_FACTOR: Final = 1 / 16  # AIMD floor: a 429 storm slows a provider to 1/16 at worst
_RATE_RECOVERY: Final = 0.02  # additive increase of the rate factor per good poll
_BATCH_MIN_RATIO: Final = 0.3  # below this hit ratio a list call is only a probe
_BATCH_PROBE_EVERY: Final = 16  # ... tried once per this many chances
_PROBE_BATCH: Final = 8  # ... asking about at most this many due jobs (the rest go singly)
_EARLY: Final = 0.001  # real time only: polls due this soon are sent in the same wake-up
_ONE_TOKEN: Final = 1.0 - 1e-9  # float refills may land a hair under a whole token
_FLOOR_FRACTION: Final = 0.1  # shortest delay between polls, as a fraction of policy.initial
_ETA_MARGIN: Final = 0.03  # poll this fraction after the estimated completion
_REFINE_ABOVE: Final = 4.0  # remaining > this many floors: look again before the end
_REFINE_AT: Final = 0.85  # ... at this fraction of the estimated remaining time


_STATE_OUTCOMES: Final = {
    JobState.SUCCEEDED: "succeeded",
    JobState.FAILED: "failed",
    JobState.CANCELED: "cancelled",
}
# The state an ending update reports for a job never answered for.
_NOT_SEEN: Final = JobStatus(state=JobState.QUEUED, raw_status="", progress=None)


def _due_of(handle: JobHandle) -> float:
    due: float = handle._s_due
    return due


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInput(
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
            expected="a positive number",
        )
    if not math.isfinite(value):
        raise InvalidInput(
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
            expected="a finite number",
        )


def _at_least_one(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
            expected="an integer >= 1",
        )


@attrs.frozen(kw_only=True)
class ProviderLimits:
    """
    The poll budget of one provider.

    Attributes:
        rate: polls per second on average (token bucket refill rate).
        burst: most polls sent back to back (token bucket size).
        concurrency: most polls in flight at once.
        batch_max: most jobs asked for in one coalesced ``poll_many`` call.

    Example:
        >>> ProviderLimits(rate=1.0, burst=2).concurrency
        16
        >>> try:
        ...     ProviderLimits(rate=0)
        ... except InvalidInput as exc:
        ...     print(exc)
        ProviderLimits.rate: got 0, expected a positive number
    """

    rate: float = attrs.field(default=10.0, validator=_positive)
    burst: int = attrs.field(default=20, validator=_at_least_one)
    concurrency: int = attrs.field(default=16, validator=_at_least_one)
    batch_max: int = attrs.field(default=100, validator=_at_least_one)


DEFAULT_PROVIDER_LIMITS: Final = ProviderLimits()


class _Provider:
    """Budget, pause and breaker state of one provider (mutable, driver-owned)."""

    __slots__ = (
        "backend",
        "batch_probe",
        "batch_ratio",
        "breaker",
        "breaker_opens",
        "failures",
        "in_flight",
        "limits",
        "name",
        "no_batch",
        "pause_reason",
        "paused_until",
        "rate_factor",
        "rate_limits",
        "ready",
        "refilled_at",
        "retry_budget",
        "tokens",
    )

    def __init__(
        self, name: str, backend: JobBackend, limits: ProviderLimits, retry: RetryPolicy, now: float
    ) -> None:
        self.name = name
        self.backend = backend
        self.limits = limits
        self.tokens = float(limits.burst)
        self.refilled_at = now
        self.rate_factor = 1.0
        self.in_flight = 0
        self.paused_until = -math.inf
        self.pause_reason = ""
        self.breaker = "closed"  # closed | open | half_open
        self.breaker_opens = 0
        self.failures = 0
        self.rate_limits = 0
        self.ready: dict[str, deque[JobHandle]] = {}
        self.no_batch: set[str] = set()
        # Share of asked jobs a list call answered for, per kind (EWMA); a
        # list that answers for few (Miraflow lists finished videos only)
        # costs more than it saves, so it is then only tried now and then.
        self.batch_ratio: dict[str, float] = {}
        self.batch_probe: dict[str, int] = {}
        self.retry_budget = RetryBudget(
            capacity=retry.budget, retry_cost=retry.retry_cost, timeout_cost=retry.timeout_cost
        )

    def refill(self, now: float) -> None:
        elapsed = now - self.refilled_at
        if elapsed > 0:
            rate = self.limits.rate * self.rate_factor
            self.tokens = min(float(self.limits.burst), self.tokens + elapsed * rate)
            self.refilled_at = now

    def recovering(self) -> bool:
        """Whether a good poll has anything to restore (breaker, rate, retry budget)."""
        budget = self.retry_budget
        return self.breaker != "closed" or self.rate_factor < 1.0 or budget.tokens < budget.capacity

    def token_wait(self) -> float:
        return (1.0 - self.tokens) / (self.limits.rate * self.rate_factor)


class _AllUpdates:
    """The async iterator :meth:`Scheduler.updates` returns (subscribed at creation)."""

    __slots__ = ("_scheduler", "_sub")

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._sub: _Subscriber | None = None
        if not scheduler._stopped:
            # The scheduler holds the buffer weakly: a stream dropped without
            # aclose() (a ``break`` out of ``async for``) unsubscribes itself
            # when it is collected, instead of buffering every update for ever.
            self._sub = _Subscriber()
            scheduler._watchers.add(self._sub)

    def __aiter__(self) -> _AllUpdates:
        return self

    async def __anext__(self) -> JobUpdate:
        while (sub := self._sub) is not None:
            if sub.buffer:
                return sub.buffer.popleft()
            if self._scheduler._stopped:
                break
            if sub.event is None:
                sub.event = anyio.Event()
            await sub.event.wait()
        await self.aclose()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Unsubscribe; the iterator then ends."""
        sub, self._sub = self._sub, None
        if sub is not None:
            self._scheduler._watchers.discard(sub)


# (provider, kind, due jobs, piggybacked jobs with the due time they had)
_Batch = tuple[_Provider, str, list[JobHandle], list[tuple[JobHandle, float]]]
_NO_EXTRAS: Final[list[tuple[JobHandle, float]]] = []  # shared, never mutated: no piggyback


class Scheduler:
    """
    Polls every tracked job from one driver task, within per-provider budgets.

    Args:
        backends: the provider backends, by provider name.
        poll_policy: the default cadence, deadline, stuck and 404-grace policy.
        provider_limits: budgets per provider name (default :class:`ProviderLimits`).
        max_in_flight: most polls in flight over all providers (= worker tasks).
        on_terminal: awaited once per job when its handle is resolved (after
            waiters were woken); the orchestrator journals the outcome there.
        retry_policy: backoff of poll *errors* and the size of each provider's
            retry budget.
        max_pause: longest pause a ``Retry-After`` may impose; longer hints are
            clamped with a warning (RELIABILITY #26).
        breaker_threshold: consecutive failed polls that open a provider's breaker.
        breaker_cooldown: first cool-down of an open breaker (doubling, up to
            ``max_pause``), after which one probe poll is sent.
        auth_pause: how long a 401 on a poll pauses the provider (RELIABILITY #28).
        clock, sleep, rng: the time and randomness seam (STYLE #18). ``rng``
            only draws jitter; by default a module-wide :class:`random.Random`
            seeded from the OS (not ``SystemRandom``: jitter need not be
            unpredictable, and it is drawn on every poll).

    Example::

        async with Scheduler(backends={"miraflow": mira}) as scheduler:
            handle = scheduler.track(provider="miraflow", kind="video",
                                     job_id="cmjob1", key="row-1")
            result = await handle
    """

    def __init__(
        self,
        *,
        backends: Mapping[str, JobBackend],
        poll_policy: PollPolicy = DEFAULT_POLL_POLICY,
        provider_limits: Mapping[str, ProviderLimits] | None = None,
        max_in_flight: int = 64,
        on_terminal: Callable[[JobHandle], Awaitable[None]] | None = None,
        retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        max_pause: float = 300.0,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 5.0,
        auth_pause: float = 60.0,
        clock: Clock = monotonic_clock,
        sleep: Sleep = anyio_sleep,
        rng: RandomSource = jitter_random,
    ) -> None:
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int):
            raise InvalidInput(field="max_in_flight", value=max_in_flight, expected="an int >= 1")
        if max_in_flight < 1:
            raise InvalidInput(field="max_in_flight", value=max_in_flight, expected="an int >= 1")
        if isinstance(breaker_threshold, bool) or not isinstance(breaker_threshold, int):
            raise InvalidInput(
                field="breaker_threshold", value=breaker_threshold, expected="an int >= 1"
            )
        if breaker_threshold < 1:
            raise InvalidInput(
                field="breaker_threshold", value=breaker_threshold, expected="an int >= 1"
            )
        for name, value in (
            ("max_pause", max_pause),
            ("breaker_cooldown", breaker_cooldown),
            ("auth_pause", auth_pause),
        ):
            number: object = value
            if not (isinstance(number, int | float) and math.isfinite(number) and number > 0):
                raise InvalidInput(field=name, value=value, expected="a positive finite number")
        limits = dict(provider_limits or {})
        unknown = sorted(set(limits) - set(backends))
        if unknown:
            raise InvalidInput(
                field="provider_limits",
                value=unknown,
                expected=f"provider names among {sorted(backends)}",
            )
        self._clock = clock
        self._sleep = sleep
        self._real_time = clock is monotonic_clock and sleep is anyio_sleep
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rng = rng
        self._policy = poll_policy
        self._retry = retry_policy
        self._max_in_flight = max_in_flight
        self._on_terminal = on_terminal
        self._max_pause = float(max_pause)
        self._breaker_threshold = breaker_threshold
        self._breaker_cooldown = float(breaker_cooldown)
        self._auth_pause = float(auth_pause)
        now = clock()
        self._providers: dict[str, _Provider] = {
            name: _Provider(
                name, backend, limits.get(name, DEFAULT_PROVIDER_LIMITS), retry_policy, now
            )
            for name, backend in backends.items()
        }
        self._jobs: dict[str, dict[str, JobHandle]] = {name: {} for name in backends}
        self._heap: list[tuple[float, int, JobHandle]] = []
        # Deadlines of jobs waiting in a ready queue (for tokens or a free
        # slot), so they time out on time however long the queue is.
        self._ready_deadlines: list[tuple[float, int, JobHandle]] = []
        self._seq = 0
        self._in_flight = 0
        self._sleep_until = math.inf
        self._wake_event: anyio.Event | None = None
        # Dispatched polls wait here for a worker; idle workers wait on an event.
        # (A plain deque: an anyio memory stream cost a third of the CPU per poll.)
        self._queue: deque[_Batch] = deque()
        self._watchers: weakref.WeakSet[_Subscriber] = weakref.WeakSet()  # updates() consumers
        self._stopped = False
        self._idle_workers: list[anyio.Event] = []
        self._self_serve = 0
        self._tg: anyio.abc.TaskGroup | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._stats: dict[str, int] = dict.fromkeys(
            (
                "polls",
                "polled_jobs",
                "poll_errors",
                "coalesced_calls",
                "coalesced_jobs",
                "pauses",
                "rate_limited",
                "auth_pauses",
                "breaker_opens",
                "in_flight_max",
                "succeeded",
                "failed",
                "cancelled",
                "timeouts",
                "not_found",
                "stuck",
                "unknown_statuses",
                "backwards",
                "poked",
            ),
            0,
        )

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("this Scheduler is already running")
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # another anyio backend (trio): no asyncio timers
            self._loop = None
        self._stopped = False  # (a scheduler may be entered again after it stopped)
        stack = contextlib.AsyncExitStack()
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.push_async_callback(self._stop, tg)
        self._stack, self._tg = stack, tg
        tg.start_soon(self._drive, name="aivideo_async scheduler driver")
        for _ in range(self._max_in_flight):
            tg.start_soon(self._work)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the driver and workers; unresolved handles stay unresolved."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    async def _stop(self, tg: anyio.abc.TaskGroup) -> None:
        tg.cancel_scope.cancel()
        self._tg = None
        self._idle_workers.clear()
        self._stopped = True
        watchers, self._watchers = list(self._watchers), weakref.WeakSet()
        for watcher in watchers:
            watcher.push(None)  # wake it: the iterator ends

    # -- public API -----------------------------------------------------------------

    def track(
        self,
        *,
        provider: str,
        kind: str,
        job_id: str,
        key: str,
        created_at: float | None = None,
        policy: PollPolicy | None = None,
    ) -> JobHandle:
        """
        Start polling a job and return its handle; idempotent per ``(provider, job_id)``.

        Args:
            provider: a provider name given in ``backends``.
            kind: the job kind, passed to the backend's ``poll``.
            job_id: the provider's job id.
            key: the journal key (shown in reprs and errors).
            created_at: the clock time of the create call; deadlines and the
                404 grace window count from it. ``None`` means now. A job
                whose deadline has already passed is polled once: a final
                answer resolves it, any other raises :class:`JobTimeout`.
            policy: this job's poll policy (default: the scheduler's).

        Raises:
            InvalidInput: unknown provider.

        Example::

            handle = scheduler.track(provider="aivideomaker", kind="task",
                                     job_id="cktask0001", key="batch-3/17")
        """
        jobs = self._jobs.get(provider)
        if jobs is None:
            raise InvalidInput(
                field="provider", value=provider, expected=f"one of {sorted(self._providers)}"
            )
        existing = jobs.get(job_id)
        if existing is not None:
            return existing
        policy = self._policy if policy is None else policy
        now = self._clock()
        created = now if created_at is None else float(created_at)
        handle = JobHandle(provider=provider, kind=kind, job_id=job_id, key=key)
        handle._scheduler = self
        handle._s_created = created
        first = max(now, created + self._delay(policy, 0))
        flags = 0
        deadline: float | None = None
        if policy.deadline is not None:
            deadline = created + policy.deadline
            if deadline <= first:
                # Tracked after its deadline passed (a resume after downtime, a
                # reconciled create): the job may have finished meanwhile, so it
                # is looked at once before JobTimeout; a timeout is never
                # reported unseen. The look itself gets a fresh deadline.
                flags = _FLAG_LATE
                deadline = first + policy.deadline
        handle._s_deadline = deadline
        handle._s_policy = policy
        handle._s_attempt = 0
        handle._s_errors = 0
        handle._s_changed = now
        handle._s_prog = None
        handle._s_flags = flags
        jobs[job_id] = handle
        self._schedule(handle, first)
        return handle

    def updates(self) -> UpdateStream:
        """
        Return an async iterator of every state or progress change of every
        tracked job, from now on (what each handle's ``updates()`` yields, all
        together, with ``provider`` set). It ends when the scheduler stops;
        ``aclose()`` unsubscribes early. Consume it promptly: it buffers what
        it has not yet yielded. A job that ends by its deadline, a cancel or a
        404 has no provider state to report: its handle says so.

        Example::

            async for update in scheduler.updates():
                print(update.provider, update.handle_key, update.state.value)
        """
        return _AllUpdates(self)

    def poll_now(self, provider: str, job_id: str) -> bool:
        """
        Poll a tracked job as soon as its provider's budget allows, instead of
        at its next scheduled time (a webhook said it changed). The poll, not
        the caller, says what happened; budgets and pauses still apply.

        Returns:
            ``True`` if the job was waiting for its next poll; ``False`` for an
            unknown or finished job, or one already due or being polled.

        Example::

            scheduler.poll_now("aivideomaker", task_id)
        """
        jobs = self._jobs.get(provider)
        handle = None if jobs is None else jobs.get(job_id)
        if handle is None or handle._s_phase is not _Phase.SCHEDULED:
            return False
        self._stats["poked"] += 1
        self._schedule(handle, self._clock())  # the earlier heap entry goes stale
        return True

    def add_backend(
        self, name: str, backend: JobBackend, limits: ProviderLimits | None = None
    ) -> None:
        """
        Add a provider backend, before or while the scheduler runs.

        Raises:
            InvalidInput: ``name`` already has a backend.

        Example::

            scheduler.add_backend("miraflow", mira)
        """
        if name in self._providers:
            raise InvalidInput(field="name", value=name, expected="a provider without a backend")
        self._providers[name] = _Provider(
            name, backend, limits or DEFAULT_PROVIDER_LIMITS, self._retry, self._clock()
        )
        self._jobs[name] = {}

    def pause_provider(self, provider: str, seconds: float, *, reason: str = "paused") -> None:
        """
        Pause every poll of ``provider`` for ``seconds`` (clamped to ``max_pause``).

        Used for a 429 on a poll and by the orchestrator for a 429 on a create.
        Jobs keep their deadlines; none fails because of the pause.

        Example::

            scheduler.pause_provider("aivideomaker", 30.0, reason="429 on create")
        """
        prov = self._providers.get(provider)
        if prov is None:
            raise InvalidInput(
                field="provider", value=provider, expected=f"one of {sorted(self._providers)}"
            )
        given: object = seconds
        if not (isinstance(given, int | float) and given >= 0 and not math.isnan(given)):
            raise InvalidInput(field="seconds", value=seconds, expected="a number >= 0")
        self._pause(prov, float(seconds), reason, self._clock())

    def resume_provider(self, provider: str) -> None:
        """
        End a pause of ``provider`` now (e.g. after new credentials were set).

        Example::

            scheduler.resume_provider("miraflow")
        """
        prov = self._providers.get(provider)
        if prov is None:
            raise InvalidInput(
                field="provider", value=provider, expected=f"one of {sorted(self._providers)}"
            )
        now = self._clock()
        until, prov.paused_until = prov.paused_until, -math.inf
        prov.refilled_at = min(prov.refilled_at, now)
        if until > now:
            # Jobs parked to the pause end become due now (rare; a scan is fine).
            for at, seq, handle in list(self._heap):
                if (
                    at == until
                    and handle.provider == provider
                    and handle._s_phase is _Phase.SCHEDULED
                    and handle._s_seq == seq
                ):
                    self._schedule(handle, now)
        if prov.breaker == "open":
            prov.breaker = "half_open"
        self._wake()

    def handles(self) -> list[JobHandle]:
        """
        Return the handles still being tracked (not resolved).

        Example::

            pending = [h for h in scheduler.handles() if h.status is None]
        """
        return [h for jobs in self._jobs.values() for h in jobs.values()]

    def stats(self) -> dict[str, Any]:
        """
        Return counters: ``polls`` (requests), ``polled_jobs``, ``poll_errors``,
        ``coalesced_calls``, ``pauses``, ``rate_limited``, ``breaker_opens``,
        ``in_flight_max``, ``tracked`` and outcomes, plus per-provider state
        (its :class:`ProviderLimits` included).

        Example::

            print(scheduler.stats()["polls"], scheduler.stats()["coalesced_calls"])
        """
        out: dict[str, Any] = dict(self._stats)
        out["tracked"] = sum(len(jobs) for jobs in self._jobs.values())
        out["in_flight"] = self._in_flight
        now = self._clock()
        out["providers"] = {
            name: {
                "in_flight": p.in_flight,
                "paused_for": max(0.0, p.paused_until - now),
                "pause_reason": p.pause_reason if p.paused_until > now else "",
                "breaker": p.breaker,
                "rate_factor": p.rate_factor,
                "retry_tokens": p.retry_budget.tokens,
                "ready": sum(len(d) for d in p.ready.values()),
                "limits": p.limits,
            }
            for name, p in self._providers.items()
        }
        return out

    # -- cadence ----------------------------------------------------------------------

    def _delay(self, policy: PollPolicy, attempt: int) -> float:
        # compute_delay's arithmetic, inlined (this runs after every poll):
        # PollPolicy has validated initial, cap > 0 and factor >= 1.
        base = policy.initial
        try:
            ceiling = min(policy.cap, base * policy.factor**attempt)
        except OverflowError:  # a huge attempt: the cap has long been reached
            ceiling = policy.cap
        delay = self._rng.random() * ceiling if policy.jitter else ceiling
        return max(base * _FLOOR_FRACTION, delay)

    def _next_delay(self, handle: JobHandle, status: JobStatus, now: float) -> float:
        policy: PollPolicy = handle._s_policy
        if status.retry_after is not None and status.retry_after >= 0:
            # A server hint wins over our own cadence (STYLE #17).
            return min(float(status.retry_after), self._max_pause)
        floor = policy.initial * _FLOOR_FRACTION
        if status.progress is None:
            handle._s_prog = None  # (what _estimate would do, without the call)
            remaining = None
        else:
            remaining = self._estimate(handle, status, now)
        if remaining is not None:
            if remaining > _REFINE_ABOVE * floor:
                # Far from the end the estimate is rough: look again shortly
                # before it, when a longer baseline makes it sharp.
                delay = remaining * _REFINE_AT
            else:
                delay = remaining * (1.0 + _ETA_MARGIN * (1.0 + self._rng.random()))
            return min(policy.cap, max(floor, delay))
        handle._s_attempt += 1
        return self._delay(policy, handle._s_attempt)

    def _estimate(self, handle: JobHandle, status: JobStatus, now: float) -> float | None:
        """
        Seconds to completion, from the progress rate since the anchor.

        The anchor is the first progress seen while running (reset if
        progress goes down); the longer the baseline, the smaller the error
        from coarse progress values ("45%").
        """
        progress = status.progress
        if progress is None or status.state is not JobState.RUNNING:
            handle._s_prog = None
            return None
        anchor: tuple[float, float] | None = handle._s_prog
        if anchor is None or progress < anchor[1]:
            handle._s_prog = (now, progress)
            return None
        then, before = anchor
        if progress == before or now <= then:
            return None  # no new information: the cadence decides
        rate = (progress - before) / (now - then)
        return max(0.0, 1.0 - progress) / rate

    # -- heap and driver ----------------------------------------------------------------

    def _schedule(self, handle: JobHandle, at: float) -> None:
        deadline: float | None = handle._s_deadline
        if deadline is not None and deadline < at:
            at = deadline
        self._seq += 1
        handle._s_seq = self._seq
        handle._s_phase = _Phase.SCHEDULED
        handle._s_due = at
        heapq.heappush(self._heap, (at, self._seq, handle))
        if at < self._sleep_until and self._in_flight < self._max_in_flight:
            # (With every slot busy, the worker that frees one looks at the heap.)
            self._wake()

    def _wake(self) -> None:
        event = self._wake_event
        if event is not None:
            self._wake_event = None
            event.set()

    async def _drive(self) -> None:
        while True:
            now = self._clock()
            self._pop_due(now)
            self._expire_ready(now)
            next_at = self._dispatch(now)
            if self._in_flight < self._max_in_flight:
                if self._heap:
                    next_at = min(next_at, self._heap[0][0])
                if self._ready_deadlines:
                    next_at = min(next_at, self._ready_deadlines[0][0])
            # else: every slot is busy; the worker that frees one pops what is
            # due (deadlines included) and wakes the driver if it must.
            await self._idle(next_at)

    async def _idle(self, until: float) -> None:
        delay = until - self._clock()
        if delay <= 0:
            await anyio.lowlevel.checkpoint()
            return
        event = self._wake_event = anyio.Event()
        self._sleep_until = until
        try:
            if math.isinf(delay):
                await event.wait()
                return
            if self._real_time:
                # The production seam is the event loop's own clock: a timer
                # that sets the event (asyncio), or a cancel-scope deadline, is
                # far cheaper than a timer task per sleep.
                if self._loop is not None:
                    handle = self._loop.call_later(delay, event.set)
                    try:
                        await event.wait()
                    finally:
                        handle.cancel()
                    return
                with anyio.move_on_after(delay):
                    await event.wait()
                return
            async with anyio.create_task_group() as tg:

                async def timer() -> None:
                    await self._sleep(delay)
                    tg.cancel_scope.cancel()

                tg.start_soon(timer)
                await event.wait()
                tg.cancel_scope.cancel()
        finally:
            self._sleep_until = -math.inf
            self._wake_event = None

    def _pop_due(self, now: float) -> None:
        heap = self._heap
        # In real time, jobs due within the next millisecond go now too: one
        # wake-up serves them all (a poll a millisecond early changes nothing).
        horizon = now + _EARLY if self._real_time else now
        paused: list[tuple[_Provider, JobHandle]] = []
        while heap and heap[0][0] <= horizon:
            _, seq, handle = heapq.heappop(heap)
            if handle._s_phase is not _Phase.SCHEDULED or handle._s_seq != seq:
                continue  # stale: resolved, or rescheduled since
            deadline: float | None = handle._s_deadline
            if deadline is not None and now >= deadline:
                self._time_out(handle, now)
                continue
            prov = self._providers[handle.provider]
            if prov.paused_until > now:
                paused.append((prov, handle))
                continue
            self._make_ready(prov, handle)
        for prov, handle in paused:
            # The provider is paused: wait for the pause end (or the deadline) in
            # the heap, so deadlines still fire (#26). Pushed after the loop: a
            # pause ending within the early horizon would be popped again at once,
            # for ever (a livelock of the event loop).
            self._schedule(handle, prov.paused_until)

    def _make_ready(self, prov: _Provider, handle: JobHandle, *, front: bool = False) -> None:
        handle._s_phase = _Phase.READY
        queue = prov.ready.get(handle.kind)
        if queue is None:
            queue = prov.ready[handle.kind] = deque()
        if front:
            queue.appendleft(handle)
        else:
            queue.append(handle)
        deadline: float | None = handle._s_deadline
        if deadline is not None:
            entries = self._ready_deadlines
            heapq.heappush(entries, (deadline, handle._s_seq, handle))
            if len(entries) > 1024 and len(entries) > 4 * self._ready_total():
                # Entries of jobs that left the queues are dropped lazily; compact
                # when they dominate, so memory stays proportional (amortised O(1)).
                entries[:] = [e for e in entries if e[2]._s_phase is _Phase.READY]
                heapq.heapify(entries)

    def _ready_total(self) -> int:
        return sum(len(q) for p in self._providers.values() for q in p.ready.values())

    def _expire_ready(self, now: float) -> None:
        entries = self._ready_deadlines
        while entries and entries[0][0] <= now:
            _, seq, handle = heapq.heappop(entries)
            if handle._s_phase is _Phase.READY and handle._s_seq == seq:
                self._time_out(handle, now)  # its queue entry is skipped from now on

    def _dispatch(self, now: float) -> float:
        """Send ready polls while budgets allow; return when to look again."""
        next_at = math.inf
        for prov in self._providers.values():
            if not prov.ready:
                continue
            if prov.paused_until > now:
                self._park_ready(prov)
                continue
            if prov.breaker == "open":
                prov.breaker = "half_open"
                logger.info("%s: breaker half-open, sending one probe poll", prov.name)
            cap = 1 if prov.breaker == "half_open" else prov.limits.concurrency
            for kind in list(prov.ready):
                queue = prov.ready[kind]
                while queue:
                    if self._in_flight >= self._max_in_flight or prov.in_flight >= cap:
                        break  # a finishing poll wakes the driver
                    prov.refill(now)
                    if prov.tokens < _ONE_TOKEN:
                        next_at = min(next_at, now + max(prov.token_wait(), 1e-3))
                        break
                    batch, single = self._take(prov, kind, queue, now)
                    if not batch:
                        continue
                    if single or kind in prov.no_batch:
                        extras = _NO_EXTRAS
                    else:
                        extras = self._piggyback(prov, kind, len(batch), now)
                    prov.tokens -= 1.0
                    prov.in_flight += 1
                    self._in_flight += 1
                    if self._in_flight > self._stats["in_flight_max"]:
                        self._stats["in_flight_max"] = self._in_flight
                    self._queue.append((prov, kind, batch, extras))
                    if self._self_serve:
                        self._self_serve -= 1  # the calling worker takes it itself
                    elif self._idle_workers:
                        self._idle_workers.pop().set()
                if not queue:
                    del prov.ready[kind]
        return next_at

    def _take(
        self, prov: _Provider, kind: str, queue: deque[JobHandle], now: float
    ) -> tuple[list[JobHandle], bool]:
        limit = 1
        if self._batching(prov, kind):
            limit = prov.limits.batch_max
            if prov.batch_ratio.get(kind, 1.0) < _BATCH_MIN_RATIO:
                # A probe of a list that has answered for few: a small sample
                # tells as much, and every job it misses is requeued.
                limit = min(limit, _PROBE_BATCH)
        batch: list[JobHandle] = []
        single = False
        while queue and len(batch) < limit:
            handle = queue[0]
            if handle._s_phase is not _Phase.READY:
                queue.popleft()
                continue
            deadline: float | None = handle._s_deadline
            if deadline is not None and now >= deadline:
                queue.popleft()
                self._time_out(handle, now)
                continue
            if handle._s_flags & _FLAG_SINGLE:
                # The list endpoint did not answer for it last time.
                if batch:
                    break
                handle._s_flags &= ~_FLAG_SINGLE
                limit = 1
                single = True
            queue.popleft()
            handle._s_phase = _Phase.IN_FLIGHT
            batch.append(handle)
        return batch, single

    def _take_next(self, prov: _Provider, kind: str, now: float) -> JobHandle | None:
        """
        The fast lane of a busy scheduler: the worker that just polled a job of
        ``prov`` and ``kind`` takes the next ready one of the same queue itself
        when it is a plain single poll that every budget allows, without a
        dispatch round. ``None``: anything else, for :meth:`_dispatch`.

        Only with no idle worker (so nothing else could be handed out) and no
        other provider waiting (so the dispatch order stays fair).
        """
        queue = prov.ready.get(kind)
        if (
            not queue
            or prov.paused_until > now
            or prov.breaker != "closed"
            or prov.in_flight >= prov.limits.concurrency
            or self._in_flight >= self._max_in_flight
        ):
            return None
        if len(self._providers) > 1:
            for other in self._providers.values():
                if other is not prov and other.ready:
                    return None
        handle = queue[0]
        deadline: float | None = handle._s_deadline
        if (
            handle._s_phase is not _Phase.READY
            or handle._s_flags & _FLAG_SINGLE
            or (deadline is not None and now >= deadline)
        ):
            return None  # stale, due a single poll, or timed out: the general path
        probe = 0
        if kind not in prov.no_batch:
            if prov.batch_ratio.get(kind, 1.0) >= _BATCH_MIN_RATIO:
                return None  # a list call
            probe = prov.batch_probe.get(kind, 0) + 1
            if probe >= _BATCH_PROBE_EVERY:
                return None  # a probe's turn
        prov.refill(now)
        if prov.tokens < _ONE_TOKEN:
            return None
        if probe:
            prov.batch_probe[kind] = probe  # this chance counts, as in _batching
        queue.popleft()
        if not queue:
            del prov.ready[kind]
        handle._s_phase = _Phase.IN_FLIGHT
        prov.tokens -= 1.0
        prov.in_flight += 1
        self._in_flight += 1
        return handle

    def _any_ready(self) -> bool:
        # A loop, not any(<generator>): this runs after every poll.
        for prov in self._providers.values():  # noqa: SIM110
            if prov.ready:
                return True
        return False

    def _batching(self, prov: _Provider, kind: str) -> bool:
        """Whether the next poll of ``kind`` should be a list call."""
        if kind in prov.no_batch:
            return False
        if prov.batch_ratio.get(kind, 1.0) >= _BATCH_MIN_RATIO:
            return True
        chances = prov.batch_probe.get(kind, 0) + 1
        prov.batch_probe[kind] = chances % _BATCH_PROBE_EVERY
        return chances >= _BATCH_PROBE_EVERY

    def _piggyback(
        self, prov: _Provider, kind: str, taken: int, now: float
    ) -> list[tuple[JobHandle, float]]:
        """
        Jobs of ``kind`` not due yet that ride along on a list call.

        The list answers for them at no extra request, so the jobs due next
        (up to ``batch_max``) are refreshed now and rescheduled from here.
        """
        room = prov.limits.batch_max - taken
        if room <= 0 or not self._batching_now(prov, kind):
            return []
        candidates = [
            h
            for h in self._jobs[prov.name].values()
            if h._s_phase is _Phase.SCHEDULED and h.kind == kind
        ]
        if not candidates:
            return []
        chosen = heapq.nsmallest(room, candidates, key=_due_of)
        extras = [(h, h._s_due) for h in chosen]
        for handle, _ in extras:
            handle._s_phase = _Phase.IN_FLIGHT
        return extras

    @staticmethod
    def _batching_now(prov: _Provider, kind: str) -> bool:
        # Not-yet-due jobs ride along only on a list that answers for many: on a
        # probe they would mostly come back unanswered.
        return kind not in prov.no_batch and prov.batch_ratio.get(kind, 1.0) >= _BATCH_MIN_RATIO

    def _restore(self, prov: _Provider, extras: list[tuple[JobHandle, float]]) -> None:
        """Put piggybacked jobs the list did not answer for back where they were."""
        for handle, due in extras:
            if handle._s_phase is _Phase.IN_FLIGHT:
                self._schedule(handle, max(due, prov.paused_until))

    def _park_ready(self, prov: _Provider) -> None:
        """Move a paused provider's ready jobs back to the heap, to the pause end."""
        queues, prov.ready = prov.ready, {}
        for queue in queues.values():
            for handle in queue:
                if handle._s_phase is _Phase.READY:
                    self._schedule(handle, prov.paused_until)

    def _requeue(self, prov: _Provider, kind: str, handles: Sequence[JobHandle]) -> None:
        """Put polled-but-unanswered jobs back at the front of their ready queue."""
        for handle in reversed(handles):
            if not handle.done():
                self._make_ready(prov, handle, front=True)
        self._wake()

    # -- pauses and breaker -------------------------------------------------------------

    def _pause(self, prov: _Provider, seconds: float, reason: str, now: float) -> None:
        if seconds > self._max_pause:
            logger.warning(
                "%s: pause of %.0f s (%s) clamped to %.0f s",
                prov.name,
                seconds,
                reason,
                self._max_pause,
            )
            seconds = self._max_pause
        until = now + seconds
        self._stats["pauses"] += 1
        if until > prov.paused_until:
            prov.paused_until = until
            prov.pause_reason = reason
            # No tokens pile up during the pause: polls resume at the rate,
            # not as a burst that would trip the limit again (#25).
            prov.tokens = 0.0
            prov.refilled_at = until
        if prov.ready:
            self._park_ready(prov)
        self._wake()

    def _rate_limited(self, prov: _Provider, error: RateLimited, now: float) -> None:
        prov.rate_limits += 1
        self._stats["rate_limited"] += 1
        prov.rate_factor = max(_MIN_RATE_FACTOR, prov.rate_factor / 2)
        if error.retry_after is not None:
            seconds = max(0.0, error.retry_after)
        else:
            seconds = compute_delay(
                prov.rate_limits - 1, base=1.0, cap=60.0, factor=2.0, jitter=False
            )
        # Jitter (up to +10 %) so many clients paused together do not return together.
        seconds *= 1.0 + 0.1 * self._rng.random()
        logger.info("%s: 429 on a poll; pausing polls for %.1f s", prov.name, seconds)
        self._pause(prov, seconds, "rate limited (429)", now)

    def _poll_failed(self, prov: _Provider, now: float) -> None:
        prov.failures += 1
        self._stats["poll_errors"] += 1
        reopen = prov.breaker == "half_open"
        if reopen or (prov.breaker == "closed" and prov.failures >= self._breaker_threshold):
            prov.breaker = "open"
            prov.breaker_opens += 1
            self._stats["breaker_opens"] += 1
            cooldown = compute_delay(
                prov.breaker_opens - 1,
                base=self._breaker_cooldown,
                cap=self._max_pause,
                factor=2.0,
                jitter=False,
            )
            logger.warning(
                "%s: %d failed polls in a row; breaker open, pausing polls for %.1f s",
                prov.name,
                prov.failures,
                cooldown,
            )
            self._pause(prov, cooldown, "breaker open", now)

    def _poll_ok(self, prov: _Provider) -> None:
        if prov.breaker != "closed":
            logger.info("%s: poll succeeded; breaker closed", prov.name)
            prov.breaker = "closed"
            prov.breaker_opens = 0
        prov.failures = 0
        prov.rate_limits = 0
        budget = prov.retry_budget
        if budget.tokens < budget.capacity:
            budget.record_success()
        if prov.rate_factor < 1.0:
            prov.rate_factor = min(1.0, prov.rate_factor + _RATE_RECOVERY)

    # -- workers --------------------------------------------------------------------------

    async def _work(self) -> None:
        queue = self._queue
        resolved: list[JobHandle] = []  # reused: one list per worker, not per poll
        item: _Batch | None = None
        while True:
            if item is None:
                if not queue:
                    event = anyio.Event()
                    self._idle_workers.append(event)
                    await event.wait()
                    continue
                item = queue.popleft()
            prov, kind, batch, extras = item
            item = None
            try:
                await self._poll(prov, kind, batch, extras, resolved)
            finally:
                prov.in_flight -= 1
                self._in_flight -= 1
            if resolved:
                for handle in resolved:
                    await self._notify(handle)
                resolved.clear()
            now = self._clock()
            if self._heap and self._heap[0][0] <= now:
                self._pop_due(now)
            if self._ready_deadlines and self._ready_deadlines[0][0] <= now:
                self._expire_ready(now)
            if not self._idle_workers:
                nxt = self._take_next(prov, kind, now)
                if nxt is not None:
                    item = (prov, kind, [nxt], _NO_EXTRAS)
                    continue
            next_at = math.inf
            if self._any_ready():
                # Capacity freed for jobs waiting on it: dispatch from here and
                # take the first poll ourselves (no driver wake-up, no event).
                self._self_serve = 1
                next_at = self._dispatch(now)
                self._self_serve = 0
            if self._in_flight < self._max_in_flight:
                if self._heap:
                    next_at = min(next_at, self._heap[0][0])
                if self._ready_deadlines:
                    next_at = min(next_at, self._ready_deadlines[0][0])
            if next_at < self._sleep_until:
                self._wake()

    async def _poll(
        self,
        prov: _Provider,
        kind: str,
        batch: list[JobHandle],
        extras: list[tuple[JobHandle, float]],
        resolved: list[JobHandle],
    ) -> None:
        backend = prov.backend
        self._stats["polls"] += 1
        try:
            if len(batch) + len(extras) > 1:
                await self._poll_list(prov, kind, batch, extras, resolved)
                return
            handle = batch[0]
            status = await backend.poll(kind, handle.job_id)
            now = self._clock()
            self._stats["polled_jobs"] += 1
            if prov.failures or prov.rate_limits or prov.recovering():
                self._poll_ok(prov)
            self._observe(handle, status, now, resolved)
        except RateLimited as exc:
            now = self._clock()
            self._rate_limited(prov, exc, now)
            self._requeue_or_time_out(prov, kind, batch, now, resolved)
            self._restore(prov, extras)
        except AuthenticationError as exc:
            now = self._clock()
            self._stats["auth_pauses"] += 1
            logger.error(
                "%s: authentication failed on a poll (%s); pausing polls for %.0f s",
                prov.name,
                exc.message or "401",
                self._auth_pause,
            )
            self._pause(prov, self._auth_pause, "authentication failed", now)
            self._requeue_or_time_out(prov, kind, batch, now, resolved)
            self._restore(prov, extras)
        except NotFound as exc:
            now = self._clock()
            if len(batch) + len(extras) > 1:
                self._failed(prov, batch, exc, now, resolved)
                self._restore(prov, extras)
            else:
                self._not_found(batch[0], exc, now, resolved)
        except Exception as exc:
            # Transport errors, 5xx, garbled answers and backend bugs alike:
            # never fatal to a job; retried under the error policy.
            self._failed(prov, batch, exc, self._clock(), resolved)
            self._restore(prov, extras)

    async def _poll_list(
        self,
        prov: _Provider,
        kind: str,
        batch: list[JobHandle],
        extras: list[tuple[JobHandle, float]],
        resolved: list[JobHandle],
    ) -> None:
        ids = [h.job_id for h in batch]
        ids.extend(h.job_id for h, _ in extras)
        answers = await prov.backend.poll_many(kind, ids)
        if answers is None:
            # No list endpoint for this kind: no request was made.
            self._stats["polls"] -= 1
            prov.no_batch.add(kind)
            prov.tokens = min(float(prov.limits.burst), prov.tokens + 1.0)
            self._requeue(prov, kind, batch)
            self._restore(prov, extras)
            return
        self._stats["coalesced_calls"] += 1
        self._stats["coalesced_jobs"] += len(ids)
        now = self._clock()
        self._poll_ok(prov)
        hits = 0
        missing: list[JobHandle] = []
        for handle in batch:
            status = answers.get(handle.job_id)
            if status is None:
                missing.append(handle)
            else:
                hits += 1
                self._observe(handle, status, now, resolved)
        left: list[tuple[JobHandle, float]] = []
        for handle, due in extras:
            status = answers.get(handle.job_id)
            if status is None:
                left.append((handle, due))
            else:
                hits += 1
                self._observe(handle, status, now, resolved)
        self._stats["polled_jobs"] += hits
        ratio = prov.batch_ratio.get(kind, 1.0)
        prov.batch_ratio[kind] = 0.7 * ratio + 0.3 * (hits / len(ids))
        self._restore(prov, left)
        if missing:
            # Due jobs the list did not answer for are polled one by one.
            for handle in missing:
                handle._s_flags |= _FLAG_SINGLE
            self._requeue(prov, kind, missing)

    def _requeue_or_time_out(
        self,
        prov: _Provider,
        kind: str,
        batch: list[JobHandle],
        now: float,
        resolved: list[JobHandle],
    ) -> None:
        for handle in batch:
            if handle.done():
                continue
            deadline: float | None = handle._s_deadline
            if deadline is not None and now >= deadline:
                self._time_out(handle, now, notify=False)
                resolved.append(handle)
            else:
                self._schedule(handle, prov.paused_until)

    def _failed(
        self,
        prov: _Provider,
        batch: list[JobHandle],
        exc: Exception,
        now: float,
        resolved: list[JobHandle],
    ) -> None:
        logger.debug("%s: poll failed: %r", prov.name, exc)
        self._poll_failed(prov, now)
        timeout = isinstance(exc, ReadTimeout | TotalTimeout)
        # One retry of the call costs the budget once, whatever the batch size.
        paid = prov.retry_budget.try_acquire(timeout=timeout)
        for handle in batch:
            if handle.done():
                continue
            deadline: float | None = handle._s_deadline
            if deadline is not None and now >= deadline:
                self._time_out(handle, now, notify=False)
                resolved.append(handle)
                continue
            handle._s_errors += 1
            if paid:
                delay = compute_delay(
                    handle._s_errors - 1,
                    base=self._retry.base,
                    cap=self._retry.cap,
                    jitter=self._retry.jitter,
                    rng=self._rng,
                )
            else:
                # Budget empty: no fast retries; poll at the slowest cadence (#31).
                policy: PollPolicy = handle._s_policy
                delay = max(policy.cap, self._retry.cap) * (0.5 + 0.5 * self._rng.random())
            self._schedule(handle, max(now + delay, prov.paused_until))

    def _not_found(
        self, handle: JobHandle, exc: NotFound, now: float, resolved: list[JobHandle]
    ) -> None:
        if handle.done():
            return
        policy: PollPolicy = handle._s_policy
        age = now - handle._s_created
        if age < policy.not_found_grace:
            # Read-after-write lag: the job may not be visible yet (#27).
            logger.debug("%s: job %s not found %.1f s after create", handle.provider, handle, age)
            handle._s_attempt += 1
            delay = self._delay(policy, handle._s_attempt)
            self._schedule(handle, now + delay)
            return
        message = exc.message or "not found"
        error = JobNotFound(
            f"{handle.provider} does not know job {handle.job_id!r} {age:.0f} s after create: "
            f"{message}",
            job_id=handle.job_id,
            key=handle.key,
            provider=handle.provider,
            status_code=exc.status_code,
            body_code=exc.body_code,
            endpoint=exc.endpoint,
        )
        error.__cause__ = exc
        self._emit_ending(handle, "not_found")
        if self._finish(handle, JobHandle.Status.NOT_FOUND, error=error):
            self._stats["not_found"] += 1
            resolved.append(handle)

    # -- observations -----------------------------------------------------------------

    def _observe(
        self, handle: JobHandle, status: JobStatus, now: float, resolved: list[JobHandle]
    ) -> None:
        if handle._s_phase is _Phase.DONE:
            return  # terminal states are sticky (#29)
        handle._s_errors = 0
        previous = handle.status
        if not status.known:
            self._stats["unknown_statuses"] += 1
            logger.warning(
                "%s: unknown status %r for job %s; treating it as running (RELIABILITY #29)",
                handle.provider,
                status.raw_status,
                handle.job_id,
            )
        state = status.state
        if _rank(state) == 2:
            handle.status = status
            self._emit(handle, status, now)
            if self._finish_terminal(handle, status):
                resolved.append(handle)
            return
        if (
            previous is not None
            # (cheap pre-check: same state without progress cannot go backwards)
            and (previous.state is not state or status.progress is not None)
            and self._backwards(previous, status)
        ):
            self._stats["backwards"] += 1
            logger.info(
                "%s: job %s went from %s %s to %s %s; ignored",
                handle.provider,
                handle.job_id,
                previous.raw_status,
                previous.progress,
                status.raw_status,
                status.progress,
            )
            status = previous
        elif (
            previous is None
            or previous.state is not state
            or previous.progress != status.progress
            or previous.raw_status != status.raw_status
        ):
            handle.status = status
            handle._s_changed = now
            handle._s_flags &= ~_FLAG_STUCK
            self._emit(handle, status, now)
        else:
            handle.status = status
        policy: PollPolicy = handle._s_policy
        if (
            policy.stuck_after is not None
            and now - handle._s_changed >= policy.stuck_after
            and not handle._s_flags & _FLAG_STUCK
        ):
            handle._s_flags |= _FLAG_STUCK
            self._stats["stuck"] += 1
            logger.warning(
                "%s: job %s (key %r) unchanged (%s) for %.0f s; still polling",
                handle.provider,
                handle.job_id,
                handle.key,
                status.raw_status,
                now - handle._s_changed,
            )
        deadline: float | None = handle._s_deadline
        if deadline is not None and (now >= deadline or handle._s_flags & _FLAG_LATE):
            self._time_out(handle, now, notify=False)
            resolved.append(handle)
            return
        self._schedule(handle, now + self._next_delay(handle, status, now))

    @staticmethod
    def _backwards(previous: JobStatus, status: JobStatus) -> bool:
        before = _rank(previous.state)
        after = _rank(status.state)
        if after < before:
            return True
        return (
            after == before
            and previous.progress is not None
            and status.progress is not None
            and status.progress < previous.progress
        )

    def _emit(
        self, handle: JobHandle, status: JobStatus, now: float, outcome: str | None = None
    ) -> None:
        """Publish a change to the job's own consumers and to :meth:`updates` ones."""
        if outcome is None and _rank(status.state) == 2:
            outcome = _STATE_OUTCOMES[status.state]
        update = JobUpdate(
            handle_key=handle.key,
            job_id=handle.job_id,
            state=status.state,
            progress=status.progress,
            raw_status=status.raw_status,
            at=now,
            provider=handle.provider,
            outcome=outcome,
        )
        handle._publish(update)
        if self._watchers:
            for watcher in self._watchers:
                watcher.push(update)

    def _emit_ending(self, handle: JobHandle, outcome: str) -> None:
        """Publish an ending no provider state reported (deadline, cancel, 404)."""
        status = handle.status or _NOT_SEEN
        self._emit(handle, status, self._clock(), outcome)

    def _finish_terminal(self, handle: JobHandle, status: JobStatus) -> bool:
        ids: dict[str, Any] = {
            "job_id": handle.job_id,
            "key": handle.key,
            "provider": handle.provider,
        }
        match status.state:
            case JobState.SUCCEEDED:
                result = status.result or JobResult(
                    provider=handle.provider, kind=handle.kind, job_id=handle.job_id, raw=status.raw
                )
                done = self._finish(handle, JobHandle.Status.SUCCEEDED, result=result)
                self._stats["succeeded"] += done
                return done
            case JobState.FAILED:
                message = status.message or f"the job ended with status {status.raw_status!r}"
                done = self._finish(
                    handle, JobHandle.Status.FAILED, error=JobFailed(message, **ids)
                )
                self._stats["failed"] += done
                return done
            case JobState.CANCELED:
                message = status.message or f"cancelled at the provider ({status.raw_status})"
                cancelled = JobCancelled(message, **ids)
                done = self._finish(handle, JobHandle.Status.CANCELLED, error=cancelled)
                self._stats["cancelled"] += done
                return done
            case _:  # pragma: no cover - only terminal states reach here
                raise AssertionError(status.state)

    def _finish(
        self,
        handle: JobHandle,
        status: JobHandle.Status,
        *,
        result: JobResult | None = None,
        error: JobTimeout | JobFailed | JobCancelled | JobNotFound | None = None,
    ) -> bool:
        if not handle._resolve(status, result=result, error=error):
            return False
        jobs = self._jobs.get(handle.provider)
        if jobs is not None and jobs.get(handle.job_id) is handle:
            del jobs[handle.job_id]
        return True

    def _time_out(self, handle: JobHandle, now: float, *, notify: bool = True) -> None:
        if handle.done():
            return
        self._emit_ending(handle, "timed_out")
        policy: PollPolicy = handle._s_policy
        error = JobTimeout(
            f"no final state within the deadline of {policy.deadline} s; "
            "the remote job was left running",
            job_id=handle.job_id,
            key=handle.key,
            provider=handle.provider,
        )
        if self._finish(handle, JobHandle.Status.TIMED_OUT, error=error):
            self._stats["timeouts"] += 1
            if notify and self._on_terminal is not None and self._tg is not None:
                self._tg.start_soon(self._notify, handle)

    async def _notify(self, handle: JobHandle) -> None:
        if self._on_terminal is None:
            return
        try:
            await self._on_terminal(handle)
        except Exception:
            logger.exception("on_terminal failed for job %s (key %r)", handle.job_id, handle.key)

    async def _cancel(self, handle: JobHandle, *, remote: bool) -> None:
        if remote:
            backend = self._providers[handle.provider].backend
            if not backend.supports_cancel(handle.kind):
                raise InvalidInput(
                    field="remote",
                    value=True,
                    expected=f"False: {handle.provider} cannot cancel {handle.kind} jobs",
                    provider=handle.provider,
                )
            await backend.cancel(handle.kind, handle.job_id)
            message = "cancelled at the provider on request"
        else:
            message = "cancelled locally; the remote job was left running"
        error = JobCancelled(
            message, job_id=handle.job_id, key=handle.key, provider=handle.provider
        )
        if handle.done():
            return
        self._emit_ending(handle, "cancelled")
        if self._finish(handle, JobHandle.Status.CANCELLED, error=error):
            self._stats["cancelled"] += 1
            await self._notify(handle)
