"""Wire variants the emulator does not send, over a loopback stand-in server.

The docs' own voices sample puts the list under ``avatars``; a failure envelope
can come with HTTP 200. Both must be handled by the client end to end.
"""

from __future__ import annotations

import pytest

from aivideo_async._exceptions import BadRequest, DecodeError, InsufficientCredits
from aivideo_async.providers.miraflow import Miraflow

from .conftest import Answers

pytestmark = pytest.mark.anyio


async def test_voices_under_the_avatars_key(stand_in: tuple[Answers, str]) -> None:
    answers, base = stand_in
    answers["GET /api/voices"] = (200, {"avatars": [{"id": "v1", "name": "Calm"}]})
    async with Miraflow("k", base_url=base) as mira:
        assert [v.id for v in await mira.list_voices()] == ["v1"]


async def test_failure_envelope_on_200_is_an_error(stand_in: tuple[Answers, str]) -> None:
    answers, base = stand_in
    answers["POST /api/video/create"] = (200, {"result": "failure", "error": "Missing name"})
    answers["POST /api/image/generate"] = (
        200,
        {"result": "failure", "error": "Insufficient credits"},
    )
    async with Miraflow("k", base_url=base) as mira:
        with pytest.raises(BadRequest) as info:
            await mira.submit_once(mira.video(avatar_id="a", name="n", text="t"))
        assert info.value.message == "Missing name"
        assert info.value.status_code == 200
        with pytest.raises(InsufficientCredits):
            await mira.submit_once(mira.image(prompt="p"))


async def test_a_create_answer_without_job_id_is_a_decode_error(
    stand_in: tuple[Answers, str],
) -> None:
    answers, base = stand_in
    answers["POST /api/image/generate"] = (200, {"result": "success", "id": "j1"})
    async with Miraflow("k", base_url=base) as mira:
        with pytest.raises(DecodeError) as info:
            await mira.submit_once(mira.image(prompt="p"))
    assert info.value.path == "$.jobId"
