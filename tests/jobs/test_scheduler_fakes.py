"""
Fakes for the scheduler and handle tests: virtual time and an in-memory backend.

No sockets and no real sleeping: :class:`FakeTime` is the clock and the sleep
the scheduler gets, and :meth:`FakeTime.advance` moves time forward, waking
sleepers in order and letting every task run until all are blocked again.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import attrs

from aivideo_async._exceptions import RateLimited
from aivideo_async._models import JobResult, JobState, JobStatus
from aivideo_async.providers._base import JobSpec


async def settle() -> None:
    """Yield until every other task is blocked on something (no real time passes)."""
    me = asyncio.current_task()
    for _ in range(100_000):
        await asyncio.sleep(0)
        for task in asyncio.all_tasks():
            if task is me or task.done():
                continue
            waiter = getattr(task, "_fut_waiter", None)
            if waiter is None or waiter.done():
                break
        else:
            return
    raise AssertionError(f"tasks never settled: {task!r} {waiter!r}")


class FakeTime:
    """A virtual monotonic clock with a matching async sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        self._seq += 1
        heapq.heappush(self._sleepers, (self.now + seconds, self._seq, event))
        await event.wait()

    async def advance(self, seconds: float) -> None:
        await self.advance_to(self.now + seconds)

    async def advance_to(self, target: float) -> None:
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            at, _, event = heapq.heappop(self._sleepers)
            self.now = max(self.now, at)
            event.set()
            await settle()
        self.now = max(self.now, target)
        await settle()

    async def run_until(self, predicate: Any, *, limit: float, step: float = 1.0) -> None:
        """Advance in ``step`` increments until ``predicate()`` or ``limit`` seconds passed."""
        end = self.now + limit
        while not predicate() and self.now < end:
            await self.advance(step)


class FixedRandom:
    """A RandomSource returning one value (0.999... gives the full jitter ceiling)."""

    def __init__(self, value: float = 0.5) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@attrs.define
class FakeJob:
    state: JobState = JobState.QUEUED
    raw_status: str = "queued"
    progress: float | None = None
    message: str | None = None
    known: bool = True
    retry_after: float | None = None
    visible: bool = True  # False: the provider answers 404 (read-after-write lag)


class FakeBackend:
    """An in-memory provider: jobs change when the test says so; every poll is logged."""

    def __init__(
        self,
        time: FakeTime,
        provider: str = "fake",
        *,
        latency: float = 0.0,
        many: bool = False,
        cancellable: Sequence[str] = (),
        shared: list[int] | None = None,
        list_finished_only: bool = False,
    ) -> None:
        self.time = time
        self._provider = provider
        self.latency = latency
        self.many = many
        self.list_finished_only = list_finished_only  # like Miraflow's GET /api/videos
        self.cancellable = set(cancellable)
        self.jobs: dict[str, FakeJob] = {}
        self.errors: list[BaseException] = []  # raised by the next calls, first first
        self.down: BaseException | None = None  # raised by every call while set
        self.calls: list[tuple[float, str, tuple[str, ...]]] = []  # (start, "poll"/"many", ids)
        self.cancelled: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.job_in_flight: set[str] = set()
        self.overlaps: list[str] = []  # job ids polled while already in flight
        self.shared = shared if shared is not None else [0, 0]  # [in flight, max] over backends
        self.served_failed: set[str] = set()  # jobs answered as FAILED at least once
        self.rate_limited_at: list[tuple[float, float | None]] = []  # (answer time, retry_after)

    @property
    def provider(self) -> str:
        return self._provider

    def add(self, job_id: str, **fields: Any) -> FakeJob:
        job = self.jobs[job_id] = FakeJob(**fields)
        return job

    def set(self, job_id: str, **fields: Any) -> None:
        job = self.jobs[job_id]
        for name, value in fields.items():
            setattr(job, name, value)

    def polls_of(self, job_id: str) -> list[float]:
        return [t for t, _, ids in self.calls if job_id in ids]

    async def _call(self, kind: str, ids: tuple[str, ...], name: str) -> None:
        self.calls.append((self.time.now, name, ids))
        for job_id in ids:
            if job_id in self.job_in_flight:
                self.overlaps.append(job_id)
        self.job_in_flight.update(ids)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.shared[0] += 1
        self.shared[1] = max(self.shared[1], self.shared[0])
        try:
            if self.latency:
                await self.time.sleep(self.latency)
            error = self.errors.pop(0) if self.errors else self.down
            if isinstance(error, RateLimited):
                self.rate_limited_at.append((self.time.now, error.retry_after))
            if error is not None:
                raise error
        finally:
            self.in_flight -= 1
            self.shared[0] -= 1
            self.job_in_flight.difference_update(ids)

    def _status(self, kind: str, job_id: str) -> JobStatus:
        from aivideo_async._exceptions import NotFound

        job = self.jobs.get(job_id)
        if job is None or not job.visible:
            raise NotFound(
                "no such job",
                provider=self._provider,
                status_code=404,
                endpoint=f"GET /jobs/{job_id}",
            )
        if job.state is JobState.FAILED:
            self.served_failed.add(job_id)
        result = None
        if job.state is JobState.SUCCEEDED:
            result = JobResult(
                provider=self._provider,
                kind=kind,
                job_id=job_id,
                url=f"https://cdn.example/{job_id}.mp4",
            )
        return JobStatus(
            state=job.state,
            raw_status=job.raw_status,
            progress=job.progress,
            message=job.message,
            result=result,
            retry_after=job.retry_after,
            known=job.known,
        )

    async def create(self, spec: JobSpec) -> str:  # pragma: no cover - not used by the scheduler
        raise NotImplementedError

    async def poll(self, kind: str, job_id: str) -> JobStatus:
        await self._call(kind, (job_id,), "poll")
        return self._status(kind, job_id)

    async def poll_many(self, kind: str, job_ids: Sequence[str]) -> Mapping[str, JobStatus] | None:
        if not self.many:
            return None
        await self._call(kind, tuple(job_ids), "many")
        out: dict[str, JobStatus] = {}
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is not None and job.visible and job.state.is_terminal:
                # Like Miraflow's GET /api/videos: only finished jobs are listed.
                out[job_id] = self._status(kind, job_id)
            elif (
                job is not None
                and job.visible
                and job.raw_status != "unlisted"
                and not self.list_finished_only
            ):
                out[job_id] = self._status(kind, job_id)
        return out

    async def find_submission(self, spec: JobSpec, *, since: float) -> str | None:
        return None  # pragma: no cover - not used by the scheduler

    def supports_cancel(self, kind: str) -> bool:
        return kind in self.cancellable

    async def cancel(self, kind: str, job_id: str) -> None:
        self.cancelled.append(job_id)
        self.set(job_id, state=JobState.CANCELED, raw_status="canceled")
