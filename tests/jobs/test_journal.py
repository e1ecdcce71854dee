"""The journal's rules, on both backends: transitions, outcomes, queries, leases, payloads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aivideo_async._config import PollPolicy
from aivideo_async._exceptions import InvalidInput, RateLimited
from aivideo_async._secret import Secret
from aivideo_async.jobs._journal import (
    ErrorInfo,
    JobOutcome,
    Journal,
    JournalEntry,
    MemoryJournal,
    SQLiteJournal,
    SubmissionState,
    check_outcome,
    check_transition,
    payload_digest,
)
from aivideo_async.providers._base import JobSpec

S = SubmissionState


class WallClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make_spec(n: int = 0, **kw: Any) -> JobSpec:
    return JobSpec(
        provider=kw.pop("provider", "fake"),
        kind="video",
        method="POST",
        path="/create",
        payload=kw.pop("payload", {"prompt": f"prompt {n}", "n": n}),
        **kw,
    )


def entry(key: str, n: int = 0, **kw: Any) -> JournalEntry:
    return JournalEntry.planned(make_spec(n, **kw), key=key, now=1.0)


@pytest.fixture(name="clock")
def _clock() -> WallClock:
    return WallClock()


@pytest.fixture(name="journal", params=["memory", "sqlite"])
async def _journal(
    request: pytest.FixtureRequest, tmp_path: Path, clock: WallClock
) -> AsyncIterator[Journal]:
    journal: Journal
    if request.param == "memory":
        journal = MemoryJournal(wall_clock=clock)
    else:
        journal = SQLiteJournal(tmp_path / "j.sqlite", wall_clock=clock)
    await journal.open()
    try:
        yield journal
    finally:
        await journal.aclose()


async def accept(journal: Journal, key: str, job_id: str = "job-1") -> JournalEntry:
    await journal.transition(key, S.SENDING)
    return await journal.transition(key, S.ACCEPTED, job_id=job_id)


@pytest.mark.anyio
async def test_add_is_insert_if_absent(journal: Journal) -> None:
    stored, created = await journal.add(entry("k"))
    assert created
    assert stored.state is S.PLANNED
    again, created_again = await journal.add(entry("k", n=5))
    assert not created_again
    assert again.payload_hash == stored.payload_hash  # the FIRST entry is kept
    assert await journal.get("k") == stored
    assert await journal.get("missing") is None


@pytest.mark.anyio
async def test_add_can_go_straight_to_sending(journal: Journal, clock: WallClock) -> None:
    stored, created = await journal.add(entry("k"), sending=True)
    assert created
    assert (stored.state, stored.sent_at) == (S.SENDING, clock.now)
    assert await journal.get("k") == stored
    again, created_again = await journal.add(entry("k"), sending=True)
    assert not created_again
    assert again == stored


@pytest.mark.anyio
async def test_happy_path_records_times_and_job_id(journal: Journal, clock: WallClock) -> None:
    await journal.add(entry("k"))
    clock.now = 2_000.0
    sending = await journal.transition("k", S.SENDING)
    assert sending.sent_at == 2_000.0
    clock.now = 2_001.0
    accepted = await journal.transition("k", S.ACCEPTED, job_id="j-9")
    assert (accepted.state, accepted.job_id, accepted.accepted_at) == (S.ACCEPTED, "j-9", 2_001.0)
    assert accepted.unfinished
    assert await journal.get("k") == accepted


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], S.ACCEPTED),  # planned -> accepted skips sending
        ([], S.UNKNOWN),
        ([S.SENDING], S.PLANNED),
        ([S.SENDING], S.SENDING),
        ([S.SENDING, S.ACCEPTED], S.SENDING),
        ([S.SENDING, S.ACCEPTED], S.UNKNOWN),
        ([S.SENDING, S.UNKNOWN], S.SENDING),
        ([S.SENDING, S.UNKNOWN], S.REJECTED),
        ([S.SENDING, S.REJECTED], S.SENDING),
        ([S.SENDING, S.REJECTED], S.ACCEPTED),
    ],
)
@pytest.mark.anyio
async def test_illegal_transitions_are_refused_and_change_nothing(
    journal: Journal, path: list[SubmissionState], illegal: SubmissionState
) -> None:
    await journal.add(entry("k"))
    for state in path:
        await journal.transition("k", state, job_id="j" if state is S.ACCEPTED else None)
    before = await journal.get("k")
    with pytest.raises(InvalidInput) as info:
        await journal.transition("k", illegal, job_id="j" if illegal is S.ACCEPTED else None)
    assert info.value.field in ("state", "attempt")
    assert await journal.get("k") == before


@pytest.mark.anyio
async def test_new_attempt_needs_the_next_number(journal: Journal) -> None:
    await journal.add(entry("k"))
    await journal.transition("k", S.SENDING)
    err = ErrorInfo.from_exception(RateLimited("slow down", retry_after=3.0))
    rejected = await journal.transition("k", S.REJECTED, error=err)
    assert rejected.error == ErrorInfo(
        type="RateLimited", message="slow down", status_code=429, retry_after=3.0
    )
    with pytest.raises(InvalidInput, match="attempt"):
        await journal.transition("k", S.PLANNED, attempt=3)
    planned = await journal.transition("k", S.PLANNED, attempt=2)
    assert (planned.state, planned.attempt) == (S.PLANNED, 2)
    accepted = await accept(journal, "k")
    assert accepted.attempt == 2
    assert accepted.error == err  # what happened to attempt 1 stays visible


@pytest.mark.anyio
async def test_accepted_needs_a_job_id_and_others_refuse_one(journal: Journal) -> None:
    await journal.add(entry("k"))
    with pytest.raises(InvalidInput, match="job_id"):
        await journal.transition("k", S.SENDING, job_id="x")
    await journal.transition("k", S.SENDING)
    with pytest.raises(InvalidInput, match="job_id"):
        await journal.transition("k", S.ACCEPTED)


@pytest.mark.anyio
async def test_unknown_key_is_refused(journal: Journal) -> None:
    with pytest.raises(InvalidInput, match="key"):
        await journal.transition("nope", S.SENDING)
    with pytest.raises(InvalidInput, match="key"):
        await journal.record_outcome("nope", JobOutcome.SUCCEEDED)


@pytest.mark.anyio
async def test_outcomes_are_sticky_except_timed_out(journal: Journal) -> None:
    await journal.add(entry("k"))
    with pytest.raises(InvalidInput, match="accepted"):
        await journal.record_outcome("k", JobOutcome.SUCCEEDED)
    await accept(journal, "k")
    timed_out = await journal.record_outcome("k", JobOutcome.TIMED_OUT)
    assert timed_out.unfinished  # a timed-out job may be re-attached (RELIABILITY #30)
    done = await journal.record_outcome(
        "k",
        JobOutcome.SUCCEEDED,
        result_url="https://cdn.example/v/1.mp4?X-Amz-Signature=abc&X-Amz-Credential=k",
        media_id="v1",
    )
    assert done.result_url == "https://cdn.example/v/1.mp4"  # signed query never stored
    assert (done.outcome, done.media_id, done.unfinished) == (JobOutcome.SUCCEEDED, "v1", False)
    assert await journal.record_outcome("k", JobOutcome.SUCCEEDED) == done  # idempotent
    with pytest.raises(InvalidInput, match="sticky"):
        await journal.record_outcome("k", JobOutcome.FAILED)
    assert (await journal.get("k")) == done


@pytest.mark.anyio
async def test_query_filters(journal: Journal) -> None:
    for i, key in enumerate(["a", "b", "c", "d"]):
        await journal.add(entry(key, i, provider="p1" if i < 2 else "p2"))
    await accept(journal, "a", "ja")
    await accept(journal, "c", "jc")
    await journal.record_outcome("c", JobOutcome.FAILED, message="face not found")
    await journal.transition("d", S.SENDING)
    await journal.transition("d", S.UNKNOWN)

    def keys(entries: list[JournalEntry]) -> list[str]:
        return [e.key for e in entries]

    assert keys(await journal.query()) == ["a", "b", "c", "d"]
    assert keys(await journal.query(state=S.ACCEPTED)) == ["a", "c"]
    assert keys(await journal.query(provider="p2")) == ["c", "d"]
    assert keys(await journal.query(job_id="jc")) == ["c"]
    assert keys(await journal.query(unfinished=True)) == ["a"]
    assert keys(await journal.query(unfinished=False)) == ["b", "c", "d"]
    assert keys(await journal.query(limit=2)) == ["a", "b"]
    assert (await journal.get("c")).outcome_message == "face not found"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_leases_let_one_owner_at_a_time_claim(journal: Journal, clock: WallClock) -> None:
    for key in ["a", "b", "c"]:
        await journal.add(entry(key))
        await accept(journal, key, f"j{key}")
    got_a = await journal.claim("owner-A", lease_seconds=60, limit=2)
    assert [e.key for e in got_a] == ["a", "b"]
    assert all(e.owner == "owner-A" and e.lease_until == clock.now + 60 for e in got_a)
    got_b = await journal.claim("owner-B", lease_seconds=60)
    assert [e.key for e in got_b] == ["c"]  # a and b are held by a live lease
    assert [e.key for e in await journal.claim("owner-A", lease_seconds=60)] == ["a", "b"]
    clock.now += 61  # A's leases ran out (A died)
    assert [e.key for e in await journal.claim("owner-B", lease_seconds=60)] == ["a", "b", "c"]
    await journal.release("owner-B", ["a"])
    assert (await journal.get("a")).owner is None  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_mark_interrupted_spares_live_senders(journal: Journal, clock: WallClock) -> None:
    await journal.add(JournalEntry.planned(make_spec(1), key="mine", now=1.0))
    await journal.add(
        JournalEntry.planned(make_spec(2), key="live", now=1.0, owner="other", lease_until=9e9)
    )
    await journal.add(
        JournalEntry.planned(make_spec(3), key="dead", now=1.0, owner="gone", lease_until=5.0)
    )
    await journal.add(JournalEntry.planned(make_spec(4), key="orphan", now=1.0))
    await journal.transition("mine", S.SENDING, owner="me", lease_until=9e9)
    for key in ["live", "dead", "orphan"]:
        await journal.transition(key, S.SENDING)
    return_keys = {"dead", "orphan"}
    changed = await journal.mark_interrupted("me")
    assert {e.key for e in changed} == return_keys
    for key in return_keys:
        got = await journal.get(key)
        assert got is not None
        assert got.state is S.UNKNOWN
        assert got.error is not None
        assert got.error.type == "Interrupted"
    assert (await journal.get("mine")).state is S.SENDING  # type: ignore[union-attr]
    assert (await journal.get("live")).state is S.SENDING  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_spec_round_trips_through_the_journal(journal: Journal) -> None:
    policy = PollPolicy(initial=1, cap=4, deadline=60)
    spec = make_spec(
        3, client_job_id="render_1", match_tag="t-abc", poll_policy=policy, meta={"x": 1}
    )
    await journal.add(JournalEntry.planned(spec, key="k", now=1.0))
    got = await journal.get("k")
    assert got is not None
    assert got.to_spec() == spec


@pytest.mark.parametrize("store", ["full", "hash"])
@pytest.mark.anyio
async def test_payload_kept_or_hashed(tmp_path: Path, store: Any) -> None:
    payload = {"prompt": "a very distinctive llama prompt", "seed": 7}
    path = tmp_path / "j.sqlite"
    async with SQLiteJournal(path, store_payload=store) as journal:
        await journal.add(JournalEntry.planned(make_spec(payload=payload), key="k", now=1.0))
        got = await journal.get("k")
    assert got is not None
    assert got.payload_hash == payload_digest(payload)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())  # noqa: ASYNC240
    if store == "full":
        assert got.payload == payload
        assert b"distinctive llama" in raw
    else:
        assert got.payload is None
        assert b"distinctive llama" not in raw
        assert got.to_spec().payload == {}


@pytest.mark.anyio
async def test_memory_journal_hash_mode_drops_payload() -> None:
    journal = MemoryJournal(store_payload="hash")
    stored, _ = await journal.add(entry("k"))
    assert stored.payload is None
    assert stored.meta is None


def test_secret_in_payload_is_refused() -> None:
    with pytest.raises(InvalidInput, match="Secret"):
        entry("k", payload={"api_key": Secret("sk-123")})
    with pytest.raises(InvalidInput, match="payload"):
        entry("k", payload={"x": object()})


def test_meta_json_cannot_hold_is_not_journaled() -> None:
    assert entry("k", meta={"session_id": "s1"}).meta == {"session_id": "s1"}
    assert entry("k", meta={"token": Secret("sk-123")}).meta is None
    assert entry("k", meta={"hint": object()}).meta is None


def test_bytes_count_by_digest_and_bad_options_are_refused() -> None:
    assert payload_digest({"f": b"abc"}) == payload_digest({"f": bytearray(b"abc")})
    assert payload_digest({"f": b"abc"}) != payload_digest({"f": b"abd"})
    with pytest.raises(InvalidInput, match="store_payload"):
        MemoryJournal(store_payload="some")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="max_batch"):
        SQLiteJournal("x.sqlite", max_batch=0)


def test_foreign_error_messages_are_withheld() -> None:
    info = ErrorInfo.from_exception(RuntimeError("Authorization: Bearer sk-live-zzz"))
    assert info == ErrorInfo(type="RuntimeError", message="")


# ---------------------------------------------------------------------------
# Pure rules, property-based

_STATES = list(SubmissionState)
# The reference model: the graph from ARCHITECTURE §4.1, spelled out independently.
_EDGES = {
    (S.PLANNED, S.SENDING),
    (S.PLANNED, S.NOT_SENT),
    (S.SENDING, S.ACCEPTED),
    (S.SENDING, S.REJECTED),
    (S.SENDING, S.NOT_SENT),
    (S.SENDING, S.UNKNOWN),
    (S.UNKNOWN, S.ACCEPTED),
    (S.REJECTED, S.PLANNED),
    (S.NOT_SENT, S.PLANNED),
}


@given(
    current=st.sampled_from(_STATES),
    new=st.sampled_from(_STATES),
    attempt=st.integers(1, 5),
    delta=st.integers(-1, 2),
)
def test_transition_rule_matches_the_graph(
    current: SubmissionState, new: SubmissionState, attempt: int, delta: int
) -> None:
    expected_delta = 1 if new is S.PLANNED else 0
    allowed = (current, new) in _EDGES and delta == expected_delta
    try:
        check_transition(current, attempt, new, attempt + delta)
    except InvalidInput:
        assert not allowed
    else:
        assert allowed


@given(moves=st.lists(st.sampled_from(_STATES), max_size=30))
def test_accepted_is_absorbing_and_attempts_never_decrease(moves: list[SubmissionState]) -> None:
    state, attempt, seen_accepted = S.PLANNED, 1, False
    for new in moves:
        new_attempt = attempt + 1 if new is S.PLANNED else attempt
        try:
            check_transition(state, attempt, new, new_attempt)
        except InvalidInput:
            continue
        assert not seen_accepted
        assert new_attempt >= attempt
        state, attempt = new, new_attempt
        if state is S.ACCEPTED:
            seen_accepted = True


@given(
    state=st.sampled_from(_STATES),
    current=st.none() | st.sampled_from(list(JobOutcome)),
    new=st.sampled_from(list(JobOutcome)),
)
def test_outcome_rule(state: SubmissionState, current: JobOutcome | None, new: JobOutcome) -> None:
    check: Callable[[], bool] = lambda: check_outcome(state, current, new)  # noqa: E731
    if state is not S.ACCEPTED:
        with pytest.raises(InvalidInput):
            check()
    elif current is None or (current is JobOutcome.TIMED_OUT and new is not current):
        assert check() is True
    elif current is new:
        assert check() is False
    else:
        with pytest.raises(InvalidInput):
            check()
