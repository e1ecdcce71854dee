"""Pure backoff arithmetic (RELIABILITY #13, #26, #32)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from aivideo_async import RetryBudget, compute_delay, parse_retry_after


@given(
    attempt=st.integers(min_value=-5, max_value=10**9),
    base=st.floats(min_value=1e-6, max_value=1e6),
    cap=st.floats(min_value=1e-6, max_value=1e6),
    factor=st.floats(min_value=0.5, max_value=100.0),
    seed=st.integers(),
)
def test_delay_is_between_zero_and_cap(
    attempt: int, base: float, cap: float, factor: float, seed: int
) -> None:
    rng = random.Random(seed)
    delay = compute_delay(attempt, base=base, cap=cap, factor=factor, rng=rng)
    assert 0.0 <= delay <= cap


@given(attempt=st.integers(min_value=0, max_value=10**6))
def test_delay_without_jitter_is_capped_exponential(attempt: int) -> None:
    expected = min(30.0, 0.5 * 2.0**attempt) if attempt < 64 else 30.0
    assert compute_delay(attempt, base=0.5, cap=30.0, jitter=False) == expected


def test_full_jitter_spreads_over_the_whole_range() -> None:
    rng = random.Random(1)
    delays = [compute_delay(4, base=1.0, cap=100.0, rng=rng) for _ in range(2000)]
    assert min(delays) < 1.0
    assert max(delays) > 15.0
    assert all(0 <= d <= 16.0 for d in delays)


def test_delay_seconds_form() -> None:
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("17") == 17.0
    assert parse_retry_after(" 5 ") == 5.0


def test_negative_gives_zero() -> None:
    """RELIABILITY #13: negative -> 0."""
    assert parse_retry_after("-5") == 0.0


def test_garbage_gives_none() -> None:
    """RELIABILITY #13: garbage -> the caller's default."""
    for value in ["soon", "", "   ", "1e", "nan", "inf", "Thu, 99 Foo 2025"]:
        assert parse_retry_after(value) is None, value
    assert parse_retry_after(None) is None


def test_huge_value_is_clamped() -> None:
    """RELIABILITY #26: a Retry-After of a day is clamped."""
    assert parse_retry_after("86400", cap=120.0) == 120.0


def test_http_date_is_read_against_the_response_date_header() -> None:
    """RELIABILITY #32: an HTTP-date is read against the response Date, not the local clock."""
    server_now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    target = server_now + timedelta(seconds=45)
    value = format_datetime(target, usegmt=True)
    date_header = format_datetime(server_now, usegmt=True)
    # The local clock is a year off; the answer does not change.
    skewed = server_now + timedelta(days=365)
    assert parse_retry_after(value, date_header=date_header, now=skewed) == 45.0


def test_past_http_date_gives_zero() -> None:
    """RELIABILITY #13: a past date -> 0."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    past = format_datetime(now - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


@given(
    seconds=st.integers(min_value=-(10**12), max_value=10**12),
    cap=st.floats(min_value=0.0, max_value=1e6),
)
def test_hint_is_honoured_and_clamped(seconds: int, cap: float) -> None:
    parsed = parse_retry_after(str(seconds), cap=cap)
    assert parsed is not None
    assert parsed == min(max(float(seconds), 0.0), cap)


@given(offset=st.integers(min_value=-(10**6), max_value=10**6))
def test_http_date_hint_is_honoured_and_clamped(offset: int) -> None:
    server_now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    value = format_datetime(server_now + timedelta(seconds=offset), usegmt=True)
    parsed = parse_retry_after(value, date_header=format_datetime(server_now, usegmt=True), cap=600)
    assert parsed == min(max(float(offset), 0.0), 600.0)


@given(st.text())
def test_any_text_parses_or_gives_none(text: str) -> None:
    parsed = parse_retry_after(text, cap=300.0)
    assert parsed is None or 0.0 <= parsed <= 300.0


def test_retry_budget_drains_and_refunds() -> None:
    budget = RetryBudget(capacity=20, retry_cost=5, timeout_cost=10, success_refund=1)
    assert budget.try_acquire(timeout=True)
    assert budget.try_acquire()
    assert budget.try_acquire()
    assert budget.tokens == 0
    assert not budget.try_acquire()
    for _ in range(100):
        budget.record_success()
    assert budget.tokens == 20
