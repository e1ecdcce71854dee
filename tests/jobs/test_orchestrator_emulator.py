"""
At most once against the emulator with the real Miraflow and AIVideoMaker clients:
for every create fault exactly one create reaches the emulator per submit (its
stats) and the journal says what happened (RELIABILITY #1-#5, #9, #17, #19).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aivideo_async._config import Limits, PollPolicy, Timeouts
from aivideo_async._exceptions import (
    InvalidInput,
    RateLimited,
    SubmissionNotSent,
    SubmissionOutcomeUnknown,
)
from aivideo_async._models import JobState
from aivideo_async.emulator import Emulator, EmulatorConfig, FaultRule, run_emulator
from aivideo_async.jobs._handle import JobHandle
from aivideo_async.jobs._journal import JournalEntry, SubmissionState
from aivideo_async.jobs._orchestrator import Orchestrator, ReconcileOutcome
from aivideo_async.providers._base import JobBackend, JobSpec
from aivideo_async.providers.aivideomaker import AIVideoMaker
from aivideo_async.providers.miraflow import Miraflow

S = SubmissionState
POLL = PollPolicy(initial=0.02, factor=1.5, cap=0.1, deadline=30.0, stuck_after=None)
# A stalled create is cut off by the read timeout: real time is what is under test.
CREATE_TIMEOUTS = Timeouts(connect=1.0, read=0.4, total=2.0)
AVATAR = "cmavatarstock0000000000001"

FAULTS: list[tuple[str, dict[str, Any], str]] = [
    ("drop_after_commit", {}, "RemoteDisconnected"),  # RELIABILITY #3
    ("stall_after_commit", {"seconds": 30}, "ReadTimeout"),  # #1
    ("truncate", {"fraction": 0.5}, "RemoteDisconnected"),  # #4
    ("server_error", {"status": 502, "commit": True}, "ServerError"),  # #17
    ("html", {"status": 200, "commit": True}, "UnexpectedContentType"),  # #19
]


def emulator_fingerprint(entry: JournalEntry) -> str:
    # The emulator's own definition (path, newline, canonical JSON), computed from
    # what the journal kept: the journal holds exactly the body that was sent.
    assert entry.payload is not None
    body = json.dumps(entry.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    path = entry.endpoint.split(" ", 1)[1]
    return hashlib.sha256(f"{path}\n{body}".encode()).hexdigest()


@pytest.fixture(name="emu")
async def _emu() -> AsyncIterator[Emulator]:
    async with run_emulator(EmulatorConfig(time_scale=0.05, aivideomaker_query_limit=0)) as emu:
        yield emu


Clients = tuple[Miraflow, AIVideoMaker]


@pytest.fixture(name="clients")
async def _clients(emu: Emulator) -> AsyncIterator[Clients]:
    async with AsyncExitStack() as stack:
        mira = await stack.enter_async_context(
            Miraflow("mf-key", base_url=emu.base_url, create_timeouts=CREATE_TIMEOUTS)
        )
        avm = await stack.enter_async_context(
            AIVideoMaker("avm-key", base_url=emu.base_url, create_timeouts=CREATE_TIMEOUTS)
        )
        yield mira, avm


def make_spec(clients: Clients, provider: str, key: str) -> JobSpec:
    mira, avm = clients
    if provider == "miraflow":
        return mira.video(avatar_id=AVATAR, name=f"video {key}", text=f"Hello {key}", key=key)
    return avm.text_to_video(prompt=f"a llama surfing, take {key}")


def backends(clients: Clients) -> list[JobBackend]:
    return [clients[0], clients[1]]


def creates(emu: Emulator, provider: str) -> int:
    return int(emu.stats()["creates"].get(provider, 0))


def on_commit(emu: Emulator) -> anyio.Event:
    """An event set when the emulator commits a create (test-side instrumentation)."""
    committed = anyio.Event()
    stats = emu.state.stats
    original = stats.on_create

    def hooked(provider: str, body: bytes, path: str) -> str:
        fingerprint = original(provider, body, path)
        committed.set()
        return fingerprint

    stats.on_create = hooked  # type: ignore[method-assign]
    return committed


@pytest.mark.parametrize("provider", ["miraflow", "aivideomaker"])
@pytest.mark.parametrize(("kind", "params", "cause"), FAULTS, ids=[f[0] for f in FAULTS])
@pytest.mark.anyio
async def test_every_create_fault_costs_exactly_one_create(
    emu: Emulator,
    clients: Clients,
    provider: str,
    kind: str,
    params: dict[str, Any],
    cause: str,
) -> None:
    """RELIABILITY #1, #3, #4, #17, #19: each create fault of the emulator (stall,
    drop, truncate, 502 and HTML after commit): one create, unknown, reconciled later.
    """
    emu.set_faults(
        [FaultRule(endpoint=f"{provider}.create", kind=kind, params=params, schedule=[1])]
    )
    async with Orchestrator(backends=backends(clients), poll_policy=POLL) as orch:
        spec = make_spec(clients, provider, "row-1")
        with pytest.raises(SubmissionOutcomeUnknown) as info:
            await orch.submit(spec, key="row-1")
        assert info.value.key == "row-1"
        assert type(info.value.__cause__).__name__ == cause
        entry = await orch.journal.get("row-1")
        assert entry is not None
        assert entry.state is S.UNKNOWN
        assert entry.error is not None
        assert entry.error.type == cause
        # The same key again: answered from the journal.
        with pytest.raises(SubmissionOutcomeUnknown):
            await orch.submit(spec, key="row-1")
        stats = emu.stats()
        assert stats["requests_by_endpoint"][f"{provider}.create"] == 1
        assert creates(emu, provider) == 1
        assert stats["creates_by_fingerprint"] == {emulator_fingerprint(entry): 1}
        assert stats["duplicate_creates"] == 0
        assert stats["faults_fired"] == {kind: 1}

        # The lost job is found again where the provider allows it (§4.1):
        # Miraflow lists completed videos by tagged name, AIVideoMaker echoes input.
        emu.advance(60)
        [result] = await orch.reconcile()
        assert result.outcome is ReconcileOutcome.FOUND, result
        assert (await orch.journal.get("row-1")).state is S.ACCEPTED  # type: ignore[union-attr]
        assert result.handle is not None
        done = await result.handle
        assert done.provider == provider
    assert creates(emu, provider) == 1


@pytest.mark.parametrize("provider", ["miraflow", "aivideomaker"])
@pytest.mark.anyio
async def test_cancellation_mid_create_is_one_create_and_unknown(
    emu: Emulator, clients: Clients, provider: str
) -> None:
    """RELIABILITY #9: the submitting task is cancelled mid-create: one create, unknown."""
    emu.set_faults(
        [
            FaultRule(
                endpoint=f"{provider}.create",
                kind="stall_after_commit",
                params={"seconds": 30},
                schedule=[1],
            )
        ]
    )
    async with Orchestrator(backends=backends(clients), poll_policy=POLL) as orch:
        spec = make_spec(clients, provider, "row-1")
        committed = on_commit(emu)
        async with anyio.create_task_group() as tg:

            async def submit() -> None:
                await orch.submit(spec, key="row-1")

            tg.start_soon(submit)
            await committed.wait()  # the provider has the job; its answer is stalled
            tg.cancel_scope.cancel()  # RELIABILITY #9: the task is cancelled mid-call
        entry = await orch.journal.get("row-1")
        assert entry is not None
        assert entry.state is S.UNKNOWN
        assert entry.error is not None
        assert entry.error.type == "CancelledError"
        with pytest.raises(SubmissionOutcomeUnknown):
            await orch.submit(spec, key="row-1")
        stats = emu.stats()
        assert stats["requests_by_endpoint"][f"{provider}.create"] == 1
        assert stats["creates_by_fingerprint"] == {emulator_fingerprint(entry): 1}


