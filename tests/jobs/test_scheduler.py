"""Targeted tests of the poll scheduler on virtual time (RELIABILITY #24-#31)."""

from __future__ import annotations

import gc
import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from aivideo_async._config import PollPolicy
from aivideo_async._exceptions import (
    AuthenticationError,
    InvalidInput,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobTimeout,
    RateLimited,
    ReadTimeout,
    ServerError,
)
from aivideo_async._models import JobState
from aivideo_async.jobs._handle import JobHandle, _Phase
from aivideo_async.jobs._scheduler import ProviderLimits, Scheduler
from tests.jobs.test_scheduler_fakes import FakeBackend, FakeTime, FixedRandom, settle

pytestmark = pytest.mark.anyio

STEADY = PollPolicy(initial=2.0, factor=1.5, cap=15.0, jitter=False, deadline=None)


@asynccontextmanager
async def running(
    *backends: FakeBackend, time: FakeTime, **kwargs: Any
) -> AsyncIterator[Scheduler]:
    kwargs.setdefault("poll_policy", STEADY)
    kwargs.setdefault("rng", FixedRandom(0.5))
    scheduler = Scheduler(
        backends={b.provider: b for b in backends}, clock=time.clock, sleep=time.sleep, **kwargs
    )
    async with scheduler:
        await settle()
        yield scheduler


async def test_job_succeeds_and_on_terminal_runs_once() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1")
    seen: list[JobHandle] = []

    async def on_terminal(handle: JobHandle) -> None:
        seen.append(handle)

    async with running(backend, time=time, on_terminal=on_terminal) as scheduler:
        handle = scheduler.track(provider="fake", kind="video", job_id="j1", key="row-1")
        await time.advance(2.0)
        assert handle.status is not None
        assert handle.status.state is JobState.QUEUED
        backend.set("j1", state=JobState.SUCCEEDED, raw_status="done")
        await time.advance(3.0)
        result = await handle
        assert result.job_id == "j1"
        assert result.url == "https://cdn.example/j1.mp4"
        assert handle.handle_status is JobHandle.Status.SUCCEEDED
        assert seen == [handle]
        assert scheduler.stats()["tracked"] == 0
        polls = len(backend.calls)
        await time.advance(100.0)
        assert len(backend.calls) == polls  # a finished job is not polled again


async def test_cadence_grows_by_factor_to_the_cap() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING)
    async with running(backend, time=time) as scheduler:
        scheduler.track(provider="fake", kind="video", job_id="j1", key="k")
        start = time.now
        await time.advance(120.0)
    gaps = [round(t - start, 3) for t in backend.polls_of("j1")]
    # initial 2, then x1.5 each poll, capped at 15 (jitter off)
    assert gaps[:7] == [2.0, 5.0, 9.5, 16.25, 26.375, 41.375, 56.375]


async def test_full_jitter_stays_within_the_ceiling() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING)
    policy = PollPolicy(initial=2.0, factor=2.0, cap=8.0, deadline=None)
    async with running(backend, time=time, poll_policy=policy, rng=FixedRandom(0.25)):
        pass
    async with running(backend, time=time, poll_policy=policy, rng=FixedRandom(0.25)) as sch:
        sch.track(provider="fake", kind="video", job_id="j1", key="k")
        start = time.now
        await time.advance(30.0)
    times = [start, *backend.polls_of("j1")]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 2.0]  # 0.25 x ceilings 2, 4, 8, 8


async def test_server_hint_wins_over_the_cadence() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING, retry_after=40.0)
    async with running(backend, time=time) as scheduler:
        scheduler.track(provider="fake", kind="video", job_id="j1", key="k")
        await time.advance(100.0)
    polls = backend.polls_of("j1")
    assert [round(b - a, 3) for a, b in itertools.pairwise(polls)] == [40.0, 40.0]


async def test_progress_estimate_polls_near_completion() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING, progress=0.0)
    policy = PollPolicy(initial=2.0, factor=1.5, cap=60.0, jitter=False, deadline=None)
    async with running(backend, time=time, poll_policy=policy) as scheduler:
        start = time.now
        handle = scheduler.track(provider="fake", kind="video", job_id="j1", key="k")
        # A 100 s job whose progress grows linearly.
        while not handle.done():
            await time.advance(0.5)
            elapsed = time.now - start
            if elapsed >= 100:
                backend.set("j1", state=JobState.SUCCEEDED, raw_status="done", progress=1.0)
            else:
                backend.set("j1", progress=round(elapsed / 100, 2))
        lag = time.now - (start + 100)
    # Without the estimate the exponential cadence would need 9 polls
    # (at 2, 5, 9.5, 16.25 ... 98.6, 150.8 s) and notice the end 50 s late;
    # with it: a look shortly before the estimated end, then one just after.
    assert len(backend.calls) <= 6
    assert lag <= 1.0


