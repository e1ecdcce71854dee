"""
Create-path cases of the failure catalogue (RELIABILITY.md §8) that
test_orchestrator.py and test_orchestrator_emulator.py do not already name:
each drives a real create over loopback (the emulator with the real provider
clients, or a small aiohttp/asyncio server where the fault needs one), counts
what the server received and reads what the journal says.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import pathlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from aivideo_async._config import Limits, PollPolicy, RetryPolicy, Timeouts
from aivideo_async._exceptions import (
    AuthenticationError,
    ConnectError,
    InsufficientCredits,
    JobTimeout,
    RemoteDisconnected,
    SubmissionNotSent,
    SubmissionOutcomeUnknown,
)
from aivideo_async._session import Session
from aivideo_async.emulator import Emulator, EmulatorConfig, FaultRule, run_emulator
from aivideo_async.jobs._journal import JobOutcome, SQLiteJournal, SubmissionState
from aivideo_async.jobs._orchestrator import Orchestrator
from aivideo_async.providers.miraflow import Miraflow
from aivideo_async.providers.nemovideo import NemoVideo

from ._fake_provider import API_KEY, TRUNCATE, FakeBackend, FakeProvider, spec

pytestmark = pytest.mark.anyio

S = SubmissionState
AVATAR = "cmavatarstock0000000000001"
POLL = PollPolicy(initial=0.02, factor=1.5, cap=0.1, deadline=30.0, stuck_after=None)
CREATE_TIMEOUTS = Timeouts(connect=1.0, read=0.4, total=2.0)


def mira_spec(mira: Miraflow, key: str) -> Any:
    return mira.video(avatar_id=AVATAR, name=f"video {key}", text=f"Hello {key}", key=key)


def create_requests(emu: Emulator) -> int:
    return int(emu.stats()["requests_by_endpoint"].get("miraflow.create", 0))


@asynccontextmanager
async def emulator_and_client(
    config: EmulatorConfig | None = None, **client: Any
) -> AsyncIterator[tuple[Emulator, Miraflow]]:
    async with AsyncExitStack() as stack:
        emu = await stack.enter_async_context(
            run_emulator(config or EmulatorConfig(time_scale=0.05))
        )
        client.setdefault("create_timeouts", CREATE_TIMEOUTS)
        mira = await stack.enter_async_context(Miraflow("mf-key", base_url=emu.base_url, **client))
        yield emu, mira


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serve_raw(handler: RawHandler) -> AsyncIterator[str]:
    """A bare asyncio server: the handler controls every byte (and the RST)."""
    writers: list[asyncio.StreamWriter] = []

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashing proxy does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# ---------------------------------------------------------------------------
# Ambiguous: unknown, one create, never resent


async def test_reset_mid_response_on_create_is_unknown_reliability_2() -> None:
    """
    RELIABILITY #2: the emulator commits the create, sends half the answer,
    then resets the connection: unknown, exactly one create, never resent.
    """
    async with emulator_and_client() as (emu, mira):
        emu.set_faults([FaultRule(endpoint="miraflow.create", kind="reset_download", schedule=[1])])
        async with Orchestrator(backends=[mira], poll_policy=POLL) as orch:
            with pytest.raises(SubmissionOutcomeUnknown) as info:
                await orch.submit(mira_spec(mira, "row-1"), key="row-1")
            assert type(info.value.__cause__).__name__ == "RemoteDisconnected"
            entry = await orch.journal.get("row-1")
            assert entry is not None
            assert entry.state is S.UNKNOWN
            with pytest.raises(SubmissionOutcomeUnknown):
                await orch.submit(mira_spec(mira, "row-1"), key="row-1")
        stats = emu.stats()
        assert stats["faults_fired"] == {"reset_download": 1}
        assert create_requests(emu) == 1
        assert stats["creates"] == {"miraflow": 1}  # the provider did create it


async def test_reset_mid_request_on_create_is_unknown_reliability_2() -> None:
    """
    RELIABILITY #2: the server reads the request head, then resets before
    answering (it may have started the work): unknown, never resent.
    """
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        reset(writer)

    async with (
        serve_raw(handler) as base,
        FakeBackend(base) as backend,
        Orchestrator(backends=[backend], poll_policy=POLL) as orch,
    ):
        with pytest.raises(SubmissionOutcomeUnknown) as info:
            await orch.submit(spec(1), key="row-1")
        cause = info.value.__cause__
        assert isinstance(cause, RemoteDisconnected)
        assert cause.request_sent is True
        entry = await orch.journal.get("row-1")
        assert entry is not None
        assert entry.state is S.UNKNOWN
        with pytest.raises(SubmissionOutcomeUnknown):
            await orch.submit(spec(1), key="row-1")
    assert len(heads) == 1
    assert heads[0].startswith(b"POST /v1/jobs ")


async def test_slow_loris_create_answer_is_ended_by_the_total_deadline_reliability_5() -> None:
    """
    RELIABILITY #5: the committed create's answer trickles one byte per 50 ms,
    which never trips the 0.3 s read timeout; the 0.8 s overall deadline ends
    it: TotalTimeout, unknown, one create.
    """
    timeouts = Timeouts(connect=0.5, read=0.3, total=0.8)
    async with emulator_and_client(create_timeouts=timeouts) as (emu, mira):
        emu.set_faults(
            [
                FaultRule(
                    endpoint="miraflow.create",
                    kind="trickle",
                    params={"interval": 0.05, "chunk": 1},
                    schedule=[1],
                )
            ]
        )
        async with Orchestrator(backends=[mira], poll_policy=POLL) as orch:
            started = time.monotonic()
            with pytest.raises(SubmissionOutcomeUnknown) as info:
                await orch.submit(mira_spec(mira, "row-1"), key="row-1")
            took = time.monotonic() - started
            assert type(info.value.__cause__).__name__ == "TotalTimeout"
            entry = await orch.journal.get("row-1")
            assert entry is not None
            assert (entry.state, entry.error.type if entry.error else None) == (
                S.UNKNOWN,
                "TotalTimeout",
            )
        assert took >= 0.7  # the trickle kept the read timeout from firing
        assert create_requests(emu) == 1
        assert emu.stats()["creates"] == {"miraflow": 1}


async def test_malformed_or_incomplete_create_answer_is_unknown_with_digest_reliability_20() -> (
    None
):
    """
    RELIABILITY #20: a 200 whose JSON is malformed, or lacks the job id,
    is a ProtocolError (DecodeError); for a create it is unknown, and the
    journal keeps a SHA-256 digest of the body (not the body).
    """
    answers = [
        b'{"result": "success", "jobId": ',  # malformed JSON
        b'{"result": "success"}',  # no job id
        b'{"result": "success", "jobId": 42}',  # wrong type
    ]
    seen: list[str] = []

    async def create(request: web.Request) -> web.Response:
        seen.append(request.headers.get("x-api-key", ""))
        return web.Response(body=answers[len(seen) - 1], content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/video/create", create)
    async with (
        serve_app(app) as base,
        Miraflow("mf-key", base_url=base) as mira,
        Orchestrator(backends=[mira], poll_policy=POLL) as orch,
    ):
        for n in range(len(answers)):
            key = f"row-{n}"
            with pytest.raises(SubmissionOutcomeUnknown) as info:
                await orch.submit(mira_spec(mira, key), key=key)
            assert type(info.value.__cause__).__name__ == "DecodeError"
            entry = await orch.journal.get(key)
            assert entry is not None
            assert entry.state is S.UNKNOWN
            assert entry.error is not None
            assert entry.error.type == "DecodeError"
            assert entry.error.body_digest is not None
            assert len(entry.error.body_digest) == 64
            with pytest.raises(SubmissionOutcomeUnknown):
                await orch.submit(mira_spec(mira, key), key=key)
        digests = {(await orch.journal.get(f"row-{n}")).error.body_digest for n in range(3)}  # type: ignore[union-attr]
        assert len(digests) == 3  # each body has its own digest
    assert len(seen) == len(answers)  # one create per key, none resent


@pytest.mark.parametrize("status", [302, 303, 307])
async def test_redirect_on_create_is_never_followed_reliability_21(status: int) -> None:
    """
    RELIABILITY #21: a 3xx answer to a create is not followed (the other
    host receives nothing, neither the create nor the key); the session raises
    UnexpectedRedirect, and the orchestrator reports it as an unknown outcome
    (a 303 means the create ran; journaled unknown, never resent).
    """
    elsewhere: list[str] = []
    creates: list[str] = []

    async def other(request: web.Request) -> web.Response:
        elsewhere.append(f"{request.method} {request.headers.get('x-api-key')}")
        return web.json_response({"jobId": "stolen"})

    other_app = web.Application()
    other_app.router.add_route("*", "/{tail:.*}", other)
    async with serve_app(other_app) as other_base:

        async def create(request: web.Request) -> web.Response:
            creates.append(request.path)
            return web.Response(status=status, headers={"Location": f"{other_base}/v1/jobs"})

        app = web.Application()
        app.router.add_post("/v1/jobs", create)
        async with (
            serve_app(app) as base,
            FakeBackend(base) as backend,
            Orchestrator(backends=[backend], poll_policy=POLL) as orch,
        ):
            with pytest.raises(SubmissionOutcomeUnknown) as info:
                await orch.submit(spec(1), key="row-1")
            cause = info.value.__cause__
            assert type(cause).__name__ == "UnexpectedRedirect"
            assert cause.status_code == status  # type: ignore[union-attr]
            entry = await orch.journal.get("row-1")
            assert entry is not None
            assert (entry.state, entry.error.type if entry.error else None) == (
                S.UNKNOWN,
                "UnexpectedRedirect",
            )
            with pytest.raises(SubmissionOutcomeUnknown):
                await orch.submit(spec(1), key="row-1")
    assert creates == ["/v1/jobs"]
    assert elsewhere == []


async def test_create_answer_over_the_cap_is_unknown_reliability_22() -> None:
    """
    RELIABILITY #22: the committed create's answer is padded past the client's
    64 KiB cap: ResponseTooLarge, reading stops, unknown, one create.
    """
    limits = Limits(max_response_bytes=64 * 1024)
    async with emulator_and_client(limits=limits) as (emu, mira):
        emu.set_faults(
            [
                FaultRule(
                    endpoint="miraflow.create",
                    kind="oversize",
                    params={"bytes": 1024 * 1024},
                    schedule=[1],
                )
            ]
        )
        async with Orchestrator(backends=[mira], poll_policy=POLL) as orch:
            with pytest.raises(SubmissionOutcomeUnknown) as info:
                await orch.submit(mira_spec(mira, "row-1"), key="row-1")
            assert type(info.value.__cause__).__name__ == "ResponseTooLarge"
            entry = await orch.journal.get("row-1")
            assert entry is not None
            assert entry.state is S.UNKNOWN
        assert create_requests(emu) == 1
        assert emu.stats()["creates"] == {"miraflow": 1}


# ---------------------------------------------------------------------------
# Provably not sent


async def test_tls_failure_on_create_is_not_sent_and_never_resent_reliability_7() -> None:
    """
    RELIABILITY #7: the TLS handshake fails (a plain-HTTP server behind an
    https URL): the create is journaled not_sent with TLSError as the cause,
    and even with resubmit_not_sent=True it is not retried automatically.
    """
    connections = 0

    async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read(100)  # a ClientHello this server cannot speak
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with serve_raw(plain_http) as base:
        https = base.replace("http://", "https://")
        async with (
            FakeBackend(https) as backend,
            Orchestrator(
                backends=[backend], poll_policy=POLL, resubmit_not_sent=True, not_sent_attempts=3
            ) as orch,
        ):
            with pytest.raises(SubmissionNotSent) as info:
                await orch.submit(spec(1), key="row-1")
            assert type(info.value.__cause__).__name__ == "TLSError"
            entry = await orch.journal.get("row-1")
            assert entry is not None
            assert (entry.state, entry.attempt) == (S.NOT_SENT, 1)
            assert entry.error is not None
            assert entry.error.type == "TLSError"
            assert orch.stats()["creates"] == 1
    assert connections == 1


async def test_pool_wait_timeout_on_create_is_not_sent_reliability_8() -> None:
    """
    RELIABILITY #8: the only pooled connection is busy with a slow poll; the
    create waits past `connect` for it: PoolTimeout, journaled not_sent, and
    the server never saw the create.
    """
    release = anyio.Event()
    holding = anyio.Event()
    hits: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        hits.append(f"{request.method} {request.path}")
        holding.set()
        await release.wait()
        return web.json_response({"status": "running"})

    app = web.Application()
    app.router.add_get("/v1/jobs/{id}", slow)
    app.router.add_post("/v1/jobs", slow)
    async with serve_app(app) as base:
        backend = FakeBackend(base)
        # One pooled connection (the backend's default session is never opened).
        backend.session = Session(
            provider="fake",
            base_url=base,
            limits=Limits(connections=1, per_host=1),
            timeouts=Timeouts(connect=0.2, read=5.0, total=5.0),
        )
        async with backend, Orchestrator(backends=[backend], poll_policy=POLL) as orch:
            async with anyio.create_task_group() as tg:
                tg.start_soon(backend.poll, "video", "j1")  # takes the only connection
                await holding.wait()
                with pytest.raises(SubmissionNotSent) as info:
                    await orch.submit(spec(1), key="row-1")
                release.set()
            assert type(info.value.__cause__).__name__ == "PoolTimeout"
            entry = await orch.journal.get("row-1")
            assert entry is not None
            assert entry.state is S.NOT_SENT
    assert hits == ["GET /v1/jobs/j1"]  # the create never reached the server


# ---------------------------------------------------------------------------
# Definite rejections


async def test_insufficient_credits_blocks_new_creates_but_not_polls_reliability_14() -> None:
    """
    RELIABILITY #14: the emulator's account has credits for one video. The
    second create is refused (InsufficientCredits, rejected, no retry); from
    then on new creates raise InsufficientCredits without any request, while
    the first job is still polled to the end. unblock_creates() (after a
    top-up) or the end of `credits_block` lets creates out again.
    """
    offset = 0.0

    def clock() -> float:
        return time.monotonic() + offset

    config = EmulatorConfig(time_scale=0.05, initial_credits=10)  # one 10-credit video
    async with (
        emulator_and_client(config) as (emu, mira),
        Orchestrator(backends=[mira], poll_policy=POLL, clock=clock, credits_block=600) as orch,
    ):
        first = await orch.submit(mira_spec(mira, "paid"), key="paid")
        with pytest.raises(InsufficientCredits) as refused:
            await orch.submit(mira_spec(mira, "broke"), key="broke")
        assert refused.value.status_code == 400
        rejected = await orch.journal.get("broke")
        assert rejected is not None
        assert (rejected.state, rejected.attempt) == (S.REJECTED, 1)
        assert create_requests(emu) == 2

        # Blocked: no request, and the new key is not journaled (free for later).
        for key in ("blocked-1", "blocked-2"):
            with pytest.raises(InsufficientCredits, match="blocked"):
                await orch.submit(mira_spec(mira, key), key=key)
            assert await orch.journal.get(key) is None
        assert create_requests(emu) == 2
        assert orch.stats()["credits_blocked"] == 2
        # A journaled key still answers from the journal.
        assert await orch.submit(mira_spec(mira, "paid"), key="paid") is first
        with pytest.raises(InsufficientCredits):
            await orch.submit(mira_spec(mira, "broke"), key="broke")

        # Polls went on: the paid job finishes.
        emu.advance(120)
        result = await first
        assert result.job_id == first.job_id
        assert emu.stats()["requests_by_endpoint"].get("miraflow.status", 0) >= 1

        # Topped up (still broke here, so the provider refuses again): the
        # create is sent once more, and the refusal blocks again.
        orch.unblock_creates("miraflow")
        with pytest.raises(InsufficientCredits) as again:
            await orch.submit(mira_spec(mira, "blocked-1"), key="blocked-1")
        assert again.value.status_code == 400  # the provider's answer, not the block
        assert create_requests(emu) == 3
        with pytest.raises(InsufficientCredits, match="blocked"):
            await orch.submit(mira_spec(mira, "blocked-2"), key="blocked-2")
        assert create_requests(emu) == 3
        # The block also ends on its own after `credits_block` seconds.
        offset += 601
        with pytest.raises(InsufficientCredits) as later:
            await orch.submit(mira_spec(mira, "blocked-2"), key="blocked-2")
        assert later.value.status_code == 400
        assert create_requests(emu) == 4


async def test_a_refused_key_is_sent_again_after_a_top_up_with_the_policy_reliability_14() -> None:
    """
    RELIABILITY #14 with ``resubmit_refused``: a key refused for credits (no job
    was created) is not resent while creates are blocked; submitted again after
    the top-up, it is a new journaled attempt and creates its job. Without the
    policy the recorded refusal is raised again, with no request.
    """
    config = EmulatorConfig(time_scale=0.05, initial_credits=10)  # one 10-credit video
    async with emulator_and_client(config) as (emu, mira):
        async with Orchestrator(
            backends=[mira], poll_policy=POLL, resubmit_refused=True, credits_block=600
        ) as orch:
            await orch.submit(mira_spec(mira, "paid"), key="paid")
            with pytest.raises(InsufficientCredits):
                await orch.submit(mira_spec(mira, "broke"), key="broke")
            # Blocked: the refused key is answered from the journal, nothing is sent.
            with pytest.raises(InsufficientCredits):
                await orch.submit(mira_spec(mira, "broke"), key="broke")
            assert create_requests(emu) == 2
            assert (await orch.journal.get("broke")).attempt == 1  # type: ignore[union-attr]

            emu.state.account("miraflow", "mf-key").credits += 100  # the top-up
            orch.unblock_creates("miraflow")
            handle = await orch.submit(mira_spec(mira, "broke"), key="broke")
            entry = await orch.journal.get("broke")
            assert entry is not None
            assert (entry.state, entry.attempt, entry.job_id) == (S.ACCEPTED, 2, handle.job_id)
            assert create_requests(emu) == 3
            assert orch.stats()["resubmitted_refused"] == 1
            emu.advance(120)
            assert (await handle).job_id == handle.job_id
            # Accepted now: the same key again is the same job, no request.
            assert (await orch.submit(mira_spec(mira, "broke"), key="broke")) is handle
            assert create_requests(emu) == 3
        # Without the policy: the refusal recorded for a key is raised again, no request.
        emu.state.account("miraflow", "mf-key").credits = 0
        async with Orchestrator(backends=[mira], poll_policy=POLL) as plain:
            with pytest.raises(InsufficientCredits):
                await plain.submit(mira_spec(mira, "x"), key="x")
            plain.unblock_creates("miraflow")
            emu.state.account("miraflow", "mf-key").credits += 100
            with pytest.raises(InsufficientCredits):
                await plain.submit(mira_spec(mira, "x"), key="x")
        assert create_requests(emu) == 4


async def test_401_on_create_is_rejected_and_not_resent_reliability_16() -> None:
    """
    RELIABILITY #16: a 401 on a create raises AuthenticationError (the
    header-key auth has nothing to refresh); the create is journaled rejected
    and not resent, now or when the key is submitted again.
    """
    seen: list[str] = []

    async def create(request: web.Request) -> web.Response:
        seen.append(request.headers.get("x-api-key", ""))
        return web.json_response({"error": "invalid api key"}, status=401)

    app = web.Application()
    app.router.add_post("/v1/jobs", create)
    async with (
        serve_app(app) as base,
        FakeBackend(base) as backend,
        Orchestrator(backends=[backend], poll_policy=POLL) as orch,
    ):
        with pytest.raises(AuthenticationError):
            await orch.submit(spec(1), key="row-1")
        entry = await orch.journal.get("row-1")
        assert entry is not None
        assert entry.state is S.REJECTED
        assert entry.error is not None
        assert (entry.error.type, entry.error.status_code) == ("AuthenticationError", 401)
        with pytest.raises(AuthenticationError):
            await orch.submit(spec(1), key="row-1")
        assert API_KEY not in repr(entry)
    assert seen == [API_KEY]


async def test_truncated_create_answer_is_unknown_with_the_partial_body_digest_reliability_4(
    tmp_path: pathlib.Path,
) -> None:
    """
    RELIABILITY #4: a 200 whose body stops after 5 of its bytes (the provider
    committed): unknown, never resent, and the journal (SQLite, read back
    after closing) keeps the SHA-256 of the partial body that did arrive.
    """
    fake = FakeProvider()
    fake.faults.append(TRUNCATE)
    path = tmp_path / "jobs.sqlite"
    partial = json.dumps({"jobId": "job-00001"}).encode()[:5]  # what the fake sends
    async with (
        fake.running(),
        FakeBackend(fake.base_url) as backend,
        Orchestrator(journal=path, backends=[backend], poll_policy=POLL) as orch,
    ):
        with pytest.raises(SubmissionOutcomeUnknown) as info:
            await orch.submit(spec(1), key="row-1")
        assert type(info.value.__cause__).__name__ == "RemoteDisconnected"
        entry = await orch.journal.get("row-1")
        assert entry is not None
        assert entry.state is S.UNKNOWN
        assert entry.error is not None
        assert entry.error.body_digest == hashlib.sha256(partial).hexdigest()
        with pytest.raises(SubmissionOutcomeUnknown):
            await orch.submit(spec(1), key="row-1")
    assert fake.create_requests == fake.creates == 1
    async with SQLiteJournal(path) as journal:
        stored = await journal.get("row-1")
    assert stored is not None
    assert stored.error is not None
    assert stored.error.body_digest == hashlib.sha256(partial).hexdigest()


class NoDNS(AbstractResolver):
    """A resolver for which no name exists (a DNS failure, without the network)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        raise OSError(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None


async def test_dns_failure_on_create_is_not_sent_reliability_6() -> None:
    """
    RELIABILITY #6: the provider's host does not resolve: ConnectError
    (request_sent False), journaled not_sent, SubmissionNotSent; not resent
    by default, not even when the key is submitted again.
    """
    resolver = NoDNS()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver)) as http:
        backend = FakeBackend("https://api.provider.invalid")
        backend.session = Session(
            provider="fake", base_url="https://api.provider.invalid", session=http
        )
        async with backend, Orchestrator(backends=[backend], poll_policy=POLL) as orch:
            with pytest.raises(SubmissionNotSent) as info:
                await orch.submit(spec(1), key="row-1")
            cause = info.value.__cause__
            assert isinstance(cause, ConnectError)
            assert cause.request_sent is False
            entry = await orch.journal.get("row-1")
            assert entry is not None
            assert (entry.state, entry.attempt) == (S.NOT_SENT, 1)
            with pytest.raises(SubmissionNotSent, match="resubmit_not_sent"):
                await orch.submit(spec(1), key="row-1")
            assert orch.stats()["creates"] == 1
    assert resolver.asked == ["api.provider.invalid"]