@pytest.mark.anyio
async def test_cancellation_while_waiting_for_a_connection_is_not_sent(emu: Emulator) -> None:
    """
    RELIABILITY #9 with #8: a submit cancelled while its create still waits
    for a pooled connection provably sent nothing, so the journal says
    ``not_sent`` (resubmittable by policy), not ``unknown`` (lost for good).
    A create cancelled after it got its connection stays ``unknown``.
    """
    emu.set_faults(
        [
            FaultRule(
                endpoint="miraflow.create",
                kind="stall_after_commit",
                params={"seconds": 30},
                schedule=[1],
            )
        ]
    )
    async with (
        Miraflow(
            "mf-key",
            base_url=emu.base_url,
            limits=Limits(connections=1, per_host=1),  # one connection: the 2nd create queues
            create_timeouts=Timeouts(connect=10.0, read=30.0, total=60.0),
        ) as mira,
        Orchestrator(backends=[mira], poll_policy=POLL) as orch,
    ):
        committed = on_commit(emu)

        async def submit(key: str) -> None:
            await orch.submit(
                mira.video(avatar_id=AVATAR, name=f"video {key}", text=f"Hello {key}", key=key),
                key=key,
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(submit, "holds")
            await committed.wait()  # the first create holds the only connection
            tg.start_soon(submit, "queued")
            await anyio.wait_all_tasks_blocked()  # the second waits for the pool
            tg.cancel_scope.cancel()
        holds = await orch.journal.get("holds")
        queued = await orch.journal.get("queued")
        assert holds is not None
        assert queued is not None
        assert holds.state is S.UNKNOWN
        assert queued.state is S.NOT_SENT
        assert queued.error is not None
        assert queued.error.type == "CancelledError"
        assert orch.stats()["not_sent"] == 1
        with pytest.raises(SubmissionNotSent):
            await orch.submit(
                mira.video(
                    avatar_id=AVATAR, name="video queued", text="Hello queued", key="queued"
                ),
                key="queued",
            )
    assert emu.stats()["requests_by_endpoint"]["miraflow.create"] == 1


@pytest.mark.anyio
async def test_reconcile_reads_each_list_once_for_every_lost_create(
    emu: Emulator, clients: Clients
) -> None:
    """
    Three lost creates per provider are found with one list read per provider
    (AIVideoMaker allows 60 list queries a minute: one read per lost create
    would spend them fast after a crash), each to its own job.
    """
    emu.set_faults(
        [
            FaultRule(endpoint=f"{provider}.create", kind="drop_after_commit", schedule=[1, 2, 3])
            for provider in ("miraflow", "aivideomaker")
        ]
    )
    # No poll of a found job may read a list during the test: the first comes in a minute.
    slow = PollPolicy(initial=60.0, cap=60.0, deadline=None, stuck_after=None)
    async with Orchestrator(backends=backends(clients), poll_policy=slow) as orch:
        keys = [f"{provider}-{n}" for provider in ("miraflow", "aivideomaker") for n in range(3)]
        for key in keys:
            with pytest.raises(SubmissionOutcomeUnknown):
                await orch.submit(make_spec(clients, key.split("-")[0], key), key=key)
        emu.advance(60)  # Miraflow lists finished videos only
        before = dict(emu.stats()["requests_by_endpoint"])
        results = await orch.reconcile()
        after = emu.stats()["requests_by_endpoint"]
        assert [r.key for r in results] == keys
        assert all(r.outcome is ReconcileOutcome.FOUND for r in results), results
        assert len({r.job_id for r in results}) == 6
        for provider in ("miraflow", "aivideomaker"):
            assert after[f"{provider}.list"] - before.get(f"{provider}.list", 0) == 1
        for key, result in zip(keys, results, strict=True):
            entry = await orch.journal.get(key)
            assert entry is not None
            assert (entry.state, entry.job_id) == (S.ACCEPTED, result.job_id)


@pytest.mark.anyio
async def test_a_list_read_that_fails_leaves_every_lost_create_to_a_later_reconcile(
    emu: Emulator, clients: Clients
) -> None:
    """The one list read fails: its entries are ERROR and stay unknown; a later run finds them."""
    emu.set_faults(
        [FaultRule(endpoint="aivideomaker.create", kind="drop_after_commit", schedule=[1, 2])]
    )
    slow = PollPolicy(initial=60.0, cap=60.0, deadline=None, stuck_after=None)
    async with Orchestrator(backends=backends(clients), poll_policy=slow) as orch:
        for key in ("a", "b"):
            with pytest.raises(SubmissionOutcomeUnknown):
                await orch.submit(make_spec(clients, "aivideomaker", key), key=key)
        emu.set_faults(
            [FaultRule(endpoint="aivideomaker.list", kind="server_error", params={"status": 500})]
        )
        failed = await orch.reconcile()
        assert [(r.key, r.outcome) for r in failed] == [
            ("a", ReconcileOutcome.ERROR),
            ("b", ReconcileOutcome.ERROR),
        ]
        assert failed[0].error is not None
        assert failed[0].error.startswith("ServerError")
        assert [e.key for e in await orch.jobs(state=S.UNKNOWN)] == ["a", "b"]
        emu.set_faults([])
        found = await orch.reconcile()
        assert [(r.key, r.outcome) for r in found] == [
            ("a", ReconcileOutcome.FOUND),
            ("b", ReconcileOutcome.FOUND),
        ]


@pytest.mark.anyio
async def test_many_jobs_through_both_providers(emu: Emulator, clients: Clients) -> None:
    async with Orchestrator(backends=backends(clients), poll_policy=POLL) as orch:
        handles = []
        for n in range(10):
            provider = "miraflow" if n % 2 else "aivideomaker"
            handles.append(await orch.submit(make_spec(clients, provider, f"k{n}"), key=f"k{n}"))
        results = await orch.gather(handles)
        assert [r.provider for r in results] == [h.provider for h in handles]
        again = [
            await orch.submit(make_spec(clients, h.provider, h.key), key=h.key) for h in handles
        ]
        assert [h.job_id for h in again] == [h.job_id for h in handles]
    stats = emu.stats()
    assert stats["creates"] == {"miraflow": 5, "aivideomaker": 5}
    assert stats["duplicate_creates"] == 0


class VirtualTime:
    """
    The orchestrator's and scheduler's time seam on a virtual clock: a sleep
    advances it at once (and is recorded), so a 50 s Retry-After and the
    provider pause it causes cost no real time.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.requested: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.requested.append(seconds)
        self.now += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize("provider", ["miraflow", "aivideomaker"])
@pytest.mark.anyio
async def test_429_on_create_then_attempt_two(
    emu: Emulator, clients: Clients, provider: str
) -> None:
    """RELIABILITY #12: the emulator's 429 on a create: attempt 2 once, then RateLimited."""
    # RELIABILITY #12: the emulator's 429 is answered before anything is created.
    emu.set_faults(
        [
            FaultRule(
                endpoint=f"{provider}.create",
                kind="rate_limit",
                params={"retry_after": 50},
                schedule=[1, 3, 4],
            )
        ]
    )
    vt = VirtualTime()
    # Concurrent sleepers each push the virtual clock: no deadline in virtual time.
    policy = PollPolicy(initial=0.02, factor=1.5, cap=0.1, deadline=None, stuck_after=None)
    async with Orchestrator(
        backends=backends(clients), poll_policy=policy, clock=vt.clock, sleep=vt.sleep
    ) as orch:
        handle = await orch.submit(make_spec(clients, provider, "a"), key="a")
        assert 50.0 in vt.requested
        assert orch.scheduler.stats()["pauses"] >= 1
        entry = await orch.journal.get("a")
        assert entry is not None
        assert (entry.state, entry.attempt) == (S.ACCEPTED, 2)
        assert (await handle).job_id == handle.job_id
        # Requests 3 and 4 are 429 too: the second 429 of one submit raises.
        with pytest.raises(RateLimited):
            await orch.submit(make_spec(clients, provider, "b"), key="b")
        rejected = await orch.journal.get("b")
        assert rejected is not None
        assert (rejected.state, rejected.attempt) == (S.REJECTED, 2)
    stats = emu.stats()
    assert stats["requests_by_endpoint"][f"{provider}.create"] == 4
    assert creates(emu, provider) == 1


@pytest.mark.anyio
async def test_identical_miraflow_videos_are_told_apart_by_their_keys(
    emu: Emulator, clients: Clients
) -> None:
    """
    Two identical video requests under two keys, the key given to ``submit``
    only: each name carries its own key's tag (``bind_key``), so the first
    one's lost create is found again as its own video, not its twin's.
    """
    mira, _ = clients
    emu.set_faults([FaultRule(endpoint="miraflow.create", kind="drop_after_commit", schedule=[1])])

    def same() -> JobSpec:
        return mira.video(avatar_id=AVATAR, name="teaser", text="Hello twins")

    async with Orchestrator(backends=backends(clients), poll_policy=POLL) as orch:
        with pytest.raises(SubmissionOutcomeUnknown):
            await orch.submit(same(), key="twin-a")
        twin_b = await orch.submit(same(), key="twin-b")
        a = await orch.journal.get("twin-a")
        b = await orch.journal.get("twin-b")
        assert a is not None
        assert b is not None
        assert a.payload
        assert b.payload
        assert a.payload["name"] != b.payload["name"]
        assert a.payload["name"].startswith("teaser #mf")
        emu.advance(60)
        [result] = await orch.reconcile()
        assert result.key == "twin-a"
        assert result.outcome is ReconcileOutcome.FOUND, result
        assert result.job_id is not None
        assert result.job_id != twin_b.job_id
        # Re-submitting a key re-binds to the same payload: answered from the journal.
        again = await orch.submit(same(), key="twin-b")
        assert again.job_id == twin_b.job_id
    assert creates(emu, "miraflow") == 2


@pytest.mark.anyio
async def test_the_client_that_built_a_spec_is_registered_on_submit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """
    ``submit`` with no backend for the spec's provider registers the client
    that built it; a spec from another client of a registered provider is sent
    through the registered one (its key), with one warning.
    """
    config = EmulatorConfig(
        time_scale=0.05,
        aivideomaker_query_limit=0,
        api_keys={"aivideomaker": ["avm-key"], "miraflow": ["mf-key"]},
    )
    async with (
        run_emulator(config) as emu,
        Miraflow("mf-key", base_url=emu.base_url) as mira,
        AIVideoMaker("avm-key", base_url=emu.base_url) as avm,
        AIVideoMaker("not-a-key", base_url=emu.base_url) as other,
        Orchestrator(poll_policy=POLL) as orch,
    ):
        video = await orch.submit(avm.text_to_video(prompt="a llama, registered on use"))
        assert (await video).provider == "aivideomaker"
        with caplog.at_level("WARNING", logger="aivideo_async.jobs"):
            for n in range(2):
                # The emulator refuses other's key: these go out with avm's.
                spec = other.text_to_video(prompt=f"a llama from another client {n}")
                assert (await (await orch.submit(spec))).provider == "aivideomaker"
        warnings = [r for r in caplog.records if "another aivideomaker client" in r.message]
        assert len(warnings) == 1
        # A spec without its builder (a hand-made one) still needs a registered backend.
        bare = JobSpec(
            provider="miraflow",
            kind="image",
            method="POST",
            path="/api/image/generate",
            payload={"prompt": "a fox"},
        )
        with pytest.raises(InvalidInput) as caught:
            await orch.submit(bare)
        assert caught.value.field == "spec.provider"
        assert (await (await orch.submit(mira.image(prompt="a fox")))).provider == "miraflow"
        assert creates(emu, "aivideomaker") == 3
        assert creates(emu, "miraflow") == 1


@pytest.mark.anyio
async def test_after_a_restart_miraflow_lists_answer_for_journaled_videos(
    emu: Emulator, tmp_path: Path
) -> None:
    """
    ``resume`` hands each journaled job's match tag to its backend
    (``Miraflow.remember``): a new process's client matches finished videos in
    one ``GET /api/videos``, as the client that created them would have,
    instead of a status poll per job.
    """
    journal = tmp_path / "jobs.sqlite"
    async with (
        Miraflow("mf-key", base_url=emu.base_url) as first,
        Orchestrator(journal=journal, backends=[first], poll_policy=POLL) as orch,
    ):
        for n in range(3):
            spec = first.video(avatar_id=AVATAR, name=f"v{n}", text=f"Hello {n}")
            await orch.submit(spec, key=f"row-{n}")
    emu.advance(600)  # all three finished while no process was running
    statuses = emu.stats()["requests_by_endpoint"].get("miraflow.status", 0)
    async with (
        Miraflow("mf-key", base_url=emu.base_url) as second,
        Orchestrator(journal=journal, backends=[second], poll_policy=POLL) as orch,
    ):
        handles = await orch.resume()
        results = await orch.gather(handles)
        assert len(results) == 3
        assert all(r.media_id for r in results)
        assert orch.scheduler.stats()["coalesced_jobs"] >= 3
    assert emu.stats()["requests_by_endpoint"].get("miraflow.status", 0) == statuses


@pytest.mark.anyio
async def test_a_webhook_poke_polls_at_once_and_its_body_is_not_trusted(
    emu: Emulator, clients: Clients
) -> None:
    """
    With a 60 s poll cadence, a task whose ``webhookUrl`` callback arrives is
    polled at once (``Orchestrator.poke``) and resolves in well under 60 s. A
    forged callback ("COMPLETED" for a task still queued) only causes a poll,
    which sees the task queued: the handle stays unresolved.
    """
    _, avm = clients
    running: list[Orchestrator] = []
    pokes: list[bool] = []

    async def on_callback(request: web.Request) -> web.Response:
        task_id = AIVideoMaker.webhook_job_id(await request.json())
        assert task_id is not None
        pokes.append(running[0].poke("aivideomaker", task_id))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/aivideomaker", on_callback)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    hook = str(server.make_url("/hooks/aivideomaker"))
    slow = PollPolicy(initial=60.0, cap=60.0, jitter=False, deadline=None, stuck_after=None)
    try:
        async with Orchestrator(backends=[avm], poll_policy=slow) as orch:
            running.append(orch)
            real = await orch.submit(avm.text_to_video(prompt="a poked llama", webhook_url=hook))
            emu.advance(600)  # it completes; the emulator posts its callback
            with anyio.fail_after(10):
                result = await real
            assert result.job_id == real.job_id
            assert pokes == [True]

            queued = await orch.submit(avm.text_to_video(prompt="a llama still in line"))
            updates = queued.updates()
            async with aiohttp.ClientSession() as http:
                forged = {"id": queued.job_id, "status": "COMPLETED"}
                async with http.post(hook, json=forged) as answer:
                    assert answer.status == 204
            with anyio.fail_after(10):
                seen = await updates.__anext__()
            await updates.aclose()
            assert seen.state is JobState.QUEUED
            assert not queued.done()
            assert pokes == [True, True]
            assert orch.scheduler.stats()["poked"] == 2
            assert not orch.poke("aivideomaker", real.job_id)  # finished: nothing to poll
            assert not orch.poke("aivideomaker", "cknosuchtask")
    finally:
        await server.close()


@pytest.mark.anyio
async def test_one_stream_of_every_jobs_updates(emu: Emulator, clients: Clients) -> None:
    """``Orchestrator.updates()``: every job's changes, with provider and key; ends on exit."""
    seen: list[Any] = []

    async def collect(stream: Any) -> None:
        async for update in stream:
            seen.append(update)

    with anyio.fail_after(30):  # (the stream must end when the orchestrator stops)
        async with (
            anyio.create_task_group() as tg,
            Orchestrator(backends=backends(clients), poll_policy=POLL) as orch,
        ):
            tg.start_soon(collect, orch.updates())
            late = orch.updates()
            await late.aclose()  # unsubscribed: sees nothing, ends at once
            assert [u async for u in late] == []
            handles = [
                await orch.submit(make_spec(clients, provider, key), key=key)
                for provider, key in [
                    ("miraflow", "m1"),
                    ("aivideomaker", "a1"),
                    ("miraflow", "m2"),
                ]
            ]
            emu.advance(600)
            await orch.gather(handles)
    # The orchestrator stopped: the stream ended and collect() returned.
    by_key: dict[str, list[Any]] = {}
    for update in seen:
        by_key.setdefault(update.handle_key, []).append(update)
    assert set(by_key) == {"m1", "a1", "m2"}
    for key, updates in by_key.items():
        assert {u.provider for u in updates} == {"aivideomaker" if key == "a1" else "miraflow"}
        assert updates[-1].state is JobState.SUCCEEDED
        assert [u.at for u in updates] == sorted(u.at for u in updates)


class CountingCreates:
    """The real AIVideoMaker client, with the number of creates in flight counted."""

    def __init__(self, inner: AIVideoMaker) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.in_flight = self.most = 0

    async def create(self, spec: JobSpec) -> str:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await anyio.sleep(0.01)  # hold the slot a moment, so overlaps can show
            return await self.inner.create(spec)
        finally:
            self.in_flight -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.anyio
async def test_submit_many_bounds_creates_and_reports_each_outcome(
    emu: Emulator, clients: Clients
) -> None:
    """
    ``submit_many``: at most ``concurrency`` creates in flight, one outcome per
    pair in order (a handle, or the error: a 5xx after commit is unknown, a bad
    key is invalid input), the others unaffected; a re-run sends nothing twice.
    """
    _, avm = clients
    counting = CountingCreates(avm)
    emu.set_faults(
        [
            FaultRule(
                endpoint="aivideomaker.create",
                kind="server_error",
                schedule=[3],
                params={"status": 502, "commit": True},
            )
        ]
    )
    pairs: list[tuple[JobSpec, str | None]] = [
        (avm.text_to_video(prompt=f"take {i}"), f"row-{i}") for i in range(6)
    ]
    pairs.insert(2, (avm.text_to_video(prompt="bad key"), "x" * 300))
    async with Orchestrator(backends=[counting], poll_policy=POLL) as orch:
        outcomes = await orch.submit_many(pairs, concurrency=2)
        assert len(outcomes) == 7
        assert isinstance(outcomes[2], InvalidInput)
        unknown = [o for o in outcomes if isinstance(o, SubmissionOutcomeUnknown)]
        assert len(unknown) == 1
        handles = [o for o in outcomes if isinstance(o, JobHandle)]
        assert len(handles) == 5
        assert [h.key for h in handles] == [
            k for _, k in pairs if k is not None and k != unknown[0].key and len(k) < 300
        ]
        assert counting.most == 2
        emu.advance(600)
        await orch.gather(handles)
        again = await orch.submit_many(pairs, concurrency=3)
        assert [type(o).__name__ for o in again] == [type(o).__name__ for o in outcomes]
        with pytest.raises(InvalidInput):
            await orch.submit_many(pairs, concurrency=0)
        assert await orch.submit_many([]) == []
    assert creates(emu, "aivideomaker") == 6
