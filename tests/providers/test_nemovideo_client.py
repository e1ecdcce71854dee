"""The NemoVideo client against the emulator: every endpoint, auth, errors, chat under faults."""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import pytest
from aiohttp import web

from aivideo_async._config import PollPolicy, RetryPolicy
from aivideo_async._exceptions import (
    AuthenticationError,
    BadRequest,
    Conflict,
    DownloadError,
    InsufficientCredits,
    InvalidInput,
    JobCancelled,
    JobFailed,
    JobTimeout,
    MediaTooLarge,
    NotFound,
    PaymentRequired,
    RateLimited,
    RequestMaybeSent,
    ServerError,
    SessionNotFound,
    StreamIdleTimeout,
    SubmissionOutcomeUnknown,
    TotalTimeout,
    UnsupportedMedia,
)
from aivideo_async._models import JobState
from aivideo_async._secret import Secret
from aivideo_async._session import BearerAuth, Session
from aivideo_async.emulator import Emulator, EmulatorConfig, FaultRule
from aivideo_async.emulator.pytest_plugin import FAST, emulator, emulator_factory
from aivideo_async.jobs import Orchestrator, ReconcileOutcome
from aivideo_async.providers._base import JobBackend
from aivideo_async.providers.nemovideo._chat import (
    ChatEvent,
    Heartbeat,
    StreamError,
    TextEvent,
    ToolCall,
    ToolResult,
)
from aivideo_async.providers.nemovideo._client import (
    ChatStream,
    NemoVideo,
    _error_mapper,
    load_client_id,
)
from aivideo_async.providers.nemovideo._draft import timeline_summary

__all__ = ["emulator", "emulator_factory"]  # the fixtures, until conftest enables the plugin

pytestmark = pytest.mark.anyio

Factory = Callable[[EmulatorConfig | None], AbstractAsyncContextManager[Emulator]]
GENERATE = "Make a 5-second sunset timelapse video"


@pytest.fixture(autouse=True)
def _no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEMO_TOKEN", raising=False)
    monkeypatch.delenv("NEMO_API_URL", raising=False)


