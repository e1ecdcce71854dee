"""
Exit codes and the one-line error report of the ``aivideo`` command.
"""

from __future__ import annotations

import enum
import sys
from typing import TextIO

import aivideo_async as av

__all__ = ["ExitCode", "exit_code_for", "describe_error"]


class ExitCode(enum.IntEnum):
    """
    Documented exit codes of ``aivideo``.

    Example:
        >>> int(ExitCode.JOBS_FAILED)
        1
    """

    OK = 0
    JOBS_FAILED = 1  # a job failed, timed out or has an unknown outcome
    USAGE = 2  # bad arguments or manifest lines; nothing was sent
    API_ERROR = 3  # the provider answered with an error
    TRANSPORT = 4  # network failure (timeout, refused, reset)
    OUTCOME_UNKNOWN = 5  # a create may or may not have happened; see `aivideo reconcile`
    NO_CREDENTIAL = 6  # no key in the environment and none typed
    NOT_CONFIRMED = 7  # a create or cancel was not confirmed; nothing was sent
    INTERNAL = 70  # a bug in aivideo (EX_SOFTWARE); run with --debug and report it
    INTERRUPTED = 130  # Ctrl-C


def exit_code_for(exc: BaseException) -> ExitCode:
    """
    Map an exception to its exit code.

    Example:
        >>> exit_code_for(av.NotFound("x"))
        <ExitCode.API_ERROR: 3>
    """
    match exc:
        case KeyboardInterrupt():
            return ExitCode.INTERRUPTED
        case av.MissingCredential():
            return ExitCode.NO_CREDENTIAL
        case av.InvalidInput():
            return ExitCode.USAGE
        case av.SubmissionOutcomeUnknown():
            return ExitCode.OUTCOME_UNKNOWN
        case av.APIStatusError():
            return ExitCode.API_ERROR
        case av.TransportError() | av.SubmissionNotSent():
            return ExitCode.TRANSPORT
        case av.JobError():
            return ExitCode.JOBS_FAILED
        case _:
            return ExitCode.API_ERROR


def describe_error(exc: BaseException) -> str:
    """
    One clear line: provider, endpoint, HTTP status and the provider's message.

    Example:
        >>> describe_error(av.BadRequest("Missing avatarId", provider="miraflow",
        ...                status_code=400, endpoint="POST /api/video/create"))
        'error: [miraflow] POST /api/video/create -> HTTP 400: Missing avatarId'
    """
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, av.SubmissionOutcomeUnknown):
        text += " (never resent; run `aivideo reconcile` to resolve it)"
    return f"error: {text}"


def report(exc: BaseException, *, stream: TextIO | None = None) -> ExitCode:
    """Write :func:`describe_error` to ``stream`` (stderr) and return the exit code."""
    (stream or sys.stderr).write(describe_error(exc) + "\n")
    return exit_code_for(exc)
