"""The AIVideoMaker client against the emulator over loopback: endpoints, errors, one create."""

from __future__ import annotations

import logging
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import attrs
import pytest

from aivideo_async._exceptions import (
    AuthenticationError,
    Conflict,
    DownloadError,
    InsufficientCredits,
    InvalidInput,
    MissingCredential,
    NotFound,
    PaymentRequired,
    RateLimited,
    RemoteDisconnected,
    ServerError,
    TotalTimeout,
)
from aivideo_async._models import JobState
from aivideo_async._secret import Secret
from aivideo_async.emulator import Emulator, EmulatorConfig, FaultRule, run_emulator
from aivideo_async.providers._base import JobBackend, JobSpec
from aivideo_async.providers.aivideomaker import AIVideoMaker

from .conftest import (
    CREATE_FAULTS,
    CREATE_TIMEOUTS,
    FAST_RETRY,
    NO_RETRY,
    PNG,
    FakeSleep,
    assert_sent_once,
)

pytestmark = pytest.mark.anyio

KEY = "ak_test_key_91c2"
URL = "https://example.com/first-frame.jpg"


@pytest.fixture
async def avm(emu: Emulator, fake_sleep: FakeSleep) -> AsyncIterator[AIVideoMaker]:
    async with AIVideoMaker(
        KEY, base_url=emu.base_url, retry=FAST_RETRY, sleep=fake_sleep
    ) as client:
        yield client


def _creates(emu: Emulator) -> int:
    return int(emu.stats()["creates"].get("aivideomaker", 0))


# --- construction and credentials ------------------------------------------------------


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIVIDEO_API_KEY", raising=False)
    with pytest.raises(MissingCredential) as info:
        AIVideoMaker()
    assert info.value.variable == "AIVIDEO_API_KEY"


async def test_key_from_environment_and_borrowed_session(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIVIDEO_API_KEY", KEY)
    async with aiohttp.ClientSession() as http:
        async with AIVideoMaker(base_url=emu.base_url, session=http) as avm:
            assert await avm.list_tasks() == []
        assert not http.closed
    assert KEY not in repr(avm)


async def test_wrong_key_is_authentication_error_without_the_key() -> None:
    config = EmulatorConfig(api_keys={"aivideomaker": frozenset({"ak_right"})})
    async with run_emulator(config) as emu, AIVideoMaker(Secret(KEY), base_url=emu.base_url) as avm:
        with pytest.raises(AuthenticationError) as info:
            await avm.list_tasks()
    assert info.value.status_code == 401
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)


# --- every model, every status ------------------------------------------------------


def _specs(avm: AIVideoMaker, data_uri: str) -> dict[str, JobSpec]:
    return {
        "t2v": avm.text_to_video(prompt="a city at dusk", aspect_ratio="9:16", duration=8),
        "t2v_v3": avm.text_to_video(prompt="waves", duration=20, model="t2v_v3"),
        "i2v": avm.image_to_video(image=URL, prompt="zoom in", duration="5"),
        "i2v_v3": avm.image_to_video(image=data_uri, duration=10, model="i2v_v3"),
        "lv": avm.long_video(image=data_uri, prompts=["wide", "closer", "birds"]),
        "generate": avm.generate("t2v", {"prompt": "x", "aspectRatio": "1:1", "duration": 5}),
    }


@pytest.mark.parametrize("which", ["t2v", "t2v_v3", "i2v", "i2v_v3", "lv", "generate"])
async def test_every_model_from_submitted_to_download(
    avm: AIVideoMaker, emu: Emulator, tmp_path: pathlib.Path, which: str
) -> None:
    spec = _specs(avm, await avm.image_data_uri(PNG))[which]
    task_id = await avm.submit_once(spec)
    assert _creates(emu) == 1
    queued = await avm.poll("video", task_id)
    assert (queued.state, queued.raw_status) == (JobState.QUEUED, "SUBMITTED")
    task = await avm.get_task(task_id)
    assert task.model == spec.meta["model"]
    assert task.output is None
    job = emu.state.jobs["aivideomaker"][task_id]
    emu.advance(job.duration * 0.5)
    running = await avm.task_status(task_id)
    assert (running.state, running.raw_status) == (JobState.RUNNING, "PROGRESS")
    emu.advance(job.duration)
    done = await avm.poll("video", task_id)
    assert (done.state, done.raw_status) == (JobState.SUCCEEDED, "COMPLETED")
    assert done.result is not None
    assert done.result.url is not None
    path = await avm.download(done.result, tmp_path / "clip.mp4")
    assert path.read_bytes()[4:8] == b"ftyp"


