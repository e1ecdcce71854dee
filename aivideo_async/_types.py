"""
Shared aliases, the ``NOT_GIVEN`` sentinel and the time seam.

Every component that waits or draws random numbers takes a :class:`Clock`, a
:data:`Sleep` and a :class:`RandomSource`, so tests run on a fake clock with no
real delay (STYLE #18).
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final, Literal, Protocol, TypeAlias, Union

import anyio

__all__ = [
    "JSON",
    "JSONObject",
    "NOT_GIVEN",
    "NotGiven",
    "Clock",
    "Sleep",
    "RandomSource",
    "monotonic_clock",
    "anyio_sleep",
    "system_random",
    "jitter_random",
]

JSON: TypeAlias = Union[None, bool, int, float, str, Sequence["JSON"], Mapping[str, "JSON"]]  # noqa: UP007
"""A JSON value as read from (or written to) the wire."""

JSONObject: TypeAlias = Mapping[str, JSON]
"""A JSON object."""


class NotGiven(enum.Enum):
    """
    The type of :data:`NOT_GIVEN`, distinct from ``None``.

    Example:
        >>> from aivideo_async._types import NOT_GIVEN
        >>> NOT_GIVEN is NOT_GIVEN
        True
    """

    NOT_GIVEN = "NOT_GIVEN"

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> Literal[False]:
        return False


NOT_GIVEN: Final = NotGiven.NOT_GIVEN
"""Marks an argument the caller did not pass, where ``None`` is a meaningful value."""


class Clock(Protocol):
    """A monotonic clock in seconds (``time.monotonic`` in production)."""

    def __call__(self) -> float: ...


Sleep: TypeAlias = Callable[[float], Awaitable[None]]
"""An async sleep in seconds (``anyio.sleep`` in production)."""


class RandomSource(Protocol):
    """The part of :class:`random.Random` the library uses: ``random()`` in [0, 1)."""

    def random(self) -> float: ...


def monotonic_clock() -> float:
    """Return ``time.monotonic()``; the production :class:`Clock`."""
    return time.monotonic()


async def anyio_sleep(seconds: float) -> None:
    """Sleep ``seconds`` through anyio; the production :data:`Sleep`."""
    await anyio.sleep(seconds)


system_random: Final[RandomSource] = random.SystemRandom()
"""An OS-backed :class:`RandomSource`, for draws that must not be predictable."""

jitter_random: Final[RandomSource] = random.Random()
"""The default :class:`RandomSource` for backoff and poll jitter: a Mersenne Twister seeded from
the OS. Jitter only has to spread clients apart, not be unpredictable, and ``SystemRandom`` reads
the OS on every draw (one per poll)."""