class VirtualTime:
    """Sleeping advances the clock at once: deadlines pass without real waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


async def test_job_that_never_finishes_times_out_and_can_be_resumed_reliability_30(
    tmp_path: pathlib.Path,
) -> None:
    """
    RELIABILITY #30: a job still running at its deadline raises JobTimeout
    (the remote job is left alone) and the journal records timed_out; a
    later resume() re-attaches it with a fresh deadline and it completes,
    with no second create.
    """
    fake = FakeProvider(polls_to_finish=10**9)  # never finishes, until told
    path = tmp_path / "jobs.sqlite"
    short = PollPolicy(initial=1.0, factor=1.5, cap=2.0, deadline=20.0, stuck_after=None)
    async with fake.running(), FakeBackend(fake.base_url) as backend:
        vt = VirtualTime()
        async with Orchestrator(
            journal=path, backends=[backend], poll_policy=short, clock=vt.clock, sleep=vt.sleep
        ) as orch:
            handle = await orch.submit(spec(1), key="slow")
            with pytest.raises(JobTimeout) as info:
                await handle
            assert (info.value.key, info.value.job_id) == ("slow", "job-00001")
            polls = fake.polls
            assert polls >= 1  # it was polled and still running
        async with SQLiteJournal(path) as journal:
            entry = await journal.get("slow")
            assert entry is not None
            assert (entry.state, entry.outcome) == (S.ACCEPTED, JobOutcome.TIMED_OUT)
            assert entry.unfinished

        fake.polls_to_finish = 0  # the remote job was never cancelled: it ends now
        vt = VirtualTime()
        async with Orchestrator(
            journal=path, backends=[backend], poll_policy=short, clock=vt.clock, sleep=vt.sleep
        ) as orch:
            [resumed] = await orch.resume()
            assert (resumed.key, resumed.job_id) == ("slow", "job-00001")
            result = await resumed
            assert result.job_id == "job-00001"
    assert fake.create_requests == 1
    assert fake.polls > polls


async def test_a_job_that_finished_while_the_process_was_down_resumes_to_its_result(
    tmp_path: pathlib.Path,
) -> None:
    """
    RELIABILITY #30 after downtime: the process stopped with a job running and
    came back an hour later, long past the job's deadline. resume() looks at
    the job before any JobTimeout: it finished meanwhile, so its handle gives
    the result (the journal says succeeded); one still running would time out
    after that look.
    """
    fake = FakeProvider(polls_to_finish=10**9)
    path = tmp_path / "jobs.sqlite"
    policy = PollPolicy(initial=1.0, factor=1.5, cap=2.0, deadline=20.0, stuck_after=None)
    wall = [1_000_000.0]
    async with fake.running(), FakeBackend(fake.base_url) as backend:

        def process() -> Orchestrator:  # one run of the program: its own monotonic clock
            vt = VirtualTime()
            return Orchestrator(
                journal=path,
                backends=[backend],
                poll_policy=policy,
                clock=vt.clock,
                sleep=vt.sleep,
                wall_clock=lambda: wall[0],
            )

        async with process() as orch:
            handle = await orch.submit(spec(1), key="overnight")
            assert not handle.done()  # the process stops with the job running

        wall[0] += 3600.0  # an hour of downtime; the job finished meanwhile
        fake.polls_to_finish = 0
        async with process() as orch:
            [resumed] = await orch.resume()
            result = await resumed
            assert result.job_id == "job-00001"
        async with SQLiteJournal(path) as journal:
            entry = await journal.get("overnight")
            assert entry is not None
            assert entry.outcome is JobOutcome.SUCCEEDED
    assert fake.create_requests == 1


async def test_create_on_a_kept_alive_connection_closed_by_the_server_reliability_3() -> None:
    """
    RELIABILITY #3: a poll leaves a kept-alive connection; the create reuses
    it and the server closes it after reading the create without answering
    (as a server dropping an idle keep-alive does): unknown, and the POST is
    not silently replayed on a new connection (the server saw it once).
    """
    connections = 0
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            requests.append(head.split(b" ", 2)[0] + b" " + head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            if head.startswith(b"POST"):
                return  # read the create, then close: no answer
            body = b'{"status": "running"}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: keep-alive\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()

    async with (
        serve_raw(handler) as base,
        FakeBackend(base) as backend,
        Orchestrator(backends=[backend], poll_policy=POLL) as orch,
    ):
        assert (await backend.poll("video", "j0")).raw_status == "running"
        with pytest.raises(SubmissionOutcomeUnknown) as info:
            await orch.submit(spec(1), key="row-1")
        assert type(info.value.__cause__).__name__ == "RemoteDisconnected"
        entry = await orch.journal.get("row-1")
        assert entry is not None
        assert entry.state is S.UNKNOWN
    assert requests == [b"GET /v1/jobs/j0", b"POST /v1/jobs"]
    assert connections == 1  # the create went over the kept-alive connection


async def test_provider_down_with_many_jobs_in_flight_pauses_polls_reliability_31() -> None:
    """
    RELIABILITY #31: 40 accepted jobs, then the provider goes down (every
    request answers 503). The shared retry budget runs dry and the breaker opens;
    while it is open polls pause (one probe per cool-down) and no job fails.
    When the provider is back, every job finishes.
    """
    # Session retries off: every 503 reaches the scheduler's error policy.
    frozen = EmulatorConfig(time_scale=1000.0)  # no job ends until advance()
    async with emulator_and_client(frozen, retry=RetryPolicy(attempts=1)) as (emu, mira):
        options = {
            "breaker_threshold": 3,
            "breaker_cooldown": 0.05,
            "retry_policy": RetryPolicy(attempts=3, base=0.01, cap=0.05, budget=20),
        }
        async with Orchestrator(
            backends=[mira], poll_policy=POLL, scheduler_options=options
        ) as orch:
            handles = [await orch.submit(mira_spec(mira, f"k{n}"), key=f"k{n}") for n in range(40)]
            emu.set_faults(  # the provider goes down
                [FaultRule(endpoint="miraflow.*", kind="server_error", params={"status": 503})]
            )

            async def breaker_opened(times: int) -> int:
                # Real time passing is what is under test: watch the counter.
                for _ in range(4000):
                    if orch.scheduler.stats()["breaker_opens"] >= times:
                        return polls()
                    await anyio.sleep(0.005)
                raise AssertionError(f"the breaker did not open {times} times")

            def polls() -> int:
                by_endpoint = emu.stats()["requests_by_endpoint"]
                return int(
                    by_endpoint.get("miraflow.status", 0) + by_endpoint.get("miraflow.list", 0)
                )

            await breaker_opened(2)
            provider = orch.scheduler.stats()["providers"]["miraflow"]
            assert provider["retry_tokens"] < 5  # the shared budget ran dry
            before = await breaker_opened(3)
            after = await breaker_opened(4)
            # One more open -> half-open -> open cycle costs a probe, not a
            # poll per job (40 jobs would be 40 polls).
            assert after - before <= 2, (before, after)
            assert not any(h.done() for h in handles)  # polls paused; no job failed

            emu.clear_faults()
            emu.advance(10**6)
            with anyio.fail_after(30):
                results = await orch.gather(handles)
            assert sorted(r.job_id for r in results) == sorted(h.job_id for h in handles)
            assert orch.scheduler.stats()["providers"]["miraflow"]["breaker"] == "closed"


async def test_token_expiry_on_polls_is_one_shared_refresh_reliability_28(
    tmp_path: pathlib.Path,
) -> None:
    """
    RELIABILITY #28: eight NemoVideo renders are polled by the scheduler when
    the anonymous token expires for good (code 1001 on a status poll): the
    polls share ONE token refresh (one more anonymous-token request), no job
    fails, and every render finishes. (Twenty concurrent 401s sharing one
    refresh: session/test_auth.py.)
    """
    async with (
        run_emulator(EmulatorConfig(time_scale=0.05)) as emu,
        NemoVideo(base_url=emu.base_url, client_id_file=tmp_path / "client_id") as nemo,
    ):
        sid = (await nemo.create_session(language="en")).session_id
        async with nemo.chat(sid, "Make a 5-second sunset timelapse video") as stream:
            assert [event async for event in stream]
        emu.advance(60.0)  # the draft lands
        state = await nemo.state(sid)
        async with Orchestrator(backends=[nemo], poll_policy=POLL) as orch:
            handles = [
                await orch.submit(nemo.render_spec(sid, state), key=f"render-{n}") for n in range(8)
            ]
            tokens = emu.stats()["requests_by_endpoint"]["nemovideo.token"]
            # Only now: a create sent with the expired token would be refused,
            # not resent (#16). No poll of the last render has run yet.
            emu.set_faults(
                [FaultRule(endpoint="nemovideo.render_status", kind="token_expired", times=1)]
            )
            with anyio.fail_after(30):
                results = await orch.gather(handles)
        stats = emu.stats()
    assert len(results) == 8
    assert stats["faults_fired"] == {"token_expired": 1}
    assert stats["requests_by_endpoint"]["nemovideo.token"] == tokens + 1
