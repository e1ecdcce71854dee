"""The deprecated render submit path of the initial NemoVideo API (PROVIDER_APIS §2.3)."""

from __future__ import annotations

import pathlib

import pytest

from aivideo_async import JobState
from aivideo_async.emulator import Emulator

from .test_nemovideo_client import client, finish_render, session_with_draft

pytestmark = pytest.mark.anyio


async def test_legacy_draft_path_submits_once_and_renders(
    emulator: Emulator, tmp_path: pathlib.Path
) -> None:
    async with client(emulator, tmp_path) as nemo:
        sid = await session_with_draft(nemo, emulator)
        spec = nemo.render_spec(sid, await nemo.state(sid), legacy_path=True)
        assert spec.endpoint == "POST /api/render/proxy/draft"
        assert (
            spec.payload
            == nemo.render_spec(sid, spec.payload["draft"], render_id=spec.client_job_id).payload
        )  # the same body as the current path
        creates_before = emulator.stats()["creates"].get("nemovideo", 0)
        render_id = await nemo.submit_once(spec)
        assert render_id == spec.client_job_id
        assert emulator.stats()["creates"]["nemovideo"] == creates_before + 1
        await finish_render(nemo, emulator, render_id)
        status = await nemo.poll("render", render_id)
    assert status.state is JobState.SUCCEEDED
