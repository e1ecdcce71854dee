"""JobHandle: awaiting, waiting with a timeout, update streams, cancel, repr, memory."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from aivideo_async._config import PollPolicy
from aivideo_async._exceptions import (
    InvalidInput,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobTimeout,
)
from aivideo_async._models import JobResult, JobState
from aivideo_async.jobs._handle import JobHandle, JobUpdate
from aivideo_async.jobs._scheduler import Scheduler
from tests.jobs.test_scheduler_fakes import FakeBackend, FakeTime, FixedRandom, settle

pytestmark = pytest.mark.anyio

POLICY = PollPolicy(initial=2.0, factor=1.5, cap=15.0, jitter=False, deadline=None)


@asynccontextmanager
async def tracked(
    time: FakeTime, backend: FakeBackend, job_id: str = "j1"
) -> AsyncIterator[tuple[Scheduler, JobHandle]]:
    scheduler = Scheduler(
        backends={backend.provider: backend},
        poll_policy=POLICY,
        clock=time.clock,
        sleep=time.sleep,
        rng=FixedRandom(),
    )
    async with scheduler:
        handle = scheduler.track(
            provider=backend.provider, kind="video", job_id=job_id, key="row-1"
        )
        await settle()
        yield scheduler, handle


def test_resolved_handles_and_repr() -> None:
    result = JobResult(provider="miraflow", kind="video", job_id="j1", media_id="v1")
    ok = JobHandle.resolved(provider="miraflow", kind="video", job_id="j1", key="k", result=result)
    assert ok.done()
    assert ok.result_nowait() is result
    assert repr(ok) == "<JobHandle miraflow/video key='k' job_id='j1' state=succeeded>"
    for error, status in [
        (JobFailed("boom"), JobHandle.Status.FAILED),
        (JobCancelled("stop"), JobHandle.Status.CANCELLED),
        (JobTimeout("late"), JobHandle.Status.TIMED_OUT),
        (JobNotFound("gone"), JobHandle.Status.NOT_FOUND),
        (RuntimeError("weird"), JobHandle.Status.FAILED),
    ]:
        handle = JobHandle.resolved(provider="p", kind="k", job_id="j9", key="x", error=error)
        assert handle.handle_status is status
        with pytest.raises((JobFailed, JobCancelled, JobTimeout, JobNotFound)) as info:
            handle.result_nowait()
        assert info.value.job_id == "j9"
        assert info.value.key == "x"
        assert info.value.provider == "p"
    with pytest.raises(InvalidInput, match="exactly one"):
        JobHandle.resolved(provider="p", kind="k", job_id="j", key="x")
    pending = JobHandle(provider="p", kind="k", job_id="j", key="x")
    with pytest.raises(RuntimeError, match="not finished"):
        pending.result_nowait()
    assert "state=pending" in repr(pending)


def test_handle_is_slotted() -> None:
    handle = JobHandle(provider="p", kind="k", job_id="j", key="x")
    assert not hasattr(handle, "__dict__")
    # Without subscribers or waiters a handle holds no event and no list.
    assert handle._event is None
    assert handle._subs is None
    assert sys.getsizeof(handle) < 256


async def test_awaiting_a_resolved_handle() -> None:
    result = JobResult(provider="p", kind="k", job_id="j")
    handle = JobHandle.resolved(provider="p", kind="k", job_id="j", key="x", result=result)
    assert await handle is result
    assert await handle.wait(timeout=0) is result
    assert [u async for u in handle.updates()] == []


async def test_repr_shows_live_state_and_progress() -> None:
    time = FakeTime()
    backend = FakeBackend(time, "miraflow")
    backend.add("j1", state=JobState.RUNNING, raw_status="inference_working", progress=0.45)
    async with tracked(time, backend) as (_, handle):
        assert "state=pending" in repr(handle)
        await time.advance(2.0)
        assert repr(handle) == (
            "<JobHandle miraflow/video key='row-1' job_id='j1' state=running 45%>"
        )


async def test_wait_timeout_ends_the_wait_not_the_job() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING)
    async with tracked(time, backend) as (_, handle):
        outcome: list[object] = []

        async def waiter() -> None:
            try:
                await handle.wait(timeout=10.0)
            except TimeoutError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await time.advance(11.0)
        assert isinstance(outcome[0], TimeoutError)
        assert not handle.done()
        backend.set("j1", state=JobState.SUCCEEDED, raw_status="done")
        await time.advance(20.0)
        assert (await handle).job_id == "j1"


async def test_cancelling_the_awaiting_task_does_not_cancel_the_job() -> None:
    time = FakeTime()
    backend = FakeBackend(time, cancellable=["video"])
    backend.add("j1", state=JobState.RUNNING)
    async with tracked(time, backend) as (scheduler, handle):
        async with anyio.create_task_group() as tg:
            tg.start_soon(handle.wait)
            await settle()
            tg.cancel_scope.cancel()
        assert not handle.done()
        assert backend.cancelled == []
        polls = len(backend.calls)
        await time.advance(20.0)
        assert len(backend.calls) > polls  # still tracked
        assert scheduler.stats()["tracked"] == 1


async def test_updates_reach_every_concurrent_consumer_and_end_at_terminal() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.QUEUED, raw_status="queued")
    async with tracked(time, backend) as (_, handle):
        seen: dict[str, list[JobUpdate]] = {"a": [], "b": []}

        async def consume(name: str) -> None:
            async for update in handle.updates():
                seen[name].append(update)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume, "a")
            tg.start_soon(consume, "b")
            await time.advance(2.0)  # queued
            backend.set("j1", state=JobState.RUNNING, raw_status="working", progress=0.2)
            await time.advance(3.0)
            await time.advance(4.5)  # unchanged: no update
            backend.set("j1", progress=0.6)
            await time.advance(6.75)
            backend.set("j1", state=JobState.SUCCEEDED, raw_status="done", progress=1.0)
            await time.advance(15.0)
        expected = [
            (JobState.QUEUED, None),
            (JobState.RUNNING, 0.2),
            (JobState.RUNNING, 0.6),
            (JobState.SUCCEEDED, 1.0),
        ]
        for name in "ab":
            assert [(u.state, u.progress) for u in seen[name]] == expected
            assert all(u.job_id == "j1" and u.handle_key == "row-1" for u in seen[name])
        assert handle._subs is None


async def test_late_subscriber_sees_updates_from_subscription_on() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING, raw_status="working", progress=0.1)
    async with tracked(time, backend) as (_, handle):
        await time.advance(2.0)
        stream = handle.updates()
        backend.set("j1", progress=0.5)
        await time.advance(3.0)
        backend.set("j1", state=JobState.FAILED, raw_status="failed", message="nope", progress=None)
        await time.advance(10.0)
        assert [(u.state, u.progress) async for u in stream] == [
            (JobState.RUNNING, 0.5),
            (JobState.FAILED, None),
        ]
        with pytest.raises(JobFailed, match="nope"):
            await handle


async def test_unsubscribing_early_removes_the_subscriber() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING)
    async with tracked(time, backend) as (_, handle):
        stream = handle.updates()
        assert handle._subs is not None
        assert len(handle._subs) == 1
        await stream.aclose()
        assert handle._subs == []


async def test_local_cancel_stops_tracking_and_leaves_the_remote_job() -> None:
    time = FakeTime()
    backend = FakeBackend(time, cancellable=["video"])
    backend.add("j1", state=JobState.RUNNING)
    async with tracked(time, backend) as (scheduler, handle):
        await handle.cancel()
        with pytest.raises(JobCancelled, match="left running"):
            await handle
        assert backend.cancelled == []
        polls = len(backend.calls)
        await time.advance(60.0)
        assert len(backend.calls) == polls
        assert scheduler.stats()["tracked"] == 0
        await handle.cancel(remote=True)  # already final: nothing happens
        assert backend.cancelled == []


async def test_remote_cancel_where_supported() -> None:
    time = FakeTime()
    backend = FakeBackend(time, cancellable=["video"])
    backend.add("j1", state=JobState.QUEUED)
    async with tracked(time, backend) as (_, handle):
        await handle.cancel(remote=True)
        assert backend.cancelled == ["j1"]
        with pytest.raises(JobCancelled, match="at the provider"):
            await handle


async def test_remote_cancel_where_unsupported_is_invalid_input() -> None:
    time = FakeTime()
    backend = FakeBackend(time, "miraflow")
    backend.add("j1", state=JobState.RUNNING)
    async with tracked(time, backend) as (_, handle):
        with pytest.raises(InvalidInput, match="miraflow cannot cancel video jobs"):
            await handle.cancel(remote=True)
        assert not handle.done()
        assert backend.cancelled == []


async def test_unattached_handle_cancels_locally_only() -> None:
    handle = JobHandle(provider="p", kind="k", job_id="j", key="x")
    with pytest.raises(InvalidInput, match="remote"):
        await handle.cancel(remote=True)
    await handle.cancel()
    assert handle.handle_status is JobHandle.Status.CANCELLED


async def test_done_callbacks_run_once_at_resolution_and_errors_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING)
    calls: list[JobHandle.Status] = []

    def broken(handle: JobHandle) -> None:
        raise RuntimeError("callback bug")

    async with tracked(time, backend) as (_, handle):
        handle.add_done_callback(lambda h: calls.append(h.handle_status))
        handle.add_done_callback(broken)
        removed: list[JobHandle] = []
        handle.add_done_callback(removed.append)
        handle.remove_done_callback(removed.append)
        await time.advance(5.0)
        assert calls == []
        backend.set("j1", state=JobState.SUCCEEDED, raw_status="done")
        await time.advance(10.0)
        assert calls == [JobHandle.Status.SUCCEEDED]
        assert removed == []
        assert "callback bug" in caplog.text
        handle.add_done_callback(lambda h: calls.append(h.handle_status))  # already done: now
        assert calls == [JobHandle.Status.SUCCEEDED] * 2
