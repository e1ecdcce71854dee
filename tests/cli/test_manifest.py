"""Manifest lines are validated with line numbers before anything is submitted (issue 7)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from aivideo_async.cli._manifest import parse_manifest

KINDS = {"miraflow": ["image", "video"], "aivideomaker": ["t2v"]}


def _line(**obj: object) -> str:
    return json.dumps(obj)


def test_valid_lines_parse_in_order() -> None:
    ok, bad = parse_manifest(
        [
            _line(provider="miraflow", kind="image", params={"prompt": "a"}, key="k1"),
            "",
            "# a comment",
            _line(provider="aivideomaker", kind="t2v", key="k2"),
        ],
        kinds=KINDS,
    )
    assert bad == []
    assert [(line.line, line.key, dict(line.params)) for line in ok] == [
        (1, "k1", {"prompt": "a"}),
        (4, "k2", {}),
    ]


def test_every_problem_is_reported_with_its_line_number() -> None:
    ok, bad = parse_manifest(
        [
            "{not json",
            "[1, 2]",
            _line(provider="miraflow", kind="image", key="k"),
            _line(provider="miraflow", kind="image", key="k"),
            _line(provider="pika", kind="image", key="x"),
            _line(provider="miraflow", kind="song", key="y"),
            _line(provider="miraflow", kind="image", params=[1], key="z"),
            _line(provider="miraflow", kind="image", key=""),
            _line(provider="miraflow", kind="image", key="w", extra=1),
            _line(provider="miraflow", kind="image", key="v" * 300),
        ],
        kinds=KINDS,
    )
    assert [line.key for line in ok] == ["k"]
    reasons = {p.line: p.reason for p in bad}
    assert reasons[1].startswith("not valid JSON")
    assert reasons[2] == "expected a JSON object, got an array"
    assert reasons[4] == "key 'k' already used on line 3"
    assert reasons[5] == "provider: got 'pika', expected one of aivideomaker, miraflow"
    assert reasons[6] == "kind: got 'song', expected one of image, video for miraflow"
    assert reasons[7] == "params: got an array, expected a JSON object"
    assert reasons[8] == "key: got '', expected a non-empty string"
    assert "unknown field(s) extra" in reasons[9]
    assert reasons[10] == "key: 300 characters, expected at most 255"
    assert str(bad[0]).startswith("line 1: ")


@given(st.lists(st.text(max_size=40), max_size=20))
def test_arbitrary_text_never_raises(lines: list[str]) -> None:
    ok, bad = parse_manifest(lines, kinds=KINDS)
    assert len(ok) + len(bad) <= len(lines)