async def test_a_download_past_its_deadline_is_a_total_timeout(
    avm: AIVideoMaker, emu: Emulator, tmp_path: pathlib.Path
) -> None:
    """``download(deadline=)``: a trickling file is cut, nothing is left behind."""
    task_id = await avm.submit_once(avm.text_to_video(prompt="waves"))
    emu.advance(10_000)
    done = await avm.poll("video", task_id)
    assert done.result is not None
    emu.set_faults([FaultRule(endpoint="aivideomaker.download", kind="trickle", times=1)])
    with anyio.fail_after(10), pytest.raises(TotalTimeout) as caught:
        await avm.download(done.result, tmp_path / "clip.mp4", deadline=0.3)
    assert caught.value.provider == "aivideomaker"
    assert await anyio.Path(tmp_path / "clip.mp4").exists() is False
    path = await avm.download(done.result, tmp_path / "clip.mp4", deadline=30)
    assert path.read_bytes()[4:8] == b"ftyp"


async def test_failed_task_keeps_its_status() -> None:
    config = EmulatorConfig(seed=2, time_scale=100.0, failure_rate=1.0)
    async with run_emulator(config) as emu, AIVideoMaker(KEY, base_url=emu.base_url) as avm:
        task_id = await avm.submit_once(avm.text_to_video(prompt="x"))
        emu.advance(10_000)
        status = await avm.poll("video", task_id)
        assert (status.state, status.raw_status) == (JobState.FAILED, "FAILED")
        with pytest.raises(DownloadError):
            await avm.download(task_id, "unused.mp4")


async def test_cancel_while_submitted(avm: AIVideoMaker, emu: Emulator) -> None:
    task_id = await avm.submit_once(avm.text_to_video(prompt="x"))
    assert avm.supports_cancel("video")
    await avm.cancel("video", task_id)
    status = await avm.poll("video", task_id)
    assert (status.state, status.raw_status) == (JobState.CANCELED, "CANCEL")


async def test_cancel_after_submitted_is_a_clear_conflict(avm: AIVideoMaker, emu: Emulator) -> None:
    task_id = await avm.submit_once(avm.text_to_video(prompt="x"))
    emu.advance(emu.state.jobs["aivideomaker"][task_id].duration * 0.5)
    with pytest.raises(Conflict) as info:
        await avm.cancel("video", task_id)
    assert "PROGRESS" in str(info.value)
    assert "SUBMITTED" in str(info.value)
    assert info.value.status_code == 400
    with pytest.raises(NotFound):
        await avm.cancel("video", "cknosuchtask")


async def test_lists_and_poll_many(avm: AIVideoMaker, emu: Emulator) -> None:
    first = await avm.submit_once(avm.text_to_video(prompt="one"))
    emu.advance(600)
    second = await avm.submit_once(avm.text_to_video(prompt="two"))
    tasks = await avm.list_tasks()
    assert [t.id for t in tasks] == [second, first]  # newest first
    statuses = await avm.poll_many("video", [first, second, "cknotmine"])
    assert statuses is not None
    assert set(statuses) == {first, second}
    assert statuses[first].state is JobState.SUCCEEDED
    finished = statuses[first].result
    assert finished is not None
    assert finished.url is not None
    assert statuses[second].state is JobState.QUEUED


async def test_webhook_header_is_sent(avm: AIVideoMaker, emu: Emulator) -> None:
    spec = avm.text_to_video(prompt="x", webhook_url="https://hooks.example/cb")
    task_id = await avm.submit_once(spec)
    assert emu.state.jobs["aivideomaker"][task_id].data["webhookUrl"] == "https://hooks.example/cb"


async def test_find_submission_matches_input_and_window(avm: AIVideoMaker, emu: Emulator) -> None:
    since = emu.state.wall()
    spec = avm.image_to_video(image=await avm.image_data_uri(PNG), duration=8)
    other = avm.image_to_video(image=await avm.image_data_uri(PNG), duration=5)
    emu.add_fault(FaultRule(endpoint="aivideomaker.create", kind="drop_after_commit", times=1))
    with pytest.raises(RemoteDisconnected):
        await avm.submit_once(spec)
    other_id = await avm.submit_once(other)
    found = await avm.find_submission(spec, since=since)
    assert found is not None
    assert found != other_id
    assert emu.state.jobs["aivideomaker"][found].data["input"]["duration"] == "8"
    assert await avm.find_submission(spec, since=since + 3600) is None
    never = avm.text_to_video(prompt="never sent")
    assert await avm.find_submission(never, since=since) is None
    hashed = attrs.evolve(spec, payload={})  # a journal keeping only a payload hash
    assert await avm.find_submission(hashed, since=since) is None


