"""Session.download creates a missing target folder, like ``curl --create-dirs``."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

import pytest

from aivideo_async._secret import Secret

from .conftest import RecordingSleep, Serve
from .test_download import VIDEO, make_session, video_app

pytestmark = pytest.mark.anyio


async def test_missing_target_folders_are_created(
    serve: Serve, key: Secret, fake_sleep: RecordingSleep, tmp_path: pathlib.Path
) -> None:
    seen: list[Mapping[str, str]] = []
    base = await serve(video_app(seen))
    dest = tmp_path / "a" / "b" / "out.mp4"
    async with make_session(base, key, fake_sleep) as session:
        path = await session.download(f"{base}/v/1.mp4", dest, absolute=True)
    assert path == dest
    assert dest.read_bytes() == VIDEO
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out.mp4"]
