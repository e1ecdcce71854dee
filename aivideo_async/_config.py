"""
Frozen, validated configuration values and their defaults.

Each ``DEFAULT_*`` value comes with the reason it was chosen (PEERS.md §(c)).
Override per client or per call with :func:`attrs.evolve`.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from ._exceptions import InvalidInput

__all__ = [
    "Timeouts",
    "Limits",
    "RetryPolicy",
    "PollPolicy",
    "DEFAULT_TIMEOUTS",
    "DEFAULT_CREATE_TIMEOUTS",
    "DEFAULT_LIMITS",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_POLL_POLICY",
    "DEFAULT_IMAGE_POLL_POLICY",
]


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInput(
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
            expected="a positive number",
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
            expected="a finite number",
        )


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise InvalidInput(
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
            expected="a number >= 0",
        )


def _at_least_one(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
            expected="an integer >= 1",
        )


@attrs.frozen(kw_only=True)
class Timeouts:
    """
    HTTP timeouts in seconds.

    Attributes:
        connect: to get a connection (pool wait included); a failure here is "not sent".
        read: longest silence between two chunks of the response.
        total: deadline for the whole exchange; the only guard against a
            trickling body (RELIABILITY #5). ``None`` disables it.

    Example:
        >>> Timeouts(connect=5, read=30, total=60)
        Timeouts(connect=5, read=30, total=60)
        >>> Timeouts(connect=-1)
        Traceback (most recent call last):
        ...
        aivideo_async._exceptions.InvalidInput: Timeouts.connect: got -1, expected a positive number
    """

    connect: float = attrs.field(default=5.0, validator=_positive)
    read: float = attrs.field(default=30.0, validator=_positive)
    total: float | None = attrs.field(default=120.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.total is not None and self.total < self.connect:
            raise InvalidInput(
                field="Timeouts.total",
                value=self.total,
                expected=f"None or >= connect ({self.connect})",
            )


@attrs.frozen(kw_only=True)
class Limits:
    """
    Connection-pool and response-size limits.

    Attributes:
        connections: pooled connections in all.
        per_host: pooled connections per host.
        max_response_bytes: cap on a JSON response body (RELIABILITY #22).
        max_download_bytes: cap on a downloaded file (RELIABILITY #37).

    Example:
        >>> Limits(connections=10, per_host=5).per_host
        5
    """

    connections: int = attrs.field(default=100, validator=_at_least_one)
    per_host: int = attrs.field(default=20, validator=_at_least_one)
    max_response_bytes: int = attrs.field(default=8 * 1024 * 1024, validator=_at_least_one)
    max_download_bytes: int = attrs.field(default=4 * 1024**3, validator=_at_least_one)

    def __attrs_post_init__(self) -> None:
        if self.per_host > self.connections:
            raise InvalidInput(
                field="Limits.per_host",
                value=self.per_host,
                expected=f"<= connections ({self.connections})",
            )


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """
    Retries of idempotent requests (GET, PUT to a presigned URL, DELETE).

    Non-idempotent calls (creates) are never retried, whatever this says.

    Attributes:
        attempts: tries in all, the first included.
        base: first backoff ceiling in seconds.
        cap: largest backoff ceiling in seconds.
        jitter: full jitter (uniform in [0, ceiling]) when true.
        retry_after_cap: the longest ``Retry-After`` honoured per request; a
            longer hint ends the retries and surfaces ``RateLimited``.
        budget: tokens in the shared retry bucket (AWS standard: 500).
        retry_cost: tokens one retry costs.
        timeout_cost: tokens one retry after a timeout costs.

    Example:
        >>> RetryPolicy(attempts=3).attempts
        3
    """

    attempts: int = attrs.field(default=6, validator=_at_least_one)
    base: float = attrs.field(default=0.5, validator=_positive)
    cap: float = attrs.field(default=30.0, validator=_positive)
    jitter: bool = True
    retry_after_cap: float = attrs.field(default=120.0, validator=_non_negative)
    budget: int = attrs.field(default=500, validator=_at_least_one)
    retry_cost: int = attrs.field(default=5, validator=_at_least_one)
    timeout_cost: int = attrs.field(default=10, validator=_at_least_one)

    def __attrs_post_init__(self) -> None:
        if self.cap < self.base:
            raise InvalidInput(
                field="RetryPolicy.cap", value=self.cap, expected=f">= base ({self.base})"
            )


@attrs.frozen(kw_only=True)
class PollPolicy:
    """
    How often a job is polled.

    The n-th delay ceiling is ``min(cap, initial * factor**n)``, drawn with full
    jitter; a progress estimate or a server hint may shorten or lengthen it.

    Attributes:
        initial: delay before the first poll, in seconds.
        factor: growth per poll.
        cap: largest delay between two polls.
        jitter: full jitter when true.
        deadline: seconds after submission before ``JobTimeout``; ``None``: none.
        stuck_after: seconds without any state or progress change before the
            job is reported stuck (a warning; the job keeps being polled).
        not_found_grace: seconds after create during which a 404 is read as
            "not visible yet" (RELIABILITY #27).

    Example:
        >>> PollPolicy(initial=1, cap=5).cap
        5
    """

    initial: float = attrs.field(default=2.0, validator=_positive)
    factor: float = attrs.field(default=1.5, validator=_positive)
    cap: float = attrs.field(default=15.0, validator=_positive)
    jitter: bool = True
    deadline: float | None = attrs.field(default=1800.0, validator=_positive)
    stuck_after: float | None = attrs.field(default=600.0, validator=_positive)
    not_found_grace: float = attrs.field(default=30.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.factor < 1:
            raise InvalidInput(field="PollPolicy.factor", value=self.factor, expected=">= 1")
        if self.cap < self.initial:
            raise InvalidInput(
                field="PollPolicy.cap", value=self.cap, expected=f">= initial ({self.initial})"
            )


DEFAULT_TIMEOUTS = Timeouts(connect=5.0, read=30.0, total=120.0)
"""Connect 5 s (Replicate, Runway, OpenAI all use 5 s); read 30 s (Replicate); 120 s overall."""

DEFAULT_CREATE_TIMEOUTS = Timeouts(connect=5.0, read=120.0, total=180.0)
"""Creates may take longer to answer; a timeout there is an unknown outcome, so be patient."""

DEFAULT_LIMITS = Limits(connections=100, per_host=20)
"""100 connections / 20 per host as the Stainless SDKs; 8 MiB JSON cap, 4 GiB per download."""

DEFAULT_RETRY_POLICY = RetryPolicy(attempts=6, base=0.5, cap=30.0, retry_after_cap=120.0)
"""6 tries (PEERS: 5-8 for GETs), 0.5 s doubling to 30 s, full jitter; Retry-After up to 120 s
(OpenAI); AWS's 500-token budget."""

DEFAULT_POLL_POLICY = PollPolicy(initial=2.0, factor=1.5, cap=15.0, deadline=1800.0)
"""Video jobs: 2 s x1.5 to 15 s with full jitter, 30 min deadline (PEERS §(c))."""

DEFAULT_IMAGE_POLL_POLICY = PollPolicy(initial=2.0, factor=1.5, cap=5.0, deadline=600.0)
"""Image jobs finish in seconds: cap 5 s, 10 min deadline."""
