"""
The submission journal: what was about to be sent, what came back, how each job ended.

The journal is the write-ahead log of the at-most-once create (ARCHITECTURE §4.1,
RELIABILITY §4). One entry per user request key::

    planned -> sending -> accepted(job_id) | rejected(error) | not_sent | unknown
                                  unknown -> accepted(job_id)       (reconciled)
               rejected | not_sent -> planned (attempt + 1)         (429 once / explicit policy)

``sending`` is made durable (fsynced) before the first byte of the create leaves,
and ``accepted`` before ``submit`` returns. Every other write (``planned``, a job's
terminal outcome) rides along in the next commit without forcing an fsync of its
own: losing one of those in a crash costs a re-poll, never a duplicate create.

Backends:

* :class:`SQLiteJournal`: the embedded default. WAL mode, a versioned schema
  with a ``schema_migrations`` table, and one dedicated writer thread that
  batches the writes of concurrent submits into one transaction (one fsync):
  *group commit*.
* :class:`MemoryJournal`: the same rules in a dict, for tests and throwaway runs.

Scale path (ARCHITECTURE §5): a PostgreSQL journal is an addition, not a
rewrite. Every method of :class:`Journal` is one short transaction on one key,
or a set-based claim, so it maps onto SQL directly:

* ``add``: ``INSERT ... ON CONFLICT (key) DO NOTHING RETURNING *`` (then a
  ``SELECT`` of the existing row). The unique key is what stops two workers from
  creating the same job.
* ``transition`` / ``record_outcome``: ``SELECT ... FOR UPDATE`` of the row, the
  same pure checks (:func:`check_transition`, :func:`check_outcome`), ``UPDATE``.
  Sending and accepted commits use ``synchronous_commit = on``; the others may
  use ``off``.
* ``claim(owner, lease_seconds=...)``: ``UPDATE entries SET owner = $1,
  lease_until = now() + $2 WHERE key IN (SELECT key FROM entries WHERE state =
  'accepted' AND outcome IS NULL AND (owner IS NULL OR owner = $1 OR lease_until
  < now()) LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *``: N workers track one
  job set with no double polling. Workers re-``claim`` before ``lease_until``.
* ``mark_interrupted(owner)``: only ``sending`` entries whose owner's lease ran
  out (a dead worker) become ``unknown``; a live worker's in-flight create is
  left alone.

The embedded journals are single-process: :class:`SQLiteJournal` holds an
exclusive lock on ``<path>.lock`` while open, so on open every lease in the file
belongs to a dead process and is cleared.

What is stored: the request payload in full (``store_payload="full"``) or only
its SHA-256 (``store_payload="hash"``); never a credential (auth lives in
headers, which are not journaled; a :class:`~aivideo_async.Secret` inside a
payload is refused), error type and message only for the library's own errors
(their messages never hold secrets), and result URLs without their query
string (a signed URL is itself a credential; refetch it through the status call).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
import os
import queue
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Protocol, Self, TypeVar, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import anyio
import attrs

from .._config import PollPolicy
from .._exceptions import AIVideoError, InvalidInput, RateLimited
from .._secret import Secret
from ..providers._base import JobSpec

__all__ = [
    "SubmissionState",
    "JobOutcome",
    "ErrorInfo",
    "JournalEntry",
    "Journal",
    "SQLiteJournal",
    "MemoryJournal",
    "check_transition",
    "check_outcome",
    "payload_digest",
    "SCHEMA_VERSION",
]

logger = logging.getLogger("aivideo_async.jobs")

T = TypeVar("T")

StorePayload = Literal["full", "hash"]


class SubmissionState(enum.Enum):
    """
    Where the create call of one journal entry stands.

    Example:
        >>> SubmissionState("sending")
        <SubmissionState.SENDING: 'sending'>
        >>> SubmissionState.ACCEPTED.settled, SubmissionState.SENDING.settled
        (True, False)
    """

    PLANNED = "planned"
    """Recorded, nothing sent yet: safe to send."""
    SENDING = "sending"
    """Durable before the first byte; left over after a crash it means ``unknown``."""
    ACCEPTED = "accepted"
    """The provider answered with a job id (durable before ``submit`` returned)."""
    REJECTED = "rejected"
    """The provider definitely refused (4xx, 429, body error code)."""
    NOT_SENT = "not_sent"
    """The request provably never left (connect refused, pool timeout)."""
    UNKNOWN = "unknown"
    """Bytes may have reached the provider and no usable answer came back."""

    @property
    def settled(self) -> bool:
        """``True`` once the attempt has an outcome (not ``planned``/``sending``)."""
        return self not in (SubmissionState.PLANNED, SubmissionState.SENDING)


class JobOutcome(enum.Enum):
    """
    How an accepted job ended, as the scheduler observed it.

    ``TIMED_OUT`` is the one outcome that is not final: the remote job was left
    running (RELIABILITY #30), so a later resume may re-attach it and record
    its real end.

    Example:
        >>> JobOutcome("timed_out").final
        False
        >>> JobOutcome.SUCCEEDED.final
        True
    """

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"
    NOT_FOUND = "not_found"

    @property
    def final(self) -> bool:
        """Whether no later outcome may replace this one."""
        return self is not JobOutcome.TIMED_OUT


_ALLOWED: Final[Mapping[SubmissionState, frozenset[SubmissionState]]] = {
    SubmissionState.PLANNED: frozenset({SubmissionState.SENDING, SubmissionState.NOT_SENT}),
    SubmissionState.SENDING: frozenset(
        {
            SubmissionState.ACCEPTED,
            SubmissionState.REJECTED,
            SubmissionState.NOT_SENT,
            SubmissionState.UNKNOWN,
        }
    ),
    # Reconcile found the job the lost answer would have named.
    SubmissionState.UNKNOWN: frozenset({SubmissionState.ACCEPTED}),
    # A new attempt: 429 once (RELIABILITY #12) or not_sent by explicit policy.
    SubmissionState.REJECTED: frozenset({SubmissionState.PLANNED}),
    SubmissionState.NOT_SENT: frozenset({SubmissionState.PLANNED}),
    SubmissionState.ACCEPTED: frozenset(),
}

# Every settled state and ``sending`` are fsynced; only ``planned`` (nothing sent
# yet, so losing it is harmless) rides along without forcing a sync.
_DURABLE_STATES: Final = frozenset(s for s in SubmissionState if s is not SubmissionState.PLANNED)


def check_transition(
    current: SubmissionState,
    current_attempt: int,
    new: SubmissionState,
    new_attempt: int,
) -> None:
    """
    Refuse a journal transition that would break monotonicity.

    Within one attempt a state only moves forward; a new attempt (``attempt +
    1``, back to ``planned``) may only follow ``rejected`` or ``not_sent``;
    ``accepted`` is final.

    Raises:
        InvalidInput: the transition is not allowed; the message names both states.

    Example:
        >>> check_transition(SubmissionState.PLANNED, 1, SubmissionState.SENDING, 1)
        >>> check_transition(SubmissionState.ACCEPTED, 1, SubmissionState.SENDING, 1)
        Traceback (most recent call last):
        ...
        aivideo_async.InvalidInput: state: got 'accepted -> sending', expected a move ... (final)
    """
    shown = f"{current.value} -> {new.value}"
    if new not in _ALLOWED[current]:
        allowed = ", ".join(sorted(s.value for s in _ALLOWED[current])) or "none (final)"
        raise InvalidInput(
            field="state", value=shown, expected=f"a move from {current.value} to: {allowed}"
        )
    if new is SubmissionState.PLANNED:
        if new_attempt != current_attempt + 1:
            raise InvalidInput(
                field="attempt",
                value=new_attempt,
                expected=f"{current_attempt + 1} (a new attempt after {current.value})",
            )
    elif new_attempt != current_attempt:
        raise InvalidInput(
            field="attempt", value=new_attempt, expected=f"{current_attempt} ({shown})"
        )


def check_outcome(state: SubmissionState, current: JobOutcome | None, new: JobOutcome) -> bool:
    """
    Check that a terminal job outcome may be recorded; return ``False`` for a no-op.

    Only an accepted job has an outcome; outcomes are sticky except ``timed_out``
    (the remote job kept running and may be re-attached). Writing the same
    outcome again is a no-op.

    Raises:
        InvalidInput: the entry is not accepted, or a final outcome would change.

    Example:
        >>> check_outcome(SubmissionState.ACCEPTED, None, JobOutcome.SUCCEEDED)
        True
        >>> check_outcome(SubmissionState.ACCEPTED, JobOutcome.SUCCEEDED, JobOutcome.SUCCEEDED)
        False
        >>> check_outcome(SubmissionState.ACCEPTED, JobOutcome.TIMED_OUT, JobOutcome.FAILED)
        True
    """
    if state is not SubmissionState.ACCEPTED:
        raise InvalidInput(
            field="outcome",
            value=new.value,
            expected=f"an accepted entry (this one is {state.value})",
        )
    if current is None or (current is JobOutcome.TIMED_OUT and new is not JobOutcome.TIMED_OUT):
        return True
    if current is new:
        return False
    raise InvalidInput(
        field="outcome",
        value=f"{current.value} -> {new.value}",
        expected="no change: terminal outcomes are sticky",
    )


# ---------------------------------------------------------------------------
# Payload canonical form


def _json_default(value: Any) -> Any:
    if isinstance(value, Secret):
        raise InvalidInput(
            field="payload",
            value=value,
            expected="no Secret in a create payload (credentials go in headers, never the journal)",
        )
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        # File bytes are fingerprinted, never copied into the journal.
        return {"$bytes_sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise InvalidInput(
        field="payload",
        value=type(value).__name__,
        expected="JSON values (str, int, float, bool, None, lists, dicts), bytes or paths",
    )


def _canonical_json(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def payload_digest(payload: Mapping[str, Any]) -> str:
    """
    Return the SHA-256 (hex) of ``payload`` in canonical JSON form.

    Canonical: keys sorted, no whitespace, UTF-8 (``json.dumps(sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)``). Bytes values count by their
    own digest; a :class:`~aivideo_async.Secret` is refused.

    Raises:
        InvalidInput: the payload holds a ``Secret`` or a value JSON cannot hold.

    Example:
        >>> payload_digest({"b": 1, "a": "x"}) == payload_digest({"a": "x", "b": 1})
        True
        >>> len(payload_digest({}))
        64
    """
    return hashlib.sha256(_canonical_json(payload).encode("utf-8")).hexdigest()


def _redact_url(url: str | None) -> str | None:
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# ---------------------------------------------------------------------------
# Entries


@attrs.frozen(kw_only=True)
class ErrorInfo:
    """
    The error of a submission attempt, as journaled: type name and message, no traceback.

    Attributes:
        type: the exception class name (``"RateLimited"``).
        message: the library error's message (never holds a secret); withheld
            (empty) for foreign exceptions, whose text we do not control.
        status_code: HTTP status, when the provider answered.
        body_code: the provider's own error code, as text.
        retry_after: a 429's parsed ``Retry-After``.
        body_digest: SHA-256 (hex) of an answer that could not be read as the
            API promises (malformed JSON, a missing ``job_id``): the body
            itself is not kept, its digest identifies it (RELIABILITY #20).

    Example:
        >>> from aivideo_async._exceptions import BadRequest
        >>> info = ErrorInfo.from_exception(BadRequest("avatarId missing", status_code=400))
        >>> info.type, info.message, info.status_code
        ('BadRequest', 'avatarId missing', 400)
    """

    type: str
    message: str = ""
    status_code: int | None = None
    body_code: str | None = None
    retry_after: float | None = None
    body_digest: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, *, message: str | None = None) -> ErrorInfo:
        """Describe ``exc`` without anything a foreign exception's text might carry."""
        if isinstance(exc, AIVideoError):
            text = exc.message if message is None else message
            return cls(
                type=type(exc).__name__,
                message=text[:500],
                status_code=exc.status_code,
                body_code=None if exc.body_code is None else str(exc.body_code),
                retry_after=exc.retry_after if isinstance(exc, RateLimited) else None,
                body_digest=_digest_of(exc),
            )
        return cls(type=type(exc).__name__, message=(message or "")[:500])


def _digest_of(exc: AIVideoError) -> str | None:
    digest = getattr(exc, "body_digest", None)  # AIVideoError.body_digest
    if isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest):
        return digest
    return None


@attrs.frozen(kw_only=True)
class JournalEntry:
    """
    One user request (key) and what became of its create call and its job.

    Times are wall-clock epoch seconds (they outlive the process).

    Attributes:
        key: the user's request key (unique in the journal).
        provider: provider name.
        kind: job kind.
        endpoint: ``"METHOD /path"`` of the create.
        payload: the request body, or ``None`` when the journal keeps only its hash.
        payload_hash: :func:`payload_digest` of the body.
        meta: the spec's backend metadata (kept like the payload).
        poll_policy: the spec's poll policy override, if any.
        state: the :class:`SubmissionState` of the current attempt.
        attempt: 1 for the first create attempt; a 429 or a not-sent policy adds one.
        job_id: the provider's job id once accepted.
        client_job_id: a client-chosen job id (NemoVideo render ids).
        match_tag: a tag in the payload that lets a lost create be found.
        error: the last attempt's error.
        created_at: when the entry was planned.
        updated_at: when it last changed.
        sent_at: when the current attempt went ``sending`` (``since`` for reconcile).
        accepted_at: when it was accepted.
        outcome: how the job ended, once it did.
        outcome_at: when the outcome was recorded.
        result_url: the result URL without its query string.
        media_id: the provider's output id when it differs from the job id.
        outcome_message: the provider's failure message, if any.
        owner: the orchestrator holding the entry's lease (see :meth:`Journal.claim`).
        lease_until: when that lease runs out.

    Example:
        >>> e = JournalEntry.planned(
        ...     JobSpec(provider="miraflow", kind="image", method="POST",
        ...             path="/api/image/generate", payload={"prompt": "a cat"}),
        ...     key="row-1", now=0.0)
        >>> e.state, e.attempt, e.endpoint
        (<SubmissionState.PLANNED: 'planned'>, 1, 'POST /api/image/generate')
    """

    key: str
    provider: str
    kind: str
    endpoint: str
    payload: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    payload_hash: str
    meta: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    poll_policy: PollPolicy | None = attrs.field(default=None, repr=False)
    state: SubmissionState = SubmissionState.PLANNED
    attempt: int = 1
    job_id: str | None = None
    client_job_id: str | None = None
    match_tag: str | None = None
    error: ErrorInfo | None = None
    created_at: float
    updated_at: float
    sent_at: float | None = None
    accepted_at: float | None = None
    outcome: JobOutcome | None = None
    outcome_at: float | None = None
    result_url: str | None = None
    media_id: str | None = None
    outcome_message: str | None = None
    owner: str | None = None
    lease_until: float | None = None

    @classmethod
    def planned(
        cls,
        spec: JobSpec,
        *,
        key: str,
        now: float,
        owner: str | None = None,
        lease_until: float | None = None,
    ) -> JournalEntry:
        """Build the ``planned`` entry for ``spec`` (validates the payload)."""
        digest = payload_digest(spec.payload)
        meta: Mapping[str, Any] | None = dict(spec.meta) if spec.meta else None
        if meta is not None:
            try:
                _canonical_json(meta)
            except InvalidInput:
                # Backend hints that JSON cannot hold (or a Secret) are not journaled.
                meta = None
        return cls(
            key=key,
            provider=spec.provider,
            kind=spec.kind,
            endpoint=spec.endpoint,
            payload=spec.payload,
            payload_hash=digest,
            meta=meta,
            poll_policy=spec.poll_policy,
            client_job_id=spec.client_job_id,
            match_tag=spec.match_tag,
            created_at=now,
            updated_at=now,
            owner=owner,
            lease_until=lease_until,
        )

    @property
    def unfinished(self) -> bool:
        """Accepted and no final outcome yet: a job to (re)track."""
        return self.state is SubmissionState.ACCEPTED and (
            self.outcome is None or not self.outcome.final
        )

    def to_spec(self) -> JobSpec:
        """
        Rebuild the :class:`JobSpec` (for reconcile). With a hashed journal the
        payload comes back empty; ids and match tags still work.
        """
        method, _, path = self.endpoint.partition(" ")
        return JobSpec(
            provider=self.provider,
            kind=self.kind,
            method=method,
            path=path,
            payload=dict(self.payload or {}),
            client_job_id=self.client_job_id,
            match_tag=self.match_tag,
            poll_policy=self.poll_policy,
            meta=dict(self.meta or {}),
        )


def _apply_transition(
    entry: JournalEntry,
    state: SubmissionState,
    *,
    now: float,
    attempt: int | None = None,
    job_id: str | None = None,
    error: ErrorInfo | None = None,
    owner: str | None = None,
    lease_until: float | None = None,
) -> JournalEntry:
    new_attempt = entry.attempt if attempt is None else attempt
    check_transition(entry.state, entry.attempt, state, new_attempt)
    changes: dict[str, Any] = {"state": state, "attempt": new_attempt, "updated_at": now}
    if state is SubmissionState.ACCEPTED:
        if not job_id:
            raise InvalidInput(field="job_id", value=job_id, expected="a non-empty job id")
        changes["job_id"] = job_id
        changes["accepted_at"] = now
    elif job_id is not None:
        raise InvalidInput(field="job_id", value=job_id, expected=f"None for {state.value}")
    if state is SubmissionState.SENDING:
        changes["sent_at"] = now
    if error is not None:
        changes["error"] = error
    if owner is not None:
        changes["owner"] = owner
        changes["lease_until"] = lease_until
    return attrs.evolve(entry, **changes)


def _apply_outcome(
    entry: JournalEntry,
    outcome: JobOutcome,
    *,
    now: float,
    result_url: str | None,
    media_id: str | None,
    message: str | None,
) -> JournalEntry | None:
    if not check_outcome(entry.state, entry.outcome, outcome):
        return None
    return attrs.evolve(
        entry,
        outcome=outcome,
        outcome_at=now,
        updated_at=now,
        result_url=_redact_url(result_url),
        media_id=media_id,
        outcome_message=None if message is None else message[:500],
    )


def _to_sending(entry: JournalEntry, now: float) -> JournalEntry:
    return _apply_transition(entry, SubmissionState.SENDING, now=now)


_INTERRUPTED = ErrorInfo(
    type="Interrupted",
    message="the process stopped while the create was in flight (RELIABILITY #10)",
)


def _to_interrupted(entry: JournalEntry, now: float) -> JournalEntry:
    # A ``sending`` entry whose process died: the create may or may not have left.
    return _apply_transition(entry, SubmissionState.UNKNOWN, now=now, error=_INTERRUPTED)


def _not_in_journal(key: str) -> InvalidInput:
    return InvalidInput(field="key", value=key, expected="a key in the journal")


def _strip(entry: JournalEntry, store_payload: StorePayload) -> JournalEntry:
    if store_payload == "hash" and (entry.payload is not None or entry.meta is not None):
        return attrs.evolve(entry, payload=None, meta=None)
    return entry


def _matches(
    entry: JournalEntry,
    state: SubmissionState | None,
    provider: str | None,
    job_id: str | None,
    unfinished: bool | None,
) -> bool:
    if state is not None and entry.state is not state:
        return False
    if provider is not None and entry.provider != provider:
        return False
    if job_id is not None and entry.job_id != job_id:
        return False
    return unfinished is None or entry.unfinished == unfinished


# ---------------------------------------------------------------------------
# Protocol


@runtime_checkable
class Journal(Protocol):
    """
    What the orchestrator needs from a journal. Every method is a coroutine
    except :meth:`stats`; each write is one atomic step on one key (or a
    set-based claim), which is what lets a PostgreSQL backend with leases be
    added without changing the orchestrator (see the module docstring).

    Example:
        >>> isinstance(MemoryJournal(), Journal)
        True
    """

    store_payload: StorePayload

    async def open(self) -> None:
        """Open (idempotent): connect, migrate, take the process lock."""
        ...

    async def aclose(self) -> None:
        """Flush and close (idempotent)."""
        ...

    async def add(self, entry: JournalEntry, *, sending: bool = False) -> tuple[JournalEntry, bool]:
        """
        Insert a ``planned`` entry unless its key exists; return ``(entry, created)``
        where ``entry`` is the stored one (the existing one, unchanged, when not
        created). With ``sending=True`` a new entry also moves to ``sending`` in
        the same transaction, durable on return: the common submit path then
        costs one journal round trip before the create instead of two.
        """
        ...

    async def get(self, key: str) -> JournalEntry | None:
        """The entry for ``key``, or ``None``."""
        ...

    async def transition(
        self,
        key: str,
        state: SubmissionState,
        *,
        attempt: int | None = None,
        job_id: str | None = None,
        error: ErrorInfo | None = None,
        owner: str | None = None,
        lease_until: float | None = None,
    ) -> JournalEntry:
        """
        Move ``key`` to ``state`` (checked by :func:`check_transition`). Every
        move except to ``planned`` is durable (fsynced) when this returns.
        """
        ...

    async def record_outcome(
        self,
        key: str,
        outcome: JobOutcome,
        *,
        result_url: str | None = None,
        media_id: str | None = None,
        message: str | None = None,
    ) -> JournalEntry:
        """Record how an accepted job ended (checked by :func:`check_outcome`)."""
        ...

    async def query(
        self,
        *,
        state: SubmissionState | None = None,
        provider: str | None = None,
        job_id: str | None = None,
        unfinished: bool | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Entries matching every given filter, oldest first."""
        ...

    async def claim(
        self, owner: str, *, lease_seconds: float, limit: int | None = None
    ) -> list[JournalEntry]:
        """
        Lease unfinished accepted entries that no live owner holds (no lease,
        ``owner``'s own, or expired) to ``owner`` for ``lease_seconds``; return them.
        """
        ...

    async def release(self, owner: str, keys: Sequence[str]) -> None:
        """Drop ``owner``'s leases on ``keys``."""
        ...

    async def mark_interrupted(self, owner: str) -> list[JournalEntry]:
        """
        Turn ``sending`` entries that no live owner holds into ``unknown``
        (RELIABILITY #10; durable); return them.
        """
        ...

    def stats(self) -> Mapping[str, int]:
        """Counters: ``ops``, ``commits``, ``durable_commits``, ``max_batch``."""
        ...


class _OpenedByAsyncWith:
    """``async with journal:`` opens the journal, and closes it on the way out."""

    async def open(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _live_lease(entry: JournalEntry, owner: str, now: float) -> bool:
    # Held by someone else whose lease has not run out.
    return (
        entry.owner is not None
        and entry.owner != owner
        and entry.lease_until is not None
        and entry.lease_until >= now
    )


# ---------------------------------------------------------------------------
# Memory


class MemoryJournal(_OpenedByAsyncWith):
    """
    A journal in a dict: the same rules as :class:`SQLiteJournal`, no durability.

    Example:
        >>> import anyio
        >>> from aivideo_async.providers._base import JobSpec
        >>> async def main():
        ...     journal = MemoryJournal()
        ...     spec = JobSpec(provider="p", kind="k", method="POST", path="/c", payload={})
        ...     entry, created = await journal.add(JournalEntry.planned(spec, key="a", now=0.0))
        ...     await journal.transition("a", SubmissionState.SENDING)
        ...     entry = await journal.transition("a", SubmissionState.ACCEPTED, job_id="j1")
        ...     return created, entry.state.value, entry.job_id
        >>> anyio.run(main)
        (True, 'accepted', 'j1')
    """

    def __init__(
        self,
        *,
        store_payload: StorePayload = "full",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        _check_store_payload(store_payload)
        self.store_payload: StorePayload = store_payload
        self._wall = wall_clock
        self._entries: dict[str, JournalEntry] = {}
        self._ops = 0

    async def open(self) -> None:
        """Nothing to open."""

    async def aclose(self) -> None:
        """Nothing to close; entries stay readable."""

    def _get(self, key: str) -> JournalEntry:
        try:
            return self._entries[key]
        except KeyError:
            raise _not_in_journal(key) from None

    async def add(self, entry: JournalEntry, *, sending: bool = False) -> tuple[JournalEntry, bool]:
        """See :meth:`Journal.add`."""
        self._ops += 1
        _check_planned(entry)
        existing = self._entries.get(entry.key)
        if existing is not None:
            return existing, False
        stored = _strip(entry, self.store_payload)
        if sending:
            stored = _to_sending(stored, self._wall())
        self._entries[entry.key] = stored
        return stored, True

    async def get(self, key: str) -> JournalEntry | None:
        """See :meth:`Journal.get`."""
        self._ops += 1
        return self._entries.get(key)

    async def transition(
        self,
        key: str,
        state: SubmissionState,
        *,
        attempt: int | None = None,
        job_id: str | None = None,
        error: ErrorInfo | None = None,
        owner: str | None = None,
        lease_until: float | None = None,
    ) -> JournalEntry:
        """See :meth:`Journal.transition`."""
        self._ops += 1
        new = _apply_transition(
            self._get(key),
            state,
            now=self._wall(),
            attempt=attempt,
            job_id=job_id,
            error=error,
            owner=owner,
            lease_until=lease_until,
        )
        self._entries[key] = new
        return new

    async def record_outcome(
        self,
        key: str,
        outcome: JobOutcome,
        *,
        result_url: str | None = None,
        media_id: str | None = None,
        message: str | None = None,
    ) -> JournalEntry:
        """See :meth:`Journal.record_outcome`."""
        self._ops += 1
        entry = self._get(key)
        new = _apply_outcome(
            entry,
            outcome,
            now=self._wall(),
            result_url=result_url,
            media_id=media_id,
            message=message,
        )
        if new is None:
            return entry
        self._entries[key] = new
        return new

    async def query(
        self,
        *,
        state: SubmissionState | None = None,
        provider: str | None = None,
        job_id: str | None = None,
        unfinished: bool | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """See :meth:`Journal.query`."""
        self._ops += 1
        found = [
            e for e in self._entries.values() if _matches(e, state, provider, job_id, unfinished)
        ]
        found.sort(key=lambda e: (e.created_at, e.key))
        return found if limit is None else found[:limit]

    async def claim(
        self, owner: str, *, lease_seconds: float, limit: int | None = None
    ) -> list[JournalEntry]:
        """See :meth:`Journal.claim`."""
        now = self._wall()
        claimed: list[JournalEntry] = []
        for entry in await self.query(unfinished=True):
            if limit is not None and len(claimed) >= limit:
                break
            if _live_lease(entry, owner, now):
                continue
            new = attrs.evolve(entry, owner=owner, lease_until=now + lease_seconds)
            self._entries[entry.key] = new
            claimed.append(new)
        return claimed

    async def release(self, owner: str, keys: Sequence[str]) -> None:
        """See :meth:`Journal.release`."""
        self._ops += 1
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None and entry.owner == owner:
                self._entries[key] = attrs.evolve(entry, owner=None, lease_until=None)

    async def mark_interrupted(self, owner: str) -> list[JournalEntry]:
        """See :meth:`Journal.mark_interrupted`."""
        now = self._wall()
        changed: list[JournalEntry] = []
        for entry in await self.query(state=SubmissionState.SENDING):
            if entry.owner == owner or _live_lease(entry, owner, now):
                continue
            new = _to_interrupted(entry, now)
            self._entries[entry.key] = new
            changed.append(new)
        return changed

    def stats(self) -> Mapping[str, int]:
        """See :meth:`Journal.stats` (a memory journal never commits)."""
        return {"ops": self._ops, "commits": 0, "durable_commits": 0, "max_batch": 0}


def _check_store_payload(value: object) -> None:
    if value not in ("full", "hash"):
        raise InvalidInput(field="store_payload", value=value, expected="'full' or 'hash'")


def _check_planned(entry: JournalEntry) -> None:
    if entry.state is not SubmissionState.PLANNED:
        raise InvalidInput(field="state", value=entry.state.value, expected="planned (a new entry)")


# ---------------------------------------------------------------------------
# SQLite

SCHEMA_VERSION: Final = 1
"""The newest schema version this library writes."""

_MIGRATIONS: Final[tuple[tuple[int, str, tuple[str, ...]], ...]] = (
    (
        1,
        "submission entries with leases",
        (
            """
            CREATE TABLE entries (
                key TEXT PRIMARY KEY,
                provider TEXT NOT NULL,
                kind TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                payload TEXT,
                payload_hash TEXT NOT NULL,
                meta TEXT,
                poll_policy TEXT,
                state TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                job_id TEXT,
                client_job_id TEXT,
                match_tag TEXT,
                error TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                sent_at REAL,
                accepted_at REAL,
                outcome TEXT,
                outcome_at REAL,
                result_url TEXT,
                media_id TEXT,
                outcome_message TEXT,
                owner TEXT,
                lease_until REAL
            )
            """,
            "CREATE INDEX entries_state ON entries (state, outcome)",
            "CREATE INDEX entries_job ON entries (provider, job_id)",
            "CREATE INDEX entries_created ON entries (created_at)",
        ),
    ),
)

_COLUMNS: Final = (
    "key",
    "provider",
    "kind",
    "endpoint",
    "payload",
    "payload_hash",
    "meta",
    "poll_policy",
    "state",
    "attempt",
    "job_id",
    "client_job_id",
    "match_tag",
    "error",
    "created_at",
    "updated_at",
    "sent_at",
    "accepted_at",
    "outcome",
    "outcome_at",
    "result_url",
    "media_id",
    "outcome_message",
    "owner",
    "lease_until",
)
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)} FROM entries"
_INSERT: Final = (
    f"INSERT INTO entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
# A transition touches only these columns: the payload is never re-serialised.
_TRANSITION_COLUMNS: Final = (
    "state",
    "attempt",
    "job_id",
    "error",
    "updated_at",
    "sent_at",
    "accepted_at",
    "owner",
    "lease_until",
)
_UPDATE_TRANSITION: Final = (
    f"UPDATE entries SET {', '.join(f'{c} = ?' for c in _TRANSITION_COLUMNS)} WHERE key = ?"
)


def _transition_row(entry: JournalEntry) -> tuple[Any, ...]:
    return (
        entry.state.value,
        entry.attempt,
        entry.job_id,
        None if entry.error is None else json.dumps(attrs.asdict(entry.error)),
        entry.updated_at,
        entry.sent_at,
        entry.accepted_at,
        entry.owner,
        entry.lease_until,
        entry.key,
    )


def _to_row(entry: JournalEntry) -> tuple[Any, ...]:
    return (
        entry.key,
        entry.provider,
        entry.kind,
        entry.endpoint,
        None if entry.payload is None else _canonical_json(entry.payload),
        entry.payload_hash,
        None if entry.meta is None else _canonical_json(entry.meta),
        None if entry.poll_policy is None else json.dumps(attrs.asdict(entry.poll_policy)),
        entry.state.value,
        entry.attempt,
        entry.job_id,
        entry.client_job_id,
        entry.match_tag,
        None if entry.error is None else json.dumps(attrs.asdict(entry.error)),
        entry.created_at,
        entry.updated_at,
        entry.sent_at,
        entry.accepted_at,
        None if entry.outcome is None else entry.outcome.value,
        entry.outcome_at,
        entry.result_url,
        entry.media_id,
        entry.outcome_message,
        entry.owner,
        entry.lease_until,
    )


def _from_row(row: Sequence[Any]) -> JournalEntry:
    (
        key,
        provider,
        kind,
        endpoint,
        payload,
        payload_hash,
        meta,
        poll_policy,
        state,
        attempt,
        job_id,
        client_job_id,
        match_tag,
        error,
        created_at,
        updated_at,
        sent_at,
        accepted_at,
        outcome,
        outcome_at,
        result_url,
        media_id,
        outcome_message,
        owner,
        lease_until,
    ) = row
    return JournalEntry(
        key=key,
        provider=provider,
        kind=kind,
        endpoint=endpoint,
        payload=None if payload is None else json.loads(payload),
        payload_hash=payload_hash,
        meta=None if meta is None else json.loads(meta),
        poll_policy=None if poll_policy is None else PollPolicy(**json.loads(poll_policy)),
        state=SubmissionState(state),
        attempt=attempt,
        job_id=job_id,
        client_job_id=client_job_id,
        match_tag=match_tag,
        error=None if error is None else ErrorInfo(**json.loads(error)),
        created_at=created_at,
        updated_at=updated_at,
        sent_at=sent_at,
        accepted_at=accepted_at,
        outcome=None if outcome is None else JobOutcome(outcome),
        outcome_at=outcome_at,
        result_url=result_url,
        media_id=media_id,
        outcome_message=outcome_message,
        owner=owner,
        lease_until=lease_until,
    )


class _Op:
    __slots__ = ("durable", "fn", "future", "loop")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        durable: bool,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self.fn = fn
        self.durable = durable
        self.loop = loop
        self.future = future


_STOP: Final = object()


_Result = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _deliver(results: list[_Result]) -> None:
    for future, value, exc in results:
        if future.done():  # the awaiting task was cancelled; the write still happened
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)


class SQLiteJournal(_OpenedByAsyncWith):
    """
    The embedded, durable journal: SQLite in WAL mode, driven by one writer thread
    that commits the writes of concurrent submits together (group commit).

    Durability: a batch holding a ``sending``, ``accepted`` or ``unknown`` write is
    committed with ``PRAGMA synchronous=FULL`` (the WAL is fsynced before any of
    the batch's callers resume); other batches with ``NORMAL``.

    Args:
        path: the database file (created, with its folder's ``-wal``/``-shm`` files).
        store_payload: ``"full"`` keeps request payloads (reconcile can match
            them); ``"hash"`` keeps only their SHA-256.
        group_commit: batch concurrent writes into one transaction (default);
            ``False`` commits each write alone (for comparison).
        max_batch: the most operations in one transaction.
        lock: take ``<path>.lock`` exclusively while open (single-process journal).
        wall_clock: epoch seconds for timestamps and leases.

    Example:
        Journals are opened by the orchestrator, or directly::

            async with SQLiteJournal("jobs.sqlite", store_payload="hash") as journal:
                print(await journal.query(state=SubmissionState.UNKNOWN))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        store_payload: StorePayload = "full",
        group_commit: bool = True,
        max_batch: int = 512,
        lock: bool = True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        _check_store_payload(store_payload)
        shown: object = max_batch
        if isinstance(shown, bool) or not isinstance(shown, int) or shown < 1:
            raise InvalidInput(field="max_batch", value=max_batch, expected="an integer >= 1")
        self.path = Path(path)
        self.store_payload: StorePayload = store_payload
        self._max_batch = max_batch if group_commit else 1
        self._lock_wanted = lock
        self._wall = wall_clock
        self._queue: queue.SimpleQueue[_Op | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock_fd: int | None = None
        self._open_lock = anyio.Lock()
        self._stats = {"ops": 0, "commits": 0, "durable_commits": 0, "max_batch": 0}

    def __repr__(self) -> str:
        state = "open" if self._thread is not None else "closed" if self._closed else "unopened"
        return f"<SQLiteJournal {str(self.path)!r} {state}>"

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        """Open the file, take the lock, migrate the schema, clear dead leases."""
        async with self._open_lock:
            if self._thread is not None:
                return
            if self._closed:
                raise anyio.ClosedResourceError("this journal was closed; make a new one")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._lock_wanted:
                self._lock_fd = _take_file_lock(self.path)
            loop = asyncio.get_running_loop()
            ready: asyncio.Future[None] = loop.create_future()
            self._thread = threading.Thread(
                target=self._run, args=(loop, ready), name=f"journal:{self.path.name}", daemon=True
            )
            self._thread.start()
            try:
                await ready
            except BaseException:
                self._thread = None
                self._release_file_lock()
                raise

    async def aclose(self) -> None:
        """Let queued writes commit, then close the database (idempotent)."""
        async with self._open_lock:
            thread = self._thread
            self._closed = True
            if thread is None:
                self._release_file_lock()
                return
            self._queue.put(_STOP)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(thread.join)
            self._thread = None
            self._release_file_lock()

    def _release_file_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    # -- writer thread -----------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise InvalidInput(
                    field="path", value=str(self.path), expected="a file SQLite can put in WAL mode"
                )
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=10000")
            _migrate(conn, self._wall())
            # Single-process journal (we hold the file lock): every lease in the
            # file belongs to a dead process.
            conn.execute(
                "UPDATE entries SET owner = NULL, lease_until = NULL WHERE owner IS NOT NULL"
            )
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            failed: list[_Result] = [(ready, None, exc)]
            loop.call_soon_threadsafe(_deliver, failed)
            return
        opened: list[_Result] = [(ready, None, None)]
        loop.call_soon_threadsafe(_deliver, opened)
        synchronous_full = True
        stopping = False
        try:
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    break
                assert isinstance(first, _Op)
                batch: list[_Op] = [first]
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    assert isinstance(item, _Op)
                    batch.append(item)
                durable = any(op.durable for op in batch)
                if durable != synchronous_full:
                    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                    synchronous_full = durable
                self._run_batch(conn, batch, durable)
        finally:
            # Fail whatever is still queued, then close.
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Op):
                    closed: list[_Result] = [
                        (item.future, None, anyio.ClosedResourceError("journal closed"))
                    ]
                    try:
                        item.loop.call_soon_threadsafe(_deliver, closed)
                    except RuntimeError:  # that loop is gone; nobody is waiting
                        pass
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Op], durable: bool) -> None:
        results: list[tuple[_Op, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in batch:
                # A savepoint per operation: one refused transition does not undo
                # the other writers' work in the same commit.
                conn.execute("SAVEPOINT op")
                try:
                    value = op.fn(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((op, None, exc))
                else:
                    conn.execute("RELEASE op")
                    results.append((op, value, None))
            conn.execute("COMMIT")
        except Exception as failure:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = [(op, None, failure) for op in batch]
        else:
            self._stats["commits"] += 1
            if durable:
                self._stats["durable_commits"] += 1
        self._stats["ops"] += len(batch)
        self._stats["max_batch"] = max(self._stats["max_batch"], len(batch))
        by_loop: dict[asyncio.AbstractEventLoop, list[_Result]] = {}
        for op, value, error in results:
            by_loop.setdefault(op.loop, []).append((op.future, value, error))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # that loop is closed; nobody is waiting any more
                pass

    async def _call(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool) -> T:
        if self._thread is None:
            if self._closed:
                raise anyio.ClosedResourceError("journal closed")
            await self.open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Op(fn, durable, loop, future))
        return await future

    # -- operations (each runs in the writer thread) -----------------------

    @staticmethod
    def _load(conn: sqlite3.Connection, key: str) -> JournalEntry:
        row = conn.execute(f"{_SELECT} WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise _not_in_journal(key)
        return _from_row(row)

    async def add(self, entry: JournalEntry, *, sending: bool = False) -> tuple[JournalEntry, bool]:
        """See :meth:`Journal.add`."""
        _check_planned(entry)
        stored = _strip(entry, self.store_payload)
        row = _to_row(stored)  # serialise (and refuse bad payloads) before queueing

        def op(conn: sqlite3.Connection) -> tuple[JournalEntry, bool]:
            existing = conn.execute(f"{_SELECT} WHERE key = ?", (stored.key,)).fetchone()
            if existing is not None:
                return _from_row(existing), False
            conn.execute(_INSERT, row)
            if not sending:
                return stored, True
            # planned -> sending inside the same transaction (one fsync for both).
            new = _to_sending(stored, self._wall())
            conn.execute(_UPDATE_TRANSITION, _transition_row(new))
            return new, True

        return await self._call(op, durable=sending)

    async def get(self, key: str) -> JournalEntry | None:
        """See :meth:`Journal.get`."""

        def op(conn: sqlite3.Connection) -> JournalEntry | None:
            row = conn.execute(f"{_SELECT} WHERE key = ?", (key,)).fetchone()
            return None if row is None else _from_row(row)

        return await self._call(op, durable=False)

    async def transition(
        self,
        key: str,
        state: SubmissionState,
        *,
        attempt: int | None = None,
        job_id: str | None = None,
        error: ErrorInfo | None = None,
        owner: str | None = None,
        lease_until: float | None = None,
    ) -> JournalEntry:
        """See :meth:`Journal.transition`."""

        def op(conn: sqlite3.Connection) -> JournalEntry:
            new = _apply_transition(
                self._load(conn, key),
                state,
                now=self._wall(),
                attempt=attempt,
                job_id=job_id,
                error=error,
                owner=owner,
                lease_until=lease_until,
            )
            conn.execute(_UPDATE_TRANSITION, _transition_row(new))
            return new

        return await self._call(op, durable=state in _DURABLE_STATES)

    async def record_outcome(
        self,
        key: str,
        outcome: JobOutcome,
        *,
        result_url: str | None = None,
        media_id: str | None = None,
        message: str | None = None,
    ) -> JournalEntry:
        """See :meth:`Journal.record_outcome`."""

        def op(conn: sqlite3.Connection) -> JournalEntry:
            entry = self._load(conn, key)
            new = _apply_outcome(
                entry,
                outcome,
                now=self._wall(),
                result_url=result_url,
                media_id=media_id,
                message=message,
            )
            if new is None:
                return entry
            conn.execute(
                "UPDATE entries SET outcome = ?, outcome_at = ?, updated_at = ?, result_url = ?,"
                " media_id = ?, outcome_message = ? WHERE key = ?",
                (
                    outcome.value,
                    new.outcome_at,
                    new.updated_at,
                    new.result_url,
                    new.media_id,
                    new.outcome_message,
                    key,
                ),
            )
            return new

        return await self._call(op, durable=False)

    async def query(
        self,
        *,
        state: SubmissionState | None = None,
        provider: str | None = None,
        job_id: str | None = None,
        unfinished: bool | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """See :meth:`Journal.query`."""
        clauses: list[str] = []
        args: list[Any] = []
        if state is not None:
            clauses.append("state = ?")
            args.append(state.value)
        if provider is not None:
            clauses.append("provider = ?")
            args.append(provider)
        if job_id is not None:
            clauses.append("job_id = ?")
            args.append(job_id)
        if unfinished is not None:
            cond = "(state = 'accepted' AND (outcome IS NULL OR outcome = 'timed_out'))"
            clauses.append(cond if unfinished else f"NOT {cond}")
        sql = _SELECT
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY created_at, key"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)

        def op(conn: sqlite3.Connection) -> list[JournalEntry]:
            return [_from_row(r) for r in conn.execute(sql, args).fetchall()]

        return await self._call(op, durable=False)

    async def claim(
        self, owner: str, *, lease_seconds: float, limit: int | None = None
    ) -> list[JournalEntry]:
        """See :meth:`Journal.claim`."""

        def op(conn: sqlite3.Connection) -> list[JournalEntry]:
            now = self._wall()
            until = now + lease_seconds
            sql = (
                f"{_SELECT} WHERE state = 'accepted' AND (outcome IS NULL OR outcome = 'timed_out')"
                " AND (owner IS NULL OR owner = ? OR lease_until < ?) ORDER BY created_at, key"
            )
            args: list[Any] = [owner, now]
            if limit is not None:
                sql += " LIMIT ?"
                args.append(limit)
            rows = [_from_row(r) for r in conn.execute(sql, args).fetchall()]
            conn.executemany(
                "UPDATE entries SET owner = ?, lease_until = ? WHERE key = ?",
                [(owner, until, e.key) for e in rows],
            )
            return [attrs.evolve(e, owner=owner, lease_until=until) for e in rows]

        return await self._call(op, durable=False)

    async def release(self, owner: str, keys: Sequence[str]) -> None:
        """See :meth:`Journal.release`."""
        keys = list(keys)

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE entries SET owner = NULL, lease_until = NULL WHERE key = ? AND owner = ?",
                [(k, owner) for k in keys],
            )

        await self._call(op, durable=False)

    async def mark_interrupted(self, owner: str) -> list[JournalEntry]:
        """See :meth:`Journal.mark_interrupted`."""

        def op(conn: sqlite3.Connection) -> list[JournalEntry]:
            now = self._wall()
            rows = conn.execute(
                f"{_SELECT} WHERE state = 'sending'"
                " AND (owner IS NULL OR (owner != ? AND (lease_until IS NULL OR lease_until < ?)))"
                " ORDER BY created_at, key",
                (owner, now),
            ).fetchall()
            changed = []
            for row in rows:
                new = _to_interrupted(_from_row(row), now)
                conn.execute(_UPDATE_TRANSITION, _transition_row(new))
                changed.append(new)
            return changed

        return await self._call(op, durable=True)

    def stats(self) -> Mapping[str, int]:
        """
        Counters since open: ``ops`` (operations run), ``commits``
        (transactions), ``durable_commits`` (those with ``synchronous=FULL``,
        i.e. an fsync of the WAL), ``max_batch`` (largest group commit).
        """
        return dict(self._stats)


def _migrate(conn: sqlite3.Connection, now: float) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise InvalidInput(
            field="journal schema version",
            value=current,
            expected=f"<= {SCHEMA_VERSION} (written by a newer aivideo_async; upgrade it)",
        )
    for version, description, statements in _MIGRATIONS:
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                (version, description, now),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _take_file_lock(path: Path) -> int | None:
    if sys.platform == "win32":  # pragma: no cover - no flock; SQLite's own locking remains
        return None
    import fcntl

    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise InvalidInput(
            field="path",
            value=str(path),
            expected="a journal no other process (or SQLiteJournal) has open; "
            "an SQLite journal is single-process (share a PostgreSQL journal instead)",
        ) from None
    return fd
