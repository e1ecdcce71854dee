"""
Parsing of ``aivideo batch`` manifests: JSON Lines, one job per line.

Each line is an object ``{"provider": ..., "kind": ..., "params": {...}, "key": ...}``. Every
problem is collected with its line number before anything is submitted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ["ManifestLine", "ManifestProblem", "parse_manifest"]

_FIELDS = frozenset({"provider", "kind", "params", "key"})
MAX_KEY_LENGTH = 255


@attrs.frozen(kw_only=True)
class ManifestLine:
    """
    One valid manifest line.

    Example:
        >>> ManifestLine(line=1, provider="miraflow", kind="image", params={}, key="a").key
        'a'
    """

    line: int
    provider: str
    kind: str
    params: Mapping[str, Any]
    key: str


@attrs.frozen(kw_only=True)
class ManifestProblem:
    """
    A manifest line that cannot be used, and why.

    Example:
        >>> str(ManifestProblem(line=3, reason="not JSON"))
        'line 3: not JSON'
    """

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def parse_manifest(
    lines: Iterable[str], *, kinds: Mapping[str, Iterable[str]]
) -> tuple[list[ManifestLine], list[ManifestProblem]]:
    """
    Parse manifest ``lines``; ``kinds`` maps each provider to the job kinds it accepts.

    Blank lines and lines starting with ``#`` are skipped. Returns the valid lines and every
    problem found (a bad line never hides the problems of later lines).

    Example:
        >>> ok, bad = parse_manifest(
        ...     ['{"provider": "miraflow", "kind": "image", "params": {"prompt": "x"}, "key": "a"}',
        ...      '{"provider": "nope", "kind": "image", "key": "b"}'],
        ...     kinds={"miraflow": ["image"]})
        >>> [line.key for line in ok], [str(p) for p in bad]
        (['a'], ["line 2: provider: got 'nope', expected one of miraflow"])
    """
    allowed = {provider: frozenset(values) for provider, values in kinds.items()}
    good: list[ManifestLine] = []
    problems: list[ManifestProblem] = []
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(ManifestProblem(line=number, reason=f"not valid JSON ({exc.msg})"))
            continue
        if not isinstance(obj, dict):
            problems.append(
                ManifestProblem(line=number, reason=f"expected a JSON object, got {_kind(obj)}")
            )
            continue
        reason = _check(obj, allowed)
        if reason is None:
            key = obj["key"]
            if key in first_seen:
                reason = f"key {key!r} already used on line {first_seen[key]}"
            else:
                first_seen[key] = number
        if reason is not None:
            problems.append(ManifestProblem(line=number, reason=reason))
            continue
        good.append(
            ManifestLine(
                line=number,
                provider=obj["provider"],
                kind=obj["kind"],
                params=dict(obj.get("params") or {}),
                key=obj["key"],
            )
        )
    return good, problems


def _check(obj: Mapping[str, Any], allowed: Mapping[str, frozenset[str]]) -> str | None:
    unknown = sorted(set(obj) - _FIELDS)
    if unknown:
        return f"unknown field(s) {', '.join(unknown)}; expected only {', '.join(sorted(_FIELDS))}"
    provider = obj.get("provider")
    if not isinstance(provider, str) or provider not in allowed:
        return f"provider: got {provider!r}, expected one of {', '.join(sorted(allowed))}"
    kind = obj.get("kind")
    if kind not in allowed[provider]:
        return (
            f"kind: got {kind!r}, expected one of {', '.join(sorted(allowed[provider]))} "
            f"for {provider}"
        )
    params = obj.get("params", {})
    if params is not None and not isinstance(params, dict):
        return f"params: got {_kind(params)}, expected a JSON object"
    key = obj.get("key")
    if not isinstance(key, str) or not key.strip():
        return f"key: got {key!r}, expected a non-empty string"
    if len(key) > MAX_KEY_LENGTH:
        return f"key: {len(key)} characters, expected at most {MAX_KEY_LENGTH}"
    return None


def _kind(value: object) -> str:
    return {
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)
