"""
A Hypothesis state machine of the create path (RELIABILITY §6): submits with
faults, hard crashes (nothing more reaches the journal), restarts with resume,
reconcile. Invariants: at most one create per key ever reaches the provider;
the journal never claims a job the provider did not create, and never forgets
one it did (accepted with that id, or unknown); journal states only move along
the allowed graph.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import anyio
import anyio.lowlevel
import attrs
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from aivideo_async._config import PollPolicy
from aivideo_async._exceptions import (
    AIVideoError,
    BadRequest,
    ConnectError,
    InvalidInput,
    RateLimited,
    RemoteDisconnected,
    ServerError,
)
from aivideo_async._models import JobState, JobStatus
from aivideo_async.jobs._journal import (
    ErrorInfo,
    JobOutcome,
    JournalEntry,
    MemoryJournal,
    SubmissionState,
    check_transition,
)
from aivideo_async.jobs._orchestrator import Orchestrator
from aivideo_async.providers._base import JobSpec

S = SubmissionState
NO_POLLS = PollPolicy(initial=3600.0, cap=3600.0, deadline=None, stuck_after=None)
KEYS = ["a", "b", "c", "d"]
# What the provider does with one create call.
FAULTS = ["ok", "maybe_sent", "5xx", "not_sent", "400", "429", "crash", "crash_unsent"]


class Crashed(Exception):
    """The process died: nothing after this reaches the journal."""


class CrashableJournal(MemoryJournal):
    """A memory journal that stops taking writes once the 'process' crashed."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = False

    async def open(self) -> None:
        # A new process opening the journal: every lease in it belongs to a dead
        # one (what SQLiteJournal does on open).
        for key, entry in list(self._entries.items()):
            self._entries[key] = attrs.evolve(entry, owner=None, lease_until=None)

    def _alive(self) -> None:
        if self.dead:
            raise Crashed("the process is gone")

    async def add(self, entry: JournalEntry, *, sending: bool = False) -> tuple[JournalEntry, bool]:
        self._alive()
        return await super().add(entry, sending=sending)

    async def transition(self, key: str, state: SubmissionState, **kw: Any) -> JournalEntry:
        self._alive()
        return await super().transition(key, state, **kw)

    async def record_outcome(self, key: str, outcome: JobOutcome, **kw: Any) -> JournalEntry:
        self._alive()
        return await super().record_outcome(key, outcome, **kw)


class ScriptedProvider:
    """An in-process JobBackend whose creates follow a script of faults."""

    provider = "fake"

    def __init__(self, journal: CrashableJournal) -> None:
        self.journal = journal
        self.script: list[str] = []
        self.commits: dict[str, list[str]] = {}  # key -> job ids created for it
        self.calls = 0

    async def create(self, spec: JobSpec) -> str:
        self.calls += 1
        key = str(spec.payload["key"])
        fault = self.script.pop(0) if self.script else "ok"
        await anyio.lowlevel.checkpoint()
        if fault in ("not_sent", "crash_unsent"):
            if fault == "crash_unsent":
                self.journal.dead = True
            raise ConnectError("connection refused", provider=self.provider)
        if fault == "400":
            raise BadRequest("bad", status_code=400, provider=self.provider)
        if fault == "429":
            raise RateLimited("slow down", retry_after=1.0, provider=self.provider)
        job_id = f"job-{key}-{len(self.commits.get(key, []))}"
        self.commits.setdefault(key, []).append(job_id)
        if fault == "ok":
            return job_id
        if fault == "maybe_sent":
            raise RemoteDisconnected("reset after commit", provider=self.provider)
        if fault == "5xx":
            raise ServerError("bad gateway", status_code=502, provider=self.provider)
        assert fault == "crash"
        self.journal.dead = True
        raise Crashed("killed after the provider committed")

    async def poll(self, kind: str, job_id: str) -> JobStatus:
        return JobStatus(state=JobState.RUNNING, raw_status="running")

    async def poll_many(self, kind: str, job_ids: Sequence[str]) -> Mapping[str, JobStatus] | None:
        return None

    def supports_cancel(self, kind: str) -> bool:
        return False

    async def cancel(self, kind: str, job_id: str) -> None:
        return None

    async def find_submission(self, spec: JobSpec, *, since: float) -> str | None:
        if spec.match_tag is None:
            return None
        created = self.commits.get(str(spec.payload["key"]), [])
        return created[0] if len(created) == 1 else None


