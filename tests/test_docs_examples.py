"""
Every Python example in the documentation runs, so the docs cannot rot.

A small runner over the Markdown sources in ``docs/``: the fenced ``python``
blocks of a page are collected, then run in order in one fresh namespace per
page. Top-level ``await`` is allowed (the blocks are compiled with
``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT`` and run inside the test's event loop). When a
page's examples use ``BASE_URL``, the runner starts the provider emulator on
127.0.0.1 and puts its base URL there. A python block directly followed by a
``text title="Output"`` block must print exactly that text.

A block is skipped only when its title says so with a reason:
```` ```python title="not run: needs a real key" ````. Such blocks are counted
and listed by :func:`test_unrun_blocks_are_few_and_justified`.

The page tables the benchmark scripts write (``docs/benchmarks/``) are not
ours to run; the benchmarks page includes them.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import inspect
import io
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

import aivideo_async

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# Not pages with examples of ours: the build hook and the benchmark tables (other owners).
EXCLUDED_DIRS = ("_hooks", "benchmarks")

NOT_RUN_PREFIX = "not run:"
OUTPUT_TITLE = "Output"

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>.*)$")
_TITLE = re.compile(r'title="(?P<title>[^"]*)"')


@attrs.frozen
class Block:
    """One fenced code block of a Markdown page."""

    page: str
    line: int  # 1-based line of the opening fence
    language: str
    title: str | None
    source: str

    @property
    def is_python(self) -> bool:
        return self.language in {"python", "py"}

    @property
    def not_run_reason(self) -> str | None:
        if self.title is not None and self.title.lower().startswith(NOT_RUN_PREFIX):
            return self.title[len(NOT_RUN_PREFIX) :].strip()
        return None


@attrs.frozen
class Example:
    """A python block to run, and the output it must print (``None``: not checked)."""

    block: Block
    expected_output: str | None


def parse_blocks(text: str, page: str) -> list[Block]:
    """Return the fenced code blocks of ``text`` in order, de-indented to their fence."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE_OPEN.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"].strip()
        language = info.split(None, 1)[0].lstrip("{.").rstrip("}").lower() if info else ""
        title_match = _TITLE.search(info)
        body: list[str] = []
        j = i + 1
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        while j < len(lines) and not closing.match(lines[j]):
            body_line = lines[j]
            # Blocks nested in admonitions or tabs are indented like their fence.
            body.append(body_line[len(indent) :] if body_line.startswith(indent) else body_line)
            j += 1
        if j == len(lines):
            raise ValueError(f"{page}:{i + 1}: code fence {fence!r} is never closed")
        blocks.append(
            Block(
                page=page,
                line=i + 1,
                language=language,
                title=title_match["title"] if title_match else None,
                source="\n".join(body) + "\n",
            )
        )
        i = j + 1
    return blocks


def examples_of(blocks: list[Block]) -> list[Example]:
    """The python blocks to run, each paired with the ``Output`` block that follows it."""
    examples: list[Example] = []
    for index, block in enumerate(blocks):
        if not block.is_python or block.not_run_reason is not None:
            continue
        expected: str | None = None
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        if following is not None and following.title == OUTPUT_TITLE:
            expected = following.source
        examples.append(Example(block=block, expected_output=expected))
    return examples


def doc_pages() -> list[Path]:
    """Markdown pages under ``docs/`` that are ours to run."""
    return sorted(
        path for path in DOCS.rglob("*.md") if path.relative_to(DOCS).parts[0] not in EXCLUDED_DIRS
    )


def page_blocks(path: Path) -> list[Block]:
    return parse_blocks(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))


class ExampleFailed(AssertionError):
    """An example raised, or printed something other than its ``Output`` block."""


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


async def run_examples(examples: list[Example], namespace: dict[str, Any]) -> None:
    """Run ``examples`` in order in ``namespace``; raise :class:`ExampleFailed` naming the block."""
    for example in examples:
        block = example.block
        where = f"{block.page}:{block.line}"
        buffer = io.StringIO()
        try:
            code = compile(
                block.source, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
            )
            with contextlib.redirect_stdout(buffer):
                if code.co_flags & inspect.CO_COROUTINE:
                    await eval(code, namespace)
                else:
                    exec(code, namespace)
        except Exception as exc:
            raise ExampleFailed(f"the example at {where} raised {exc!r}") from exc
        if example.expected_output is not None:
            got, want = _normalise(buffer.getvalue()), _normalise(example.expected_output)
            if got != want:
                raise ExampleFailed(
                    f"the example at {where} printed:\n{got}\n"
                    f"--- but its Output block says:\n{want}"
                )


