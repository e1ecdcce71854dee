"""Miraflow as a JobBackend under the orchestrator: a lost video create is found, never resent.

The emulator's jobs only progress when the test advances its clock, so each job
is finished by the time the scheduler's (short, real-time) first poll arrives.
"""

from __future__ import annotations

import pathlib

import anyio
import attrs
import pytest

from aivideo_async._config import PollPolicy
from aivideo_async._exceptions import SubmissionOutcomeUnknown
from aivideo_async.emulator import Emulator, FaultRule
from aivideo_async.jobs import Orchestrator, ReconcileOutcome, SubmissionState
from aivideo_async.providers.aivideomaker import AIVideoMaker
from aivideo_async.providers.miraflow import Miraflow

pytestmark = pytest.mark.anyio

AVATAR = "cmavatarstock0000000000001"
QUICK = PollPolicy(initial=0.01, factor=1.5, cap=0.05, deadline=30.0)


async def test_lost_video_create_is_reconciled_not_resent(
    emu: Emulator, tmp_path: pathlib.Path
) -> None:
    async with (
        Miraflow("k", base_url=emu.base_url) as mira,
        Orchestrator(backends=[mira], poll_policy=QUICK) as orch,
    ):
        emu.add_fault(FaultRule(endpoint="miraflow.create", kind="drop_after_commit", times=1))
        spec = mira.video(avatar_id=AVATAR, name="teaser", text="Hello", key="campaign/row-1")
        with pytest.raises(SubmissionOutcomeUnknown) as info:
            await orch.submit(spec, key="campaign/row-1")
        assert info.value.key == "campaign/row-1"
        [entry] = await orch.jobs(state=SubmissionState.UNKNOWN)
        assert entry.match_tag == spec.match_tag

        # Still rendering: not in the completed-videos list yet.
        [early] = await orch.reconcile()
        assert early.outcome is ReconcileOutcome.NOT_FOUND

        emu.advance(600)
        [found] = await orch.reconcile()
        assert found.outcome is ReconcileOutcome.FOUND
        assert found.handle is not None
        with anyio.fail_after(20):
            result = await found.handle
        assert result.media_id == found.job_id
        path = await mira.download(result, tmp_path / "teaser.mp4")
        assert path.stat().st_size > 0

        # Submitting the same key again returns the job; nothing is sent.
        again = await orch.submit(spec, key="campaign/row-1")
        assert again.job_id == found.job_id
    stats = emu.stats()
    assert stats["creates"]["miraflow"] == 1
    assert stats["requests_by_endpoint"]["miraflow.create"] == 1


async def test_jobs_of_both_clients_complete_under_one_orchestrator(emu: Emulator) -> None:
    async with (
        Miraflow("k", base_url=emu.base_url) as mira,
        AIVideoMaker("ak_k", base_url=emu.base_url) as avm,
        Orchestrator(backends=[mira, avm], poll_policy=QUICK) as orch,
    ):
        specs = {
            "mf-video": mira.video(avatar_id=AVATAR, name="v", text="t"),
            # The image spec carries the slower image cadence; use the test's.
            "mf-image": attrs.evolve(mira.image(prompt="a fox"), poll_policy=None),
            "avm-t2v": avm.text_to_video(prompt="waves", duration=8),
            "avm-lv": avm.long_video(image="https://example.com/f.jpg", prompts=["a", "b"]),
        }
        handles = [await orch.submit(spec, key=key) for key, spec in specs.items()]
        emu.advance(600)
        with anyio.fail_after(20):
            results = await orch.gather(handles)
    assert [r.provider for r in results] == ["miraflow", "miraflow", "aivideomaker", "aivideomaker"]
    assert results[0].media_id is not None
    assert results[1].url is not None
    assert results[2].url is not None
    assert results[3].url is not None
    assert emu.stats()["duplicate_creates"] == 0
    assert emu.stats()["creates"] == {"miraflow": 2, "aivideomaker": 2}
