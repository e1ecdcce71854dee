"""
The flow every create command shares: preview, confirm, submit once, print the
job id, and with ``--wait`` follow the job (``--out`` downloads its result).

A create command only says what it will create (:class:`CreateRequest`); the
options that steer the flow (:class:`CreateOptions`) are added to its command
line by :func:`~aivideo_async.cli._options.with_options`::

    @miraflow_app.command("generate-image")
    @with_options
    def mf_generate_image(prompt: Prompt, out: Out = None, *, options: CreateOptions) -> None:
        create(CreateRequest(provider="miraflow", kind="image", ...), options)
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import anyio
import attrs
from rich.console import Console
from rich.text import Text

from ._api import JobError, JobHandle, JobResult, JobSpec, Orchestrator
from ._app import run_async
from ._clients import Clients, download_result, open_clients
from ._errors import ExitCode
from ._live import LiveView, Row, make_console
from ._options import BaseUrl, JournalPath, JsonOut, Key, Wait, Yes
from ._output import confirm_or_exit, emit_json, field_table

__all__ = ["CreateOptions", "CreateRequest", "create"]


@attrs.frozen(kw_only=True)
class CreateOptions:
    """
    The options of every create command, in the order ``--help`` lists them.

    Example:
        >>> CreateOptions(yes=True).wait
        False
    """

    base_url: BaseUrl = None
    yes: Yes = False
    wait: Wait = False
    json_output: JsonOut = False
    journal: JournalPath = None
    key: Key = None


@attrs.frozen(kw_only=True)
class CreateRequest:
    """
    A create command's job: what to show before asking, how to build the spec
    (it may upload first, so it runs only once confirmed), and where to save the
    result with ``--wait``.

    Example:
        >>> async def build(clients): ...
        >>> CreateRequest(provider="miraflow", kind="image", describe=[("prompt", "a fox")],
        ...               build=build).download is None
        True
    """

    provider: str
    kind: str
    describe: Sequence[tuple[str, str]]
    build: Callable[[Clients], Awaitable[JobSpec]]
    download: Path | None = None


def create(request: CreateRequest, options: CreateOptions) -> NoReturn:
    """
    Preview, confirm, then submit ``request`` once; exits with the command's code
    (``JOBS_FAILED`` when a followed job did not succeed).

    Example::

        create(CreateRequest(provider="nemovideo", kind="render", describe=[...],
                             build=build, download=out), options)
    """
    _preview(request, make_console(stderr=options.json_output))
    if not options.yes:
        confirm_or_exit(
            "Create it?",
            no_answer="no confirmation (pass --yes to create without asking); nothing was sent",
        )
    # A new key per run unless --key: running the command again is a new create,
    # while the same --key (with --journal) never creates twice.
    key = options.key or f"cli/{request.provider}/{uuid.uuid4().hex[:12]}"

    async def main() -> int:
        return await _submit(request, options, key)

    run_async(main)


def _preview(request: CreateRequest, console: Console) -> None:
    # With --json the preview goes to stderr: stdout carries only the JSON.
    console.print(f"about to create: {request.provider} {request.kind}", style="bold")
    console.print(field_table(request.describe, edge=True))


async def _submit(request: CreateRequest, options: CreateOptions, key: str) -> int:
    """Build the spec, submit it once under ``key``, follow it with ``--wait``; the exit code."""
    console = make_console()
    async with open_clients([request.provider], options.base_url) as clients:
        spec = await request.build(clients)
        async with Orchestrator(journal=options.journal, backends=clients.backends) as orch:
            handle = await orch.submit(spec, key=key)
            data = _announce(handle, console, json_output=options.json_output)
            if not options.wait:
                if options.json_output:
                    emit_json(data)
                return 0
            progress = make_console(stderr=True) if options.json_output else console
            data.update(await _follow(handle, request, clients, progress))
    _print_end(data, console, json_output=options.json_output)
    return int(ExitCode.OK if data["state"] == "succeeded" else ExitCode.JOBS_FAILED)


def _announce(handle: JobHandle, console: Console, *, json_output: bool) -> dict[str, Any]:
    """The job's identity, its id printed prominently at once (``--json`` prints it later)."""
    if not json_output:
        console.print(
            Text.assemble("job id: ", (handle.job_id, "bold green"), f"  (key {handle.key})")
        )
    return {
        "provider": handle.provider,
        "kind": handle.kind,
        "key": handle.key,
        "job_id": handle.job_id,
    }


async def _follow(
    handle: JobHandle, request: CreateRequest, clients: Clients, console: Console
) -> dict[str, Any]:
    """Wait for the job under a progress bar; its end state, result and file."""
    row = Row(key=handle.key, provider=handle.provider, kind=request.kind)
    row.handle = handle
    view = LiveView(console, [row], title=f"{handle.provider} job {handle.job_id}", plain=None)
    result: JobResult | None = None
    error: JobError | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(view.run)
        try:
            result = await handle
        except JobError as exc:
            error = exc
        finally:
            view.stop()
    data: dict[str, Any] = {"state": row.state}
    if result is not None:
        data.update(url=result.url, media_id=result.media_id)
        if request.download is not None:
            path = await download_result(clients, result, request.download)
            data["file"] = str(path)
    if error is not None:
        data["error"] = error.message or type(error).__name__
    return data


def _print_end(data: dict[str, Any], console: Console, *, json_output: bool) -> None:
    if json_output:
        emit_json(data)
        return
    for name in ("state", "url", "media_id", "file", "error"):
        if data.get(name):
            console.print(f"{name}: {data[name]}", highlight=False, soft_wrap=True)
