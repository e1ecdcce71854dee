"""
Orchestrator: at-most-once create over real loopback (RELIABILITY #1-#12, #23),
recovery, batch helpers. The provider is the in-test fake of ``_fake_provider``.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aivideo_async._config import PollPolicy
from aivideo_async._exceptions import (
    BadRequest,
    InvalidInput,
    JobFailed,
    RateLimited,
    SubmissionNotSent,
    SubmissionOutcomeUnknown,
)
from aivideo_async._models import JobResult
from aivideo_async.jobs._handle import JobHandle
from aivideo_async.jobs._journal import (
    JobOutcome,
    Journal,
    JournalEntry,
    MemoryJournal,
    SQLiteJournal,
    SubmissionState,
)
from aivideo_async.jobs._orchestrator import Orchestrator, ReconcileOutcome
from aivideo_async.jobs._scheduler import ProviderLimits
from aivideo_async.providers._base import JobSpec

from ._fake_provider import (
    API_KEY,
    BAD_REQUEST,
    DROP,
    HTML,
    RATE_LIMIT,
    SERVER_ERROR,
    STALL,
    TRUNCATE,
    FakeBackend,
    FakeProvider,
    fingerprint,
    spec,
)

S = SubmissionState
FAST = PollPolicy(initial=1.0, factor=1.5, cap=2.0, deadline=None, stuck_after=None)


class FakeTime:
    """Virtual time: sleeping advances the clock at once (and is recorded)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


class ObservedJournal(MemoryJournal):
    """A memory journal that lets a test wait for the n-th recorded outcome."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes = 0
        self._changed = anyio.Event()

    async def record_outcome(self, key: str, outcome: JobOutcome, **kw: Any) -> JournalEntry:
        entry = await super().record_outcome(key, outcome, **kw)
        self.outcomes += 1
        self._changed.set()
        self._changed = anyio.Event()
        return entry

    async def wait_outcomes(self, n: int) -> None:
        while self.outcomes < n:
            await self._changed.wait()


@pytest.fixture(name="fake")
async def _fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider().running() as fake:
        yield fake


@pytest.fixture(name="backend")
async def _backend(fake: FakeProvider) -> AsyncIterator[FakeBackend]:
    async with FakeBackend(fake.base_url) as backend:
        yield backend


@pytest.fixture(name="vt")
def _vt() -> FakeTime:
    return FakeTime()


def orchestrator(
    backend: Any, vt: FakeTime, journal: Journal | str | Path | None = None, **kw: Any
) -> Orchestrator:
    return Orchestrator(
        journal=journal,
        backends=[backend],
        poll_policy=FAST,
        clock=vt.clock,
        sleep=vt.sleep,
        **kw,
    )


async def entry_of(orch: Orchestrator, key: str) -> JournalEntry:
    got = await orch.journal.get(key)
    assert got is not None
    return got


# ---------------------------------------------------------------------------
# The happy path and idempotent keys


@pytest.mark.anyio
async def test_submit_sends_once_journals_and_tracks(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    """RELIABILITY #11: accepted(job_id) is journaled before submit returns; one create."""
    journal = ObservedJournal()
    async with orchestrator(backend, vt, journal) as orch:
        handle = await orch.submit(spec(1), key="row-1")
        accepted = await entry_of(orch, "row-1")  # durable before submit returned
        assert accepted.state is S.ACCEPTED
        assert accepted.job_id == handle.job_id == "job-00001"
        assert accepted.payload_hash == fingerprint(spec(1).payload)
        result = await handle
        assert result.url == "https://cdn.example/job-00001.mp4?sig=SIGNED"
        await journal.wait_outcomes(1)
        done = await entry_of(orch, "row-1")
        assert done.outcome is JobOutcome.SUCCEEDED
        assert done.result_url == "https://cdn.example/job-00001.mp4"  # no signature stored
    assert fake.create_requests == fake.creates == 1


