"""
Crash test (ARCHITECTURE §4.1, RELIABILITY #10, #11): a process submitting 500
jobs is SIGKILLed at 10 seeded moments and resumed each time. At the end the
emulator saw no duplicate create, every job it created is in the journal as
accepted (or was reported unknown and reconcile found it), and every accepted
job reached a terminal state.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO

import anyio
import pytest
from anyio.abc import Process

from aivideo_async._config import PollPolicy
from aivideo_async.emulator import Emulator, EmulatorConfig, FaultRule, run_emulator
from aivideo_async.jobs._journal import JournalEntry, SQLiteJournal, SubmissionState
from aivideo_async.jobs._orchestrator import Orchestrator, ReconcileOutcome
from aivideo_async.providers.aivideomaker import AIVideoMaker
from aivideo_async.providers.miraflow import Miraflow

S = SubmissionState
CHILD = Path(__file__).with_name("crash_child.py")
JOBS = 500
KILLS = 10
SEED = 20261122
POLL = PollPolicy(initial=0.05, factor=1.5, cap=0.2, deadline=120.0, stuck_after=None)


def emulator_fingerprint(entry: JournalEntry) -> str:
    assert entry.payload is not None
    body = json.dumps(entry.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    path = entry.endpoint.split(" ", 1)[1]
    return hashlib.sha256(f"{path}\n{body}".encode()).hexdigest()


async def lines(process: Process) -> AsyncIterator[str]:
    assert process.stdout is not None
    buffer = b""
    async for chunk in process.stdout:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode()


async def run_child(
    emu: Emulator, db: Path, stderr: IO[bytes], kill_after: int | None
) -> tuple[int, list[str]]:
    """Run one child; SIGKILL it once it has printed ``kill_after`` lines."""
    seen: list[str] = []
    command = [sys.executable, str(CHILD), str(db), emu.base_url, str(JOBS), "32"]
    async with await anyio.open_process(command, stderr=stderr) as process:
        with anyio.fail_after(60):
            async for line in lines(process):
                seen.append(line)
                if kill_after is not None and len(seen) >= kill_after:
                    process.send_signal(signal.SIGKILL)
                    break
            code = await process.wait()
    return code, seen


async def assert_returned_submits_are_accepted(db: Path, seen: list[str]) -> None:
    """
    RELIABILITY #11: every submit the killed child saw return (its ``s KEY``
    line) is ``accepted`` with its job id in the journal it left behind:
    ``accepted(job_id)`` was written before ``submit`` returned.
    """
    returned = [line.split()[1] for line in seen if line.startswith("s ")]
    async with SQLiteJournal(db) as journal:
        for key in returned:
            entry = await journal.get(key)
            assert entry is not None, key
            assert (entry.state, bool(entry.job_id)) == (S.ACCEPTED, True), entry


@pytest.mark.anyio
async def test_sigkill_ten_times_then_resume(tmp_path: Path) -> None:
    """
    RELIABILITY #10, #11: SIGKILLed mid-run ten times: no create is ever sent
    twice, every submit that returned is accepted in the journal at the kill,
    and every job the emulator created ends accepted and finished.
    """
    rng = random.Random(SEED)
    db = tmp_path / "jobs.sqlite"
    # A few lost answers on top of the kills: unknowns that reconcile must find.
    faults = [FaultRule(endpoint="*.create", kind="drop_after_commit", probability=0.01)]
    config = EmulatorConfig(seed=SEED, time_scale=0.05, aivideomaker_query_limit=0, faults=faults)
    async with run_emulator(config) as emu:
        history = []
        kills = 0
        with (tmp_path / "children.err").open("wb") as stderr:
            while kills < KILLS:
                # Early kills land while submitting, later ones while waiting for jobs
                # (each run prints a line per key submitted and per job finished).
                kill_after = rng.randint(1, 250) if kills < 5 else rng.randint(200, 700)
                code, seen = await run_child(emu, db, stderr, kill_after)
                history.append((kill_after, len(seen), code, seen[-1] if seen else ""))
                if code == -signal.SIGKILL:
                    kills += 1
                    await assert_returned_submits_are_accepted(db, seen)
                else:  # it finished before printing that many lines: no kill this run
                    assert code == 0, history
                assert len(history) <= 3 * KILLS, history
            code, seen = await run_child(emu, db, stderr, None)  # the run that finishes
        assert code == 0, (tmp_path / "children.err").read_text()[-3000:]
        assert seen[-1].startswith("done"), seen[-5:]

        # Final pass in this process: recover, reconcile what was lost, wait for all.
        async with AsyncExitStack() as stack:
            mira = await stack.enter_async_context(Miraflow("mf-key", base_url=emu.base_url))
            avm = await stack.enter_async_context(AIVideoMaker("avm-key", base_url=emu.base_url))
            orch = await stack.enter_async_context(
                Orchestrator(journal=db, backends=[mira, avm], poll_policy=POLL)
            )
            handles = await orch.resume()
            emu.advance(600)  # finish every job so Miraflow's videos list shows lost ones
            results = await orch.reconcile()
            handles += [r.handle for r in results if r.handle is not None]
            await orch.gather(handles, return_exceptions=True)

        stats = emu.stats()
        async with SQLiteJournal(db) as journal:
            entries = await journal.query()

    # No duplicate create, ever.
    assert stats["duplicate_creates"] == 0
    assert set(stats["creates_by_fingerprint"].values()) == {1}
    # Every key reached the journal, settled (nothing left planned or sending).
    assert sorted(e.key for e in entries) == [f"k{n:03d}" for n in range(JOBS)]
    assert {e.state for e in entries} <= {S.ACCEPTED, S.UNKNOWN}
    # Every job the emulator created is journaled: accepted, or unknown and then
    # found by reconcile (which makes it accepted).
    by_fingerprint = {emulator_fingerprint(e): e for e in entries}
    created = set(stats["creates_by_fingerprint"])
    assert created <= set(by_fingerprint)
    for fp in created:
        assert by_fingerprint[fp].state is S.ACCEPTED, by_fingerprint[fp]
    # What stays unknown never reached the provider (the kill came before the bytes).
    unknown = [e for e in entries if e.state is S.UNKNOWN]
    assert all(emulator_fingerprint(e) not in created for e in unknown)
    assert all(r.outcome is ReconcileOutcome.NOT_FOUND for r in results if not r.resolved)
    # Every accepted job reached a terminal state, recorded in the journal.
    accepted = [e for e in entries if e.state is S.ACCEPTED]
    assert len(accepted) == len(created)
    assert all(e.outcome is not None for e in accepted), [
        e.key for e in accepted if e.outcome is None
    ]
    # The kills really interrupted work: some creates were cut off mid-flight or
    # found again, and the runs did not simply start over.
    found = [r for r in results if r.resolved]
    assert found or unknown, history
    assert stats["creates"]["miraflow"] + stats["creates"]["aivideomaker"] == len(created)