async def test_unknown_status_is_logged_and_treated_as_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RELIABILITY #29: an unknown status value is in progress, logged."""
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING, raw_status="warming_up", known=False)
    async with running(backend, time=time) as scheduler:
        handle = scheduler.track(provider="fake", kind="video", job_id="j1", key="k")
        with caplog.at_level(logging.WARNING, logger="aivideo_async.jobs"):
            await time.advance(6.0)
        assert not handle.done()
        assert "warming_up" in caplog.text
        assert scheduler.stats()["unknown_statuses"] >= 1
        backend.set("j1", state=JobState.SUCCEEDED, raw_status="done", known=True)
        await time.advance(10.0)
        assert handle.done()


async def test_status_going_backwards_is_ignored_and_terminal_is_sticky(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RELIABILITY #29: backwards statuses are logged and ignored; final states stick."""
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING, raw_status="working", progress=0.5)
    async with running(backend, time=time) as scheduler:
        handle = scheduler.track(provider="fake", kind="video", job_id="j1", key="k")
        updates = handle.updates()
        await time.advance(2.0)
        backend.set("j1", state=JobState.QUEUED, raw_status="queued", progress=None)
        with caplog.at_level(logging.INFO, logger="aivideo_async.jobs"):
            await time.advance(10.0)
        assert handle.status is not None
        assert handle.status.state is JobState.RUNNING
        assert "went from working" in caplog.text
        assert scheduler.stats()["backwards"] >= 1
        backend.set("j1", state=JobState.FAILED, raw_status="failed", message="GPU fell over")
        await time.advance(10.0)
        backend.set("j1", state=JobState.SUCCEEDED, raw_status="done")
        await time.advance(30.0)
        assert handle.handle_status is JobHandle.Status.FAILED
        seen = [u.state async for u in updates]
        assert seen == [JobState.RUNNING, JobState.FAILED]
        with pytest.raises(JobFailed) as info:
            await handle
        err = info.value
        assert (err.job_id, err.key, err.provider) == ("j1", "k", "fake")
        assert "GPU fell over" in str(err)


async def test_provider_cancelled_job_raises_job_cancelled() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.CANCELED, raw_status="CANCEL")
    async with running(backend, time=time) as scheduler:
        handle = scheduler.track(provider="fake", kind="task", job_id="j1", key="k")
        await time.advance(3.0)
        with pytest.raises(JobCancelled, match="CANCEL"):
            await handle


async def test_rate_limit_pauses_the_whole_provider_and_no_job_fails() -> None:
    """RELIABILITY #25: a 429 pauses every job of that provider, not just one."""
    time = FakeTime()
    slow = FakeBackend(time, "slow")
    other = FakeBackend(time, "other")
    for i in range(20):
        slow.add(f"s{i}", state=JobState.RUNNING)
    other.add("o1", state=JobState.RUNNING)
    async with running(slow, other, time=time) as scheduler:
        handles = [
            scheduler.track(provider="slow", kind="video", job_id=f"s{i}", key=f"k{i}")
            for i in range(20)
        ]
        scheduler.track(provider="other", kind="video", job_id="o1", key="o")
        await time.advance(1.0)
        slow.errors.append(RateLimited("slow down", retry_after=30.0, provider="slow"))
        await time.advance(1.0)  # t=2: first polls; the first one is answered 429
        paused_at = time.now
        await time.advance(29.0)
        during = [t for t, _, _ in slow.calls if paused_at < t < paused_at + 30.0]
        assert during == []
        assert len(other.polls_of("o1")) >= 3  # the other provider is not paused
        assert scheduler.stats()["rate_limited"] == 1
        for i in range(20):
            slow.set(f"s{i}", state=JobState.SUCCEEDED, raw_status="done")
        await time.advance(60.0)
        assert all(h.handle_status is JobHandle.Status.SUCCEEDED for h in handles)


async def test_huge_retry_after_is_clamped_and_deadline_still_fires(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RELIABILITY #26: a day-long Retry-After is clamped (warned); deadlines still fire."""
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING)
    backend.add("j2", state=JobState.RUNNING)
    policy = PollPolicy(initial=2.0, cap=15.0, jitter=False, deadline=100.0)
    async with running(backend, time=time, poll_policy=policy, max_pause=300.0) as scheduler:
        h1 = scheduler.track(provider="fake", kind="video", job_id="j1", key="k1")
        backend.errors.append(RateLimited("tomorrow", retry_after=86400.0))
        with caplog.at_level(logging.WARNING, logger="aivideo_async.jobs"):
            await time.advance(3.0)
        assert "clamped to 300 s" in caplog.text
        start = time.now
        await time.advance(98.0)
        assert h1.handle_status is JobHandle.Status.TIMED_OUT  # at its deadline, mid-pause
        assert len(backend.calls) == 1
        h2 = scheduler.track(provider="fake", kind="video", job_id="j2", key="k2", policy=STEADY)
        await time.advance(300.0 - (time.now - start) - 5.0)
        assert h2.status is None  # still paused
        await time.advance(10.0)
        assert h2.status is not None  # polled after the clamped pause, not a day later