@pytest.mark.anyio
async def test_same_key_returns_the_existing_handle_without_a_call(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    """RELIABILITY #23: 20 concurrent submits of one key: one create, one handle."""
    async with orchestrator(backend, vt) as orch:
        results = []

        async def submit() -> None:
            results.append(await orch.submit(spec(1), key="row-1"))

        async with anyio.create_task_group() as tg:  # RELIABILITY #23: concurrent duplicates
            for _ in range(20):
                tg.start_soon(submit)
        assert {h.job_id for h in results} == {"job-00001"}
        assert len({id(h) for h in results}) == 1
        assert orch.stats()["existing"] == 19
    assert fake.create_requests == 1


@pytest.mark.anyio
async def test_finished_key_answers_from_the_journal_after_a_restart(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime, tmp_path: Path
) -> None:
    """RELIABILITY #23: a re-run answers finished keys from the journal, no call."""
    path = tmp_path / "jobs.sqlite"
    async with orchestrator(backend, vt, path) as orch:
        await (await orch.submit(spec(1), key="ok"))
        with pytest.raises(JobFailed):
            await (await orch.submit(spec(2, fail=True), key="bad"))
    async with orchestrator(backend, vt, path) as orch:  # a re-run of the same script
        ok = await orch.submit(spec(1), key="ok")
        bad = await orch.submit(spec(2, fail=True), key="bad")
        assert ok.done()
        assert bad.done()
        assert (await ok).job_id == "job-00001"
        with pytest.raises(JobFailed, match="face not detected"):
            await bad
    assert fake.create_requests == 2
    assert fake.polls == 2  # nothing polled again either


@pytest.mark.anyio
async def test_key_reused_for_another_request_is_refused(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    async with orchestrator(backend, vt) as orch:
        await orch.submit(spec(1), key="row-1")
        with pytest.raises(InvalidInput, match="different request"):
            await orch.submit(spec(2), key="row-1")
        moved = JobSpec(
            provider="fake",
            kind="video",
            method="POST",
            path="/v2/jobs",
            payload=dict(spec(1).payload),
        )
        with pytest.raises(InvalidInput, match="different request"):
            await orch.submit(moved, key="row-1")
    assert fake.create_requests == 1


@pytest.mark.anyio
async def test_default_key_is_a_fresh_uuid(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    async with orchestrator(backend, vt) as orch:
        a = await orch.submit(spec(1))
        b = await orch.submit(spec(1))
        results = await orch.gather([a, b])
    assert results[0].job_id != results[1].job_id
    assert a.key != b.key
    assert len(a.key) == 32
    assert fake.creates == 2  # without your own key, a re-run creates again (documented)


@pytest.mark.anyio
async def test_bad_arguments(backend: FakeBackend, vt: FakeTime) -> None:
    async with orchestrator(backend, vt) as orch:
        with pytest.raises(InvalidInput, match="key"):
            await orch.submit(spec(1), key="")
        with pytest.raises(InvalidInput, match="key"):
            await orch.submit(spec(1), key="x" * 256)
        with pytest.raises(InvalidInput, match=r"spec\.provider"):
            await orch.submit(spec(1, provider="nope"), key="k")
        with pytest.raises(InvalidInput, match="one backend per provider"):
            orch.register(FakeBackend(backend.session.base_url))
    with pytest.raises(RuntimeError, match="not running"):
        await orch.submit(spec(1), key="k")
    with pytest.raises(InvalidInput, match="journal"):
        Orchestrator(journal=42)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_backend_registered_inside_async_with_takes_submits(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    """register() after entering: the new provider's job is created once and polled to its end."""
    async with (
        orchestrator(backend, vt) as orch,
        FakeBackend(fake.base_url, provider="other") as other,
    ):
        with pytest.raises(InvalidInput, match="registered provider"):
            await orch.submit(spec(1, provider="other"), key="early")
        orch.register(other)
        orch.register(other)  # the same backend again: nothing changes
        handle = await orch.submit(spec(1, provider="other"), key="late")
        result = await handle
        assert (handle.provider, result.job_id) == ("other", handle.job_id)
        assert orch.scheduler.stats()["providers"]["other"]["in_flight"] == 0
    assert fake.creates == 1


@pytest.mark.anyio
async def test_limits_of_a_provider_registered_later_apply_when_it_is(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    """provider_limits may name a provider whose client comes later: its budget applies then."""
    slow = ProviderLimits(rate=2.0, burst=1, concurrency=1)
    async with (
        orchestrator(backend, vt, provider_limits={"other": slow}) as orch,
        FakeBackend(fake.base_url, provider="other") as other,
    ):
        assert "other" not in orch.scheduler.stats()["providers"]
        orch.register(other)
        assert orch.scheduler.stats()["providers"]["other"]["limits"] == slow
        assert orch.scheduler.stats()["providers"]["fake"]["limits"] == ProviderLimits()
        assert (await (await orch.submit(spec(1, provider="other"), key="k"))).job_id


# ---------------------------------------------------------------------------
# Ambiguous outcomes: exactly one create reaches the provider, the journal says unknown


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (DROP, "RemoteDisconnected"),  # RELIABILITY #3
        (STALL, "ReadTimeout"),  # #1, #5
        (TRUNCATE, "RemoteDisconnected"),  # #4
        (SERVER_ERROR, "ServerError"),  # #17
        (HTML, "UnexpectedContentType"),  # #19
    ],
)
@pytest.mark.anyio
async def test_ambiguous_create_is_unknown_and_never_resent(
    fake: FakeProvider, vt: FakeTime, fault: str, cause: str
) -> None:
    """RELIABILITY #1, #3, #4, #17, #19: stall (read timeout), close without an
    answer, truncated 200, 502 after commit, HTML 200: unknown, one create, never resent.
    """
    fake.faults.append(fault)
    async with (
        FakeBackend(fake.base_url, read_timeout=0.2) as backend,
        orchestrator(backend, vt) as orch,
    ):
        with pytest.raises(SubmissionOutcomeUnknown) as info:
            await orch.submit(spec(1), key="row-1")
        assert info.value.key == "row-1"
        assert info.value.endpoint == "POST /v1/jobs"
        assert info.value.elapsed is not None
        assert type(info.value.__cause__).__name__ == cause
        entry = await entry_of(orch, "row-1")
        assert entry.state is S.UNKNOWN
        assert entry.error is not None
        assert entry.error.type == cause
        # Submitting the key again answers from the journal: no second create.
        with pytest.raises(SubmissionOutcomeUnknown):
            await orch.submit(spec(1), key="row-1")
        assert orch.stats()["creates"] == 1
    assert fake.create_requests == 1
    assert fake.creates == 1  # the provider did create it
    assert fake.duplicates() == 0


@pytest.mark.anyio
async def test_cancellation_mid_create_is_journaled_unknown(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    """RELIABILITY #9: cancelled mid-create: unknown written under a shield, re-raised."""
    fake.faults.append(STALL)
    async with orchestrator(backend, vt) as orch:
        async with anyio.create_task_group() as tg:

            async def submit() -> None:
                await orch.submit(spec(1), key="row-1")

            tg.start_soon(submit)
            await fake.committed.wait()  # the provider has the job; the answer is pending
            tg.cancel_scope.cancel()
        entry = await entry_of(orch, "row-1")
        assert entry.state is S.UNKNOWN  # written under a shield (RELIABILITY #9)
        assert entry.error is not None
        assert entry.error.type == "CancelledError"
        with pytest.raises(SubmissionOutcomeUnknown):
            await orch.submit(spec(1), key="row-1")
    assert fake.create_requests == 1


# ---------------------------------------------------------------------------
# Definite answers


@pytest.mark.anyio
async def test_rejection_is_journaled_and_re_raised_without_a_call(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    """RELIABILITY #15: a 400 validation error is BadRequest, rejected, never retried."""
    fake.faults.append(BAD_REQUEST)
    async with orchestrator(backend, vt) as orch:
        with pytest.raises(BadRequest, match="avatarId"):
            await orch.submit(spec(1), key="row-1")
        entry = await entry_of(orch, "row-1")
        assert entry.state is S.REJECTED
        assert entry.error is not None
        assert (entry.error.type, entry.error.status_code) == ("BadRequest", 400)
        with pytest.raises(BadRequest, match="avatarId") as again:
            await orch.submit(spec(1), key="row-1")
        assert again.value.status_code == 400
    assert fake.create_requests == 1


@pytest.mark.anyio
async def test_429_on_create_waits_and_sends_attempt_two_once(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    """RELIABILITY #12: 429 -> provider paused, wait Retry-After, attempt 2 once."""
    fake.faults.append(RATE_LIMIT)  # Retry-After: 45
    async with orchestrator(backend, vt) as orch:
        handle = await orch.submit(spec(1), key="row-1")
        assert handle.job_id == "job-00001"
        assert 45.0 in vt.sleeps
        assert orch.scheduler.stats()["pauses"] >= 1  # the provider's polls paused too
        entry = await entry_of(orch, "row-1")
        assert (entry.state, entry.attempt) == (S.ACCEPTED, 2)
        assert entry.error is not None
        assert entry.error.type == "RateLimited"  # what happened to attempt 1
    assert fake.create_requests == 2
    assert fake.creates == 1


@pytest.mark.anyio
async def test_429_wait_is_at_least_30_s(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    """RELIABILITY #12: the wait after a 429 is max(Retry-After, 30 s)."""
    fake.retry_after = "2"
    fake.faults.append(RATE_LIMIT)
    async with orchestrator(backend, vt) as orch:
        await orch.submit(spec(1), key="row-1")
    assert 30.0 in vt.sleeps


@pytest.mark.anyio
async def test_second_429_raises_rate_limited(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    """RELIABILITY #12: a second 429 raises RateLimited(retry_after); no third call."""
    fake.faults.extend([RATE_LIMIT, RATE_LIMIT])
    async with orchestrator(backend, vt) as orch:
        with pytest.raises(RateLimited) as info:
            await orch.submit(spec(1), key="row-1")
        assert info.value.retry_after == 45.0
        entry = await entry_of(orch, "row-1")
        assert (entry.state, entry.attempt) == (S.REJECTED, 2)
        with pytest.raises(RateLimited):  # recorded: no third call
            await orch.submit(spec(1), key="row-1")
    assert fake.create_requests == 2
    assert fake.creates == 0


@pytest.mark.anyio
async def test_429_with_a_huge_retry_after_raises_at_once(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    """RELIABILITY #12, #13: a Retry-After over the maximum wait is raised, not slept."""
    fake.retry_after = "120"
    fake.faults.append(RATE_LIMIT)
    async with orchestrator(backend, vt, rate_limit_max_wait=60.0) as orch:
        with pytest.raises(RateLimited):
            await orch.submit(spec(1), key="row-1")
    assert 120.0 not in vt.sleeps
    assert fake.create_requests == 1


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens: connection refused


@pytest.mark.anyio
async def test_not_sent_is_journaled_and_not_resent_by_default(vt: FakeTime) -> None:
    """RELIABILITY #6: refused connection -> not_sent, SubmissionNotSent, no resend."""
    async with FakeBackend(closed_port_url()) as backend, orchestrator(backend, vt) as orch:
        with pytest.raises(SubmissionNotSent) as info:
            await orch.submit(spec(1), key="row-1")
        assert type(info.value.__cause__).__name__ == "ConnectError"
        entry = await entry_of(orch, "row-1")
        assert (entry.state, entry.attempt) == (S.NOT_SENT, 1)
        with pytest.raises(SubmissionNotSent, match="resubmit_not_sent"):
            await orch.submit(spec(1), key="row-1")
        assert orch.stats()["creates"] == 1


@pytest.mark.anyio
async def test_not_sent_resubmitted_only_with_the_policy(vt: FakeTime) -> None:
    """RELIABILITY #6: resubmitting not_sent is a new journaled attempt, by policy only."""
    async with (
        FakeBackend(closed_port_url()) as backend,
        orchestrator(backend, vt, resubmit_not_sent=True, not_sent_attempts=3) as orch,
    ):
        with pytest.raises(SubmissionNotSent):
            await orch.submit(spec(1), key="row-1")
        assert orch.stats()["creates"] == 3
        assert (await entry_of(orch, "row-1")).attempt == 3
        with pytest.raises(SubmissionNotSent):  # a later submit: new journaled attempts
            await orch.submit(spec(1), key="row-1")
        assert orch.stats()["creates"] == 6
        assert (await entry_of(orch, "row-1")).attempt == 6


# ---------------------------------------------------------------------------
# Recovery


@pytest.mark.anyio
async def test_resume_reattaches_accepted_and_turns_sending_into_unknown(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime, tmp_path: Path
) -> None:
    """RELIABILITY #10: an entry left sending becomes unknown on resume; never resent."""
    path = tmp_path / "jobs.sqlite"
    # A previous process: one job accepted but unfinished, one create cut off mid-flight.
    async with SQLiteJournal(path) as journal:
        job_id = await backend.create(spec(1))
        await journal.add(JournalEntry.planned(spec(1), key="accepted", now=1.0))
        await journal.transition("accepted", S.SENDING)
        await journal.transition("accepted", S.ACCEPTED, job_id=job_id)
        await journal.add(JournalEntry.planned(spec(2), key="in-flight", now=2.0))
        await journal.transition("in-flight", S.SENDING)
    requests_before = fake.create_requests
    async with orchestrator(backend, vt, path) as orch:
        handles = await orch.resume()
        assert [(h.key, h.job_id) for h in handles] == [("accepted", job_id)]
        assert (await entry_of(orch, "in-flight")).state is S.UNKNOWN  # RELIABILITY #10
        results = await orch.gather(handles)
        assert [r.job_id for r in results] == [job_id]
        with pytest.raises(SubmissionOutcomeUnknown):
            await orch.submit(spec(2), key="in-flight")
    assert fake.create_requests == requests_before  # resume never creates


@pytest.mark.anyio
async def test_reconcile_finds_lost_creates_by_match_tag(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    fake.faults.extend([DROP, DROP, BAD_REQUEST, DROP])
    async with orchestrator(backend, vt) as orch:
        for n, key in [(1, "lost"), (2, "untagged")]:
            with pytest.raises(SubmissionOutcomeUnknown):
                await orch.submit(spec(n, tag=(n == 1)), key=key)
        with pytest.raises(BadRequest):
            await orch.submit(spec(3), key="rejected")
        # Same tag as "lost" but another request: must not steal its job.
        twin = JobSpec(
            provider="fake",
            kind="video",
            method="POST",
            path="/v1/jobs",
            payload={"prompt": "twin", "tag": "t1"},
            match_tag="t1",
        )
        with pytest.raises(SubmissionOutcomeUnknown):
            await orch.submit(twin, key="twin")
        results = {r.key: r for r in await orch.reconcile()}
        assert set(results) == {"lost", "untagged", "twin"}
        assert results["lost"].outcome is ReconcileOutcome.FOUND
        assert results["lost"].job_id == "job-00001"
        assert results["untagged"].outcome is ReconcileOutcome.NOT_FOUND
        assert results["twin"].outcome is ReconcileOutcome.CONFLICT
        assert (await entry_of(orch, "lost")).state is S.ACCEPTED
        assert (await entry_of(orch, "twin")).state is S.UNKNOWN
        handle = results["lost"].handle
        assert handle is not None
        assert (await handle).job_id == "job-00001"
        # Now the key answers with the found job, still without a create.
        assert (await orch.submit(spec(1), key="lost")).job_id == "job-00001"
    assert fake.create_requests == 4


# ---------------------------------------------------------------------------
# Batch helpers


@pytest.mark.anyio
async def test_as_completed_and_gather(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    async with orchestrator(backend, vt) as orch:
        handles = [await orch.submit(spec(n, fail=(n == 2)), key=f"k{n}") for n in range(5)]
        seen = [h async for h in orch.as_completed(handles)]
        assert sorted(h.key for h in seen) == [f"k{n}" for n in range(5)]
        assert all(h.done() for h in seen)
        mixed = await orch.gather([*handles, handles[0]], return_exceptions=True)
        assert len(mixed) == 6
        assert isinstance(mixed[2], JobFailed)
        assert [type(r) for i, r in enumerate(mixed) if i != 2] == [JobResult] * 5
        assert mixed[5] == mixed[0]
        with pytest.raises(JobFailed):
            await orch.gather(handles)
        assert await orch.gather([]) == []


@pytest.mark.anyio
async def test_jobs_queries_the_journal(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime
) -> None:
    fake.faults.extend(["ok", DROP])
    async with orchestrator(backend, vt) as orch:
        await orch.submit(spec(1), key="a")
        with pytest.raises(SubmissionOutcomeUnknown):
            await orch.submit(spec(2), key="b")
        assert [e.key for e in await orch.jobs()] == ["a", "b"]
        assert [e.key for e in await orch.jobs(state=S.UNKNOWN)] == ["b"]
        assert [e.key for e in await orch.jobs(unfinished=True)] == ["a"]


# ---------------------------------------------------------------------------
# The journal on disk


@pytest.mark.anyio
async def test_no_secret_reaches_the_journal_file(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime, tmp_path: Path
) -> None:
    """RELIABILITY #39: neither the key nor a signed URL's query reaches the journal file."""
    fake.faults.extend(["ok", DROP, BAD_REQUEST, SERVER_ERROR, HTML])
    async with orchestrator(backend, vt, tmp_path / "jobs.sqlite") as orch:
        handle = await orch.submit(spec(0), key="k0")
        for n in range(1, 5):
            with pytest.raises((SubmissionOutcomeUnknown, BadRequest)):
                await orch.submit(spec(n), key=f"k{n}")
        await handle
    assert fake.seen_auth == {API_KEY}  # the key really was on the wire
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())  # noqa: ASYNC240
    assert b"llama number 3" in raw  # the payloads are there (store_payload="full")
    assert API_KEY.encode() not in raw
    assert b"TOPSECRET" not in raw
    assert b"SIGNED" not in raw  # nor the signed result URL's query


@pytest.mark.anyio
async def test_concurrent_submits_share_commits(
    fake: FakeProvider, backend: FakeBackend, vt: FakeTime, tmp_path: Path
) -> None:
    n = 60
    journal = SQLiteJournal(tmp_path / "jobs.sqlite")
    async with orchestrator(backend, vt, journal) as orch:

        async def submit(i: int) -> None:
            await orch.submit(spec(i), key=f"k{i}")

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(submit, i)
        stats = journal.stats()
        assert len(await orch.jobs(state=S.ACCEPTED)) == n
    await journal.aclose()  # given as an object: ours to close
    assert fake.creates == n
    assert stats["durable_commits"] < n  # 2n durable boundaries, far fewer fsyncs


@pytest.mark.anyio
async def test_journal_argument_forms(backend: FakeBackend, vt: FakeTime, tmp_path: Path) -> None:
    assert isinstance(Orchestrator().journal, MemoryJournal)
    orch = Orchestrator(journal=tmp_path / "j.sqlite", store_payload="hash")
    assert isinstance(orch.journal, SQLiteJournal)
    assert orch.journal.store_payload == "hash"
    assert "stopped" in repr(orch)
    handle = JobHandle.resolved(
        provider="fake",
        kind="video",
        job_id="j",
        key="k",
        result=JobResult(provider="fake", kind="video", job_id="j"),
    )
    assert [h async for h in orch.as_completed([handle])] == [handle]