@contextlib.asynccontextmanager
async def emulator_base_url() -> AsyncIterator[str]:
    """Start the provider emulator on 127.0.0.1 with short job durations; yield its base URL."""
    # Imported by name so this file type-checks before the emulator lands on main.
    emulator_module: Any = importlib.import_module("aivideo_async.emulator")
    config = emulator_module.EmulatorConfig(seed=1, time_scale=0.05)
    async with emulator_module.run_emulator(config) as emulator:
        yield str(emulator.base_url)


def _uses_emulator(examples: list[Example]) -> bool:
    return any(re.search(r"\bBASE_URL\b", example.block.source) for example in examples)


PAGES_WITH_EXAMPLES = [
    pytest.param(path, id=str(path.relative_to(DOCS)))
    for path in doc_pages()
    if examples_of(page_blocks(path))
]


@pytest.mark.anyio
@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES)
async def test_page_examples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = examples_of(page_blocks(page))
    # Examples write journals and downloads relative to the working directory, and may set
    # or unset environment variables (keys): both are restored after the page.
    monkeypatch.chdir(tmp_path)
    saved_environ = dict(os.environ)
    namespace: dict[str, Any] = {"__name__": "__docs_example__"}
    try:
        if _uses_emulator(examples):
            async with emulator_base_url() as base_url:
                namespace["BASE_URL"] = base_url
                await run_examples(examples, namespace)
        else:
            await run_examples(examples, namespace)
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)


# ---------------------------------------------------------------------------
# The runner itself


SAMPLE = """\
# Page

```python
x = 1
```

!!! note
    ```python
    y = x + 1
    print(y)
    ```

    ```text title="Output"
    2
    ```

```python title="not run: needs a real key"
raise RuntimeError("never runs")
```

````markdown
```python
this is quoted Markdown, not code
```
````

```bash
echo shell blocks are shown, not run
```
"""


def test_parse_blocks_finds_nested_titled_and_quoted_blocks() -> None:
    blocks = parse_blocks(SAMPLE, "sample.md")
    assert [(b.language, b.line, b.title) for b in blocks] == [
        ("python", 3, None),
        ("python", 8, None),
        ("text", 13, "Output"),
        ("python", 17, "not run: needs a real key"),
        ("markdown", 21, None),
        ("bash", 27, None),
    ]
    assert blocks[1].source == "y = x + 1\nprint(y)\n"
    assert blocks[3].not_run_reason == "needs a real key"


def test_examples_pair_output_and_skip_not_run_blocks() -> None:
    examples = examples_of(parse_blocks(SAMPLE, "sample.md"))
    assert [e.block.line for e in examples] == [3, 8]
    assert [e.expected_output for e in examples] == [None, "2\n"]


def test_unclosed_fence_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"sample.md:1: code fence"):
        parse_blocks("```python\nx = 1\n", "sample.md")


@pytest.mark.anyio
async def test_runner_shares_a_namespace_and_allows_top_level_await() -> None:
    text = (
        "```python\nimport anyio\nawait anyio.sleep(0)\nvalue = 41\n```\n\n"
        "```python\nprint(value + 1)\n```\n\n"
        '```text title="Output"\n42\n```\n'
    )
    namespace: dict[str, Any] = {}
    await run_examples(examples_of(parse_blocks(text, "t.md")), namespace)
    assert namespace["value"] == 41


@pytest.mark.anyio
async def test_runner_names_the_failing_block() -> None:
    text = "```python\nx = 1\n```\n\n```python\nraise KeyError('boom')\n```\n"
    with pytest.raises(ExampleFailed, match=r"t\.md:5 raised KeyError"):
        await run_examples(examples_of(parse_blocks(text, "t.md")), {})


@pytest.mark.anyio
async def test_runner_rejects_output_that_differs() -> None:
    text = '```python\nprint("a")\n```\n\n```text title="Output"\nb\n```\n'
    with pytest.raises(ExampleFailed, match=r"t\.md:1 printed:\na\n--- but its Output"):
        await run_examples(examples_of(parse_blocks(text, "t.md")), {})