async def test_transport_errors_are_retried_with_backoff_from_the_budget() -> None:
    """RELIABILITY #24: timeouts/resets retried with full jitter, paid from the budget."""
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING)
    async with running(backend, time=time, rng=FixedRandom(0.999)) as scheduler:
        handle = scheduler.track(provider="fake", kind="video", job_id="j1", key="k")
        backend.errors.extend([ReadTimeout("idle"), ServerError("502", status_code=502)])
        tokens = scheduler.stats()["providers"]["fake"]["retry_tokens"]
        await time.advance(2.0)  # poll 1: timeout
        await time.advance(1.0)  # retry after ~0.5 s (retry base): 502
        assert scheduler.stats()["poll_errors"] == 2
        spent = tokens - scheduler.stats()["providers"]["fake"]["retry_tokens"]
        assert spent == 10 + 5  # a timeout costs more than another error
        backend.set("j1", state=JobState.SUCCEEDED, raw_status="done")
        await time.advance(3.0)
        assert handle.handle_status is JobHandle.Status.SUCCEEDED
    polls = backend.polls_of("j1")
    assert polls[1] - polls[0] < 1.0
    assert polls[2] - polls[1] < 2.0


async def test_server_down_opens_the_breaker_polls_pause_and_no_job_fails() -> None:
    """RELIABILITY #31: 1,000 jobs, server down: breaker opens, polls pause, jobs survive."""
    time = FakeTime()
    backend = FakeBackend(time)
    n = 1000
    for i in range(n):
        backend.add(f"j{i}", state=JobState.RUNNING)
    backend.down = ServerError("503", status_code=503)
    limits = {"fake": ProviderLimits(rate=1000.0, burst=1000, concurrency=50)}
    async with running(
        backend, time=time, provider_limits=limits, breaker_threshold=5, breaker_cooldown=10.0
    ) as scheduler:
        handles = [
            scheduler.track(provider="fake", kind="video", job_id=f"j{i}", key=f"k{i}")
            for i in range(n)
        ]
        await time.advance(600.0)
        stats = scheduler.stats()
        assert stats["breaker_opens"] >= 1
        # Far fewer polls than 1,000 jobs x (600 s / 15 s): the breaker holds them back.
        assert len(backend.calls) < 2000
        assert not any(h.done() for h in handles)
        assert stats["providers"]["fake"]["retry_tokens"] < 500  # retries were paid for
        backend.down = None
        for i in range(n):
            backend.set(f"j{i}", state=JobState.SUCCEEDED, raw_status="done")
        await time.run_until(lambda: all(h.done() for h in handles), limit=900.0, step=5.0)
        assert all(h.handle_status is JobHandle.Status.SUCCEEDED for h in handles)
        assert scheduler.stats()["providers"]["fake"]["breaker"] == "closed"


async def test_breaker_sends_one_probe_after_cooldown() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    for i in range(10):
        backend.add(f"j{i}", state=JobState.RUNNING)
    backend.down = ServerError("503", status_code=503)
    async with running(backend, time=time, breaker_threshold=3, breaker_cooldown=20.0) as sch:
        for i in range(10):
            sch.track(provider="fake", kind="video", job_id=f"j{i}", key=f"k{i}")
        await time.advance(2.0)  # ten polls at t+2: all fail; the 3rd opens the breaker
        opened = time.now
        assert sch.stats()["providers"]["fake"]["breaker"] == "open"
        calls = len(backend.calls)
        await time.advance(19.0)
        assert len(backend.calls) == calls
        await time.advance(2.0)  # the cool-down ends: exactly one probe
        assert len(backend.calls) == calls + 1
        assert backend.calls[-1][0] >= opened + 20.0


async def test_auth_failure_pauses_the_provider(caplog: pytest.LogCaptureFixture) -> None:
    """RELIABILITY #28: a 401 that survived the refresh pauses polling; jobs do not fail."""
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING)
    async with running(backend, time=time, auth_pause=60.0) as scheduler:
        handle = scheduler.track(provider="fake", kind="video", job_id="j1", key="k")
        backend.errors.append(AuthenticationError("invalid api key", status_code=401))
        with caplog.at_level(logging.ERROR, logger="aivideo_async.jobs"):
            await time.advance(2.0)
        assert "authentication failed" in caplog.text
        await time.advance(59.0)
        assert len(backend.calls) == 1
        backend.set("j1", state=JobState.SUCCEEDED, raw_status="done")
        await time.advance(2.0)
        assert handle.handle_status is JobHandle.Status.SUCCEEDED
        assert scheduler.stats()["auth_pauses"] == 1


