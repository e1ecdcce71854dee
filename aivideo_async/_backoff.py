"""
Pure backoff arithmetic: full-jitter delays, ``Retry-After`` parsing and the
shared retry budget. No IO, no clock reads: time and randomness come in as
arguments (STYLE #17, #18).
"""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime

from ._types import RandomSource

__all__ = ["compute_delay", "parse_retry_after", "RetryBudget"]


def compute_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    factor: float = 2.0,
    jitter: bool = True,
    rng: RandomSource | None = None,
) -> float:
    """
    Return the delay before retry number ``attempt`` (0 for the first retry).

    The ceiling is ``min(cap, base * factor**attempt)``, computed without
    overflow for any ``attempt``; with ``jitter`` (full jitter, the AWS
    recommendation) the delay is uniform in ``[0, ceiling]``.

    Example:
        >>> compute_delay(3, base=0.5, cap=30.0, jitter=False)
        4.0
        >>> compute_delay(10_000, base=0.5, cap=30.0, jitter=False)
        30.0
    """
    if cap <= 0 or base <= 0:
        return 0.0
    attempt = max(0, attempt)
    if factor <= 1.0:
        ceiling = min(cap, base)
    else:
        try:
            ceiling = min(cap, base * factor**attempt)
        except OverflowError:  # huge attempt: the cap has long been reached
            ceiling = cap
    if not jitter:
        return ceiling
    if rng is None:
        raise ValueError("rng is required when jitter=True")
    return min(ceiling, max(0.0, rng.random() * ceiling))


def parse_retry_after(
    value: str | None,
    *,
    date_header: str | None = None,
    now: datetime | None = None,
    cap: float = 120.0,
) -> float | None:
    """
    Parse a ``Retry-After`` header value into seconds, clamped to ``[0, cap]``.

    Both RFC 9110 forms are read: delay-seconds (``"120"``) and an HTTP-date.
    A date is measured against the response's own ``Date`` header when given
    (so a skewed local clock does not matter, RELIABILITY #32), else against
    ``now`` (UTC). A past date or a negative number gives 0; garbage gives
    ``None`` (the caller's default applies; RELIABILITY #13).

    Example:
        >>> parse_retry_after("7")
        7.0
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT",
        ...                   date_header="Wed, 21 Oct 2015 07:28:00 GMT")
        30.0
        >>> parse_retry_after("soon") is None
        True
        >>> parse_retry_after("86400", cap=120.0)
        120.0
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    seconds: float | None = None
    if text.lstrip("+-").isdigit() and text.isascii():
        seconds = float(int(text))
    else:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            seconds = number
        else:
            target = _parse_http_date(text)
            if target is None:
                return None
            reference = _parse_http_date(date_header) if date_header else None
            if reference is None:
                reference = now if now is not None else datetime.now(UTC)
            seconds = (target - reference).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), max(cap, 0.0))


def _parse_http_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


class RetryBudget:
    """
    A token bucket shared by every request to one host (AWS standard mode).

    A retry costs ``retry_cost`` tokens (``timeout_cost`` after a timeout); a
    success refunds ``success_refund``. When the bucket cannot pay, callers fail
    fast instead of retrying: a server that is down is not hammered
    (RELIABILITY #24, #31).

    Example:
        >>> budget = RetryBudget(capacity=10, retry_cost=5)
        >>> budget.try_acquire(), budget.try_acquire(), budget.try_acquire()
        (True, True, False)
        >>> budget.record_success(); budget.tokens
        1
    """

    __slots__ = ("capacity", "retry_cost", "success_refund", "timeout_cost", "tokens")

    def __init__(
        self,
        *,
        capacity: int = 500,
        retry_cost: int = 5,
        timeout_cost: int = 10,
        success_refund: int = 1,
    ) -> None:
        self.capacity = capacity
        self.retry_cost = retry_cost
        self.timeout_cost = timeout_cost
        self.success_refund = success_refund
        self.tokens = capacity

    def try_acquire(self, *, timeout: bool = False) -> bool:
        """Take the cost of one retry; return ``False`` (and take nothing) when empty."""
        cost = self.timeout_cost if timeout else self.retry_cost
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def record_success(self) -> None:
        """Refund ``success_refund`` tokens, up to ``capacity``."""
        self.tokens = min(self.capacity, self.tokens + self.success_refund)

    def __repr__(self) -> str:
        return f"RetryBudget(tokens={self.tokens}/{self.capacity})"
