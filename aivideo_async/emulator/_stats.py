"""
Accounting for the emulator: what it received and what it did.

The counters answer the questions reliability tests ask: how many creates
reached the provider (and was any create sent twice?), how many polls, how
many requests at once, which faults fired.

Example:
    >>> from aivideo_async.emulator._stats import Stats
    >>> s = Stats()
    >>> s.on_request("miraflow", "miraflow.create")
    >>> first = s.on_create("miraflow", b'{"prompt": "x"}', "/api/image/generate")
    >>> first == s.on_create("miraflow", b'{"prompt":"x"}', "/api/image/generate")
    True
    >>> s.duplicate_creates
    1
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

__all__ = ["Stats", "fingerprint"]


def fingerprint(path: str, body: bytes) -> str:
    """
    Return the sha256 hex digest of ``path`` plus the canonical form of ``body``.

    A JSON body is canonicalised (sorted keys, no whitespace) so two creates
    that differ only in formatting have the same fingerprint; any other body
    (multipart, empty) is hashed as sent. The path is part of the digest, so
    the same body sent to two models is two different creates.

    Example:
        >>> fingerprint("/a", b'{"b": 1, "a": 2}') == fingerprint("/a", b'{"a":2,"b":1}')
        True
        >>> fingerprint("/a", b"{}") == fingerprint("/b", b"{}")
        False
    """
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    digest.update(path.encode())
    digest.update(b"\n")
    digest.update(canonical)
    return digest.hexdigest()


class Stats:
    """
    Mutable counters; :meth:`snapshot` renders them as the stats JSON.

    Example:
        >>> s = Stats()
        >>> s.on_poll("aivideomaker")
        >>> s.snapshot({})["polls"]
        {'aivideomaker': 1}
    """

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.requests_by_endpoint: Counter[str] = Counter()
        self.creates: Counter[str] = Counter()
        self.creates_by_fingerprint: Counter[str] = Counter()
        self.duplicate_creates = 0
        self.polls: Counter[str] = Counter()
        self.faults_fired: Counter[str] = Counter()
        self.webhooks: Counter[str] = Counter()
        self.concurrent = 0
        self.max_concurrent_requests = 0

    def on_request(self, provider: str, endpoint: str) -> None:
        """Count one request to ``endpoint`` (an endpoint class) of ``provider``."""
        self.requests[provider] += 1
        self.requests_by_endpoint[endpoint] += 1

    def on_create(self, provider: str, body: bytes, path: str) -> str:
        """Count one committed create and return its fingerprint."""
        fp = fingerprint(path, body)
        self.creates[provider] += 1
        if self.creates_by_fingerprint[fp]:
            self.duplicate_creates += 1
        self.creates_by_fingerprint[fp] += 1
        return fp

    def on_poll(self, provider: str) -> None:
        """Count one status poll."""
        self.polls[provider] += 1

    def on_fault(self, kind: str) -> None:
        """Count one fault that fired."""
        self.faults_fired[kind] += 1

    def snapshot(self, jobs: dict[str, dict[str, int]], *, brief: bool = False) -> dict[str, Any]:
        """
        Return the stats JSON object; ``jobs`` is provider -> state -> count.

        ``duplicate_fingerprints`` lists only the fingerprints created more than
        once; ``brief`` leaves out ``creates_by_fingerprint`` (one entry per
        distinct create: large after 100k jobs).
        """
        out: dict[str, Any] = {
            "requests": dict(self.requests),
            "requests_by_endpoint": dict(self.requests_by_endpoint),
            "creates": dict(self.creates),
        }
        if not brief:
            out["creates_by_fingerprint"] = dict(self.creates_by_fingerprint)
        dupes = {fp: n for fp, n in self.creates_by_fingerprint.items() if n > 1}
        return out | {
            "duplicate_creates": self.duplicate_creates,
            "duplicate_fingerprints": dupes,
            "polls": dict(self.polls),
            "concurrent_requests": self.concurrent,
            "max_concurrent_requests": self.max_concurrent_requests,
            "jobs": jobs,
            "faults_fired": dict(self.faults_fired),
            "webhooks": dict(self.webhooks),
        }
