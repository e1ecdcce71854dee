"""
Differential test: random operation sequences give the same answers, the same
refusals and the same final contents on the SQLite and the memory journal.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from aivideo_async._exceptions import InvalidInput
from aivideo_async.jobs._journal import (
    ErrorInfo,
    JobOutcome,
    Journal,
    JournalEntry,
    MemoryJournal,
    SQLiteJournal,
    SubmissionState,
)
from aivideo_async.providers._base import JobSpec

KEYS = ["a", "b", "c"]
OWNERS = ["w1", "w2"]


class Wall:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def spec(key: str) -> JobSpec:
    return JobSpec(
        provider="p", kind="video", method="POST", path="/c", payload={"k": key, "n": [1, 2]}
    )


ops = st.one_of(
    st.tuples(
        st.just("add"), st.sampled_from(KEYS), st.booleans(), st.sampled_from([*OWNERS, None])
    ),
    st.tuples(
        st.just("transition"),
        st.sampled_from(KEYS),
        st.sampled_from(list(SubmissionState)),
        st.integers(1, 3),
        st.booleans(),
    ),
    st.tuples(st.just("outcome"), st.sampled_from(KEYS), st.sampled_from(list(JobOutcome))),
    st.tuples(st.just("claim"), st.sampled_from(OWNERS), st.sampled_from([1.0, 100.0])),
    st.tuples(st.just("release"), st.sampled_from(OWNERS), st.sampled_from(KEYS)),
    st.tuples(st.just("interrupted"), st.sampled_from(OWNERS)),
    st.tuples(st.just("tick"), st.sampled_from([0.5, 50.0])),
)


async def apply(journal: Journal, wall: Wall, op: tuple[Any, ...]) -> object:
    try:
        match op:
            case ("add", key, sending, owner):
                lease = None if owner is None else wall() + 10
                entry = JournalEntry.planned(
                    spec(key), key=key, now=wall(), owner=owner, lease_until=lease
                )
                return await journal.add(entry, sending=sending)
            case ("transition", key, state, attempt, with_job):
                job_id = f"job-{key}" if with_job else None
                error = (
                    ErrorInfo(type="Boom", message="x")
                    if state is SubmissionState.REJECTED
                    else None
                )
                return await journal.transition(
                    key, state, attempt=attempt, job_id=job_id, error=error
                )
            case ("outcome", key, outcome):
                return await journal.record_outcome(
                    key, outcome, result_url="https://x.example/v.mp4?sig=1", media_id="m"
                )
            case ("claim", owner, lease):
                return await journal.claim(owner, lease_seconds=lease)
            case ("release", owner, key):
                await journal.release(owner, [key])
                return None
            case ("interrupted", owner):
                return await journal.mark_interrupted(owner)
            case ("tick", seconds):
                wall.now += seconds
                return None
    except InvalidInput as exc:
        return ("refused", exc.field)
    raise AssertionError(op)


@settings(max_examples=150, deadline=None)
@given(sequence=st.lists(ops, max_size=30))
def test_sqlite_and_memory_journals_agree(sequence: list[tuple[Any, ...]]) -> None:
    async def main(folder: Path) -> None:
        wall_m, wall_s = Wall(), Wall()
        memory = MemoryJournal(wall_clock=wall_m)
        async with SQLiteJournal(folder / "j.sqlite", wall_clock=wall_s) as sqlite:
            for op in sequence:
                expected = await apply(memory, wall_m, op)
                got = await apply(sqlite, wall_s, op)
                assert got == expected, op
            assert await sqlite.query() == await memory.query()
            for state in SubmissionState:
                assert await sqlite.query(state=state) == await memory.query(state=state)
            assert await sqlite.query(unfinished=True) == await memory.query(unfinished=True)

    with tempfile.TemporaryDirectory() as folder:
        anyio.run(main, Path(folder))
