"""
What the provider packages share: the wire layers' converter factory and
decoding, and the clients' key resolution, error-mapper adapter, signed-URL
download and the lifecycle of the key-header clients (:class:`KeyHeaderClient`).

Wire conventions (STYLE #4, #9, #13):

* **One converter per wire layer**, built by :func:`make_converter` from
  :func:`cattrs.preconf.json.make_converter`; the global cattrs converter is
  never used.
* **Wire names** are derived from the Python field name by a naming function
  (camelCase by default: ``avatar_id`` <-> ``avatarId``). A field whose wire
  name does not follow the rule says so with ``metadata=wire_name("im2vid_full")``.
* **Strict JSON types**: ``str``, ``int``, ``float`` and ``bool`` fields accept
  only the matching JSON type (cattrs would otherwise turn ``5`` into ``"5"``),
  list fields only a JSON array, attrs classes only a JSON object; anything
  else is a :class:`~aivideo_async._exceptions.DecodeError`.
* **Unknown fields are tolerated**. A response model that declares a field
  named ``raw`` (``raw: Mapping[str, Any] = attrs.field(factory=dict,
  repr=False, eq=False)``) gets the JSON object exactly as received, unknown
  keys included; ``raw`` is never read from nor written to the wire.
* **Requests omit defaults**: when unstructuring, a field equal to its default
  (normally ``None``) is left out of the body.
* **Decode errors name the JSON path**: :func:`structure` turns cattrs errors
  into :class:`~aivideo_async._exceptions.DecodeError` whose ``path`` uses wire
  names (``$.data.status``, ``$.tasks[3].createdAt``) and whose ``__cause__`` is
  the cattrs error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import typing
import weakref
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableSequence, Sequence
from types import TracebackType
from typing import Any, Final, Protocol, Self, TypeVar

import aiohttp
import anyio
import attrs
from cattrs import ClassValidationError, IterableValidationError
from cattrs.cols import list_structure_factory
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.json import JsonConverter
from cattrs.preconf.json import make_converter as _make_json_converter
from cattrs.v import format_exception

from .._config import Limits, RetryPolicy, Timeouts
from .._exceptions import (
    APIStatusError,
    DecodeError,
    DownloadError,
    InvalidInput,
    MissingCredential,
    TotalTimeout,
)
from .._secret import Secret
from .._session import HeaderKeyAuth, ResponseInfo, Session, check_deadline
from .._types import Clock, RandomSource, Sleep

__all__ = [
    "WIRE_NAME",
    "wire_name",
    "to_camel",
    "make_converter",
    "structure",
    "unstructure",
    "resolve_api_key",
    "sniff_media_type",
    "VIDEO_TYPES",
    "MapError",
    "error_mapper",
    "download_signed",
    "refused_twice",
    "KeyHeaderClient",
]

T = TypeVar("T")

WIRE_NAME: Final = "aivideo_async.wire_name"
"""The attrs field-metadata key holding an explicit wire name."""

_RAW: Final = "raw"

# converter -> its naming rule, so that decode paths can be given in wire names.
_NAMING: weakref.WeakKeyDictionary[JsonConverter, Callable[[str], str]] = (
    weakref.WeakKeyDictionary()
)


def wire_name(name: str) -> dict[str, str]:
    """
    Field metadata giving a field an explicit wire name.

    Example:
        >>> import attrs
        >>> @attrs.frozen
        ... class Body:
        ...     im2vid_full: bool | None = attrs.field(
        ...         default=None, metadata=wire_name("im2vid_full")
        ...     )
        >>> unstructure(make_converter(), Body(im2vid_full=True))
        {'im2vid_full': True}
    """
    return {WIRE_NAME: name}


def to_camel(name: str) -> str:
    """
    The default naming rule: ``snake_case`` -> ``camelCase``.

    Example:
        >>> to_camel("reference_image_media_ids")
        'referenceImageMediaIds'
        >>> to_camel("prompt")
        'prompt'
    """
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _identity(name: str) -> str:
    return name


def _field_wire_name(field: attrs.Attribute[Any], naming: Callable[[str], str]) -> str:
    explicit = field.metadata.get(WIRE_NAME)
    return explicit if isinstance(explicit, str) else naming(field.name)


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _strict_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _strict_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _strict_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _is_json_array_type(tp: Any) -> bool:
    return tp is list or typing.get_origin(tp) in (list, Sequence, MutableSequence)


def make_converter(*, naming: Callable[[str], str] | None = to_camel) -> JsonConverter:
    """
    Build a fresh JSON converter configured with the wire conventions above.

    Args:
        naming: maps a Python field name to its wire name when the field has
            no explicit :func:`wire_name`; ``None`` keeps names unchanged
            (snake_case APIs).

    Example:
        >>> import attrs
        >>> from collections.abc import Mapping
        >>> from typing import Any
        >>> @attrs.frozen
        ... class Created:
        ...     job_id: str
        ...     raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)
        >>> conv = make_converter()
        >>> c = conv.structure({"result": "success", "jobId": "j1"}, Created)
        >>> c.job_id, c.raw["result"]
        ('j1', 'success')
    """
    converter = _make_json_converter(forbid_extra_keys=False)
    name_of = naming or _identity
    _NAMING[converter] = name_of

    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(bool, _strict_bool)

    def structure_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
        overrides: dict[str, Any] = {}
        has_raw = False
        for field in attrs.fields(cls):
            if field.name == _RAW:
                has_raw = True
                overrides[field.name] = override(omit=True)
                continue
            wire = _field_wire_name(field, name_of)
            if wire != field.name:
                overrides[field.name] = override(rename=wire)
        inner = make_dict_structure_fn(cls, converter, **overrides)

        def hook(data: Any, _: Any) -> Any:
            # A non-object where an object belongs must fail with a clear
            # message (cattrs would report a misleading missing field).
            if not isinstance(data, Mapping):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            obj = inner(data, cls)
            if has_raw:
                # ``raw`` is filled after construction: it is not a wire field.
                object.__setattr__(obj, _RAW, data)
            return obj

        return hook

    def unstructure_factory(cls: type[Any]) -> Callable[[Any], Any]:
        overrides: dict[str, Any] = {}
        for field in attrs.fields(cls):
            if field.name == _RAW:
                overrides[field.name] = override(omit=True)
                continue
            wire = _field_wire_name(field, name_of)
            if wire != field.name:
                overrides[field.name] = override(rename=wire)
        return make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=True, **overrides)

    def array_factory(tp: Any) -> Callable[[Any, Any], Any]:
        inner = list_structure_factory(tp, converter)

        def hook(data: Any, target: Any) -> Any:
            # cattrs would iterate any iterable (a string, a dict's keys).
            if not isinstance(data, list):
                raise TypeError(f"expected a JSON array, got {type(data).__name__}")
            return inner(data, target)

        return hook

    converter.register_structure_hook_factory(_is_json_array_type, array_factory)
    converter.register_structure_hook_factory(attrs.has, structure_factory)
    converter.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    return converter


def _problems(exc: BaseException, path: str, naming: Callable[[str], str]) -> list[tuple[str, str]]:
    """Walk a cattrs error like :func:`cattrs.transform_error`, but with wire names in the path."""
    found: list[tuple[str, str]] = []
    if isinstance(exc, ClassValidationError):
        fields = {f.name: f for f in attrs.fields(exc.cl)} if attrs.has(exc.cl) else {}
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            field = fields.get(note.name)
            wire = _field_wire_name(field, naming) if field is not None else note.name
            sub_path = f"{path}.{wire}"
            if isinstance(sub, ClassValidationError | IterableValidationError):
                found.extend(_problems(sub, sub_path, naming))
            else:
                found.append((sub_path, format_exception(sub, note.type)))
        found.extend((path, format_exception(sub, None)) for sub in without)
    elif isinstance(exc, IterableValidationError):
        with_inotes, iwithout = exc.group_exceptions()
        for sub, inote in with_inotes:
            sub_path = f"{path}[{inote.index!r}]"
            if isinstance(sub, ClassValidationError | IterableValidationError):
                found.extend(_problems(sub, sub_path, naming))
            else:
                found.append((sub_path, format_exception(sub, inote.type)))
        found.extend((path, format_exception(sub, None)) for sub in iwithout)
    else:
        found.append((path, format_exception(exc, None)))
    return found


def structure(
    converter: JsonConverter,
    data: Any,
    cls: type[T],
    *,
    provider: str,
    endpoint: str,
    status_code: int | None = None,
) -> T:
    """
    Structure decoded JSON into ``cls``; any mismatch becomes a :class:`DecodeError`.

    The error's ``path`` is the JSON path of the first problem, in wire names;
    its message lists every problem (as :func:`cattrs.transform_error` does);
    its ``__cause__`` is the cattrs error.

    Raises:
        DecodeError: a required field is missing or a field has the wrong type.

    Example:
        >>> import attrs
        >>> @attrs.frozen
        ... class Status:
        ...     status: str
        >>> Envelope = attrs.make_class("Envelope", {"data": attrs.field(type=Status)})
        >>> conv = make_converter()
        >>> try:
        ...     structure(conv, {"data": {"status": 3}}, Envelope,
        ...               provider="demo", endpoint="GET /x")
        ... except DecodeError as err:
        ...     print(err.path, type(err.__cause__).__name__)
        $.data.status ClassValidationError
    """
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError, TypeError, ValueError, KeyError) as exc:
        naming = _NAMING.get(converter, _identity)
        problems = _problems(exc, "$", naming) or [("$", str(exc))]
        path, first = problems[0]
        message = f"response does not match {cls.__name__}: {first}"
        if len(problems) > 1:
            others = "; ".join(f"{text} @ {where}" for where, text in problems[1:4])
            message += f" (at {path}; also: {others})"
        raise DecodeError(
            message,
            path=path,
            body_digest=_json_digest(data),
            provider=provider,
            status_code=status_code,
            endpoint=endpoint,
        ) from exc


def _json_digest(data: Any) -> str | None:
    """
    SHA-256 of the decoded body as canonical JSON: what a journal keeps of a
    create answer it could not read (RELIABILITY #20), without the body itself.
    """
    try:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def unstructure(converter: JsonConverter, obj: Any) -> dict[str, Any]:
    """
    Unstructure a request model into its JSON body (wire names, defaults omitted).

    Example:
        >>> import attrs
        >>> @attrs.frozen
        ... class Body:
        ...     avatar_id: str
        ...     voice_id: str | None = None
        >>> unstructure(make_converter(), Body(avatar_id="a1"))
        {'avatarId': 'a1'}
    """
    result = converter.unstructure(obj)
    if not isinstance(result, dict):
        raise TypeError(f"{type(obj).__name__} does not unstructure to a JSON object")
    return result


def resolve_api_key(api_key: str | Secret | None, *, variable: str) -> Secret:
    """
    The client key: the argument when given, else the environment variable ``variable``.

    Raises:
        MissingCredential: no key given and ``variable`` unset or empty (it names the variable).

    Example:
        >>> resolve_api_key("sk-1", variable="DEMO_KEY")
        Secret('**********')
        >>> import os
        >>> _ = os.environ.pop("DEMO_UNSET_KEY", None)
        >>> try:
        ...     resolve_api_key(None, variable="DEMO_UNSET_KEY")
        ... except MissingCredential as err:
        ...     print(err.variable)
        DEMO_UNSET_KEY
    """
    if isinstance(api_key, Secret):
        if len(api_key) == 0:
            raise MissingCredential(
                f"the given key is empty; pass a key or set {variable}", variable=variable
            )
        return api_key
    if isinstance(api_key, str) and api_key:
        return Secret(api_key)
    if api_key is not None and not isinstance(api_key, str):
        raise TypeError(f"api_key must be a str or Secret, got {type(api_key).__name__}")
    return Secret.from_env(variable)


# (signature bytes, offset, media type): enough to tell the upload types apart.
_SIGNATURES: Final[tuple[tuple[bytes, int, str], ...]] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"WAVE", 8, "audio/wav"),
    (b"ID3", 0, "audio/mpeg"),
    (b"OggS", 0, "audio/ogg"),
    (b"fLaC", 0, "audio/flac"),
    (b"ftypM4A", 4, "audio/mp4"),
    (b"ftyp", 4, "video/mp4"),
    (b"\x1aE\xdf\xa3", 0, "video/webm"),
)


def sniff_media_type(head: bytes) -> str | None:
    """
    The media type the first bytes of a file show, or ``None`` if unrecognised.

    Used to check an upload's type locally, before any byte is sent.

    Example:
        >>> sniff_media_type(b"\\x89PNG\\r\\n\\x1a\\n....")
        'image/png'
        >>> sniff_media_type(b"RIFF\\x00\\x00\\x00\\x00WAVEfmt ")
        'audio/wav'
        >>> sniff_media_type(b"hello") is None
        True
    """
    for signature, offset, media in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return media
    # MPEG audio frame sync (an MP3 without an ID3 tag).
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "audio/mpeg"
    return None


# -- what the clients share ----------------------------------------------------------

VIDEO_TYPES: Final = ("video/", "application/octet-stream", "binary/octet-stream")
"""Content types a video download accepts (storage often says octet-stream)."""


class MapError(Protocol):
    """The signature of every wire layer's ``map_error``."""

    def __call__(
        self,
        *,
        status: int,
        body: Any,
        endpoint: str,
        text: str = "",
        retry_after: float | None = None,
    ) -> APIStatusError | None: ...


def error_mapper(map_error: MapError) -> Callable[[ResponseInfo], APIStatusError | None]:
    """
    Adapt a wire layer's ``map_error`` to the session's ``error_mapper`` hook.

    Example:
        >>> from aivideo_async._session import ResponseInfo
        >>> def map_error(*, status, body, endpoint, text="", retry_after=None):
        ...     return None if status < 400 else APIStatusError(text, status_code=status)
        >>> mapper = error_mapper(map_error)
        >>> info = ResponseInfo(provider="demo", endpoint="GET /x", status=418, headers={},
        ...                     body=None, text="teapot", retry_after=None)
        >>> mapper(info).status_code
        418
    """

    def mapper(info: ResponseInfo) -> APIStatusError | None:
        return map_error(
            status=info.status,
            body=info.body,
            endpoint=info.endpoint,
            text=info.text,
            retry_after=info.retry_after,
        )

    return mapper


async def by_deadline(
    deadline: float | None,
    run: Callable[[], Awaitable[T]],
    *,
    provider: str,
    what: str,
) -> T:
    """
    Await ``run()``; with a ``deadline`` (seconds), cancel it when that time has
    passed and raise :class:`TotalTimeout`. Only for calls that are safe to
    cancel at any point: a download removes its temporary file, and polls and
    reads are idempotent.

    Raises:
        InvalidInput: ``deadline`` is not ``None`` or a positive number.
        TotalTimeout: the deadline passed first.

    Example::

        return await by_deadline(deadline, lambda: self._download(result, dest),
                                 provider="miraflow", what=f"the download of {job_id}")
    """
    check_deadline(deadline)
    if deadline is None:
        return await run()
    with anyio.move_on_after(deadline):
        return await run()
    raise TotalTimeout(f"{what} did not finish within its {deadline} s deadline", provider=provider)


async def download_signed(
    session: Session,
    url: str | None,
    dest: str | os.PathLike[str],
    *,
    fresh_url: Callable[[], Awaitable[str]],
    what: str,
    content_types: Collection[str],
    progress: Callable[[int, int | None], None] | None = None,
    log: logging.Logger,
) -> pathlib.Path:
    """
    Download a signed ``url`` atomically to ``dest``; a 403 (the signature
    expired) asks ``fresh_url`` for a new URL, once (RELIABILITY #33).

    ``url=None`` starts with ``fresh_url`` (which raises when there is none);
    ``what`` names the job in the log line.

    Example::

        path = await download_signed(
            session, result.url, "out.mp4", fresh_url=lookup_url, what=f"task {job_id}",
            content_types=VIDEO_TYPES, log=_log,
        )
    """
    for attempt in range(2):
        if url is None or attempt:
            url = await fresh_url()
        try:
            return await session.download(
                url, dest, absolute=True, progress=progress, content_types=content_types
            )
        except APIStatusError as err:
            if err.status_code != 403:
                raise
            if attempt:
                raise refused_twice(err, what) from err
            log.info("signed URL of %s expired; refetching it", what)
    raise AssertionError("unreachable")  # pragma: no cover


def refused_twice(err: APIStatusError, what: str) -> DownloadError:
    """
    The error of a signed URL refused (403) again after a fresh one was fetched:
    a failed download (RELIABILITY #33), not a plan restriction.

    Example:
        >>> from aivideo_async._exceptions import PaymentRequired
        >>> e = refused_twice(PaymentRequired("Request has expired", status_code=403), "task t1")
        >>> type(e).__name__, e.status_code
        ('DownloadError', 403)
    """
    return DownloadError(
        f"the download URL of {what} was refused (HTTP 403) again after a fresh one was "
        f"fetched: it expired again or access is denied ({err.message or 'no message'})",
        provider=err.provider,
        status_code=err.status_code,
        endpoint=err.endpoint,
    )


class KeyHeaderClient:
    """
    The lifecycle shared by the clients that send one API-key header
    (:class:`~aivideo_async.providers.miraflow.Miraflow`,
    :class:`~aivideo_async.providers.aivideomaker.AIVideoMaker`).

    It resolves the key (argument or environment, held as a :class:`Secret`),
    builds the :class:`~aivideo_async._session.Session` (owned or borrowed
    aiohttp session), and gives ``async with``, :meth:`aclose`,
    :attr:`base_url` and a repr that never shows the key. A subclass sets
    ``provider`` and passes its header, variable and ``map_error``.

    Example::

        class Acme(KeyHeaderClient):
            provider: Final = "acme"

            def __init__(self, api_key=None, *, base_url="https://acme.example", ...):
                super().__init__(api_key, header="x-api-key", variable="ACME_API_KEY",
                                 map_error=_wire.map_error, base_url=base_url, ...)
    """

    @property
    def provider(self) -> str:
        """
        The provider name; each client overrides it with a class constant.

        Example:
            >>> from aivideo_async.providers.miraflow import Miraflow
            >>> Miraflow("k").provider
            'miraflow'
        """
        raise NotImplementedError

    def __init__(
        self,
        api_key: str | Secret | None,
        *,
        header: str,
        variable: str,
        map_error: MapError,
        base_url: str,
        session: aiohttp.ClientSession | None,
        timeouts: Timeouts,
        create_timeouts: Timeouts,
        limits: Limits,
        retry: RetryPolicy,
        clock: Clock,
        sleep: Sleep,
        rng: RandomSource,
        allow_insecure_http: bool,
    ) -> None:
        # The defaults live in each client's signature (its public API).
        key = resolve_api_key(api_key, variable=variable)
        self._session = Session(
            provider=self.provider,
            base_url=base_url,
            auth=HeaderKeyAuth(header, key),
            timeouts=timeouts,
            limits=limits,
            retry=retry,
            session=session,
            error_mapper=error_mapper(map_error),
            clock=clock,
            sleep=sleep,
            rng=rng,
            allow_insecure_http=allow_insecure_http,
        )
        self._create_timeouts = create_timeouts

    @property
    def base_url(self) -> str:
        """
        The API base URL.

        Example:
            >>> from aivideo_async.providers.aivideomaker import AIVideoMaker
            >>> from aivideo_async.providers.miraflow import Miraflow
            >>> AIVideoMaker("k", base_url="http://127.0.0.1:8765").base_url
            'http://127.0.0.1:8765'
            >>> Miraflow("k", base_url="http://127.0.0.1:8765").base_url
            'http://127.0.0.1:8765'
        """
        return self._session.base_url

    async def __aenter__(self) -> Self:
        await self._session.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """
        Close the owned aiohttp session (a borrowed one stays open). Idempotent.

        Example::

            client = Miraflow()          # or AIVideoMaker()
            try:
                ...
            finally:
                await client.aclose()
        """
        await self._session.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=Secret('**********'))"

    def _check_spec(self, provider: str) -> None:
        """Refuse a spec built for another provider before anything is sent."""
        if provider != self.provider:
            raise InvalidInput(field="spec.provider", value=provider, expected=repr(self.provider))