async def test_find_submission_refuses_to_guess_between_twins(
    avm: AIVideoMaker, emu: Emulator
) -> None:
    since = emu.state.wall()
    spec = avm.text_to_video(prompt="twin")
    await avm.submit_once(spec)
    await avm.submit_once(spec)
    assert await avm.find_submission(spec, since=since) is None


# --- validation: nothing invalid leaves ------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda a: a.text_to_video(prompt="x", duration=10), "duration"),
        (lambda a: a.text_to_video(prompt="x", duration=8, model="t2v_v3"), "duration"),
        (lambda a: a.text_to_video(prompt="x", aspect_ratio="4:3"), "aspect_ratio"),
        (lambda a: a.text_to_video(prompt=" "), "prompt"),
        (lambda a: a.text_to_video(prompt="x", model="sora"), "model"),
        (lambda a: a.image_to_video(image="http://example.com/a.jpg"), "image"),
        (lambda a: a.image_to_video(image="data:image/png;base64,!!"), "image"),
        (lambda a: a.image_to_video(image=URL, duration=20), "duration"),
        (lambda a: a.long_video(image=URL, prompts=[]), "prompt"),
        (lambda a: a.long_video(image=URL, prompts=["p"] * 7), "prompt"),
        (lambda a: a.generate("minimax", {"content": "x"}), "model"),
        (lambda a: a.generate("lv", {"image": URL, "prompt": ["a"], "duration": "5"}), "duration"),
    ],
)
async def test_invalid_payloads_never_reach_the_server(
    avm: AIVideoMaker, emu: Emulator, make: Any, field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        make(avm)
    assert info.value.field == field
    assert emu.stats()["requests"].get("aivideomaker", 0) == 0


async def test_image_data_uri_checks_type_and_size(
    avm: AIVideoMaker, emu: Emulator, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #15: an image data URI's type and size are checked before sending."""
    png_file = tmp_path / "frame.png"
    png_file.write_bytes(PNG)
    uri = await avm.image_data_uri(png_file)
    assert uri.startswith("data:image/png;base64,iVBORw0KGgo")
    text_file = tmp_path / "notes.png"
    text_file.write_bytes(b"not an image")
    for bad, field in ((text_file, "image"), (tmp_path / "missing.png", "image"), (b"", "image")):
        with pytest.raises(InvalidInput) as info:
            await avm.image_data_uri(bad)
        assert info.value.field == field
    with pytest.raises(InvalidInput) as info:
        await avm.image_data_uri(PNG, content_type="image/jpeg")
    assert info.value.field == "content_type"
    async with AIVideoMaker(KEY, base_url=emu.base_url, max_image_bytes=10) as small:
        with pytest.raises(InvalidInput):
            await small.image_data_uri(PNG)


# --- error mapping against the emulator ------------------------------------------------------


async def test_unknown_task_is_not_found(avm: AIVideoMaker) -> None:
    with pytest.raises(NotFound):
        await avm.get_task("cknosuchtask")
    with pytest.raises(NotFound):
        await avm.poll("video", "cknosuchtask")


async def test_another_keys_task_is_not_found(emu: Emulator, avm: AIVideoMaker) -> None:
    task_id = await avm.submit_once(avm.text_to_video(prompt="mine"))
    async with AIVideoMaker("ak_someone_else", base_url=emu.base_url) as other:
        with pytest.raises(NotFound):
            await other.task_status(task_id)


async def test_insufficient_credits_is_402() -> None:
    """RELIABILITY #14: AIVideoMaker's 402 "Insufficient credits" is InsufficientCredits."""
    config = EmulatorConfig(time_scale=100.0, initial_credits=3)
    async with run_emulator(config) as emu, AIVideoMaker(KEY, base_url=emu.base_url) as avm:
        with pytest.raises(InsufficientCredits) as info:
            await avm.submit_once(avm.text_to_video(prompt="x", duration=8))
    assert info.value.status_code == 402
    assert info.value.message == "Insufficient credits"


async def test_query_limit_429_is_retried_after_retry_after(fake_sleep: FakeSleep) -> None:
    config = EmulatorConfig(time_scale=100.0, aivideomaker_query_limit=2)
    async with run_emulator(config) as emu:
        fake_sleep.emulator = emu
        async with AIVideoMaker(
            KEY, base_url=emu.base_url, retry=FAST_RETRY, sleep=fake_sleep
        ) as avm:
            for _ in range(3):
                await avm.list_tasks()
    assert fake_sleep.calls
    assert fake_sleep.calls[0] >= 1.0


async def test_query_limit_surfaces_as_rate_limited() -> None:
    config = EmulatorConfig(time_scale=100.0, aivideomaker_query_limit=1)
    async with (
        run_emulator(config) as emu,
        AIVideoMaker(KEY, base_url=emu.base_url, retry=NO_RETRY) as avm,
    ):
        await avm.list_tasks()
        with pytest.raises(RateLimited) as info:
            await avm.task_status("ck1")
    assert info.value.retry_after is not None
    assert info.value.retry_after > 0
    assert info.value.status_code == 429


async def test_server_error_on_a_poll(emu: Emulator) -> None:
    emu.add_fault(FaultRule(endpoint="aivideomaker.status", kind="server_error"))
    async with AIVideoMaker(KEY, base_url=emu.base_url, retry=NO_RETRY) as avm:
        with pytest.raises(ServerError):
            await avm.task_status("ck1")


async def test_expired_output_url_is_refetched_once(
    avm: AIVideoMaker, emu: Emulator, tmp_path: pathlib.Path
) -> None:
    """RELIABILITY #33: an expired output URL is refetched once; twice expired -> DownloadError."""
    task_id = await avm.submit_once(avm.text_to_video(prompt="x"))
    emu.advance(600)
    done = await avm.poll("video", task_id)
    assert done.result is not None
    emu.add_fault(FaultRule(endpoint="aivideomaker.download", kind="expire_signed_url", times=1))
    path = await avm.download(done.result, tmp_path / "a.mp4")
    assert path.stat().st_size > 0
    emu.add_fault(FaultRule(endpoint="aivideomaker.download", kind="expire_signed_url"))
    with pytest.raises(DownloadError) as info:
        await avm.download(task_id, tmp_path / "b.mp4")
    assert info.value.status_code == 403
    assert not isinstance(info.value, PaymentRequired)
    assert not (tmp_path / "b.mp4").exists()
    assert emu.stats()["faults_fired"]["expire_signed_url"] == 3


async def test_is_a_job_backend(avm: AIVideoMaker) -> None:
    assert isinstance(avm, JobBackend)
    assert avm.provider == "aivideomaker"


# --- no create can be sent twice ------------------------------------------------------


@pytest.mark.parametrize("which", ["t2v", "t2v_v3", "i2v", "i2v_v3", "lv"])
@CREATE_FAULTS
async def test_a_failed_create_is_sent_exactly_once(
    emu: Emulator, which: str, fault: dict[str, Any], expected: type[Exception]
) -> None:
    async with AIVideoMaker(
        KEY,
        base_url=emu.base_url,
        retry=FAST_RETRY,
        create_timeouts=CREATE_TIMEOUTS,
    ) as avm:
        spec = _specs(avm, await avm.image_data_uri(PNG))[which]
        emu.add_fault(FaultRule(endpoint="aivideomaker.create", **fault))
        with pytest.raises(expected):
            await avm.submit_once(spec)
    assert_sent_once(emu, "aivideomaker", fault)


async def test_the_key_is_never_logged(
    avm: AIVideoMaker, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu.add_fault(FaultRule(endpoint="aivideomaker.list", kind="rate_limit", times=1))
    await avm.list_tasks()
    with pytest.raises(NotFound) as info:
        await avm.get_task("cknosuchtask")
    assert caplog.records
    assert KEY not in caplog.text
    assert KEY not in repr(info.value)
    assert KEY not in repr(avm)


@pytest.mark.parametrize("bad", ["../admin", "a/b", "x?y=1", "é", ""])
async def test_ids_are_checked_before_they_enter_a_path(
    avm: AIVideoMaker, emu: Emulator, bad: str
) -> None:
    with pytest.raises(InvalidInput):
        await avm.get_task(bad)
    with pytest.raises(InvalidInput):
        await avm.cancel("video", bad)
    assert emu.stats()["requests"].get("aivideomaker", 0) == 0