async def test_deadline_times_out_and_leaves_the_remote_job_alone() -> None:
    """RELIABILITY #30: a job that never finishes raises JobTimeout; no remote cancel."""
    time = FakeTime()
    backend = FakeBackend(time, cancellable=["video"])
    backend.add("j1", state=JobState.RUNNING)
    notified: list[JobHandle.Status] = []

    async def on_terminal(handle: JobHandle) -> None:
        notified.append(handle.handle_status)

    policy = PollPolicy(initial=2.0, cap=15.0, jitter=False, deadline=50.0)
    async with running(backend, time=time, poll_policy=policy, on_terminal=on_terminal) as sch:
        handle = sch.track(provider="fake", kind="video", job_id="j1", key="k", created_at=time.now)
        await time.advance(49.9)
        assert not handle.done()
        await time.advance(0.2)
        with pytest.raises(JobTimeout) as info:
            await handle
        assert info.value.key == "k"
        assert info.value.job_id == "j1"
        assert backend.cancelled == []
        assert notified == [JobHandle.Status.TIMED_OUT]


async def test_a_job_tracked_after_its_deadline_is_looked_at_once_before_timing_out() -> None:
    """
    RELIABILITY #30, a resume after downtime or a reconciled create: the
    deadline passed while nobody watched. A job that finished meanwhile
    resolves with its real outcome; one still running raises JobTimeout after
    that one poll; neither times out unseen.
    """
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("done", state=JobState.SUCCEEDED, raw_status="done")
    backend.add("slow", state=JobState.RUNNING)
    policy = PollPolicy(initial=2.0, cap=15.0, jitter=False, deadline=50.0)
    async with running(backend, time=time, poll_policy=policy) as sch:
        long_ago = time.now - 3600.0
        done = sch.track(provider="fake", kind="video", job_id="done", key="a", created_at=long_ago)
        slow = sch.track(provider="fake", kind="video", job_id="slow", key="b", created_at=long_ago)
        await time.advance(0.1)
        result = await done
        assert result.job_id == "done"
        with pytest.raises(JobTimeout):
            await slow
        assert [ids for _, _, ids in backend.calls] == [("done",), ("slow",)]
        await time.advance(100.0)
        assert len(backend.calls) == 2


async def test_a_job_tracked_after_its_deadline_still_times_out_when_never_answered() -> None:
    """The one look is bounded: with the provider down, JobTimeout comes a deadline later."""
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING)
    backend.down = ServerError("down", status_code=503)
    policy = PollPolicy(initial=2.0, cap=15.0, jitter=False, deadline=50.0)
    async with running(backend, time=time, poll_policy=policy) as sch:
        handle = sch.track(
            provider="fake", kind="video", job_id="j1", key="k", created_at=time.now - 3600.0
        )
        await time.advance(49.0)
        assert not handle.done()
        await time.advance(2.0)
        with pytest.raises(JobTimeout):
            await handle


async def test_stuck_job_is_warned_once_and_still_polled(caplog: pytest.LogCaptureFixture) -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING, progress=0.3)
    policy = PollPolicy(initial=2.0, cap=15.0, jitter=False, deadline=None, stuck_after=60.0)
    async with running(backend, time=time, poll_policy=policy) as scheduler:
        handle = scheduler.track(provider="fake", kind="video", job_id="j1", key="k")
        with caplog.at_level(logging.WARNING, logger="aivideo_async.jobs"):
            await time.advance(200.0)
        assert caplog.text.count("unchanged") == 1
        assert scheduler.stats()["stuck"] == 1
        assert not handle.done()
        polls = len(backend.calls)
        await time.advance(60.0)
        assert len(backend.calls) > polls


async def test_not_found_within_grace_keeps_polling() -> None:
    """RELIABILITY #27: a 404 right after create is read-after-write lag."""
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING, visible=False)
    policy = PollPolicy(initial=2.0, cap=15.0, jitter=False, deadline=None, not_found_grace=30.0)
    async with running(backend, time=time, poll_policy=policy) as scheduler:
        handle = scheduler.track(provider="fake", kind="video", job_id="j1", key="k")
        await time.advance(20.0)
        assert len(backend.calls) >= 3
        assert not handle.done()
        backend.set("j1", visible=True, state=JobState.SUCCEEDED, raw_status="done")
        await time.advance(15.0)
        assert handle.handle_status is JobHandle.Status.SUCCEEDED