# Blocks intentionally not run, by page. Keep this list short; each needs a reason in its title.
ALLOWED_UNRUN: dict[str, int] = {}


def test_unrun_blocks_are_few_and_justified() -> None:
    unrun: dict[str, int] = {}
    for path in doc_pages():
        for block in page_blocks(path):
            if not block.is_python or block.title is None:
                continue
            if block.title.lower().startswith(NOT_RUN_PREFIX):
                assert block.not_run_reason, f"{block.page}:{block.line}: say why it is not run"
                name = str(path.relative_to(DOCS))
                unrun[name] = unrun.get(name, 0) + 1
    assert unrun == ALLOWED_UNRUN


def test_every_python_block_is_run_or_marked() -> None:
    # A typo in the marker ("not-run", "skip") would silently run or break; only the two
    # forms are allowed: no title, "Output"-style titles of other languages, or "not run: ...".
    for path in doc_pages():
        for block in page_blocks(path):
            if block.is_python and block.title is not None:
                assert block.not_run_reason is not None or not re.search(
                    r"skip|not.?run", block.title, re.IGNORECASE
                ), f"{block.page}:{block.line}: write the marker as 'not run: <reason>'"


# ---------------------------------------------------------------------------
# The API reference covers every public name

_DIRECTIVE = re.compile(r"^:::\s+(?P<target>[\w.]+)\s*$", re.MULTILINE)


def reference_targets() -> list[str]:
    targets: list[str] = []
    for path in sorted((DOCS / "reference").glob("*.md")):
        targets += [m["target"] for m in _DIRECTIVE.finditer(path.read_text(encoding="utf-8"))]
    return targets


def _resolve(target: str) -> object:
    module_name, _, attr = target.rpartition(".")
    module = importlib.import_module(module_name)
    if hasattr(module, attr):
        return getattr(module, attr)
    return importlib.import_module(target)  # a documented module, e.g. the pytest plugin


def test_every_public_name_appears_in_the_reference() -> None:
    # A name counts as documented when its own entry exists, or when the same object is
    # documented under a public subpackage (aivideo_async.jobs.Orchestrator before the root
    # re-export lands, say): the reader finds it either way.
    targets = reference_targets()
    documented_names = {t.removeprefix("aivideo_async.") for t in targets}
    documented_objects = [_resolve(t) for t in targets]
    missing = sorted(
        name
        for name in aivideo_async.__all__
        if name not in documented_names
        and not any(getattr(aivideo_async, name) is obj for obj in documented_objects)
    )
    assert missing == [], (
        f"add `::: aivideo_async.NAME` entries under docs/reference/ for {missing}"
    )


def test_reference_entries_name_existing_objects_once() -> None:
    targets = reference_targets()
    assert len(targets) == len(set(targets)), "a name is documented twice"
    objects = [_resolve(t) for t in targets]  # raises for a name that does not exist
    for target, obj in zip(targets, objects, strict=True):
        module_name, _, attr = target.rpartition(".")
        if module_name == "aivideo_async":
            assert attr in aivideo_async.__all__, f"{target} is not in aivideo_async.__all__"
        elif isinstance(obj, type) or (callable(obj) and not isinstance(obj, ModuleType)):
            # Documented under a subpackage: it must be public there too.
            assert attr in getattr(importlib.import_module(module_name), "__all__", ()), target


# ---------------------------------------------------------------------------
# The benchmarks page and its build hook


def _load_hook(name: str = "benchmarks") -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"docs_hook_{name}", DOCS / "_hooks" / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hook_replaces_only_absent_benchmark_tables(tmp_path: Path) -> None:
    hook = _load_hook()
    (tmp_path / "docs" / "benchmarks").mkdir(parents=True)
    (tmp_path / "docs" / "benchmarks" / "sse.md").write_text("| a |\n")
    page = (
        '## SSE\n--8<-- "docs/benchmarks/sse.md"\n'
        '## Journal\n    --8<-- "docs/benchmarks/journal.md"\n'
        '--8<-- "CHANGELOG.md"\n'
    )
    out = hook.replace_missing_includes(page, tmp_path)
    assert out == (
        '## SSE\n--8<-- "docs/benchmarks/sse.md"\n'
        "## Journal\n    *Not yet measured: the table appears here once "
        "`docs/benchmarks/journal.md` is committed.*\n"
        '--8<-- "CHANGELOG.md"\n'
    )


