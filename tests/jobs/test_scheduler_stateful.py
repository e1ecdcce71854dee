"""
A Hypothesis state machine of the scheduler on virtual time (no sockets).

Rules track jobs, move time, make the in-memory backends' jobs progress,
finish, fail or vanish, inject 429s, 5xx, timeouts and outages, and cancel
handles. After every step the invariants hold: at most one in-flight poll per
job; token buckets, per-provider concurrency and ``max_in_flight`` never
exceeded; final states sticky and never polled again; no poll of a provider
during a 429 pause; every job past its deadline resolved within one poll.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from aivideo_async._config import PollPolicy, RetryPolicy
from aivideo_async._exceptions import RateLimited, ReadTimeout, RemoteDisconnected, ServerError
from aivideo_async._models import JobState
from aivideo_async.jobs._handle import JobHandle
from aivideo_async.jobs._scheduler import ProviderLimits, Scheduler
from tests.jobs.test_scheduler_fakes import FakeBackend, FakeTime

LIMITS = {
    "a": ProviderLimits(rate=2.0, burst=3, concurrency=2, batch_max=4),
    "b": ProviderLimits(rate=5.0, burst=2, concurrency=3),
}
LATENCY = {"a": 0.3, "b": 0.1}
MAX_IN_FLIGHT = 4
MAX_PAUSE = 20.0
POLICY = PollPolicy(
    initial=1.0, factor=2.0, cap=8.0, deadline=40.0, stuck_after=15.0, not_found_grace=3.0
)


class _Rng:
    """A deterministic RandomSource driven by Hypothesis data."""

    def __init__(self, values: list[float]) -> None:
        self.values = values
        self.i = 0

    def random(self) -> float:
        self.i += 1
        return self.values[self.i % len(self.values)]


class SchedulerMachine(RuleBasedStateMachine):
    jobs = Bundle("jobs")
    max_in_flight = MAX_IN_FLIGHT

    def __init__(self) -> None:
        super().__init__()
        self.stack = contextlib.ExitStack()
        self.portal: BlockingPortal = self.stack.enter_context(start_blocking_portal("asyncio"))
        self.time = FakeTime()
        shared = [0, 0]
        self.backends = {
            name: FakeBackend(
                self.time, name, latency=LATENCY[name], many=(name == "a"), shared=shared
            )
            for name in LIMITS
        }
        self.shared = shared
        self.handles: dict[str, JobHandle] = {}
        self.final: dict[str, tuple[JobHandle.Status, int]] = {}  # status, polls at resolution
        self.terminal_calls: list[str] = []
        self.buckets = {name: [float(lim.burst), -1e18, 0] for name, lim in LIMITS.items()}
        self.counter = 0
        self.rng = _Rng([0.5])

        async def on_terminal(handle: JobHandle) -> None:
            self.terminal_calls.append(handle.job_id)

        self.scheduler = Scheduler(
            backends=self.backends,
            poll_policy=POLICY,
            provider_limits=LIMITS,
            max_in_flight=self.max_in_flight,
            on_terminal=on_terminal,
            retry_policy=RetryPolicy(base=0.5, cap=4.0, budget=60, retry_cost=5, timeout_cost=10),
            max_pause=MAX_PAUSE,
            breaker_threshold=4,
            breaker_cooldown=2.0,
            auth_pause=10.0,
            clock=self.time.clock,
            sleep=self.time.sleep,
            rng=self.rng,
        )
        self.stack.enter_context(self.portal.wrap_async_context_manager(self.scheduler))

    @initialize(rng=st.lists(st.floats(0.0, 0.999), min_size=1, max_size=8))
    def jitter(self, rng: list[float]) -> None:
        self.rng.values = rng

    def teardown(self) -> None:
        self.stack.close()

    # -- rules ---------------------------------------------------------------------------

    @initialize(target=jobs, n=st.integers(2, 12), data=st.data())
    def first_jobs(self, n: int, data: st.DataObject) -> Any:
        ids = []
        for _ in range(n):
            ids.append(
                self.track(
                    data.draw(st.sampled_from(["a", "b"])),
                    data.draw(st.sampled_from([JobState.QUEUED, JobState.RUNNING])),
                    data.draw(st.booleans()),
                    data.draw(st.sampled_from(["video", "image"])),
                )
            )
        return multiple(*ids)

    @rule(
        target=jobs,
        provider=st.sampled_from(["a", "b"]),
        state=st.sampled_from([JobState.QUEUED, JobState.RUNNING]),
        visible=st.booleans(),
        kind=st.sampled_from(["video", "image"]),
    )
    def track(self, provider: str, state: JobState, visible: bool, kind: str) -> str:
        self.counter += 1
        job_id = f"{provider}{self.counter}"
        self.backends[provider].add(job_id, state=state, raw_status=state.value, visible=visible)

        def do() -> JobHandle:
            return self.scheduler.track(
                provider=provider, kind=kind, job_id=job_id, key=f"key-{job_id}"
            )

        self.handles[job_id] = self.portal.call(_sync, do)
        return job_id

    @rule(seconds=st.floats(0.05, 2.0))
    def advance_a_little(self, seconds: float) -> None:
        self.portal.call(self.time.advance, seconds)

    @rule(seconds=st.floats(2.0, 15.0))
    def advance(self, seconds: float) -> None:
        self.portal.call(self.time.advance, seconds)

    @rule(seconds=st.floats(0.05, 5.0), provider=st.sampled_from(["a", "b"]))
    def advance_with_429s(self, seconds: float, provider: str) -> None:
        self.backends[provider].errors.append(RateLimited("busy", retry_after=2.0))
        self.portal.call(self.time.advance, seconds)

    @rule(job=jobs, progress=st.floats(0.0, 1.0))
    def progresses(self, job: str, progress: float) -> None:
        fake = self._fake(job)
        if not fake.state.is_terminal:
            fake.state = JobState.RUNNING
            fake.raw_status = "running"
            fake.progress = round(progress, 2)

    @rule(job=jobs, state=st.sampled_from([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED]))
    def finishes(self, job: str, state: JobState) -> None:
        fake = self._fake(job)
        if fake.state.is_terminal:
            return  # a provider's final state is final
        fake.state = state
        fake.raw_status = state.value
        fake.message = "provider says no" if state is JobState.FAILED else None

    @rule(job=jobs, state=st.sampled_from([JobState.QUEUED, JobState.RUNNING]))
    def goes_back_or_unknown(self, job: str, state: JobState) -> None:
        fake = self._fake(job)
        if fake.state.is_terminal:
            return
        fake.state = state
        fake.raw_status = "mystery"
        fake.known = False

    @rule(job=jobs)
    def appears(self, job: str) -> None:
        self._fake(job).visible = True

    @rule(
        provider=st.sampled_from(["a", "b"]),
        error=st.sampled_from(["429", "429-none", "429-huge", "5xx", "timeout", "reset"]),
        count=st.integers(1, 6),
    )
    def inject(self, provider: str, error: str, count: int) -> None:
        make: Callable[[], Exception] = {
            "429": lambda: RateLimited("slow down", retry_after=3.0),
            "429-none": lambda: RateLimited("slow down"),
            "429-huge": lambda: RateLimited("tomorrow", retry_after=86400.0),
            "5xx": lambda: ServerError("bad gateway", status_code=502),
            "timeout": lambda: ReadTimeout("idle"),
            "reset": lambda: RemoteDisconnected("reset"),
        }[error]
        self.backends[provider].errors.extend(make() for _ in range(count))

    @rule(provider=st.sampled_from(["a", "b"]), down=st.booleans())
    def outage(self, provider: str, down: bool) -> None:
        self.backends[provider].down = ServerError("down", status_code=503) if down else None

    @rule(job=jobs)
    def cancel(self, job: str) -> None:
        handle = self.handles[job]
        self.portal.call(handle.cancel)
        assert handle.done()

    @precondition(lambda self: self.handles)
    @rule()
    def everything_recovers(self) -> None:
        # Lift faults and finish every job: all handles resolve, none by error.
        for backend in self.backends.values():
            backend.down = None
            backend.errors.clear()
            for fake in backend.jobs.values():
                fake.visible = True
                if not fake.state.is_terminal:
                    fake.state = JobState.SUCCEEDED
                    fake.raw_status = "done"
        self.portal.call(self.time.advance, 60.0)
        assert all(h.done() for h in self.handles.values())

    # -- invariants --------------------------------------------------------------------

    def _fake(self, job: str) -> Any:
        return self.backends[job[0]].jobs[job]

    @invariant()
    def at_most_one_poll_in_flight_per_job(self) -> None:
        for backend in self.backends.values():
            assert backend.overlaps == []

    @invariant()
    def concurrency_caps_hold(self) -> None:
        for name, backend in self.backends.items():
            assert backend.max_in_flight <= LIMITS[name].concurrency
        assert self.shared[1] <= self.max_in_flight

    @invariant()
    def token_buckets_hold(self) -> None:
        # Replay every new call through an exact token bucket: never below zero.
        for name, backend in self.backends.items():
            tokens, last, seen = self.buckets[name]
            limits = LIMITS[name]
            for start, _, _ in backend.calls[int(seen) :]:
                tokens = min(float(limits.burst), tokens + (start - last) * limits.rate)
                tokens -= 1.0
                assert tokens >= -1e-6, (name, start)
                last = start
            self.buckets[name] = [tokens, last, len(backend.calls)]

    @invariant()
    def no_poll_during_a_429_pause(self) -> None:
        for backend in self.backends.values():
            for answered, retry_after in backend.rate_limited_at:
                pause = min(retry_after if retry_after is not None else 1.0, MAX_PAUSE)
                early = [t for t, _, _ in backend.calls if answered < t < answered + pause - 1e-9]
                assert early == [], (answered, pause, early)

    @invariant()
    def final_states_are_sticky_and_not_polled(self) -> None:
        for job_id, handle in self.handles.items():
            polls = len(self.backends[job_id[0]].polls_of(job_id))
            if job_id in self.final:
                status, polls_then = self.final[job_id]
                assert handle.handle_status is status
                assert polls == polls_then
            elif handle.done():
                self.final[job_id] = (handle.handle_status, polls)
        assert len(self.terminal_calls) == len(set(self.terminal_calls))

    @invariant()
    def deadlines_are_honoured(self) -> None:
        for job_id, handle in self.handles.items():
            if handle.done():
                continue
            deadline = handle._s_created + (POLICY.deadline or 0.0)
            # Within one poll: a poll in flight at the deadline may take LATENCY.
            assert self.time.now <= deadline + LATENCY[job_id[0]] + 1e-6, job_id

    @invariant()
    def no_job_fails_because_of_poll_errors(self) -> None:
        for job_id, handle in self.handles.items():
            if handle.handle_status is JobHandle.Status.FAILED:
                assert job_id in self.backends[job_id[0]].served_failed


def _sync(fn: Any) -> Any:
    async def call() -> Any:
        return fn()

    return call()


SchedulerMachine.TestCase.settings = settings(
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class TestSchedulerMachine(SchedulerMachine.TestCase):  # type: ignore[misc,valid-type]
    pass


class SaturatedSchedulerMachine(SchedulerMachine):
    """
    The same rules with two workers: every worker is busy most of the time, so
    finished polls take the next one through the workers' fast lane
    (``_take_next``) rather than a dispatch round; the invariants must hold
    there too.
    """

    max_in_flight = 2


SaturatedSchedulerMachine.TestCase.settings = SchedulerMachine.TestCase.settings


class TestSaturatedSchedulerMachine(SaturatedSchedulerMachine.TestCase):  # type: ignore[misc,valid-type]
    pass