async def test_not_found_after_grace_raises_job_not_found() -> None:
    """RELIABILITY #27: past the grace window a 404 resolves as JobNotFound."""
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING, visible=False)
    policy = PollPolicy(initial=2.0, cap=15.0, jitter=False, deadline=None, not_found_grace=30.0)
    async with running(backend, time=time, poll_policy=policy) as scheduler:
        handle = scheduler.track(provider="fake", kind="video", job_id="j1", key="k")
        await time.advance(29.0)
        assert not handle.done()
        await time.advance(30.0)
        with pytest.raises(JobNotFound) as info:
            await handle
        assert "no such job" in str(info.value)
        assert info.value.status_code == 404
        assert info.value.key == "k"


async def test_coalesced_polls_use_one_call_and_missing_jobs_fall_back() -> None:
    time = FakeTime()
    backend = FakeBackend(time, many=True)
    for i in range(30):
        backend.add(f"j{i}", state=JobState.RUNNING)
    backend.set("j7", raw_status="unlisted")  # the list endpoint does not answer for it
    async with running(backend, time=time) as scheduler:
        handles = [
            scheduler.track(provider="fake", kind="video", job_id=f"j{i}", key=f"k{i}")
            for i in range(30)
        ]
        await time.advance(2.5)
        stats = scheduler.stats()
        assert stats["coalesced_calls"] == 1
        assert [name for _, name, _ in backend.calls] == ["many", "poll"]
        assert backend.calls[1][2] == ("j7",)
        for i in range(30):
            backend.set(f"j{i}", state=JobState.SUCCEEDED, raw_status="done")
        await time.advance(5.0)
        assert all(h.done() for h in handles)
        assert len(backend.calls) <= 4


async def test_poll_many_none_falls_back_to_single_polls() -> None:
    time = FakeTime()
    backend = FakeBackend(time, many=False)
    for i in range(5):
        backend.add(f"j{i}", state=JobState.SUCCEEDED, raw_status="done")
    async with running(backend, time=time) as scheduler:
        handles = [
            scheduler.track(provider="fake", kind="video", job_id=f"j{i}", key=f"k{i}")
            for i in range(5)
        ]
        await time.advance(3.0)
        assert all(h.done() for h in handles)
        assert [name for _, name, _ in backend.calls] == ["poll"] * 5
        assert scheduler.stats()["polls"] == 5


async def test_token_bucket_and_concurrency_caps_hold() -> None:
    time = FakeTime()
    backend = FakeBackend(time, latency=0.5)
    for i in range(100):
        backend.add(f"j{i}", state=JobState.RUNNING)
    limits = {"fake": ProviderLimits(rate=4.0, burst=5, concurrency=3)}
    async with running(backend, time=time, provider_limits=limits, max_in_flight=8) as sch:
        for i in range(100):
            sch.track(provider="fake", kind="video", job_id=f"j{i}", key=f"k{i}")
        await time.advance(60.0)
    starts = sorted(t for t, _, _ in backend.calls)
    assert len(starts) > 100
    for i, a in enumerate(starts):
        in_window = [b for b in starts[i:] if b - a <= 10.0]
        assert len(in_window) <= 5 + 4.0 * 10.0 + 1e-9
    assert backend.max_in_flight <= 3
    assert backend.overlaps == []


async def test_track_is_idempotent_and_rejects_unknown_providers() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    scheduler = Scheduler(backends={"fake": backend}, clock=time.clock, sleep=time.sleep)
    one = scheduler.track(provider="fake", kind="video", job_id="j1", key="k")
    assert scheduler.track(provider="fake", kind="video", job_id="j1", key="k") is one
    with pytest.raises(InvalidInput, match="provider"):
        scheduler.track(provider="nope", kind="video", job_id="j1", key="k")
    with pytest.raises(InvalidInput, match="max_in_flight"):
        Scheduler(backends={"fake": backend}, max_in_flight=0)
    with pytest.raises(InvalidInput, match="provider_limits"):
        Scheduler(backends={"fake": backend}, provider_limits={"x": ProviderLimits()})


async def test_tracking_an_earlier_job_wakes_the_sleeping_driver() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("late", state=JobState.RUNNING)
    backend.add("soon", state=JobState.RUNNING)
    late = PollPolicy(initial=500.0, cap=500.0, jitter=False, deadline=None)
    async with running(backend, time=time) as scheduler:
        scheduler.track(provider="fake", kind="video", job_id="late", key="a", policy=late)
        await time.advance(10.0)  # the driver now sleeps until t+500
        scheduler.track(provider="fake", kind="video", job_id="soon", key="b")
        tracked = time.now
        await time.advance(3.0)
        assert backend.polls_of("soon") == [tracked + 2.0]
        assert backend.polls_of("late") == []


