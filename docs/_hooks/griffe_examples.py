"""
Griffe extension: render the project's ``Example:`` docstring sections as examples.

The package's docstrings follow Napoleon (Google) style with an ``Example:``
section on every public name. Griffe's Google parser knows ``Examples:`` only;
it reads ``Example:`` as an admonition, so ``>>>`` lines would be rendered as
Markdown paragraphs (and a doctest output such as ``['a', 'b']`` after
``x["k"]`` as a broken cross-reference). This extension rewrites, before
parsing:

- ``Example:`` to ``Examples:`` (doctests then render as code);
- ``Example::`` followed by an indented literal block (the reST form the
  package uses for examples that need IO) to ``Examples:`` with that block in a
  fenced ``python`` code block.

Loaded by mkdocstrings (``extensions`` in mkdocs.yml); the code itself is not
changed.
"""

from __future__ import annotations

import re
from typing import Any

try:
    from griffe import Extension, Object
except ImportError:  # the test environment has no griffe; it tests normalise_examples only
    Extension = object
    Object = Any

_HEAD = re.compile(r"^(?P<indent>[ ]*)Examples?:(?P<literal>:?)[ \t]*$")


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def normalise_examples(text: str) -> str:
    """
    Return ``text`` with ``Example:``/``Example::`` sections rewritten for griffe.

    Example:
        >>> print(normalise_examples("Summary.\\n\\nExample::\\n\\n    await f()\\n"))
        Summary.
        <BLANKLINE>
        Examples:
            ```python
            await f()
            ```
    """
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _HEAD.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = match["indent"]
        if not match["literal"]:
            out.append(f"{indent}Examples:")
            i += 1
            continue
        # "Example::": the literal block is every following line indented deeper.
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        block: list[str] = []
        while j < len(lines) and (not lines[j].strip() or _indent_of(lines[j]) > len(indent)):
            block.append(lines[j])
            j += 1
        while block and not block[-1].strip():
            block.pop()
        if not block:
            out.append(lines[i])
            i += 1
            continue
        base = min(_indent_of(line) for line in block if line.strip())
        inner = indent + "    "
        out.append(f"{indent}Examples:")
        out.append(f"{inner}```python")
        out.extend(inner + line[base:] if line.strip() else "" for line in block)
        out.append(f"{inner}```")
        if j < len(lines):
            out.append("")
        i = j
    return "\n".join(out)


class ExampleSections(Extension):  # type: ignore[misc,valid-type]
    """Rewrite ``Example:`` sections of every loaded object's docstring (see the module)."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = normalise_examples(obj.docstring.value)
