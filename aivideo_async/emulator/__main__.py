"""
``python -m aivideo_async.emulator``: serve the emulator until stopped.

The first line printed is the base URL (scripts read it to find the port).

Example:
    Start on a fixed port with a seed and faults from a file::

        python -m aivideo_async.emulator --port 8765 --seed 1 --time-scale 0.1 --faults f.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from ._app import Emulator
from ._faults import FaultRule
from ._state import EmulatorConfig


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m aivideo_async.emulator",
        description="Serve the Miraflow/NemoVideo/AIVideoMaker emulator on one port.",
        epilog=(
            "Admin (no auth): GET /__emulator__/stats, POST /__emulator__/reset, "
            "GET|POST|DELETE /__emulator__/faults, POST /__emulator__/advance. "
            "Fault kinds, endpoint classes and params: "
            "python -c 'import aivideo_async.emulator._faults as f; help(f)'. "
            'A --faults file holds e.g. [{"endpoint": "miraflow.create", '
            '"kind": "drop_after_commit", "schedule": [1]}].'
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    p.add_argument(
        "--time-scale", type=float, default=1.0, help="multiplies job durations (default 1.0)"
    )
    p.add_argument(
        "--job-duration",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=(0.2, 0.6),
        help="job duration range in seconds, before the time scale",
    )
    p.add_argument("--failure-rate", type=float, default=0.0, help="share of jobs that fail")
    p.add_argument(
        "--initial-credits", type=int, default=1_000_000, help="credits of every key on first use"
    )
    p.add_argument(
        "--query-limit",
        type=int,
        default=60,
        help="AIVideoMaker queries per minute per key (0: no limit)",
    )
    p.add_argument("--faults", type=Path, help="JSON file with a list of fault rules")
    p.add_argument(
        "--nemovideo-token-limit",
        action="store_true",
        help="enforce one NemoVideo anonymous token per client id per 7 days",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    return p


def config_from_args(argv: Sequence[str] | None = None) -> EmulatorConfig:
    """Parse the command line into an :class:`EmulatorConfig` (exits on bad input)."""
    return _parse(argv)[0]


def _parse(argv: Sequence[str] | None) -> tuple[EmulatorConfig, argparse.Namespace]:
    parser = _parser()
    args = parser.parse_args(argv)
    faults: list[FaultRule] = []
    if args.faults is not None:
        try:
            raw = json.loads(args.faults.read_text())
            if not isinstance(raw, list):
                raise ValueError("the faults file must hold a JSON list of rule objects")
            faults = [FaultRule.from_dict(r) for r in raw]
        except (OSError, ValueError) as exc:
            parser.error(f"--faults {args.faults}: {exc}")
    try:
        config = EmulatorConfig(
            seed=args.seed,
            time_scale=args.time_scale,
            job_duration=tuple(args.job_duration),
            failure_rate=args.failure_rate,
            initial_credits=args.initial_credits,
            aivideomaker_query_limit=args.query_limit,
            nemovideo_token_limit=args.nemovideo_token_limit,
            faults=faults,
            host=args.host,
            port=args.port,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return config, args


async def serve(config: EmulatorConfig, *, verbose: bool = False) -> None:
    """Run until SIGINT/SIGTERM; ``verbose`` logs every request."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with Emulator(config, access_log=verbose) as emu:
        print(emu.base_url, flush=True)
        print(
            f"seed={config.seed} time_scale={config.time_scale} faults={len(config.faults)}; "
            "admin at /__emulator__/stats; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    config, args = _parse(argv)
    verbose = bool(args.verbose)
    if verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, verbose=verbose))


if __name__ == "__main__":
    main()