def _reachable(state: SubmissionState) -> set[SubmissionState]:
    # States reachable within one attempt, by the journal's own rule.
    found: set[SubmissionState] = set()
    todo = [state]
    while todo:
        current = todo.pop()
        for new in SubmissionState:
            if new in found or new is S.PLANNED:
                continue
            try:
                check_transition(current, 1, new, 1)
            except InvalidInput:
                continue
            found.add(new)
            todo.append(new)
    return found


def spec_for(key: str) -> JobSpec:
    # Keys a and b carry a match tag (reconcilable); c and d do not.
    return JobSpec(
        provider="fake",
        kind="video",
        method="POST",
        path="/create",
        payload={"key": key, "prompt": f"prompt {key}"},
        match_tag=f"tag-{key}" if key in ("a", "b") else None,
    )


async def _sleep(seconds: float) -> None:
    await anyio.lowlevel.checkpoint()


class CreatePathMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.stack = ExitStack()
        self.portal: BlockingPortal = self.stack.enter_context(start_blocking_portal("asyncio"))
        self.journal = CrashableJournal()
        self.provider = ScriptedProvider(self.journal)
        self.seen: dict[str, tuple[SubmissionState, int]] = {}
        self.resubmit = False
        self.orch: Orchestrator | None = None
        self._start()

    def _start(self) -> None:
        self.orch = Orchestrator(
            journal=self.journal,
            backends=[self.provider],
            poll_policy=NO_POLLS,
            max_in_flight=1,
            sleep=_sleep,
            resubmit_not_sent=self.resubmit,
            not_sent_attempts=2,
        )
        # Entered and exited in one portal task (its task group's cancel scopes
        # must not change tasks).
        self.running = ExitStack()
        self.running.enter_context(self.portal.wrap_async_context_manager(self.orch))

    def _stop(self) -> None:
        if self.orch is not None:
            self.running.close()
            self.orch = None

    def teardown(self) -> None:
        self._stop()
        self.stack.close()

    def _restart_if_dead(self) -> None:
        if self.journal.dead:
            # The process died; a new one opens the same journal and resumes.
            self._stop()
            self.journal.dead = False
            self._start()
            assert self.orch is not None
            self.portal.call(self.orch.resume)

    @rule(
        key=st.sampled_from(KEYS),
        faults=st.lists(st.sampled_from(FAULTS), min_size=1, max_size=3),
    )
    def submit(self, key: str, faults: list[str]) -> None:
        assert self.orch is not None
        self.provider.script = list(faults)
        try:
            self.portal.call(functools.partial(self.orch.submit, spec_for(key), key=key))
        except (AIVideoError, Crashed):
            pass
        self.provider.script = []
        self._restart_if_dead()

    @rule()
    def restart(self) -> None:
        self.journal.dead = True  # a crash between two calls
        self._restart_if_dead()

    @rule(on=st.booleans())
    def toggle_not_sent_policy(self, on: bool) -> None:
        self.resubmit = on
        self._stop()
        self._start()

    @rule()
    def reconcile(self) -> None:
        assert self.orch is not None
        self.portal.call(self.orch.reconcile)

    def _entries(self) -> list[JournalEntry]:
        return self.portal.call(self.journal.query)

    @invariant()
    def at_most_one_create_per_key(self) -> None:
        assert all(len(ids) <= 1 for ids in self.provider.commits.values()), self.provider.commits

    @invariant()
    def journal_tells_the_truth(self) -> None:
        for entry in self._entries():
            created = self.provider.commits.get(entry.key, [])
            if entry.state is S.ACCEPTED:
                assert created == [entry.job_id]
            elif created:
                # The provider has the job: the journal must not deny it.
                assert entry.state in (S.UNKNOWN, S.SENDING), entry
            if entry.state is S.SENDING:
                # Only a crash leaves `sending`, and resume() clears it at once.
                raise AssertionError(f"left sending after restart: {entry}")

    @invariant()
    def journal_moves_along_the_graph(self) -> None:
        for entry in self._entries():
            before = self.seen.get(entry.key)
            now = (entry.state, entry.attempt)
            if before is not None and before != now:
                assert now[1] >= before[1], (before, now)
                if now[1] == before[1]:
                    assert now[0] in _reachable(before[0]), (before, now)
                else:
                    # A new attempt only follows a definite "no" (or one in the making).
                    assert before[0] in (S.REJECTED, S.NOT_SENT, S.PLANNED, S.SENDING)
            self.seen[entry.key] = now


CreatePathMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
TestCreatePath = CreatePathMachine.TestCase


def test_error_info_of_a_crash_withholds_its_text() -> None:
    # What the orchestrator journals for a foreign exception: its type only.
    assert ErrorInfo.from_exception(Crashed("secret text")) == ErrorInfo(type="Crashed")
