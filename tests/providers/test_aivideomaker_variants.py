"""Wire variants the emulator does not send, over a loopback stand-in server.

Create answers with ``id`` instead of ``taskId``, outputs with only ``url``, and
``{"status": "FAILED"}`` envelopes on HTTP 200 (§4.2, §4.4 CONFLICTs).
"""

from __future__ import annotations

import pytest

from aivideo_async._exceptions import BadRequest, Conflict, InsufficientCredits
from aivideo_async._models import JobState
from aivideo_async.providers.aivideomaker import AIVideoMaker

from .conftest import Answers

pytestmark = pytest.mark.anyio


async def test_create_answer_with_id(stand_in: tuple[Answers, str]) -> None:
    answers, base = stand_in
    answers["POST /api/v1/generate/t2v"] = (200, {"status": "SUBMITTED", "id": "ck9"})
    async with AIVideoMaker("ak", base_url=base) as avm:
        assert await avm.submit_once(avm.text_to_video(prompt="x")) == "ck9"


async def test_completed_output_with_only_url(stand_in: tuple[Answers, str]) -> None:
    answers, base = stand_in
    answers["GET /api/v1/tasks/ck9/status"] = (200, {"status": "COMPLETED"})
    answers["GET /api/v1/tasks/ck9"] = (
        200,
        {"id": "ck9", "status": "COMPLETED", "output": {"url": "https://cdn.example/ck9.mp4"}},
    )
    async with AIVideoMaker("ak", base_url=base) as avm:
        status = await avm.poll("video", "ck9")
    assert status.state is JobState.SUCCEEDED
    assert status.result is not None
    assert status.result.url == "https://cdn.example/ck9.mp4"


async def test_failed_envelope_on_200(stand_in: tuple[Answers, str]) -> None:
    answers, base = stand_in
    answers["POST /api/v1/generate/t2v"] = (
        200,
        {"status": "FAILED", "message": "Insufficient credits"},
    )
    answers["POST /api/v1/generate/lv"] = (200, {"status": "FAILED", "message": "Bad image"})
    answers["PUT /api/v1/tasks/ck9/cancel"] = (200, {"status": "FAILED", "message": "Too late"})
    answers["GET /api/v1/tasks/ck9/status"] = (200, {"status": "PROGRESS"})
    async with AIVideoMaker("ak", base_url=base) as avm:
        with pytest.raises(InsufficientCredits) as credits:
            await avm.submit_once(avm.text_to_video(prompt="x"))
        assert credits.value.status_code == 200
        with pytest.raises(BadRequest):
            await avm.submit_once(avm.long_video(image="https://e.x/a.png", prompts=["a"]))
        with pytest.raises(Conflict) as info:
            await avm.cancel("video", "ck9")
    assert "PROGRESS" in str(info.value)


async def test_failed_task_status_on_200_is_a_job_state(stand_in: tuple[Answers, str]) -> None:
    answers, base = stand_in
    answers["GET /api/v1/tasks/ck9/status"] = (200, {"status": "FAILED"})
    answers["GET /api/v1/tasks/ck9"] = (
        200,
        {"id": "ck9", "status": "FAILED", "message": "content policy", "output": None},
    )
    async with AIVideoMaker("ak", base_url=base) as avm:
        status = await avm.poll("video", "ck9")
    assert status.state is JobState.FAILED
    assert status.message == "content policy"
