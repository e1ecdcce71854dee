"""
Every case of the failure catalogue (RELIABILITY.md §8, #1-#40) is covered by
at least one named test: a test function whose name or docstring cites
"RELIABILITY #N". This makes coverage of the catalogue a CI fact.

Citations are read with :mod:`ast` (comments and module docstrings do not
count: a citation names the test that checks the case). Accepted forms:
``RELIABILITY #12``, ``RELIABILITY #13, #26``, ``RELIABILITY #2/#4``,
``RELIABILITY #34 and #36``, and a function name ending ``_reliability_2_4``.
A range (``#1-#12``) does not count: it names no single test.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

CASES = range(1, 41)

EXEMPT: Mapping[int, str] = {}
"""Cases with no test, each with a one-line reason (only when truly impossible)."""

TESTS = Path(__file__).resolve().parent

# "RELIABILITY" then one or more "#N" joined by ",", "/", "&" or "and"; a trailing
# "-N" / "-#N" marks a range, which cited_cases() refuses as a whole.
_CITATION = re.compile(r"RELIABILITY\s+(#\d+(?:\s*(?:,|/|&|\band\b)\s*#\d+)*)(\s*-\s*#?\d+)?")
_NAME = re.compile(r"reliability((?:_\d+)+)", re.IGNORECASE)


def cited_cases(text: str) -> set[int]:
    """
    The case numbers a test name or docstring cites.

    >>> sorted(cited_cases("RELIABILITY #13, #26: a day-long Retry-After"))
    [13, 26]
    >>> sorted(cited_cases("RELIABILITY #2/#4 and RELIABILITY #9"))
    [2, 4, 9]
    >>> cited_cases("RELIABILITY #1-#12 (a range names no single test)")
    set()
    >>> cited_cases("test_reliability_14_credits_breaker")
    {14}
    """
    found: set[int] = set()
    for match in _CITATION.finditer(text):
        if match.group(2):  # a range: too broad to name a test
            continue
        found.update(int(n) for n in re.findall(r"#(\d+)", match.group(1)))
    for group in _NAME.findall(text):
        found.update(int(n) for n in group.strip("_").split("_"))
    return found


def _test_functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            yield node


def citations() -> dict[int, list[str]]:
    """Case number -> ``path::function`` of every test citing it."""
    index: dict[int, list[str]] = {}
    for path in sorted(TESTS.rglob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for func in _test_functions(tree):
            text = f"{func.name}\n{ast.get_docstring(func) or ''}"
            for case in cited_cases(text):
                index.setdefault(case, []).append(
                    f"{path.relative_to(TESTS).as_posix()}::{func.name}"
                )
    return index


def test_every_catalogue_case_is_cited_by_a_named_test() -> None:
    """RELIABILITY.md §8 #1-#40: each case has a named test (or a reasoned exemption)."""
    index = citations()
    missing = [n for n in CASES if n not in index and n not in EXEMPT]
    assert not missing, f"RELIABILITY cases with no test citing them: {missing}"


def test_exemptions_are_real() -> None:
    """An exemption needs a reason, and is dropped once a test covers the case."""
    index = citations()
    for case, reason in EXEMPT.items():
        assert case in CASES
        assert reason.strip(), f"#{case} is exempt without a reason"
        assert case not in index, f"#{case} is exempt but covered by {index[case]}"


def test_no_citation_points_outside_the_catalogue() -> None:
    """A test citing #0 or #41 cites a case that does not exist (a typo)."""
    stray = {n: where for n, where in citations().items() if n not in CASES}
    assert not stray, stray


@pytest.mark.parametrize(
    ("text", "cases"),
    [
        ("RELIABILITY #7: TLS", {7}),
        ("RELIABILITY #34/#35/#39: resume", {34, 35, 39}),
        ("RELIABILITY #13 (HTTP-date form) and #32", {13}),
        ("RELIABILITY #24-#31", set()),
        ("RELIABILITY #5-8", set()),
        ("no citation #12", set()),
    ],
)
def test_citation_parsing(text: str, cases: set[int]) -> None:
    """The parser takes lists, refuses ranges and ignores a bare '#N'."""
    assert cited_cases(text) == cases