async def test_pause_provider_from_outside_holds_polls() -> None:
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1", state=JobState.RUNNING)
    async with running(backend, time=time) as scheduler:
        scheduler.track(provider="fake", kind="video", job_id="j1", key="k")
        scheduler.pause_provider("fake", 30.0, reason="429 on create")
        await time.advance(29.0)
        assert backend.calls == []
        assert scheduler.stats()["providers"]["fake"]["pause_reason"] == "429 on create"
        scheduler.resume_provider("fake")
        await time.advance(0.5)
        assert len(backend.calls) == 1
        with pytest.raises(InvalidInput):
            scheduler.pause_provider("fake", -1)


async def test_jobs_waiting_for_tokens_still_time_out_at_their_deadline() -> None:
    """RELIABILITY #30 with a starved budget: the ready queue does not delay deadlines."""
    time = FakeTime()
    backend = FakeBackend(time)
    for i in range(10):
        backend.add(f"j{i}", state=JobState.RUNNING)
    policy = PollPolicy(initial=2.0, cap=15.0, jitter=False, deadline=20.0)
    limits = {"fake": ProviderLimits(rate=0.01, burst=1)}
    async with running(backend, time=time, poll_policy=policy, provider_limits=limits) as sch:
        handles = [
            sch.track(provider="fake", kind="video", job_id=f"j{i}", key=f"k{i}") for i in range(10)
        ]
        start = time.now
        await time.advance(19.9)
        assert len(backend.calls) == 1
        assert not any(h.done() for h in handles)
        await time.advance_to(start + 20.0)
        assert all(h.handle_status is JobHandle.Status.TIMED_OUT for h in handles)


async def test_a_list_call_piggybacks_jobs_not_due_yet() -> None:
    """One list request answers for every tracked job of the kind, due or not."""
    time = FakeTime()
    backend = FakeBackend(time, many=True)
    handles = []
    async with running(backend, time=time) as scheduler:
        for i in range(10):
            backend.add(f"j{i}", state=JobState.RUNNING, raw_status="working")
            handles.append(
                scheduler.track(provider="fake", kind="video", job_id=f"j{i}", key=f"k{i}")
            )
            await time.advance(0.1)  # staggered: each job is due at a different time
        await time.advance(1.2)  # only j0 is due now
        assert [name for _, name, _ in backend.calls] == ["many"]
        assert len(backend.calls[0][2]) == 10
        assert all(h.status is not None for h in handles)
        assert scheduler.stats()["coalesced_jobs"] == 10


async def test_a_list_that_rarely_answers_is_only_probed() -> None:
    """Miraflow lists finished videos only: while jobs run, single polls are cheaper."""
    time = FakeTime()
    backend = FakeBackend(time, many=True, list_finished_only=True)
    for i in range(20):
        backend.add(f"j{i}", state=JobState.RUNNING, raw_status="working")
    async with running(backend, time=time) as scheduler:
        handles = [
            scheduler.track(provider="fake", kind="video", job_id=f"j{i}", key=f"k{i}")
            for i in range(20)
        ]
        await time.advance(120.0)
        lists = sum(1 for _, name, _ in backend.calls if name == "many")
        singles = sum(1 for _, name, _ in backend.calls if name == "poll")
        assert singles > 100
        assert lists <= 2 + singles // 16
        for i in range(20):
            backend.set(f"j{i}", state=JobState.SUCCEEDED, raw_status="done")
        await time.advance(30.0)
        assert all(h.handle_status is JobHandle.Status.SUCCEEDED for h in handles)


async def test_a_probe_of_a_rarely_answering_list_asks_about_few_jobs() -> None:
    """
    Once a list has answered for few, a probe asks about at most 8 due jobs and
    takes no job along that is not due: every job it misses is polled again
    singly, so a big probe would only cost more.
    """
    time = FakeTime()
    backend = FakeBackend(time, many=True, list_finished_only=True)
    for i in range(60):
        backend.add(f"j{i}", state=JobState.RUNNING, raw_status="working")
    async with running(backend, time=time) as scheduler:
        for i in range(60):
            scheduler.track(provider="fake", kind="video", job_id=f"j{i}", key=f"k{i}")
        await time.advance(300.0)
        lists = [ids for _, name, ids in backend.calls if name == "many"]
        # Its hit ratio (an EWMA from 1.0, x0.7 per empty answer) drops below 0.3
        # after four empty answers; until then every job rides along.
        assert [len(ids) for ids in lists[:4]] == [60] * 4
        probes = lists[4:]
        assert probes
        assert all(1 <= len(ids) <= 8 for ids in probes)
    assert scheduler.stats()["coalesced_jobs"] == sum(len(ids) for ids in lists)


