"""
Wire helpers of the emulator: its own strict cattrs converter, JSON responses
and each provider's error envelope.

The converter is deliberately strict (STYLE #13): a field the emulator does not
know is an error, ``"5"`` is not ``5``, and a string is not a list, so client
bugs surface as a 400 in the provider's error shape.

Example:
    >>> import attrs
    >>> @attrs.frozen
    ... class Body:
    ...     prompt: str
    >>> parse_body(Body, b'{"prompt": "a cat"}')
    Body(prompt='a cat')
    >>> try:
    ...     parse_body(Body, b'{"prompt": "a cat", "extra": 1}')
    ... except BadBody as exc:
    ...     print(exc)
    extra fields found (extra) @ $
"""

from __future__ import annotations

import json
import re
import typing
from typing import Any, TypeVar

import cattrs
from aiohttp import web
from cattrs.preconf.json import make_converter

__all__ = [
    "BadBody",
    "CONVERTER",
    "Reject",
    "dumps",
    "error_response",
    "json_response",
    "parse_body",
    "parse_json_object",
]

T = TypeVar("T")

CONVERTER = make_converter(forbid_extra_keys=True)
"""The emulator's own converter: strict types, unknown keys forbidden."""


def _strict_scalar(kind: type[Any]) -> Any:
    def hook(value: Any, _type: Any) -> Any:
        # bool is an int subclass: true is not a count, and 1 is not a flag.
        if kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return hook


for _kind in (str, int, float, bool):
    CONVERTER.register_structure_hook(_kind, _strict_scalar(_kind))


def _is_list(tp: Any) -> bool:
    return typing.get_origin(tp) is list


def _list_factory(tp: Any) -> Any:
    (item,) = typing.get_args(tp) or (Any,)
    inner = CONVERTER.get_structure_hook(item)

    def hook(value: Any, _type: Any) -> list[Any]:
        # cattrs would otherwise turn the string "abc" into ["a", "b", "c"].
        if not isinstance(value, list):
            raise TypeError(f"expected a JSON array, got {type(value).__name__}")
        return [inner(v, item) for v in value]

    return hook


CONVERTER.register_structure_hook_factory(_is_list, _list_factory)


class BadBody(ValueError):
    """A request body the emulator refuses; the message names the field."""


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """
    Decode ``raw`` as a JSON object or raise :class:`BadBody`.

    Example:
        >>> parse_json_object(b'{"a": 1}')
        {'a': 1}
    """
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBody(f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadBody(f"request body must be a JSON object, got {type(value).__name__}")
    return value


def parse_body(cls: type[T], raw: bytes | dict[str, Any]) -> T:
    """Structure ``raw`` (bytes or an already decoded object) into ``cls`` strictly."""
    obj = parse_json_object(raw) if isinstance(raw, bytes) else raw
    try:
        return CONVERTER.structure(obj, cls)
    except Exception as exc:  # cattrs raises (nested groups of) many kinds
        messages = [_LITERAL.sub(_literal_message, m) for m in cattrs.transform_error(exc)]
        raise BadBody("; ".join(messages)) from None


_LITERAL = re.compile(r"unknown error \((.*) not in literal typing\.Literal\[(.*)\]\)")


def _literal_message(m: re.Match[str]) -> str:
    return f"invalid value {m.group(1)}, expected one of {m.group(2)}"


def dumps(obj: Any) -> bytes:
    """Serialise ``obj`` compactly as UTF-8 JSON bytes."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(
    obj: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """Return a JSON response without aiohttp's per-call encoder lookup."""
    return web.Response(
        body=dumps(obj), status=status, content_type="application/json", headers=headers
    )


def error_body(provider: str, status: int, message: str, code: int | None = None) -> Any:
    """Return the error envelope of ``provider`` (see PROVIDER_APIS.md)."""
    if provider == "miraflow":
        return {"result": "failure", "error": message}
    if provider == "nemovideo":
        return {"code": code if code is not None else status, "message": message, "data": None}
    if provider == "aivideomaker":
        return {"status": "FAILED", "message": message}
    return None


def s3_error(status: int, code: str, message: str) -> web.Response:
    """Return an S3-style XML error (the signed-URL storage speaks S3)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(body=body.encode(), status=status, content_type="application/xml")


def error_response(
    provider: str,
    status: int,
    message: str,
    *,
    code: int | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """
    Return ``provider``'s error envelope with HTTP ``status``.

    Example:
        >>> error_response("miraflow", 401, "Invalid API key").text
        '{"result":"failure","error":"Invalid API key"}'
    """
    if provider not in ("miraflow", "nemovideo", "aivideomaker"):
        resp = s3_error(status, "AccessDenied" if status == 403 else "Error", message)
        if headers:
            resp.headers.update(headers)
        return resp
    return json_response(error_body(provider, status, message, code), status, headers)


class Reject(Exception):
    """
    Raised by a handler to answer with ``response`` right away (auth, 404, 400...).

    Example:
        >>> Reject(error_response("aivideomaker", 404, "Task not found")).response.status
        404
    """

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__(response.status)
        self.response = response
