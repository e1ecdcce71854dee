"""
The ``aivideo`` typer application: the root, ``demo`` and ``emulator``.

Batch, journal and provider commands are added from their own modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import anyio
import typer

from .. import __version__
from ._api import AIVideoError, emulator_main
from ._demo import DemoOptions, print_summary, run_demo
from ._errors import ExitCode, describe_error, exit_code_for
from ._live import make_console

__all__ = ["app", "run_async", "fail", "state"]

app = typer.Typer(
    name="aivideo",
    help="Generate AI videos and images with at-most-once creates and a durable job journal.\n\n"
    "Start with `aivideo demo`: a mixed batch of ~30 jobs against the embedded emulator.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 ok; 1 a job failed, timed out or is unknown; 2 usage or bad "
    "manifest (nothing sent); 3 provider error; 4 network error; 5 create outcome unknown "
    "(see `aivideo reconcile`); 6 no key; 7 not confirmed (nothing sent); 70 internal "
    "error; 130 interrupted (re-run to resume).",
)


class _State:
    debug: bool = False


state = _State()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aivideo {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show tracebacks and the library's debug log on errors."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """The aivideo command line."""
    state.debug = debug or os.environ.get("AIVIDEO_DEBUG", "") not in ("", "0")
    if state.debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        library = logging.getLogger("aivideo_async")
        previous = library.level
        library.addHandler(handler)
        library.setLevel(logging.DEBUG)

        def restore() -> None:
            library.removeHandler(handler)
            library.setLevel(previous)

        ctx.call_on_close(restore)


def _leaf(exc: BaseException) -> BaseException:
    # Task groups wrap errors; a single one is reported as itself.
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print ``error: message`` to stderr and exit with ``code``."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(int(code))


def run_async(main: Callable[[], Awaitable[int | None]]) -> NoReturn:
    """
    Run ``main`` on a fresh event loop and exit with its code; errors become one
    line on stderr and their documented exit code (a traceback only with ``--debug``).
    """
    try:
        code = asyncio.run(_call(main)) or 0
    except KeyboardInterrupt:
        _interrupted()
    except typer.Exit:
        raise
    except BaseException as raw:
        exc = _leaf(raw)
        if isinstance(exc, KeyboardInterrupt):
            _interrupted()
        if isinstance(exc, typer.Exit | SystemExit):
            raise exc from None
        if state.debug:
            traceback.print_exception(raw)
        if isinstance(exc, AIVideoError):
            sys.stderr.write(describe_error(exc) + "\n")
            raise typer.Exit(int(exit_code_for(exc))) from None
        sys.stderr.write(
            f"error: internal error: {type(exc).__name__}: {exc}"
            + ("" if state.debug else " (run with --debug for the traceback)")
            + "\n"
        )
        raise typer.Exit(int(ExitCode.INTERNAL)) from None
    raise typer.Exit(int(code))


def _interrupted() -> NoReturn:
    sys.stderr.write("interrupted: the journal is consistent; re-run the same command to resume\n")
    raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


async def _call(main: Callable[[], Awaitable[int | None]]) -> int | None:
    # Ctrl-C cancels an anyio scope around the command (not the asyncio task
    # natively): every task group and shielded journal write below handles a
    # scope cancel as designed. A second Ctrl-C interrupts at once.
    loop = asyncio.get_running_loop()
    interrupted = False
    with anyio.CancelScope() as scope:

        def on_sigint() -> None:
            nonlocal interrupted
            interrupted = True
            scope.cancel()
            loop.remove_signal_handler(signal.SIGINT)

        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
            pass  # not the main thread (tests) or no signals: asyncio's own handling
        try:
            result = await main()
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGINT)
    if interrupted:
        raise KeyboardInterrupt
    return result


# -- demo ---------------------------------------------------------------------------------


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the emulator (durations, faults).")] = 0,
    jobs: Annotated[
        int, typer.Option(min=8, max=500, help="How many jobs in the mixed batch.")
    ] = 30,
    out: Annotated[Path, typer.Option(help="Folder for the results and the demo journal.")] = Path(
        "aivideo-demo-out"
    ),
    no_faults: Annotated[
        bool, typer.Option("--no-faults", help="Run without injected faults.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print only the summary, as JSON.")
    ] = False,
) -> None:
    """
    Run a mixed batch of ~30 jobs against the embedded emulator, with live
    progress, injected faults, downloads and a summary (about 15-20 s).
    """
    options = DemoOptions(seed=seed, jobs=jobs, out=out, faults=not no_faults)
    console = make_console()
    # With --json, stdout carries only the summary; the progress goes to stderr.
    progress = make_console(stderr=True) if json_output else console

    async def main() -> int:
        summary = await run_demo(options, progress)
        if json_output:
            sys.stdout.write(json.dumps(summary.as_dict(), indent=2, sort_keys=True) + "\n")
        else:
            print_summary(console, summary)
        return int(ExitCode.OK if summary.ok else ExitCode.JOBS_FAILED)

    run_async(main)


# -- emulator ----------------------------------------------------------------------------


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def emulator(ctx: typer.Context) -> None:
    """
    Serve the provider emulator (the same as `python -m aivideo_async.emulator`;
    try `aivideo emulator --help`). Prints the base URL first.
    """
    args: list[Any] = list(ctx.args)
    try:
        emulator_main.main([str(a) for a in args])
    except SystemExit as exc:  # argparse --help / usage errors
        raise typer.Exit(exc.code if isinstance(exc.code, int) else 2) from None
    raise typer.Exit(0)