async def test_429s_halve_the_poll_rate_and_good_polls_restore_it() -> None:
    """
    RELIABILITY #25: each 429 halves the provider's poll rate (AIMD, down to 1/16),
    every good poll adds 0.02 back; the pause is Retry-After plus up to 10 %
    jitter, never less.
    """
    time = FakeTime()
    backend = FakeBackend(time)
    for i in range(50):
        backend.add(f"j{i}", state=JobState.RUNNING)
    limits = {"fake": ProviderLimits(rate=10.0, burst=1)}
    async with running(backend, time=time, provider_limits=limits) as scheduler:
        for i in range(50):
            scheduler.track(provider="fake", kind="video", job_id=f"j{i}", key=f"k{i}")
        backend.errors.extend(RateLimited("busy", retry_after=10.0) for _ in range(3))
        await time.run_until(lambda: len(backend.rate_limited_at) == 3, limit=100.0, step=0.5)
        assert scheduler.stats()["providers"]["fake"]["rate_factor"] == pytest.approx(1 / 8)
        # Jitter with FixedRandom(0.5) makes each pause 10 x 1.05 s: nothing starts inside.
        for answered, _ in backend.rate_limited_at:
            later = [t for t, _, _ in backend.calls if t > answered]
            assert not later or min(later) >= answered + 10.5
        last = backend.rate_limited_at[-1][0]
        await time.advance_to(last + 10.5 + 4.0)
        after = [t for t, _, _ in backend.calls if t > last]
        assert len(after) <= 10  # 4 s at the full rate would be 40 polls
        good = len(after)
        factor = scheduler.stats()["providers"]["fake"]["rate_factor"]
        assert factor == pytest.approx(1 / 8 + 0.02 * good)
        await time.advance(120.0)
        assert scheduler.stats()["providers"]["fake"]["rate_factor"] == 1.0


async def test_an_empty_retry_budget_slows_retries_to_the_cadence() -> None:
    """
    RELIABILITY #24/#31: with the breaker out of the way, 1,000 failing jobs drain
    the shared retry budget; from then on failed polls wait a full cadence
    step instead of a quick retry, and still no job fails.
    """
    time = FakeTime()
    backend = FakeBackend(time)
    for i in range(1000):
        backend.add(f"j{i}", state=JobState.RUNNING)
    backend.down = ServerError("503", status_code=503)
    limits = {"fake": ProviderLimits(rate=1000.0, burst=1000, concurrency=50)}
    async with running(
        backend, time=time, provider_limits=limits, breaker_threshold=1_000_000
    ) as scheduler:
        handles = [
            scheduler.track(provider="fake", kind="video", job_id=f"j{i}", key=f"k{i}")
            for i in range(1000)
        ]
        await time.advance(3.0)
        assert scheduler.stats()["providers"]["fake"]["retry_tokens"] < 5  # 500 / 5 per retry
        calls = len(backend.calls)
        await time.advance(7.0)
        # Quick retries (0.5 s doubling) would poll each job again within seconds;
        # with the budget dry the next try is 7.5-15 s away.
        assert len(backend.calls) - calls < 150
        assert not any(h.done() for h in handles)


async def test_updates_of_every_job_end_with_the_scheduler_and_restart_with_it() -> None:
    """
    ``Scheduler.updates()``: every tracked job's changes, with the provider;
    the stream ends when the scheduler stops, and a scheduler entered again
    gives working streams again.
    """
    time = FakeTime()
    backend = FakeBackend(time)
    scheduler = Scheduler(
        backends={"fake": backend},
        clock=time.clock,
        sleep=time.sleep,
        poll_policy=STEADY,
        rng=FixedRandom(0.5),
    )
    for running_, queued in (("a1", "a2"), ("b1", "b2")):
        backend.add(running_, state=JobState.RUNNING, raw_status="working")
        backend.add(queued, state=JobState.QUEUED, raw_status="queued")
        with anyio.fail_after(10):
            async with scheduler:
                stream = scheduler.updates()
                for job_id in (running_, queued):
                    scheduler.track(provider="fake", kind="video", job_id=job_id, key=job_id)
                await time.advance(2.0)
                first = [await stream.__anext__(), await stream.__anext__()]
                assert {(u.job_id, u.provider, u.state) for u in first} == {
                    (running_, "fake", JobState.RUNNING),
                    (queued, "fake", JobState.QUEUED),
                }
                backend.set(queued, state=JobState.SUCCEEDED, raw_status="done")
                await time.advance(5.0)
                done = await stream.__anext__()
                assert (done.job_id, done.state) == (queued, JobState.SUCCEEDED)
            assert [u async for u in stream] == []  # stopped: the stream ended
            assert [u async for u in scheduler.updates()] == []  # a new one ends at once


