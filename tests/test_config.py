"""Configuration values are frozen and validated; bad input names field, value and expectation."""

from __future__ import annotations

import attrs
import pytest

from aivideo_async import (
    DEFAULT_LIMITS,
    DEFAULT_POLL_POLICY,
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEOUTS,
    InvalidInput,
    Limits,
    PollPolicy,
    RetryPolicy,
    Timeouts,
)


def test_defaults_match_the_documented_choices() -> None:
    assert (DEFAULT_TIMEOUTS.connect, DEFAULT_TIMEOUTS.read) == (5.0, 30.0)
    assert (DEFAULT_POLL_POLICY.initial, DEFAULT_POLL_POLICY.factor) == (2.0, 1.5)
    assert DEFAULT_POLL_POLICY.cap == 15.0
    assert DEFAULT_RETRY_POLICY.retry_after_cap == 120.0
    assert DEFAULT_LIMITS.per_host <= DEFAULT_LIMITS.connections


def test_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        DEFAULT_TIMEOUTS.connect = 1  # type: ignore[misc]


def test_evolve_revalidates() -> None:
    assert attrs.evolve(DEFAULT_TIMEOUTS, read=2.0).read == 2.0
    with pytest.raises(InvalidInput):
        attrs.evolve(DEFAULT_TIMEOUTS, read=0)


@pytest.mark.parametrize(
    ("factory", "field", "value"),
    [
        (lambda: Timeouts(connect=0), "Timeouts.connect", 0),
        (lambda: Timeouts(read=float("inf")), "Timeouts.read", float("inf")),
        (lambda: Timeouts(connect=10, total=5), "Timeouts.total", 5),
        (lambda: Limits(connections=0), "Limits.connections", 0),
        (lambda: Limits(connections=5, per_host=10), "Limits.per_host", 10),
        (lambda: RetryPolicy(attempts=0), "RetryPolicy.attempts", 0),
        (lambda: RetryPolicy(base=2, cap=1), "RetryPolicy.cap", 1),
        (lambda: PollPolicy(factor=0.5), "PollPolicy.factor", 0.5),
        (lambda: PollPolicy(initial=10, cap=5), "PollPolicy.cap", 5),
        (lambda: PollPolicy(deadline=-1), "PollPolicy.deadline", -1),
    ],
)
def test_bad_values_name_field_value_and_expectation(
    factory: object, field: str, value: object
) -> None:
    with pytest.raises(InvalidInput) as info:
        factory()  # type: ignore[operator]
    assert info.value.field == field
    assert info.value.value == value or (value != value)  # NaN-safe
    assert field in str(info.value)
    assert info.value.expected
    assert isinstance(info.value, ValueError)


def test_bool_is_not_a_number() -> None:
    with pytest.raises(InvalidInput):
        Timeouts(connect=True)
