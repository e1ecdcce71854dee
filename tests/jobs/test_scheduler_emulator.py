"""
The scheduler with real provider clients against the emulator (loopback HTTP).

Real time runs here (the emulator's jobs take a fraction of a second); what is
checked is behaviour, never a duration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anyio
import pytest

from aivideo_async._config import PollPolicy, RetryPolicy
from aivideo_async._exceptions import RateLimited
from aivideo_async._models import JobStatus
from aivideo_async._types import monotonic_clock
from aivideo_async.emulator import EmulatorConfig, FaultRule, run_emulator
from aivideo_async.jobs._handle import JobHandle
from aivideo_async.jobs._scheduler import ProviderLimits, Scheduler
from aivideo_async.providers._base import JobSpec
from aivideo_async.providers.miraflow import Miraflow

pytestmark = pytest.mark.anyio

FAST = PollPolicy(initial=0.1, factor=1.5, cap=0.3, deadline=60.0, not_found_grace=5.0)


class Recorded:
    """The real client, with every poll's start, end and outcome written down."""

    def __init__(self, inner: Miraflow) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.polls: list[tuple[float, float, str]] = []  # (start, end, "ok" | "429" | error)

    async def create(self, spec: JobSpec) -> str:
        return await self.inner.create(spec)

    async def poll(self, kind: str, job_id: str) -> JobStatus:
        start = monotonic_clock()
        try:
            status = await self.inner.poll(kind, job_id)
        except RateLimited:
            self.polls.append((start, monotonic_clock(), "429"))
            raise
        except Exception as exc:
            self.polls.append((start, monotonic_clock(), type(exc).__name__))
            raise
        self.polls.append((start, monotonic_clock(), "ok"))
        return status

    async def poll_many(self, kind: str, job_ids: Sequence[str]) -> Mapping[str, JobStatus] | None:
        return None  # single polls only: every status request is a recorded poll

    def supports_cancel(self, kind: str) -> bool:
        return False

    async def cancel(self, kind: str, job_id: str) -> None:
        raise NotImplementedError

    async def find_submission(self, spec: JobSpec, *, since: float) -> str | None:
        return None


async def test_a_429_storm_pauses_the_provider_and_no_job_fails() -> None:
    """RELIABILITY #25: 5 answers of 429 (Retry-After: 1) pause polls; all 20 jobs finish."""
    storm = FaultRule(
        endpoint="miraflow.status", kind="rate_limit", times=5, params={"retry_after": 1}
    )
    config = EmulatorConfig(seed=3, time_scale=1.0, job_duration=(0.3, 0.8), faults=[storm])
    async with (
        run_emulator(config) as emu,
        # No retries in the session layer: every 429 reaches the scheduler.
        Miraflow("key-1", base_url=emu.base_url, retry=RetryPolicy(attempts=1)) as mira,
    ):
        avatar = (await mira.list_avatars())[0].id
        backend = Recorded(mira)
        limits = {"miraflow": ProviderLimits(rate=50.0, burst=10, concurrency=8)}
        async with Scheduler(
            backends={"miraflow": backend}, poll_policy=FAST, provider_limits=limits
        ) as scheduler:
            handles: list[JobHandle] = []
            for i in range(20):
                spec = mira.video(avatar_id=avatar, name=f"v{i}", text="hi", key=f"row-{i}")
                job_id = await mira.create(spec)
                handles.append(
                    scheduler.track(
                        provider="miraflow", kind="video", job_id=job_id, key=f"row-{i}"
                    )
                )
            with anyio.fail_after(60):
                results = [await h for h in handles]
            stats = scheduler.stats()
        fired = emu.stats()["faults_fired"]
    assert len(results) == 20
    assert all(h.handle_status is JobHandle.Status.SUCCEEDED for h in handles)
    assert fired.get("rate_limit") == 5
    answered_429 = [end for _, end, outcome in backend.polls if outcome == "429"]
    assert len(answered_429) == 5
    assert stats["rate_limited"] == 5
    assert {outcome for _, _, outcome in backend.polls} == {"ok", "429"}
    # Paused means paused: no poll of this provider starts within Retry-After
    # of a 429 answer (polls already in flight may still come back).
    for answered in answered_429:
        early = [start for start, _, _ in backend.polls if answered < start < answered + 1.0]
        assert early == [], (answered, early)