async def test_an_updates_stream_left_by_a_break_stops_buffering() -> None:
    """
    A service reads ``updates()`` until it sees what it wants and breaks out
    of the loop without ``aclose()``: the stream unsubscribes itself once
    dropped, instead of buffering every later update of every job for ever.
    A stream still held keeps every update.
    """
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("j1")
    async with running(backend, time=time) as scheduler:
        kept, left = scheduler.updates(), scheduler.updates()
        scheduler.track(provider="fake", kind="video", job_id="j1", key="k1")
        await time.advance(2.0)
        assert len(scheduler._watchers) == 2
        async for update in left:
            assert update.job_id == "j1"
            break  # no aclose()
        del left  # the service's loop variable goes out of scope
        gc.collect()
        assert len(scheduler._watchers) == 1  # only `kept`
        backend.set("j1", state=JobState.RUNNING, raw_status="running")
        await time.advance(3.0)
        seen = [await anext(kept), await anext(kept)]
        assert [u.state for u in seen] == [JobState.QUEUED, JobState.RUNNING]


async def test_every_ending_reaches_the_update_streams_with_its_outcome() -> None:
    """
    A dashboard on ``updates()`` sees how every job ended, not only the endings
    the provider reported: a deadline, a local cancel and a 404 each send a
    last update with the handle's outcome (and the last state the provider
    reported); a provider's final state carries its outcome too.
    """
    time = FakeTime()
    backend = FakeBackend(time)
    backend.add("done", state=JobState.RUNNING)
    backend.add("slow", state=JobState.RUNNING, progress=0.4)
    backend.add("dropped", state=JobState.RUNNING)
    backend.add("gone", state=JobState.RUNNING, visible=False)
    policy = PollPolicy(
        initial=2.0, cap=15.0, jitter=False, deadline=100.0, stuck_after=None, not_found_grace=5.0
    )
    async with running(backend, time=time, poll_policy=policy) as scheduler:
        everything = scheduler.updates()
        handles = {
            job_id: scheduler.track(provider="fake", kind="video", job_id=job_id, key=job_id)
            for job_id in ("done", "slow", "dropped", "gone")
        }
        own = handles["slow"].updates()
        await time.advance(3.0)
        await handles["dropped"].cancel()
        backend.set("done", state=JobState.SUCCEEDED, raw_status="done")
        await time.advance(120.0)
        assert all(h.done() for h in handles.values())
        seen: dict[str, list[tuple[str, str | None]]] = {}
        while (update := await _next_or_none(everything)) is not None:  # what is buffered
            seen.setdefault(update.job_id, []).append((update.state.value, update.outcome))
        assert seen["done"][-1] == ("succeeded", "succeeded")
        assert seen["slow"][-1] == ("running", "timed_out")
        assert seen["dropped"][-1] == ("running", "cancelled")
        assert seen["gone"] == [("queued", "not_found")]  # never answered
        assert all(o is None for updates in seen.values() for _, o in updates[:-1])
        last = [u async for u in own][-1]
        assert (last.state, last.progress, last.outcome) == (JobState.RUNNING, 0.4, "timed_out")


async def _next_or_none(stream: Any) -> Any:
    """The next buffered update, or ``None`` when nothing is waiting."""
    with anyio.move_on_after(0):
        return await anext(stream)
    return None


def test_a_pause_ending_within_the_early_horizon_does_not_spin() -> None:
    """
    Real time, where jobs due within the next millisecond are taken in the same
    wake-up: a job due while its provider's pause ends within that millisecond
    is put back once, at the pause end, not popped again and again (the demo
    once hung the event loop there).
    """
    scheduler = Scheduler(backends={"fake": FakeBackend(FakeTime())})  # the real clock
    handle = scheduler.track(provider="fake", kind="video", job_id="j1", key="k1")
    due: float = handle._s_due
    provider = scheduler._providers["fake"]
    provider.paused_until = due + 0.0005  # ends inside the 1 ms early horizon
    calls: list[float] = []
    schedule = scheduler._schedule

    def counted(job: JobHandle, at: float) -> None:
        calls.append(at)
        assert len(calls) < 100, "the same job was rescheduled in a loop"
        schedule(job, at)

    scheduler._schedule = counted  # type: ignore[method-assign, assignment]
    scheduler._pop_due(due)
    assert calls == [provider.paused_until]
    phases = [handle._s_phase]
    scheduler._pop_due(provider.paused_until)  # the pause is over: ready to poll
    phases.append(handle._s_phase)
    assert phases == [_Phase.SCHEDULED, _Phase.READY]
