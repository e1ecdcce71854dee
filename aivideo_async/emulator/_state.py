"""
The emulator's configuration, clock, job model, accounts and id generators.

Jobs cost nothing while they run: a job stores when it started, how long it
takes and how it will end (all drawn from a seeded RNG at create time), and its
state is computed from the emulator clock whenever someone asks. No task runs
per job, so 100k jobs are 100k small objects.

Example:
    >>> from aivideo_async.emulator._state import EmulatorConfig, Job
    >>> job = Job("j1", "miraflow", "video", "key", created=0.0, duration=10.0, fails=False)
    >>> job.phase(1.0), job.phase(5.0), job.phase(10.0)
    ('queued', 'running', 'succeeded')
    >>> job.fraction(5.0)
    0.5
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import random
import string
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import attrs

from ._faults import FaultEngine, FaultRule
from ._stats import Stats

__all__ = ["Account", "EmulatorConfig", "EmulatorState", "IdSource", "Job", "Phase"]

Phase = Literal["queued", "running", "succeeded", "failed", "cancelled"]

# The share of a job's duration spent queued before it reports progress.
QUEUED_SHARE = 0.2


def _check_duration(_inst: object, _attr: object, value: tuple[float, float]) -> None:
    lo, hi = value
    if not (0 <= lo <= hi):
        raise ValueError(f"job_duration must be (low, high) with 0 <= low <= high, got {value!r}")


def _check_positive(_inst: object, attr: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attr.name} must be > 0, got {value!r}")


def _check_rate(_inst: object, _attr: object, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"failure_rate must be in [0, 1], got {value!r}")


def _to_keys(value: Mapping[str, Any] | None) -> Mapping[str, frozenset[str]] | None:
    if value is None:
        return None
    return {provider: frozenset(keys) for provider, keys in value.items()}


def _to_duration(value: Iterable[float]) -> tuple[float, float]:
    lo, hi = value
    return float(lo), float(hi)


def _to_rules(value: Iterable[FaultRule]) -> tuple[FaultRule, ...]:
    rules = tuple(value)
    for rule in rules:
        if not isinstance(rule, FaultRule):
            raise TypeError(f"faults must hold FaultRule objects, got {type(rule).__name__}")
    return rules


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """
    How an emulator behaves; every field has a test-friendly default.

    Args:
        seed: seeds every random choice (ids, durations, outcomes, faults).
        time_scale: multiplies job durations (and SSE pacing); ``0.05`` for
            fast tests, ``100`` for a demo where jobs take about a minute.
        job_duration: ``(low, high)`` seconds before ``time_scale``; each job
            draws its duration uniformly from this range.
        failure_rate: the share of jobs that end failed.
        initial_credits: credits of every API key / NemoVideo user on first use.
        api_keys: provider -> accepted keys (NemoVideo: accepted bearer tokens
            besides the anonymous ones it issues); ``None`` accepts any
            non-empty key.
        aivideomaker_query_limit: AIVideoMaker GET queries per minute per key
            before a 429 with ``Retry-After``; ``0`` disables the limit.
        faults: fault rules active from the start (see ``_faults``).
        nemovideo_token_limit: enforce NemoVideo's one anonymous token per
            ``X-Client-Id`` per 7 days (429 with ``Retry-After``) while the
            previous token is still valid; off by default.
        sse_heartbeat_interval: seconds (before ``time_scale``) between
            heartbeats while a NemoVideo turn works; never more than 15 s real.
        upload_max_bytes: the largest upload accepted (Miraflow media and
            NemoVideo files; NemoVideo answers 4002 beyond it).
        download_url_ttl: lifetime in seconds of signed download URLs.
        upload_url_ttl: lifetime in seconds of presigned upload URLs.
        host: the interface to bind.
        port: the port to bind; ``0`` picks a free one.

    Example:
        >>> EmulatorConfig(seed=7, time_scale=0.05).job_duration
        (0.2, 0.6)
        >>> EmulatorConfig(failure_rate=2)
        Traceback (most recent call last):
        ...
        ValueError: failure_rate must be in [0, 1], got 2
    """

    seed: int = 0
    time_scale: float = attrs.field(default=1.0, validator=_check_positive)
    job_duration: tuple[float, float] = attrs.field(
        default=(0.2, 0.6), converter=_to_duration, validator=_check_duration
    )
    failure_rate: float = attrs.field(default=0.0, validator=_check_rate)
    initial_credits: int = 1_000_000
    api_keys: Mapping[str, frozenset[str]] | None = attrs.field(default=None, converter=_to_keys)
    aivideomaker_query_limit: int = 60
    faults: Sequence[FaultRule] = attrs.field(default=(), converter=_to_rules)
    nemovideo_token_limit: bool = False
    sse_heartbeat_interval: float = attrs.field(default=0.25, validator=_check_positive)
    upload_max_bytes: int = 50 * 1024 * 1024
    download_url_ttl: float = 24 * 3600.0
    upload_url_ttl: float = 900.0
    host: str = "127.0.0.1"
    port: int = 0


class Job:
    """
    One provider job, computed lazily from the emulator clock.

    Args:
        job_id: the provider-visible id.
        provider: ``miraflow``, ``nemovideo`` or ``aivideomaker``.
        kind: ``video``, ``image``, ``render`` or the AIVideoMaker model.
        key: the API key (or NemoVideo user) that owns it.
        created: emulator clock time of the create.
        duration: seconds from create to the end state.
        fails: whether it ends failed.

    Example:
        >>> j = Job("j", "aivideomaker", "t2v", "k", created=0.0, duration=2.0, fails=True)
        >>> j.phase(3.0)
        'failed'
        >>> j.cancelled_at = 0.1
        >>> j.phase(3.0)
        'cancelled'
    """

    __slots__ = (
        "cancelled_at",
        "created",
        "data",
        "duration",
        "fails",
        "id",
        "key",
        "kind",
        "provider",
        "wall_created",
    )

    def __init__(
        self,
        job_id: str,
        provider: str,
        kind: str,
        key: str,
        *,
        created: float,
        duration: float,
        fails: bool,
        wall_created: float = 0.0,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.id = job_id
        self.provider = provider
        self.kind = kind
        self.key = key
        self.created = created
        self.duration = duration
        self.fails = fails
        self.wall_created = wall_created
        self.cancelled_at: float | None = None
        self.data: dict[str, Any] = data if data is not None else {}

    def phase(self, now: float) -> Phase:
        """Return the provider-neutral phase at emulator time ``now``."""
        if self.cancelled_at is not None:
            return "cancelled"
        elapsed = now - self.created
        if elapsed >= self.duration:
            return "failed" if self.fails else "succeeded"
        if elapsed < QUEUED_SHARE * self.duration:
            return "queued"
        return "running"

    def fraction(self, now: float) -> float:
        """Return the share of the work done at ``now``, in [0, 1]."""
        if self.duration <= 0:
            return 1.0
        return min(1.0, max(0.0, (now - self.created) / self.duration))

    def ends_at(self) -> float:
        """Return the emulator time at which the job reaches its end state."""
        return self.created + self.duration


class Account:
    """
    Credits of one API key or NemoVideo user, with holds settled lazily.

    A charge moves credits from ``available`` to ``frozen``; at the hold's due
    time the credits are spent, or given back when the job failed (AIVideoMaker
    refunds failed tasks).

    Example:
        >>> a = Account("k", 100)
        >>> a.charge(30, due=5.0, now=0.0)
        >>> a.balance(1.0)
        (70, 30)
        >>> a.balance(6.0)
        (70, 0)
    """

    __slots__ = ("_holds", "_seq", "credits", "frozen", "key")

    def __init__(self, key: str, credits: int) -> None:
        self.key = key
        self.credits = credits
        self.frozen = 0
        self._holds: list[tuple[float, int, int, Job | None]] = []
        self._seq = itertools.count()

    def charge(self, amount: int, *, due: float, now: float, job: Job | None = None) -> None:
        """Take ``amount`` now; settle it at ``due`` (refunded if ``job`` failed)."""
        self.settle(now)
        self.credits -= amount
        self.frozen += amount
        heapq.heappush(self._holds, (due, next(self._seq), amount, job))

    def settle(self, now: float) -> None:
        """Spend or refund every hold due by ``now``."""
        holds = self._holds
        while holds and holds[0][0] <= now:
            _due, _seq, amount, job = heapq.heappop(holds)
            if job is not None and job.data.get("refunded"):
                continue  # already given back at cancel time
            self.frozen -= amount
            if job is not None and job.phase(now) == "failed":
                self.credits += amount

    def refund(self, amount: int, job: Job) -> None:
        """Give ``amount`` back now (a cancel) and skip ``job``'s pending hold."""
        job.data["refunded"] = True
        self.credits += amount
        self.frozen -= amount

    def balance(self, now: float) -> tuple[int, int]:
        """Return ``(available, frozen)`` at ``now``."""
        self.settle(now)
        return self.credits, self.frozen


