"""Pure parts of the CLI: the demo's batch plan, file names from keys, the plain live view."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from aivideo_async import JobFailed, JobHandle, JobResult
from aivideo_async.cli._clients import safe_name
from aivideo_async.cli._demo import demo_faults, plan_batch
from aivideo_async.cli._live import LiveView, Row, make_console, outcome_of


@given(st.integers(min_value=8, max_value=500), st.integers(min_value=0, max_value=10**6))
def test_the_demo_plan_has_the_asked_size_unique_keys_and_every_provider(
    jobs: int, seed: int
) -> None:
    plan = plan_batch(jobs, seed)
    assert len(plan) == jobs
    keys = [p.row.key for p in plan]
    assert len(set(keys)) == jobs
    kinds = [p.build for p in plan]
    for kind in ("mf-video", "mf-image", "avm-i2v", "avm-lv", "nemo-chat", "nemo-render"):
        assert kind in kinds
    assert kinds.count("avm-t2v") >= 2  # the 2nd AIVideoMaker create is the lost one
    # Distinct payloads: the emulator counts identical create bodies as duplicates.
    assert len({repr(sorted(p.args.items())) for p in plan if p.args}) == sum(
        1 for p in plan if p.args
    )


def test_the_demo_loses_exactly_one_create_answer() -> None:
    drops = [r for r in demo_faults(0) if r.kind == "drop_after_commit"]
    assert len(drops) == 1
    assert list(drops[0].schedule or []) == [2]
    # A 429 on a create would cost a 30 s wait (RELIABILITY #12): the demo only rate-limits polls.
    assert all(
        not r.endpoint.endswith(".create") and r.endpoint != "*"
        for r in demo_faults(0)
        if r.kind == "rate_limit"
    )


@given(st.text(min_size=1, max_size=300))
def test_safe_name_is_a_plain_file_name(key: str) -> None:
    name = safe_name(key)
    assert 1 <= len(name) <= 120
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name)
    assert name not in (".", "..")


def test_plain_view_prints_each_state_change_once_and_totals() -> None:
    ok = JobHandle.resolved(
        provider="miraflow",
        kind="image",
        job_id="j1",
        key="row-1",
        result=JobResult(provider="miraflow", kind="image", job_id="j1"),
    )
    bad = JobHandle.resolved(
        provider="aivideomaker",
        kind="t2v",
        job_id="t1",
        key="row-2",
        error=JobFailed("the model refused the prompt", job_id="t1"),
    )
    rows = [
        Row(key="row-1", provider="miraflow", kind="image", handle=ok),
        Row(key="row-2", provider="aivideomaker", kind="t2v", handle=bad),
        Row(key="row-3", provider="miraflow", kind="video", phase="unknown"),
    ]
    out = io.StringIO()
    view = LiveView(Console(file=out, width=200), rows, stats=lambda: {"HTTP": 7}, plain=True)
    view._plain_changes()
    view._plain_changes()  # nothing changed: nothing printed again
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("#1   miraflow/image row-1 job j1 succeeded")
    assert lines[1].endswith(
        "#2   aivideomaker/t2v row-2 job t1 failed: the model refused the prompt"
    )
    assert lines[2].endswith("#3   miraflow/video row-3 unknown")
    assert view.totals_line().endswith("3 jobs: 1 failed, 1 succeeded, 1 unknown | HTTP 7")
    assert outcome_of(rows) == {"failed": 1, "succeeded": 1, "unknown": 1}


def test_provider_messages_print_verbatim_not_as_markup(capsys: pytest.CaptureFixture[str]) -> None:
    message = "[miraflow] POST /api/video/create -> HTTP 400: [bold]Missing avatarId[/]"
    row = Row(key="k", provider="miraflow", kind="video", phase="rejected", note=message)
    console = make_console()
    view = LiveView(console, [row], plain=False)
    console.print(view.render())
    # The note column is cut at 36 characters; what is shown is verbatim.
    assert "[miraflow] POST /api/video/create" in capsys.readouterr().out
