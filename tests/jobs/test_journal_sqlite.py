"""SQLite journal specifics: durability boundaries, group commit, schema, locking."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from aivideo_async._exceptions import InvalidInput
from aivideo_async.jobs._journal import (
    SCHEMA_VERSION,
    JournalEntry,
    SQLiteJournal,
    SubmissionState,
)
from aivideo_async.providers._base import JobSpec

S = SubmissionState


def entry(key: str) -> JournalEntry:
    spec = JobSpec(provider="fake", kind="video", method="POST", path="/c", payload={"k": key})
    return JournalEntry.planned(spec, key=key, now=1.0)


async def submit_like(journal: SQLiteJournal, key: str) -> None:
    # The journal traffic of one submit: planned, sending (durable), accepted (durable).
    await journal.add(entry(key))
    await journal.transition(key, S.SENDING)
    await journal.transition(key, S.ACCEPTED, job_id=f"job-{key}")


@pytest.mark.anyio
async def test_reopen_after_close_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    async with SQLiteJournal(path) as journal:
        await submit_like(journal, "a")
        await journal.add(entry("b"))
        before = await journal.query()
    async with SQLiteJournal(path) as journal:
        assert await journal.query() == before


@pytest.mark.anyio
async def test_sending_is_on_disk_when_the_process_dies(tmp_path: Path) -> None:
    """RELIABILITY #10: `sending` survives a SIGKILL right after it is written."""
    # The child makes `sending` durable, then is SIGKILLed before anything else:
    # exactly the moment before the first byte of a create would leave.
    path = tmp_path / "j.sqlite"
    script = textwrap.dedent(
        f"""
        import os, signal, anyio
        from aivideo_async.jobs._journal import SQLiteJournal, JournalEntry, SubmissionState
        from aivideo_async.providers._base import JobSpec

        async def main():
            journal = SQLiteJournal({str(path)!r})
            await journal.open()
            spec = JobSpec(provider="fake", kind="v", method="POST", path="/c", payload={{}})
            await journal.add(JournalEntry.planned(spec, key="k", now=1.0))
            await journal.transition("k", SubmissionState.SENDING)
            os.kill(os.getpid(), signal.SIGKILL)

        anyio.run(main)
        """
    )
    proc = await anyio.run_process([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    async with SQLiteJournal(path) as journal:
        got = await journal.get("k")
        assert got is not None
        assert got.state is S.SENDING
        interrupted = await journal.mark_interrupted("new-process")
        assert [e.key for e in interrupted] == ["k"]
        assert (await journal.get("k")).state is S.UNKNOWN  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_group_commit_shares_commits_between_concurrent_submits(tmp_path: Path) -> None:
    n = 200
    async with SQLiteJournal(tmp_path / "g.sqlite") as journal:
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(submit_like, journal, f"k{i}")
        stats = journal.stats()
        assert len(await journal.query(state=S.ACCEPTED)) == n
    assert stats["ops"] == 3 * n
    # Each submit needs two durable boundaries; batching makes far fewer commits than submits.
    assert stats["commits"] < n
    assert stats["durable_commits"] < n
    assert stats["max_batch"] > 1


@pytest.mark.anyio
async def test_without_group_commit_every_write_commits_alone(tmp_path: Path) -> None:
    """RELIABILITY #11: sending and accepted are each a durable commit (planned is not)."""
    n = 30
    async with SQLiteJournal(tmp_path / "s.sqlite", group_commit=False) as journal:
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(submit_like, journal, f"k{i}")
        stats = journal.stats()
    assert stats["commits"] == stats["ops"] == 3 * n
    assert stats["durable_commits"] == 2 * n  # planned is not fsynced; sending, accepted are
    assert stats["max_batch"] == 1


@pytest.mark.anyio
async def test_add_with_sending_is_one_durable_commit(tmp_path: Path) -> None:
    async with SQLiteJournal(tmp_path / "a.sqlite", group_commit=False) as journal:
        await journal.add(entry("k"), sending=True)
        assert journal.stats()["durable_commits"] == 1
        assert (await journal.get("k")).state is S.SENDING  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_refused_write_does_not_undo_its_batch_mates(tmp_path: Path) -> None:
    async with SQLiteJournal(tmp_path / "b.sqlite") as journal:
        await journal.add(entry("ok"))
        await journal.add(entry("bad"))
        await journal.transition("bad", S.SENDING)
        await journal.transition("bad", S.ACCEPTED, job_id="j")
        results: dict[str, object] = {}

        async def run(name: str, state: SubmissionState) -> None:
            try:
                results[name] = await journal.transition(name, state)
            except InvalidInput as exc:
                results[name] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "bad", S.SENDING)
            tg.start_soon(run, "ok", S.SENDING)
        assert isinstance(results["bad"], InvalidInput)
        assert (await journal.get("ok")).state is S.SENDING  # type: ignore[union-attr]
        assert (await journal.get("bad")).state is S.ACCEPTED  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    async with SQLiteJournal(path):
        pass
    with sqlite3.connect(path) as conn:
        versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert versions == [(SCHEMA_VERSION,)]
    assert mode == "wal"
    # A file written by a newer library is refused, not misread.
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'future', 0)", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(InvalidInput, match="schema"):
        async with SQLiteJournal(path):
            pass


@pytest.mark.anyio
async def test_one_process_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    async with SQLiteJournal(path):
        with pytest.raises(InvalidInput, match="single-process"):
            await SQLiteJournal(path).open()
    async with SQLiteJournal(path):  # released on close
        pass


@pytest.mark.anyio
async def test_leases_of_a_dead_process_are_cleared_on_open(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    async with SQLiteJournal(path) as journal:
        await submit_like(journal, "a")
        await journal.claim("old-process", lease_seconds=3600)
    async with SQLiteJournal(path) as journal:
        assert (await journal.get("a")).owner is None  # type: ignore[union-attr]
        assert [e.key for e in await journal.claim("new", lease_seconds=60)] == ["a"]


@pytest.mark.anyio
async def test_closed_journal_refuses_work(tmp_path: Path) -> None:
    journal = SQLiteJournal(tmp_path / "c.sqlite")
    await journal.open()
    await journal.aclose()
    await journal.aclose()  # idempotent
    with pytest.raises(anyio.ClosedResourceError):
        await journal.get("x")
    assert "closed" in repr(journal)


@pytest.mark.anyio
async def test_cancelled_waiter_does_not_lose_the_write(tmp_path: Path) -> None:
    async with SQLiteJournal(tmp_path / "x.sqlite") as journal:
        await journal.add(entry("k"))
        with anyio.CancelScope() as scope:
            scope.cancel()
            await journal.transition("k", S.SENDING)
        # The write was queued before the cancel landed: it still commits, whole.
        got = await journal.get("k")
        assert got is not None
        assert got.state is S.SENDING


def test_lock_file_permissions(tmp_path: Path) -> None:
    async def main() -> None:
        async with SQLiteJournal(tmp_path / "p.sqlite"):
            pass

    anyio.run(main)
    mode = os.stat(tmp_path / "p.sqlite.lock").st_mode & 0o777
    assert mode & 0o077 == 0