def test_benchmarks_page_includes_every_table() -> None:
    page = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    for table in sorted((DOCS / "benchmarks").glob("*.md")):
        include = f'--8<-- "docs/benchmarks/{table.name}"'
        assert include in page, f"docs/benchmarks.md does not include {table.name}"


# ---------------------------------------------------------------------------
# The griffe extension that renders "Example:" sections of the package's docstrings


def test_example_sections_become_examples_and_literal_blocks_become_fenced_code() -> None:
    normalise = _load_hook("griffe_examples").normalise_examples
    doc = (
        "Summary.\n\n"
        "Example:\n"
        "    >>> x = {'k': ['a', 'b']}\n"
        "    >>> x['k']\n"
        "    ['a', 'b']\n\n"
        "Args:\n"
        "    a: first.\n\n"
        "Example::\n\n"
        "    async with Client() as c:\n"
        "        await c.go()\n\n"
        "    print('done')\n\n"
        "Trailing text.\n"
        "Not an Example: heading."
    )
    assert normalise(doc) == (
        "Summary.\n\n"
        "Examples:\n"
        "    >>> x = {'k': ['a', 'b']}\n"
        "    >>> x['k']\n"
        "    ['a', 'b']\n\n"
        "Args:\n"
        "    a: first.\n\n"
        "Examples:\n"
        "    ```python\n"
        "    async with Client() as c:\n"
        "        await c.go()\n"
        "\n"
        "    print('done')\n"
        "    ```\n\n"
        "Trailing text.\n"
        "Not an Example: heading."
    )


def test_literal_example_without_a_block_is_left_alone() -> None:
    normalise = _load_hook("griffe_examples").normalise_examples
    assert normalise("Example::\nno block") == "Example::\nno block"


# ---------------------------------------------------------------------------
# The CLI page: exit codes and commands match the command line


def _cli_page() -> str:
    return (DOCS / "cli.md").read_text(encoding="utf-8")


def test_cli_exit_code_table_matches_the_command() -> None:
    from aivideo_async.cli._errors import ExitCode

    table = dict(re.findall(r"^\| `(\d+)` \| `([A-Z_]+)` \|", _cli_page(), re.MULTILINE))
    assert table == {str(int(code)): code.name for code in ExitCode}


def _cli_tree() -> tuple[Any, set[str]]:
    """The click group of ``aivideo`` and every option name it and the emulator accept."""
    import typer.main

    from aivideo_async.cli._commands import app  # every command registered
    from aivideo_async.emulator.__main__ import main as emulator_main

    root: Any = typer.main.get_command(app)
    options: set[str] = set()
    stack = [root]
    while stack:
        command = stack.pop()
        for param in command.params:
            options.update(param.opts + param.secondary_opts)
        stack.extend(getattr(command, "commands", {}).values())
    # `aivideo emulator` hands its arguments to the emulator's own parser.
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        emulator_main(["--help"])
    options.update(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", buffer.getvalue()))
    return root, options


def test_cli_page_has_a_section_for_every_command() -> None:
    root, _ = _cli_tree()
    page = _cli_page()
    for name in root.commands:
        assert f"`aivideo {name}" in page, f"docs/cli.md does not mention `aivideo {name}`"


def test_cli_page_names_only_commands_and_options_that_exist() -> None:
    root, options = _cli_tree()
    page = _cli_page()
    for flag in set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", page)):
        assert flag in options, f"docs/cli.md shows {flag}, which no aivideo command accepts"
    for first, second in re.findall(r"`aivideo ([a-z][a-z0-9-]*)(?: ([a-z][a-z0-9-]*))?", page):
        assert first in root.commands, f"docs/cli.md shows `aivideo {first}`, which does not exist"
        group = root.commands[first]
        if second and hasattr(group, "commands"):
            assert second in group.commands, f"`aivideo {first} {second}` does not exist"


def test_quickstart_shows_the_readme_commands() -> None:
    # The README's one-line commands (indented code lines) are the quickstart's commands.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^ {4}(python -m pip install .+)$", readme, re.MULTILINE)
    assert commands, "README.md shows no install command"
    quickstart = (DOCS / "quickstart.md").read_text(encoding="utf-8")
    for command in commands:
        if "'.[dev]'" in command:
            continue  # the development setup, not a quickstart step
        assert command in quickstart, f"docs/quickstart.md does not show {command!r}"
