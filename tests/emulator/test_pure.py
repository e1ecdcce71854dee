"""Properties of the emulator's pure parts: fingerprints, ranges, the job model, credits, faults."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st

from aivideo_async.emulator import EmulatorConfig, FaultRule, run_emulator
from aivideo_async.emulator._faults import ENDPOINTS, KINDS, FaultEngine
from aivideo_async.emulator._media import png, serve_bytes
from aivideo_async.emulator._state import Account, Job
from aivideo_async.emulator._stats import Stats, fingerprint
from aivideo_async.emulator._status import miraflow_progress, status_of

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.integers(0, 4))
def test_fingerprint_ignores_key_order_and_whitespace(body: dict[str, Any], indent: int) -> None:
    compact = json.dumps(body, separators=(",", ":")).encode()
    pretty = json.dumps(dict(reversed(list(body.items()))), indent=indent).encode()
    assert fingerprint("/p", compact) == fingerprint("/p", pretty)


@given(st.binary(min_size=1, max_size=300), st.integers(0, 400), st.integers(0, 400))
def test_range_serves_exactly_the_requested_bytes(data: bytes, a: int, b: int) -> None:
    start, end = min(a, b), max(a, b)
    request = make_mocked_request("GET", "/", headers={"Range": f"bytes={start}-{end}"})
    resp = serve_bytes(request, data, "application/octet-stream")
    if start >= len(data):
        assert resp.status == 416
    else:
        assert resp.status == 206
        assert resp.body == data[start : end + 1]
        assert (
            resp.headers["Content-Range"] == f"bytes {start}-{min(end, len(data) - 1)}/{len(data)}"
        )


@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 255))
def test_png_has_the_asked_size(width: int, height: int, seed: int) -> None:
    data = png(width, height, seed=seed)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") == width
    assert int.from_bytes(data[20:24], "big") == height


_ORDER = {"queued": 0, "running": 1, "succeeded": 2, "failed": 2}


@given(
    st.floats(0.01, 100),
    st.booleans(),
    st.lists(st.floats(0, 200), min_size=2, max_size=20),
)
def test_job_state_only_moves_forward(duration: float, fails: bool, times: list[float]) -> None:
    job = Job("j", "miraflow", "video", "k", created=0.0, duration=duration, fails=fails)
    times.sort()
    phases = [_ORDER[job.phase(t)] for t in times]
    assert phases == sorted(phases)
    working = [int(miraflow_progress(job, t)[:-1]) for t in times if job.phase(t) == "running"]
    assert working == sorted(working)
    assert all(0 <= p <= 99 for p in working)
    end = status_of(job, duration)
    assert end == ("inference_failed" if fails else "inference_complete")


@given(
    st.lists(
        st.tuples(st.integers(1, 50), st.floats(0, 10), st.booleans()), min_size=1, max_size=20
    )
)
def test_credits_are_conserved(charges: list[tuple[int, float, bool]]) -> None:
    account = Account("k", 10_000)
    refunded = 0
    for amount, due, fails in charges:
        job = Job("j", "aivideomaker", "t2v", "k", created=0.0, duration=due, fails=fails)
        account.charge(amount, due=due, now=0.0, job=job)
        refunded += amount if fails else 0
    available, frozen = account.balance(0.0)
    assert available + frozen == 10_000 - sum(a for a, d, f in charges if d <= 0 and not f)
    available, frozen = account.balance(11.0)
    assert frozen == 0
    assert available == 10_000 - sum(a for a, _d, _f in charges) + refunded


@given(st.sets(st.integers(1, 30), max_size=10), st.integers(1, 30))
def test_schedule_hits_exactly_the_listed_requests(schedule: set[int], n: int) -> None:
    rule = FaultRule(endpoint="miraflow.*", kind="html", schedule=sorted(schedule) or None)
    engine = FaultEngine(0, [rule], Stats())
    hits = [i for i in range(1, n + 1) if engine.select(ENDPOINTS["miraflow.list"])[1] is not None]
    expected = sorted(s for s in schedule if s <= n) if schedule else list(range(1, n + 1))
    assert hits == expected


@pytest.mark.anyio
async def test_shutdown_ends_stalls_at_once() -> None:
    config = EmulatorConfig(
        faults=[
            FaultRule(endpoint="miraflow.list", kind="stall_after_commit", params={"seconds": 120})
        ]
    )
    async with aiohttp.ClientSession() as http, run_emulator(config) as emu:

        async def call() -> None:
            # The stalled request ends when the server stops.
            with contextlib.suppress(aiohttp.ClientError):
                await http.get(f"{emu.base_url}/api/avatars", headers={"x-api-key": "k"})

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await emu.state.sleep_started.wait()  # the server is inside the stall
            # Real time is the thing under test: a 120 s stall must not hold shutdown.
            with anyio.fail_after(5):
                await emu.aclose()


@given(
    st.sampled_from(sorted(KINDS)),
    st.sampled_from(["*", "*.create", "miraflow.*", "nemovideo.run_sse"]),
    st.floats(0, 1),
    st.none() | st.lists(st.integers(1, 100), max_size=5),
    st.none() | st.integers(0, 10),
)
def test_rule_json_round_trip(
    kind: str, endpoint: str, probability: float, schedule: list[int] | None, times: int | None
) -> None:
    rule = FaultRule(
        endpoint=endpoint,
        kind=kind,
        probability=probability,
        schedule=schedule,
        times=times,
        params=dict(KINDS[kind]),
    )
    again = FaultRule.from_dict(json.loads(json.dumps(rule.to_dict())))
    assert again == rule
