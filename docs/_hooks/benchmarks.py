"""
MkDocs hook: show "not yet measured" for benchmark tables that do not exist yet.

The benchmarks page includes each table with a snippets line
(``--8<-- "docs/benchmarks/NAME.md"``). Snippets runs with ``check_paths``, so
a missing file would fail the strict build; this hook runs first (on the page's
Markdown) and replaces the include line of an absent table with a visible
note. Present tables are left to snippets untouched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# Only tables under docs/benchmarks/ may be absent; any other include must exist.
_INCLUDE = re.compile(
    r'^(?P<indent>[ \t]*)--8<--[ \t]+"(?P<path>docs/benchmarks/[^"]+\.md)"[ \t]*$'
)

NOT_MEASURED = "*Not yet measured: the table appears here once `{path}` is committed.*"


def replace_missing_includes(markdown: str, root: Path) -> str:
    """
    Return ``markdown`` with include lines of absent benchmark files replaced.

    Example:
        >>> replace_missing_includes('--8<-- "docs/benchmarks/none.md"', Path("/nonexistent"))
        '*Not yet measured: the table appears here once `docs/benchmarks/none.md` is committed.*'
    """
    out: list[str] = []
    for line in markdown.splitlines():
        match = _INCLUDE.match(line)
        if match and not (root / match["path"]).is_file():
            line = match["indent"] + NOT_MEASURED.format(path=match["path"])
        out.append(line)
    return "\n".join(out) + ("\n" if markdown.endswith("\n") else "")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    # Snippets resolves base_path "." against the working directory, which is the
    # repository root in CI and nox; that is also the folder holding mkdocs.yml.
    root = Path(config["config_file_path"]).resolve().parent
    return replace_missing_includes(markdown, root)
