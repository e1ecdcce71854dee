"""
The process that tests/jobs/test_crash.py SIGKILLs: submit N jobs through the
orchestrator with a SQLite journal, against the emulator the test started.

Usage: ``python crash_child.py JOURNAL BASE_URL COUNT CONCURRENCY``

Each run resumes first (re-attaching accepted jobs, turning interrupted
``sending`` entries into ``unknown``), then submits every key (keys already in
the journal answer from it without a create), then waits for every handle.
One line per event on stdout (``ready``, ``s KEY``, ``u KEY``, ``submitted``,
``t KEY``, ``done``) lets the parent pick its kill moments by progress.
"""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack

import anyio

from aivideo_async._config import PollPolicy, Timeouts
from aivideo_async._exceptions import SubmissionOutcomeUnknown
from aivideo_async.jobs._handle import JobHandle
from aivideo_async.jobs._orchestrator import Orchestrator
from aivideo_async.providers._base import JobSpec
from aivideo_async.providers.aivideomaker import AIVideoMaker
from aivideo_async.providers.miraflow import Miraflow

POLL = PollPolicy(initial=0.05, factor=1.5, cap=0.2, deadline=120.0, stuck_after=None)
CREATE_TIMEOUTS = Timeouts(connect=2.0, read=2.0, total=5.0)
AVATAR = "cmavatarstock0000000000001"


def job_spec(mira: Miraflow, avm: AIVideoMaker, n: int) -> tuple[str, JobSpec]:
    key = f"k{n:03d}"
    if n % 2:
        return key, mira.video(avatar_id=AVATAR, name=f"clip {key}", text=f"Hi {key}", key=key)
    return key, avm.text_to_video(prompt=f"a llama surfing, take {key}")


def say(*parts: object) -> None:
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


async def main(journal: str, base_url: str, count: int, concurrency: int) -> None:
    async with AsyncExitStack() as stack:
        mira = await stack.enter_async_context(
            Miraflow("mf-key", base_url=base_url, create_timeouts=CREATE_TIMEOUTS)
        )
        avm = await stack.enter_async_context(
            AIVideoMaker("avm-key", base_url=base_url, create_timeouts=CREATE_TIMEOUTS)
        )
        orch = await stack.enter_async_context(
            Orchestrator(journal=journal, backends=[mira, avm], poll_policy=POLL)
        )
        resumed = await orch.resume()
        say("ready", len(resumed))
        handles: dict[str, JobHandle] = {h.key: h for h in resumed}
        limiter = anyio.CapacityLimiter(concurrency)

        async def submit(n: int) -> None:
            key, spec = job_spec(mira, avm, n)
            async with limiter:
                try:
                    handles[key] = await orch.submit(spec, key=key)
                except SubmissionOutcomeUnknown:
                    say("u", key)
                else:
                    say("s", key)

        async with anyio.create_task_group() as tg:
            for n in range(count):
                tg.start_soon(submit, n)
        say("submitted", len(handles))
        async for handle in orch.as_completed(handles.values()):
            say("t", handle.key, handle.handle_status.value)
        say("done", len(handles))


if __name__ == "__main__":
    path, url, total, parallel = sys.argv[1:5]
    anyio.run(main, path, url, int(total), int(parallel))