class IdSource:
    """
    Deterministic id generator: the same seed gives the same id sequence.

    Example:
        >>> IdSource(1).cuid("cm") == IdSource(1).cuid("cm")
        True
        >>> len(IdSource(1).cuid("cm"))
        25
    """

    _ALNUM = string.ascii_lowercase + string.digits
    _MIXED = string.ascii_letters + string.digits

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}:ids")

    def cuid(self, prefix: str) -> str:
        """A cuid-like id (``cm...``), 25 characters."""
        return prefix + "".join(self._rng.choices(self._ALNUM, k=25 - len(prefix)))

    def alnum(self, k: int) -> str:
        """``k`` random letters and digits."""
        return "".join(self._rng.choices(self._MIXED, k=k))

    def digits(self, k: int) -> str:
        """A ``k``-digit decimal string with no leading zero."""
        return str(self._rng.randint(10 ** (k - 1), 10**k - 1))

    def hex(self, k: int) -> str:
        """``k`` lowercase hex digits."""
        return "".join(self._rng.choices("0123456789abcdef", k=k))

    def uuid(self) -> str:
        """A uuid4-shaped string."""
        h = self.hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:]}"


class EmulatorState:
    """
    Everything one running emulator knows; shared by every route module.

    Example:
        >>> st = EmulatorState(EmulatorConfig(seed=3))
        >>> st.draw_job(now=0.0)[1]
        False
    """

    def __init__(self, config: EmulatorConfig, clock: Callable[[], float] | None = None) -> None:
        self.config = config
        self._clock = clock
        self._offset = 0.0
        self.closing = asyncio.Event()
        # Set whenever a handler starts waiting (latency, stall, stream pacing): tests
        # synchronise on it instead of sleeping.
        self.sleep_started = asyncio.Event()
        self.wake = asyncio.Event()  # the clock moved or a webhook was queued
        self.signing_key = hashlib.sha256(f"aivideo-emulator:{config.seed}".encode()).digest()
        self.reset()

    def reset(self) -> None:
        """Forget every job, account, session and counter; reseed every RNG."""
        seed = self.config.seed
        self.ids = IdSource(seed)
        self.job_rng = random.Random(f"{seed}:jobs")
        self.sse_rng = random.Random(f"{seed}:sse")
        self.stats = Stats()
        self.faults = FaultEngine(seed, self.config.faults, self.stats)
        self.accounts: dict[str, Account] = {}
        self.jobs: dict[str, dict[str, Job]] = {"miraflow": {}, "nemovideo": {}, "aivideomaker": {}}
        self.aliases: dict[str, str] = {}  # Miraflow videoId -> jobId
        self.media: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.client_users: dict[str, str] = {}
        self.sessions: dict[str, Any] = {}
        self.query_windows: dict[str, Any] = {}
        self.webhooks: list[tuple[float, int, str]] = []
        self._wall0 = time.time() - self.now()

    # -- clock -------------------------------------------------------------------------------
    def now(self) -> float:
        """The emulator clock: the loop's monotonic time plus any :meth:`advance`."""
        if self._clock is not None:
            return self._clock() + self._offset
        try:
            base = asyncio.get_running_loop().time()
        except RuntimeError:
            base = time.monotonic()
        return base + self._offset

    def advance(self, seconds: float) -> None:
        """Move the emulator clock forward (jobs finish, URLs expire) without waiting."""
        if seconds < 0:
            raise ValueError(f"advance() needs seconds >= 0, got {seconds!r}")
        self._offset += seconds
        self.wake.set()

    def wall(self, now: float | None = None) -> float:
        """Epoch seconds that move with the emulator clock (for createdAt, URL dates)."""
        return self._wall0 + (self.now() if now is None else now)

    def iso(self, now: float | None = None) -> str:
        """ISO-8601 UTC timestamp with milliseconds, e.g. ``2026-03-19T08:00:00.000Z``."""
        dt = datetime.fromtimestamp(self.wall(now), UTC)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"

    # -- jobs and accounts -------------------------------------------------------------------
    def draw_job(self, now: float, scale: float = 1.0) -> tuple[float, bool]:
        """Draw ``(duration, fails)`` for a new job from the seeded job RNG."""
        lo, hi = self.config.job_duration
        duration = self.job_rng.uniform(lo, hi) * scale * self.config.time_scale
        fails = self.job_rng.random() < self.config.failure_rate
        return duration, fails

    def account(self, provider: str, key: str) -> Account:
        """The account of ``key`` at ``provider``, with the initial credits on first use."""
        name = f"{provider}:{key}"
        acct = self.accounts.get(name)
        if acct is None:
            acct = self.accounts[name] = Account(key, self.config.initial_credits)
        return acct

    def expire_token(self, token: str) -> bool:
        """Expire a NemoVideo bearer token now (code 1001 from then on); False if unknown."""
        info = self.tokens.get(token)
        if info is None:
            return False
        info["expired"] = True
        return True

    def drop_session(self, session_id: str) -> bool:
        """Delete a NemoVideo session (code 1002 from then on); False if unknown."""
        return self.sessions.pop(session_id, None) is not None

    def key_accepted(self, provider: str, key: str | None) -> bool:
        """Whether ``key`` may call ``provider`` under the configured ``api_keys``."""
        if not key:
            return False
        keys = self.config.api_keys
        if keys is None:
            return True
        return key in keys.get(provider, frozenset())

    def job_counts(self) -> dict[str, dict[str, int]]:
        """provider -> provider status string -> number of jobs (for the stats)."""
        from ._status import status_of  # local: _status imports this module

        now = self.now()
        out: dict[str, dict[str, int]] = {}
        for provider, jobs in self.jobs.items():
            counts: dict[str, int] = {}
            for job in jobs.values():
                s = status_of(job, now)
                counts[s] = counts.get(s, 0) + 1
            out[provider] = counts
        return out

    def snapshot(self, *, brief: bool = False) -> dict[str, Any]:
        """The stats JSON (``brief``: without ``creates_by_fingerprint``)."""
        return self.stats.snapshot(self.job_counts(), brief=brief)

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return early (``False``) when the server shuts down."""
        if seconds <= 0:
            return True
        self.sleep_started.set()
        try:
            await asyncio.wait_for(self.closing.wait(), seconds)
        except TimeoutError:
            return True
        return False