class Clockwork:
    """A fake sleep that moves the emulator clock instead of waiting."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.emu.advance(seconds)
        await anyio.lowlevel.checkpoint()


def client(emu: Emulator, tmp_path: pathlib.Path, **kwargs: Any) -> NemoVideo:
    kwargs.setdefault("client_id_file", tmp_path / "nemovideo" / "client_id")
    kwargs.setdefault("sleep", Clockwork(emu))
    return NemoVideo(base_url=emu.base_url, **kwargs)


def requests(emu: Emulator, endpoint: str) -> int:
    return int(emu.stats()["requests_by_endpoint"].get(endpoint, 0))


async def drain(stream: ChatStream) -> list[ChatEvent]:
    async with stream:
        return [event async for event in stream]


async def finish_render(nemo: NemoVideo, emu: Emulator, render_id: str) -> None:
    for _ in range(50):
        status = await nemo.poll("render", render_id)
        if status.is_terminal:
            return
        emu.advance(1.0)
    raise AssertionError("render never finished")


async def session_with_draft(nemo: NemoVideo, emu: Emulator) -> str:
    info = await nemo.create_session(language="en")
    await drain(nemo.chat(info.session_id, GENERATE))
    emu.advance(60.0)  # every scheduled draft change lands
    return info.session_id


# -- the whole tour -------------------------------------------------------------------------


async def test_every_endpoint_anonymous(emulator: Emulator, tmp_path: pathlib.Path) -> None:
    async with client(emulator, tmp_path) as nemo:
        credits = await nemo.credits()  # the first call fetches an anonymous token
        assert credits.available == credits.total == FAST.initial_credits
        assert (tmp_path / "nemovideo" / "client_id").read_text().strip() == await nemo.client_id()

        token = await nemo.anonymous_token()
        assert token.credits == FAST.initial_credits
        assert token.user_id is not None
        assert token.user_id.startswith("anon_")

        info = await nemo.create_session(language="en")
        assert info.session_id.isdigit()
        assert nemo.current_session_id == info.session_id
        sid = info.session_id

        clip = tmp_path / "clip.mp4"
        clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
        logo = tmp_path / "logo.png"
        logo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
        uploaded = await nemo.upload_files(sid, [clip, str(logo)])
        assert [(f.filename, f.file_type) for f in uploaded.files] == [
            ("clip.mp4", "video"),
            ("logo.png", "image"),
        ]
        assert uploaded.session_state_applied is True
        by_url = await nemo.upload_urls(sid, ["https://example.com/a.mp3"])
        assert by_url.files[0].file_type == "audio"

        before = await nemo.state(sid)
        assert not before.draft.is_exportable
        assert len(before.video_infos) == 3

        stream = nemo.chat(sid, GENERATE)
        events = await drain(stream)
        calls = [e for e in events if isinstance(e, ToolCall)]
        assert calls[0].name == "generate_video_with_seedance"
        assert any(isinstance(e, ToolResult) for e in events)
        assert any(isinstance(e, Heartbeat) for e in events)
        assert not any(isinstance(e, StreamError) for e in events)
        assert stream.tool_calls == calls
        assert not stream.dropped

        emulator.advance(60.0)
        after = await nemo.state(sid)
        assert after.fingerprint != before.fingerprint
        assert after.draft.is_exportable
        summary = await nemo.timeline(sid)
        assert summary == timeline_summary(after.draft)
        assert summary.splitlines()[1].startswith("Video: ")
        assert "(0-5s)" in summary

        claim = await nemo.claim_token(info.task_id, sid)
        assert claim.expires_in == 604800
        link = await nemo.claim_url(info.task_id, sid)
        assert link.startswith("https://nemovideo.com/workspace/claim?ct=clm_")

        spec = nemo.render_spec(sid, after)
        assert spec.client_job_id is not None
        assert spec.payload["sessionId"] == sid
        render_id = await nemo.create(spec)
        assert render_id == spec.client_job_id
        first = await nemo.poll("render", render_id)
        assert first.state in (JobState.QUEUED, JobState.RUNNING)
        await finish_render(nemo, emulator, render_id)
        done = await nemo.render_status(render_id)
        assert done.job_status.state is JobState.SUCCEEDED
        assert done.url is not None
        assert done.progress == 100

        path = await nemo.download_render(render_id, tmp_path / "out.mp4")
        assert path.read_bytes()[4:8] == b"ftyp"

        other = await nemo.submit_render(sid, after.draft)
        await nemo.cancel("render", other)
        emulator.advance(60.0)
        cancelled = await nemo.poll("render", other)
        assert cancelled.state is JobState.CANCELED
        with pytest.raises(DownloadError, match="not completed"):
            await nemo.download_render(other, tmp_path / "never.mp4")
        assert not (tmp_path / "never.mp4").exists()

        assert isinstance(nemo, JobBackend)
        assert await nemo.poll_many("render", [render_id]) is None
        assert nemo.supports_cancel("render")
        assert not nemo.supports_cancel("video")


async def test_client_id_persists_and_keeps_the_user(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    async with client(emulator, tmp_path) as first:
        sid = (await first.create_session()).session_id
    async with client(emulator, tmp_path) as second:
        # A fresh token for the same client id: the session still belongs to us.
        assert (await second.state(sid)).session_id == sid
    assert requests(emulator, "nemovideo.token") == 2
    other_file = tmp_path / "elsewhere" / "client_id"
    async with client(emulator, tmp_path, client_id_file=other_file) as stranger:
        with pytest.raises(SessionNotFound):
            await stranger.state(sid)


async def test_env_token_is_used_and_never_shown(
    emulator: Emulator, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEMO_TOKEN", "nmv_usr_from_env_123")
    async with client(emulator, tmp_path) as nemo:
        await nemo.credits()
        assert "nmv_usr_from_env_123" not in repr(nemo)
    assert requests(emulator, "nemovideo.token") == 0
    assert not (tmp_path / "nemovideo" / "client_id").exists()


async def test_secrets_stay_out_of_logs(
    emulator: Emulator, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.add_fault(FaultRule(endpoint="nemovideo.credits", kind="token_expired", times=1))
    async with client(emulator, tmp_path) as nemo:
        await nemo.credits()
        token = await nemo.anonymous_token()
        assert token.token.get_secret_value() not in repr(token)
    assert "nmv_usr_" not in caplog.text


# -- auth refresh ----------------------------------------------------------------------------


async def test_token_expired_refreshes_once_for_concurrent_calls(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    async with client(emulator, tmp_path) as nemo:
        await nemo.credits()
        assert requests(emulator, "nemovideo.token") == 1
        emulator.add_fault(FaultRule(endpoint="nemovideo.credits", kind="token_expired", times=1))
        results: list[int] = []

        async def one() -> None:
            results.append((await nemo.credits()).available)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(one)
        assert len(results) == 5
    # One refresh (single-flight) for every call that saw 1001.
    assert requests(emulator, "nemovideo.token") == 2


async def test_a_given_token_is_never_swapped(emulator: Emulator, tmp_path: pathlib.Path) -> None:
    emulator.add_fault(FaultRule(endpoint="nemovideo.credits", kind="token_expired", times=1))
    async with client(emulator, tmp_path, token=Secret("nmv_usr_manual")) as nemo:
        with pytest.raises(AuthenticationError) as info:
            await nemo.credits()
    assert info.value.body_code == 1001
    assert requests(emulator, "nemovideo.token") == 0
    assert requests(emulator, "nemovideo.credits") == 1  # no pointless resend


async def test_token_expired_on_a_create_refreshes_but_never_resends(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #16: 1001 on a create: AuthError after one refresh; not resent."""
    async with client(emulator, tmp_path) as nemo:
        await nemo.credits()
        emulator.add_fault(FaultRule(endpoint="nemovideo.session", kind="token_expired", times=1))
        with pytest.raises(AuthenticationError):
            await nemo.create_session()
        assert requests(emulator, "nemovideo.session") == 1
        assert requests(emulator, "nemovideo.token") == 2  # refreshed for the next call
        await nemo.create_session()
        assert requests(emulator, "nemovideo.token") == 2


