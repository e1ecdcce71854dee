"""
A download whose disk fills up mid-body (RELIABILITY #36).

The write limit is real: a child process lowers its own ``RLIMIT_FSIZE`` (and
ignores ``SIGXFSZ``), so writing past 64 KiB fails with ``EFBIG`` inside the
session's write loop, exactly where ``ENOSPC`` on a full disk fails. The child
serves a 1 MiB video over loopback itself; the limit stays in the child.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

CHILD = textwrap.dedent(
    """
    import json, os, resource, signal, sys

    import anyio
    from aiohttp import web

    from aivideo_async._exceptions import DownloadError
    from aivideo_async._session import Session

    LIMIT = 64 * 1024
    BODY = b"\\x00\\x00\\x00\\x18ftypmp42" + b"v" * (1024 * 1024)

    async def video(request):
        return web.Response(body=BODY, content_type="video/mp4")

    async def main(dest):
        app = web.Application()
        app.router.add_get("/v.mp4", video)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        # From here on no file of this process may grow past LIMIT bytes.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))
        outcome = {}
        try:
            async with Session(provider="p", base_url=base) as session:
                await session.download(f"{base}/v.mp4", dest, absolute=True)
            outcome["error"] = None
        except DownloadError as exc:
            outcome["error"] = type(exc).__name__
            outcome["message"] = str(exc)
            outcome["cause"] = type(exc.__cause__).__name__
        finally:
            await runner.cleanup()
        outcome["left"] = sorted(os.listdir(os.path.dirname(dest)))
        print(json.dumps(outcome))

    anyio.run(main, sys.argv[1])
    """
)


@pytest.mark.anyio
async def test_disk_full_mid_download_is_download_error_and_no_file_reliability_36(
    tmp_path: Path,
) -> None:
    """
    RELIABILITY #36: the disk fills up mid-body: DownloadError (naming the
    file and the OS reason, from the OSError), the temp file is deleted and
    the destination never appears.
    """
    out = tmp_path / "out"
    out.mkdir()
    done = await anyio.run_process(
        [sys.executable, "-c", CHILD, str(out / "clip.mp4")], check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    outcome = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert outcome["error"] == "DownloadError", outcome
    assert outcome["cause"] == "OSError"
    assert "clip.mp4" in outcome["message"]
    assert "too large" in outcome["message"].lower()  # EFBIG's strerror: "File too large"
    assert outcome["left"] == []  # no temp file, no partial destination
