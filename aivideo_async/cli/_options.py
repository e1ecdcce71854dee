"""
Option definitions the commands share, and option groups.

typer has no notion of a group of options that several commands take. Here a
group is an attrs class whose fields are typer options (``Annotated`` with a
default); :func:`with_options` adds its fields to a command's command line and
hands the command one instance, so a dozen commands declare ``--yes --wait
--json ...`` once instead of a dozen times.

Example:
    >>> import attrs
    >>> @attrs.frozen(kw_only=True)
    ... class Verbosity:
    ...     json_output: JsonOut = False
    >>> @with_options
    ... def show(name: str, *, options: Verbosity) -> str:
    ...     return f"{name} json={options.json_output}"
    >>> list(inspect.signature(show).parameters)
    ['name', 'json_output']
    >>> show(name="fox", json_output=True)
    'fox json=True'
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import attrs
import typer

__all__ = [
    "BaseUrl",
    "base_url_option",
    "JournalPath",
    "JsonOut",
    "Key",
    "Out",
    "Wait",
    "Yes",
    "with_options",
]


def base_url_option(help: str) -> Any:
    """
    ``--base-url`` (also ``$AIVIDEO_BASE_URL``) with the command's own help text.

    Example:
        >>> base_url_option("Where to send the calls.").envvar
        'AIVIDEO_BASE_URL'
    """
    return typer.Option("--base-url", envvar="AIVIDEO_BASE_URL", help=help)


BaseUrl = Annotated[
    str | None, base_url_option("API root to use instead of the provider's (e.g. an emulator).")
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Create without asking.")]
Wait = Annotated[bool, typer.Option("--wait", "-w", help="Follow the job to its end.")]
JournalPath = Annotated[
    Path | None,
    typer.Option("--journal", "-j", help="Record the create in this SQLite journal."),
]
Key = Annotated[
    str | None,
    typer.Option(
        "--key", help="Journal key (default: a new one); the same key never creates twice."
    ),
]
Out = Annotated[Path | None, typer.Option("--out", help="With --wait: download here.")]

R = TypeVar("R")
G = TypeVar("G")

_GROUP_PARAMETER = "options"


def with_options(command: Callable[..., R]) -> Callable[..., R]:
    """
    Give ``command`` the options of the group its ``options`` parameter names.

    The returned function has ``command``'s own parameters followed by the
    group's fields (in field order, so ``--help`` lists them in that order),
    which is the signature typer reads; called with all of them, it builds the
    group and calls ``command(..., options=group)``. A field whose type is
    itself a group stands for that group's fields (groups nest).

    Example:
        See the module docstring.
    """
    own = inspect.signature(command, eval_str=True).parameters
    group = own[_GROUP_PARAMETER].annotation
    fields = _flat_parameters(group)

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> R:
        options = _build(group, kwargs)  # takes the group's values out of kwargs
        return command(**kwargs, options=options)

    parameters = [p for name, p in own.items() if name != _GROUP_PARAMETER] + fields
    signature = inspect.Signature(parameters)
    # typer reads the signature, and the annotations for names it cannot resolve:
    # give it both, already evaluated.
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def _fields(group: type[Any]) -> list[tuple[attrs.Attribute[Any], Any]]:
    """The group's fields with their evaluated ``Annotated`` types."""
    hints = typing.get_type_hints(group, include_extras=True)
    return [(field, hints[field.name]) for field in attrs.fields(group)]


def _is_group(hint: Any) -> bool:
    return isinstance(hint, type) and attrs.has(hint)


def _flat_parameters(group: type[Any]) -> list[inspect.Parameter]:
    # Keyword-only: the group's fields have defaults and may follow a command's
    # required arguments only that way.
    parameters: list[inspect.Parameter] = []
    for field, hint in _fields(group):
        if _is_group(hint):
            parameters += _flat_parameters(hint)
            continue
        parameters.append(
            inspect.Parameter(
                field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default, annotation=hint
            )
        )
    return parameters


def _build(group: type[G], values: dict[str, Any]) -> G:
    """``group`` from the command's values (popping the ones it uses)."""
    kwargs = {
        field.name: _build(hint, values) if _is_group(hint) else values.pop(field.name)
        for field, hint in _fields(group)
    }
    return group(**kwargs)