# -- sessions lost (1002) ----------------------------------------------------------------------


async def test_session_lost_on_a_named_session_is_raised(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    async with client(emulator, tmp_path) as nemo:
        sid = (await nemo.create_session()).session_id
        emulator.add_fault(FaultRule(endpoint="nemovideo.state", kind="session_lost", times=1))
        with pytest.raises(SessionNotFound) as info:
            await nemo.state(sid)
        assert info.value.body_code == 1002
        with pytest.raises(SessionNotFound):
            await nemo.upload_urls(sid, ["https://example.com/a.mp4"])


async def test_session_lost_on_the_current_session_starts_a_new_one(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    async with client(emulator, tmp_path) as nemo:
        await nemo.upload_urls(None, ["https://example.com/a.mp4"])
        first = nemo.current_session_id
        assert first is not None
        emulator.add_fault(FaultRule(endpoint="nemovideo.upload", kind="session_lost", times=1))
        result = await nemo.upload_urls(None, ["https://example.com/b.mp4"])
        assert result.files[0].filename == "b.mp4"
        second = nemo.current_session_id
        assert second not in (None, first)
        assert len((await nemo.state(None)).video_infos) == 1

        emulator.add_fault(FaultRule(endpoint="nemovideo.run_sse", kind="session_lost", times=1))
        stream = nemo.chat(None, "hello there")
        events = await drain(stream)
        assert any(isinstance(e, TextEvent) for e in events)
        assert nemo.current_session_id not in (first, second)
        assert stream.session_id == nemo.current_session_id
        # The lost session's POST ran nothing: the only turn is the one that streamed.
        assert emulator.stats()["creates"].get("nemovideo", 0) == 0


# -- error codes ----------------------------------------------------------------------------


async def test_insufficient_credits(emulator_factory: Factory, tmp_path: pathlib.Path) -> None:
    """RELIABILITY #14: NemoVideo body code 2001 is InsufficientCredits."""
    async with (
        emulator_factory(EmulatorConfig(time_scale=0.05, initial_credits=0)) as emu,
        client(emu, tmp_path) as nemo,
    ):
        sid = (await nemo.create_session()).session_id
        with pytest.raises(InsufficientCredits) as info:
            await drain(nemo.chat(sid, GENERATE))
        assert info.value.body_code == 2001


async def test_upload_errors_from_the_server(
    emulator_factory: Factory, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #15: codes 4002 / 4001 are MediaTooLarge / UnsupportedMedia."""
    async with (
        emulator_factory(EmulatorConfig(time_scale=0.05, upload_max_bytes=100)) as emu,
        client(emu, tmp_path) as nemo,
    ):
        sid = (await nemo.create_session()).session_id
        big = tmp_path / "big.mp4"
        big.write_bytes(b"\x00" * 1000)
        with pytest.raises(MediaTooLarge) as too_large:
            await nemo.upload_files(sid, [big])
        assert too_large.value.body_code == 4002
        with pytest.raises(UnsupportedMedia) as unsupported:
            await nemo.upload_urls(sid, ["https://example.com/notes.txt"])
        assert unsupported.value.body_code == 4001


async def test_http_error_mapping(emulator: Emulator, tmp_path: pathlib.Path) -> None:
    async with client(emulator, tmp_path, retry=RetryPolicy(attempts=1)) as nemo:
        sid = (await nemo.create_session()).session_id
        with pytest.raises(NotFound):
            await nemo.render_status("render_unknown")
        emulator.add_fault(
            FaultRule(endpoint="nemovideo.credits", kind="rate_limit", params={"retry_after": 7})
        )
        with pytest.raises(RateLimited) as limited:
            await nemo.credits()
        assert limited.value.retry_after == 7.0
        emulator.clear_faults()

        emulator.advance(60.0)
        await drain(nemo.chat(sid, GENERATE))
        emulator.advance(60.0)
        state = await nemo.state(sid)
        spec = nemo.render_spec(sid, state)
        await nemo.create(spec)
        with pytest.raises(Conflict):
            await nemo.create(spec)  # the id is taken: never a second render


async def test_missing_attribution_and_client_id(emulator: Emulator) -> None:
    async def token() -> Secret:
        return Secret("nmv_usr_manual")

    async with Session(
        provider="nemovideo",
        base_url=emulator.base_url,
        auth=BearerAuth(token),
        error_mapper=_error_mapper,
    ) as raw:
        with pytest.raises(PaymentRequired) as paid:
            await raw.request("GET", "/api/credits/balance/simple")
        assert paid.value.status_code == 402
        with pytest.raises(BadRequest, match="X-Client-Id"):
            await raw.request("POST", "/api/auth/anonymous-token", authenticated=False)


# -- validation before any byte ----------------------------------------------------------------


async def test_local_validation_sends_nothing(emulator: Emulator, tmp_path: pathlib.Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 64)
    async with client(emulator, tmp_path, max_upload_bytes=10) as nemo:
        sid = (await nemo.create_session()).session_id
        baseline = sum(emulator.stats()["requests_by_endpoint"].values())
        with pytest.raises(InvalidInput) as wrong_type:
            await nemo.upload_files(sid, [clip, text])
        assert wrong_type.value.field == "files[0]"  # the first problem: clip.mp4 is too big
        with pytest.raises(InvalidInput) as wrong_ext:
            await nemo.upload_files(sid, [text])
        assert "notes.txt" in str(wrong_ext.value)
        with pytest.raises(InvalidInput, match="readable file"):
            await nemo.upload_files(sid, [tmp_path / "missing.mp4"])
        (tmp_path / "folder.mp4").mkdir()
        with pytest.raises(InvalidInput, match="regular file"):
            await nemo.upload_files(sid, [tmp_path / "folder.mp4"])
        with pytest.raises(InvalidInput):
            await nemo.upload_files(sid, [])
        with pytest.raises(InvalidInput):
            await nemo.upload_urls(sid, ["http://example.com/a.mp4"])
        with pytest.raises(InvalidInput, match="draft"):
            nemo.render_spec(sid, {"t": [{"tt": 0, "sg": []}]})
        with pytest.raises(InvalidInput, match="text"):
            nemo.chat(sid, "")
        with pytest.raises(InvalidInput):
            await nemo.render_status("../../admin")
        with pytest.raises(InvalidInput):
            await nemo.state("../../admin")
        with pytest.raises(InvalidInput):
            await nemo.poll("video", "render_1")
        assert sum(emulator.stats()["requests_by_endpoint"].values()) == baseline


# -- at most once: render submit and chat ------------------------------------------------------


async def test_render_submit_dropped_is_sent_once_and_found_by_its_id(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    async with client(emulator, tmp_path) as nemo:
        sid = await session_with_draft(nemo, emulator)
        spec = nemo.render_spec(sid, await nemo.state(sid))
        creates_before = emulator.stats()["creates"].get("nemovideo", 0)
        emulator.add_fault(
            FaultRule(endpoint="nemovideo.render", kind="drop_after_commit", times=1)
        )
        with pytest.raises(RequestMaybeSent):
            await nemo.create(spec)
        assert requests(emulator, "nemovideo.render") == 1
        assert emulator.stats()["creates"]["nemovideo"] == creates_before + 1
        assert await nemo.find_submission(spec, since=0.0) == spec.client_job_id
        await finish_render(nemo, emulator, spec.client_job_id or "")
        # A spec that was never sent is not found.
        assert (
            await nemo.find_submission(nemo.render_spec(sid, spec.payload["draft"]), since=0)
            is None
        )
        assert requests(emulator, "nemovideo.render") == 1


async def test_chat_dropped_mid_event_is_never_resent_and_state_is_polled(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    clock = Clockwork(emulator)
    async with client(emulator, tmp_path, sleep=clock) as nemo:
        sid = (await nemo.create_session()).session_id
        before = await nemo.state(sid)
        emulator.add_fault(
            FaultRule(
                endpoint="nemovideo.run_sse",
                kind="sse_close_mid_event",
                params={"after_events": 1},
            )
        )
        stream = nemo.chat(sid, GENERATE)
        events = await drain(stream)
        assert isinstance(events[0], TextEvent)
        assert isinstance(events[-1], StreamError)
        assert events[-1].dropped
        assert stream.dropped
        assert requests(emulator, "nemovideo.run_sse") == 1

        after = await nemo.wait_for_state_change(sid, since=before)
        assert after.draft.is_exportable
        assert clock.slept[0] == 30.0
        assert requests(emulator, "nemovideo.run_sse") == 1  # no second POST, ever


async def test_wait_for_state_change_gives_up_after_five_unchanged_queries(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    clock = Clockwork(emulator)
    async with client(emulator, tmp_path, sleep=clock) as nemo:
        sid = (await nemo.create_session()).session_id
        with pytest.raises(JobTimeout, match="unchanged after 5 queries"):
            await nemo.wait_for_state_change(sid, since=None)
        assert clock.slept == [30.0, 60.0, 60.0, 60.0, 60.0]
        assert requests(emulator, "nemovideo.state") == 6  # the baseline, then five


async def test_chat_drop_before_any_byte_is_a_stream_error(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    async with client(emulator, tmp_path) as nemo:
        sid = (await nemo.create_session()).session_id
        emulator.add_fault(
            FaultRule(endpoint="nemovideo.run_sse", kind="drop_after_commit", times=1)
        )
        with pytest.raises(RequestMaybeSent):
            await drain(nemo.chat(sid, GENERATE))
        assert requests(emulator, "nemovideo.run_sse") == 1


# -- the chat under stream faults --------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(endpoint="nemovideo.run_sse", kind="sse_fragment", params={"min": 1, "max": 7}),
        FaultRule(endpoint="nemovideo.run_sse", kind="sse_line_endings", params={"ending": "cr"}),
        FaultRule(endpoint="nemovideo.run_sse", kind="sse_line_endings", params={"ending": "crlf"}),
    ],
    ids=["fragments-1-7", "cr", "crlf"],
)
async def test_chat_framing_faults_change_nothing(
    emulator: Emulator, tmp_path: pathlib.Path, rule: FaultRule
) -> None:
    async with client(emulator, tmp_path) as nemo:
        sid = (await nemo.create_session()).session_id
        clean = await drain(nemo.chat(sid, GENERATE))
        emulator.add_fault(rule)
        faulty = await drain(nemo.chat(sid, GENERATE))
    for events in (clean, faulty):
        assert not any(isinstance(e, StreamError) for e in events)
        kinds = [type(e).__name__ for e in events if not isinstance(e, Heartbeat)]
        assert kinds[:3] == ["TextEvent", "ToolCall", "ToolResult"]
        # All three heartbeat forms: comment, {"type":"heartbeat"}, empty data.
        beats = [e for e in events if isinstance(e, Heartbeat)]
        assert {b.comment for b in beats} >= {"heartbeat", None}
    assert [type(e) for e in clean][:3] == [type(e) for e in faulty][:3]
    assert emulator.stats()["faults_fired"].get(rule.kind, 0) >= 1


async def test_chat_stall_is_an_idle_timeout(emulator: Emulator, tmp_path: pathlib.Path) -> None:
    emulator.add_fault(
        FaultRule(
            endpoint="nemovideo.run_sse",
            kind="sse_stall",
            params={"after_events": 1, "seconds": 30.0},
        )
    )
    async with client(emulator, tmp_path, chat_idle_timeout=0.2) as nemo:
        sid = (await nemo.create_session()).session_id
        seen: list[ChatEvent] = []

        async def read() -> None:
            async with nemo.chat(sid, GENERATE) as stream:
                async for event in stream:
                    seen.append(event)

        with anyio.fail_after(10):
            with pytest.raises(StreamIdleTimeout):
                await read()
        assert isinstance(seen[0], TextEvent)
        assert requests(emulator, "nemovideo.run_sse") == 1


async def test_chat_events_stream_in_order(emulator: Emulator, tmp_path: pathlib.Path) -> None:
    async with client(emulator, tmp_path) as nemo:
        sid = (await nemo.create_session()).session_id
        events = await drain(nemo.chat(sid, "hello"))
    assert len(events) == 1
    assert isinstance(events[0], TextEvent)
    assert events[0].author == "nemo_agent"


# -- downloads ---------------------------------------------------------------------------


async def test_download_refetches_an_expired_url_then_falls_back(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #33: a 403 signed URL refetches the status once, then the API path."""
    async with client(emulator, tmp_path) as nemo:
        sid = await session_with_draft(nemo, emulator)
        render_id = await nemo.submit_render(sid, await nemo.state(sid))
        await finish_render(nemo, emulator, render_id)

        polls = requests(emulator, "nemovideo.render_status")
        emulator.add_fault(
            FaultRule(endpoint="nemovideo.download", kind="expire_signed_url", times=1)
        )
        path = await nemo.download_render(render_id, tmp_path / "a.mp4")
        assert path.stat().st_size > 0
        assert requests(emulator, "nemovideo.render_status") == polls + 2  # status + refetch

        emulator.add_fault(
            FaultRule(endpoint="nemovideo.download", kind="expire_signed_url", times=2)
        )
        downloads = requests(emulator, "nemovideo.download")
        path = await nemo.download_render(render_id, tmp_path / "b.mp4")
        assert path.read_bytes()[4:8] == b"ftyp"
        # URL (403), fresh URL (403), then the API download path.
        assert requests(emulator, "nemovideo.download") == downloads + 3


async def test_a_render_download_past_its_deadline_is_a_total_timeout(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    """``download_render(deadline=)``: a trickling file is cut, nothing is left behind."""
    async with client(emulator, tmp_path) as nemo:
        sid = await session_with_draft(nemo, emulator)
        render_id = await nemo.submit_render(sid, await nemo.state(sid))
        await finish_render(nemo, emulator, render_id)
        emulator.add_fault(FaultRule(endpoint="nemovideo.download", kind="trickle", times=1))
        out = tmp_path / "out"
        out.mkdir()
        with anyio.fail_after(10), pytest.raises(TotalTimeout) as caught:
            await nemo.download_render(render_id, out / "a.mp4", deadline=0.3)
        assert caught.value.provider == "nemovideo"
        assert await anyio.Path(out / "a.mp4").exists() is False
        path = await nemo.download_render(render_id, out / "a.mp4", deadline=30)
        assert path.read_bytes()[4:8] == b"ftyp"


async def test_failed_render_maps_to_failed(
    emulator_factory: Factory, tmp_path: pathlib.Path
) -> None:
    async with (
        emulator_factory(EmulatorConfig(time_scale=0.05)) as emu,
        client(emu, tmp_path) as nemo,
    ):
        sid = await session_with_draft(nemo, emu)
        draft = (await nemo.state(sid)).draft
    config = EmulatorConfig(time_scale=0.05, failure_rate=1.0)
    async with emulator_factory(config) as emu, client(emu, tmp_path / "2") as nemo:
        sid = (await nemo.create_session()).session_id
        render_id = await nemo.submit_render(sid, draft)
        await finish_render(nemo, emu, render_id)
        status = await nemo.poll("render", render_id)
        assert status.state is JobState.FAILED
        assert status.message == "render failed"
        assert status.result is None


# -- headers and the borrowed session (a recording server) ----------------------------------


async def test_headers_per_endpoint_and_a_borrowed_session(tmp_path: pathlib.Path) -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.path, dict(request.headers)))
        if request.path == "/api/auth/anonymous-token":
            data: dict[str, Any] = {"token": "nmv_usr_recorded", "credits": 100}
        else:
            data = {"available": 1, "frozen": 0, "total": 1}
        return web.json_response({"code": 0, "message": "success", "data": data})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as borrowed:
            nemo = NemoVideo(
                base_url=f"http://127.0.0.1:{port}",
                client_id_file=tmp_path / "cid",
                session=borrowed,
                skill_source="my-app",
                skill_version="9.9",
                skill_platform="cursor",
            )
            async with nemo:
                await nemo.credits()
            assert not borrowed.closed  # borrowed: never closed by the client
    finally:
        await runner.cleanup()
    (token_path, token_headers), (credits_path, credits_headers) = seen
    assert token_path == "/api/auth/anonymous-token"
    assert token_headers["X-Client-Id"] == (tmp_path / "cid").read_text().strip()
    assert "Authorization" not in token_headers
    assert not any(h.startswith("X-Skill") for h in token_headers)
    assert credits_path == "/api/credits/balance/simple"
    assert credits_headers["Authorization"] == "Bearer nmv_usr_recorded"
    assert credits_headers["X-Skill-Source"] == "my-app"
    assert credits_headers["X-Skill-Version"] == "9.9"
    assert credits_headers["X-Skill-Platform"] == "cursor"


def test_attribution_defaults_and_validation(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InvalidInput) as info:
        NemoVideo(token="t", skill_platform="a\r\nX-Evil: 1")
    assert info.value.field == "skill_platform"
    with pytest.raises(InvalidInput):
        NemoVideo(token="t", max_upload_bytes=0)
    with pytest.raises(InvalidInput):
        NemoVideo(token="t", base_url="http://example.com")  # plain http off loopback
    assert "token" in repr(NemoVideo(token="nmv_usr_secret"))
    assert "nmv_usr_secret" not in repr(NemoVideo(token="nmv_usr_secret"))


# -- with the orchestrator: a lost render submit is found by its client-chosen id -----------


async def test_orchestrator_reconciles_a_lost_render_submit(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    policy = PollPolicy(initial=0.01, factor=1.5, cap=0.05, deadline=30.0)
    async with client(emulator, tmp_path) as nemo:
        sid = await session_with_draft(nemo, emulator)
        spec = nemo.render_spec(sid, await nemo.state(sid))
        emulator.add_fault(
            FaultRule(endpoint="nemovideo.render", kind="drop_after_commit", times=1)
        )
        async with Orchestrator(backends=[nemo], poll_policy=policy) as orch:
            with pytest.raises(SubmissionOutcomeUnknown):
                await orch.submit(spec, key="export-1")
            with pytest.raises(SubmissionOutcomeUnknown):
                await orch.submit(spec, key="export-1")  # the journal answers; nothing is sent
            (found,) = await orch.reconcile()
            assert found.outcome is ReconcileOutcome.FOUND
            assert found.job_id == spec.client_job_id
            assert found.handle is not None
            with anyio.fail_after(20):
                result = await found.handle
        assert result.job_id == spec.client_job_id
        assert result.url is not None
        assert requests(emulator, "nemovideo.render") == 1


CREATE_PATHS = ["session", "upload_urls", "upload_files", "render", "run_sse"]
CREATE_FAULTS: list[tuple[str, dict[str, Any], type[Exception]]] = [
    ("drop_after_commit", {}, RequestMaybeSent),
    ("server_error", {"status": 502, "commit": True}, ServerError),
    ("truncate", {"fraction": 0.5}, RequestMaybeSent),
]


@pytest.mark.parametrize(
    ("endpoint", "kind", "params", "error"),
    [
        pytest.param(endpoint, *fault, id=f"{endpoint}-{fault[0]}")
        for endpoint in CREATE_PATHS
        for fault in CREATE_FAULTS
        # A flowing event stream cannot be truncated like a complete body;
        # the chat's own mid-stream faults are tested above.
        if not (endpoint == "run_sse" and fault[0] == "truncate")
    ],
)
async def test_no_create_path_sends_twice(
    emulator: Emulator,
    tmp_path: pathlib.Path,
    endpoint: str,
    kind: str,
    params: dict[str, Any],
    error: type[Exception],
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 64)
    async with client(emulator, tmp_path) as nemo:
        sid = await session_with_draft(nemo, emulator)
        spec = nemo.render_spec(sid, await nemo.state(sid))
        calls: dict[str, Callable[[], Any]] = {
            "session": lambda: nemo.create_session(),
            "upload_urls": lambda: nemo.upload_urls(sid, ["https://example.com/a.mp4"]),
            "upload_files": lambda: nemo.upload_files(sid, [clip]),
            "render": lambda: nemo.create(spec),
            "run_sse": lambda: drain(nemo.chat(sid, GENERATE)),
        }
        name = "upload" if endpoint.startswith("upload") else endpoint
        before = requests(emulator, f"nemovideo.{name}")
        emulator.add_fault(
            FaultRule(endpoint=f"nemovideo.{name}", kind=kind, params=params, times=1)
        )
        with pytest.raises(error):
            await calls[endpoint]()
        assert requests(emulator, f"nemovideo.{name}") == before + 1


async def test_wait_for_render_outcomes(emulator_factory: Factory, tmp_path: pathlib.Path) -> None:
    async with emulator_factory(FAST) as emu, client(emu, tmp_path) as nemo:
        sid = await session_with_draft(nemo, emu)
        draft = (await nemo.state(sid)).draft
        clock = Clockwork(emu)
        done = await nemo.wait_for_render(await nemo.submit_render(sid, draft), sleep=clock)
        assert done.url is not None
        assert clock.slept  # it polled more than once, on the injected sleep
        assert set(clock.slept) == {10.0}

        pending = await nemo.submit_render(sid, draft)
        with pytest.raises(JobTimeout, match="after 1 polls"):
            await nemo.wait_for_render(pending, max_polls=1)
        await nemo.cancel_render(pending)
        with pytest.raises(JobCancelled):
            await nemo.wait_for_render(pending, sleep=clock)
    failing = EmulatorConfig(time_scale=0.05, failure_rate=1.0)
    async with emulator_factory(failing) as emu, client(emu, tmp_path / "f") as nemo:
        sid = (await nemo.create_session()).session_id
        with pytest.raises(JobFailed, match="render failed"):
            await nemo.wait_for_render(await nemo.submit_render(sid, draft), sleep=Clockwork(emu))


async def test_token_expired_on_the_chat_is_raised_then_the_next_chat_works(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    async with client(emulator, tmp_path) as nemo:
        sid = (await nemo.create_session()).session_id
        emulator.add_fault(FaultRule(endpoint="nemovideo.run_sse", kind="token_expired", times=1))
        with pytest.raises(AuthenticationError):
            await drain(nemo.chat(sid, GENERATE))
        assert requests(emulator, "nemovideo.run_sse") == 1
        events = await drain(nemo.chat(sid, GENERATE))
        assert any(isinstance(e, ToolCall) for e in events)
    assert requests(emulator, "nemovideo.run_sse") == 2
    assert emulator.stats()["creates"]["nemovideo"] == 1  # only the accepted turn ran


def test_load_client_id_creates_a_private_file_once(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "deep" / "er" / "client_id"
    first = load_client_id(path)
    assert path.read_text().strip() == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_client_id(path) == first
    assert load_client_id(str(path)) == first
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    path.write_text("  custom-client-id_42 \n")
    assert load_client_id(path) == "custom-client-id_42"
    path.write_text("../../etc/passwd")
    with pytest.raises(InvalidInput) as info:
        load_client_id(path)
    assert info.value.field == "client_id_file"
