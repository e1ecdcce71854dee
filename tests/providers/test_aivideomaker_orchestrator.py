"""AIVideoMaker under the orchestrator: a lost create is matched by its echoed input."""

from __future__ import annotations

import anyio
import pytest

from aivideo_async._config import PollPolicy
from aivideo_async._exceptions import SubmissionOutcomeUnknown
from aivideo_async.emulator import Emulator, FaultRule
from aivideo_async.jobs import Orchestrator, ReconcileOutcome
from aivideo_async.providers.aivideomaker import AIVideoMaker

pytestmark = pytest.mark.anyio

QUICK = PollPolicy(initial=0.01, factor=1.5, cap=0.05, deadline=30.0)


@pytest.mark.parametrize("kind", ["drop_after_commit", "truncate"])
async def test_lost_create_is_reconciled_from_the_task_list(emu: Emulator, kind: str) -> None:
    async with (
        AIVideoMaker("ak_k", base_url=emu.base_url) as avm,
        Orchestrator(backends=[avm], poll_policy=QUICK) as orch,
    ):
        decoy = await orch.submit(avm.text_to_video(prompt="other", duration=5), key="row-0")
        emu.add_fault(FaultRule(endpoint="aivideomaker.create", kind=kind, times=1))
        spec = avm.image_to_video(image=await avm.image_data_uri(_PNG), duration=8)
        with pytest.raises(SubmissionOutcomeUnknown):
            await orch.submit(spec, key="row-1")
        [found] = await orch.reconcile()
        assert found.outcome is ReconcileOutcome.FOUND
        assert found.job_id is not None
        assert found.job_id != decoy.job_id
        assert found.handle is not None
        emu.advance(600)
        with anyio.fail_after(20):
            result = await found.handle
        assert result.url is not None
    stats = emu.stats()
    assert stats["creates"]["aivideomaker"] == 2
    assert stats["requests_by_endpoint"]["aivideomaker.create"] == 2


_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc````\x00\x00\x00\x05\x00\x01\xa5\xf6E@\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)
