"""
A sans-IO decoder for ``text/event-stream`` and its async adapter.

:class:`SSEDecoder` implements the WHATWG "event stream interpretation" rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream)
with no IO at all: bytes go in through :meth:`SSEDecoder.feed`, events come out.
:func:`aiter_sse` drives a decoder over any async iterator of byte chunks (an
aiohttp ``response.content.iter_any()`` is one) and adds an idle timeout.

How it stays fast and exact
---------------------------
Every byte that matters to the framing (CR, LF, ``:``, space) is ASCII, and a
UTF-8 multi-byte sequence never contains an ASCII byte. So the decoder parses
each chunk as Latin-1 text (one C call, one character per byte, no error
cases) and decodes a value as UTF-8 only when it is handed out, and only when
it is not pure ASCII. This gives exactly the result of decoding the whole
stream first (U+FFFD for invalid bytes, a character split across chunks
decoded once) and makes every length a byte count. Line ends are normalised
with two ``str.replace`` calls per chunk, and one compiled regular expression
(``findall``, in C) cuts the chunk into items, taking the usual ``id`` /
``event`` / ``data`` / blank lines of an event as one item; only other lines
reach the per-line Python code. A partial line is kept as a list of pieces and
joined once, so a long line fed in tiny chunks costs linear time.
``benchmarks/sse_throughput.py`` measures all this against httpx-sse and
sseclient-py.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any, Final, Literal, NamedTuple, overload

import anyio

from ._exceptions import InvalidInput, SSELimitExceeded, StreamIdleTimeout

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "SSEComment",
    "SSEDecoder",
    "ServerSentEvent",
    "aiter_sse",
]

DEFAULT_MAX_LINE_BYTES: Final = 8 * 1024 * 1024
"""Default longest line, in bytes without its line ending (8 MiB)."""

DEFAULT_MAX_EVENT_BYTES: Final = 16 * 1024 * 1024
"""Default largest data buffer of one event, in bytes (16 MiB)."""

# Python refuses to convert longer digit strings to int (sys.int_info); a
# reconnection time of 10**4000 ms means nothing, so such a field is ignored.
_MAX_RETRY_DIGITS: Final = 4000
_BOM: Final = b"\xef\xbb\xbf"  # U+FEFF encoded as UTF-8

# Splits the complete lines of a chunk (LF-only by then) into items, in C. The
# first alternative covers the common lines: an optional ``id`` line, an
# optional ``event`` line, a ``data`` line and, if one follows, the blank line
# that dispatches (groups: "id" marker, id, "event" marker, type, data, blank).
# The second is any other single line with its LF (last group), parsed field by
# field in Python. An id holding NUL takes that slow path, where it is ignored.
_ITEMS: Final = re.compile(
    r"(?:(id): ?([^\n\x00]*+)\n)?(?:(event): ?([^\n]*+)\n)?data: ?([^\n]*+)\n(\n)?"
    r"|([^\n]*+\n)"
).findall


class ServerSentEvent(NamedTuple):
    """
    One dispatched event. Immutable (a named tuple, so creating one is cheap).

    Attributes:
        event: the event type; ``"message"`` when the block set none.
        data: the data lines of the block joined with ``"\\n"``.
        id: the stream's last event id when the event was dispatched: ``None``
            if no ``id`` field was ever seen, ``""`` if it was set to empty. It
            persists across events, as the spec says.
        retry: the ``retry`` value (milliseconds) given in this event's block,
            or ``None``.

    Example:
        >>> ev = ServerSentEvent(event="message", data='{"a": 1}', id="7")
        >>> ev.json()
        {'a': 1}
        >>> ev.retry is None
        True
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """
        Parse :attr:`data` as JSON.

        Raises:
            json.JSONDecodeError: the data is not JSON.

        Example:
            >>> ServerSentEvent(data="[1, 2]").json()
            [1, 2]
        """
        return json.loads(self.data)


class SSEComment(NamedTuple):
    """
    A comment line (``: text``), returned only when asked for.

    Servers send comments as heartbeats; they carry no event. ``text`` is what
    follows the colon, with one leading space removed (``": ping"`` gives
    ``"ping"``).

    Example:
        >>> decoder = SSEDecoder()
        >>> decoder.feed_with_comments(b": heartbeat\\n")
        [SSEComment(text='heartbeat')]
    """

    text: str


def _utf8(text: str) -> str:
    """Decode a Latin-1 view of raw bytes as UTF-8, replacing invalid bytes with U+FFFD."""
    return text.encode("latin-1").decode("utf-8", "replace")


def _limit_error(limit: str, size: int, maximum: int) -> SSELimitExceeded:
    what = "line" if limit == "max_line_bytes" else "event"
    return SSELimitExceeded(
        f"event stream {what} of at least {size} bytes exceeds {limit}={maximum}",
        limit=limit,
        size=size,
    )


class SSEDecoder:
    """
    Incremental, sans-IO decoder of a ``text/event-stream`` body.

    Feed it the body's bytes in chunks of any size; it returns each event as
    soon as the blank line that ends it arrives. The WHATWG rules hold under
    every chunking: UTF-8 with U+FFFD replacement (a character split across
    chunks decodes once), one leading BOM ignored, CRLF, LF and CR (only these)
    end lines in any mix, ``:`` starts a comment, one space after the field's
    colon is dropped, ``data`` lines are joined with LF, a block without
    ``data`` dispatches nothing but still commits its ``id``, ``id`` values
    containing NUL are ignored, ``retry`` is honoured only when all ASCII
    digits, and an unterminated block at the end of the stream is discarded.

    Comments are not events: :meth:`feed` drops them, :meth:`feed_with_comments`
    returns them as :class:`SSEComment` items in stream order (for heartbeat
    accounting). Both may be used on one decoder.

    Limits bound memory against a hostile or broken stream: a line longer than
    ``max_line_bytes`` (without its line ending) or an event whose data buffer
    grows past ``max_event_bytes`` raises :class:`SSELimitExceeded` naming the
    limit. Buffering never exceeds the limit plus one chunk. If events were
    already complete in the chunk that breaks a limit, that call returns them and
    the next :meth:`feed` or :meth:`close` raises, so none is lost and
    :attr:`last_event_id` matches what was handed out. The decoder stays broken
    after the error (every :meth:`feed` raises it) until :meth:`close`.

    Args:
        max_line_bytes: longest line accepted, in bytes.
        max_event_bytes: largest data buffer of one event, in bytes (the data
            lines' bytes plus one per line ending).

    Raises:
        InvalidInput: a limit is not a positive integer.

    Attributes:
        last_event_id: the id committed by the last dispatch (``None`` until an
            ``id`` field is dispatched); send it as ``Last-Event-ID`` when
            reconnecting.
        retry: the latest valid ``retry`` value in milliseconds, or ``None``.
            Applied at once, as the spec says, even in a block with no data.

    Example:
        >>> decoder = SSEDecoder()
        >>> decoder.feed(b"id: 1\\nevent: text\\ndata: hel")
        []
        >>> decoder.feed(b"lo\\ndata: world\\r\\n\\r")
        [ServerSentEvent(event='text', data='hello\\nworld', id='1', retry=None)]
        >>> decoder.last_event_id
        '1'
        >>> decoder.close()
    """

    __slots__ = (
        "_at_start",
        "_data",
        "_data_size",
        "_error",
        "_error_raised",
        "_event_type",
        "_id_buffer",
        "_partial",
        "_partial_size",
        "_plain",
        "_retry_block",
        "_skip_lf",
        "last_event_id",
        "max_event_bytes",
        "max_line_bytes",
        "retry",
    )

    def __init__(
        self,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        limits: tuple[tuple[str, object], ...] = (
            ("max_line_bytes", max_line_bytes),
            ("max_event_bytes", max_event_bytes),
        )
        for name, value in limits:
            # Checked at run time too: a float or bool limit is a caller bug.
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InvalidInput(field=name, value=value, expected="a positive int of bytes")
        self.max_line_bytes = max_line_bytes
        self.max_event_bytes = max_event_bytes
        self.last_event_id: str | None = None
        self.retry: int | None = None
        self._id_buffer: str | None = None
        self._error: SSELimitExceeded | None = None
        self._error_raised = False
        self._reset_stream()

    def _reset_stream(self) -> None:
        # State of one stream (one connection); last_event_id and retry outlive it.
        self._at_start = True  # a BOM may still come (a prefix of one waits in _partial)
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF ends nothing
        self._partial: list[bytes] = []  # pieces of the unterminated last line
        self._partial_size = 0
        self._data: list[str] = []  # data lines of the current block (Latin-1 view)
        self._data_size = 0  # bytes of _data counted at the end of earlier chunks
        self._event_type = ""
        self._retry_block: int | None = None
        self._id_buffer = self.last_event_id
        self._plain = False  # see feed()

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """
        Decode the next chunk of the body and return the events it completes.

        Args:
            data: the next bytes of the stream; any size, empty is fine.

        Returns:
            The events dispatched by this chunk, in order (often empty).

        Raises:
            SSELimitExceeded: a line or an event is over its limit.

        Example:
            >>> decoder = SSEDecoder()
            >>> [ev.data for ev in decoder.feed(b"data: a\\n\\n: ping\\ndata: b\\n\\n")]
            ['a', 'b']
        """
        # Fast path for a chunk inside a line (tiny chunks are mostly that):
        # just keep it. _plain means: no BOM pending, no CR pending, not broken.
        if self._plain and b"\n" not in data and b"\r" not in data:
            size = self._partial_size + len(data)
            if size <= self.max_line_bytes:
                self._partial.append(data)
                self._partial_size = size
                return []
        out: list[Any] = []
        self._feed(data, out, False)
        return out

    def feed_with_comments(self, data: bytes) -> list[ServerSentEvent | SSEComment]:
        """
        Like :meth:`feed`, but also return comment lines as :class:`SSEComment` items.

        Example:
            >>> decoder = SSEDecoder()
            >>> items = decoder.feed_with_comments(b": ping\\ndata: x\\n\\n")
            >>> items[0]
            SSEComment(text='ping')
            >>> items[1].data
            'x'
        """
        if self._plain and b"\n" not in data and b"\r" not in data:
            size = self._partial_size + len(data)
            if size <= self.max_line_bytes:
                self._partial.append(data)
                self._partial_size = size
                return []
        out: list[Any] = []
        self._feed(data, out, True)
        return out

    def close(self) -> None:
        """
        End the stream: discard an unterminated line and block (the spec never
        dispatches at end of stream), and ready the decoder for a new connection.

        :attr:`last_event_id` and :attr:`retry` are kept (send the id as
        ``Last-Event-ID`` on reconnect); the id of a discarded block is not
        committed. A limit error not yet raised is raised here, and the broken
        state is cleared.

        Raises:
            SSELimitExceeded: a limit was exceeded and not yet reported.

        Example:
            >>> decoder = SSEDecoder()
            >>> decoder.feed(b"id: 1\\ndata: a\\n\\nid: 2\\ndata: never ended\\n")
            [ServerSentEvent(event='message', data='a', id='1', retry=None)]
            >>> decoder.close()
            >>> decoder.last_event_id
            '1'
        """
        error, raised = self._error, self._error_raised
        self._abandon()
        if error is not None and not raised:
            raise error

    def _abandon(self) -> None:
        # close() without raising: for a stream given up on (an error, a break).
        self._error = None
        self._error_raised = False
        self._reset_stream()

    def _raise_pending(self) -> None:
        if self._error is not None:
            self._error_raised = True
            raise self._error

    def _fail(self, error: SSELimitExceeded, out: list[Any]) -> None:
        # Free what the stream made us buffer; report now unless events from
        # this same chunk must be handed out first.
        self._partial = []
        self._partial_size = 0
        self._data = []
        self._data_size = 0
        self._error = error
        self._plain = False
        if not out:
            self._raise_pending()

    def _feed(self, raw: bytes, out: list[Any], comments: bool) -> None:
        if self._error is not None:
            self._raise_pending()
        if not raw:
            return
        if self._at_start:
            # Ignore one leading BOM, even when it arrives split across chunks.
            if self._partial:
                raw = self._partial.pop() + raw
                self._partial_size = 0
            if len(raw) < 3 and _BOM.startswith(raw):
                self._partial.append(raw)
                self._partial_size = len(raw)
                return
            self._at_start = False
            if raw.startswith(_BOM):
                raw = raw[3:]
                if not raw:
                    return
        if self._skip_lf:
            self._skip_lf = False
            if raw[0] == 0x0A:
                raw = raw[1:]
                if not raw:
                    return
        if b"\r" in raw:
            # From here on LF is the only line end. A CR closing the chunk ends
            # its line now; an LF opening the next chunk is its pair and is dropped.
            self._skip_lf = raw[-1] == 0x0D
            stripped = raw.replace(b"\r", b"") if len(raw) > 256 else b""
            if stripped and raw.count(b"\r\n") == len(raw) - len(stripped):
                # Every CR is in a CRLF: dropping them is cheaper on a big chunk.
                raw = stripped
            else:
                raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        self._plain = not self._skip_lf
        text = raw.decode("latin-1")
        max_line = self.max_line_bytes
        end = text.rfind("\n") + 1
        if not end:
            size = self._partial_size + len(text)
            if size > max_line:
                self._fail(_limit_error("max_line_bytes", size, max_line), out)
                return
            self._partial.append(raw)
            self._partial_size = size
            return

        start = 0
        first: str | None = None
        if self._partial:
            # The unterminated line of earlier chunks ends here: join its pieces once.
            start = text.find("\n") + 1
            first = b"".join(self._partial).decode("latin-1") + text[:start]
            self._partial = []
        tail = text[end:]
        error: SSELimitExceeded | None = None
        # Bytes this call may put into lines: the old unterminated line plus the chunk.
        reach = self._partial_size + len(text)
        if reach > max_line:
            # Only then can a line here be too long; find the first such line
            # and parse only what precedes it.
            if first is not None and len(first) - 1 > max_line:
                error = _limit_error("max_line_bytes", len(first) - 1, max_line)
                first, end, tail = None, start, ""
            else:
                lines = text[start:end].split("\n")
                if max(map(len, lines)) > max_line:
                    pos = start
                    for line in lines:
                        if len(line) > max_line:
                            error = _limit_error("max_line_bytes", len(line), max_line)
                            end, tail = pos, ""
                            break
                        pos += len(line) + 1
            if len(tail) > max_line:
                error = _limit_error("max_line_bytes", len(tail), max_line)
                tail = ""
        self._partial_size = len(tail)
        if tail:
            self._partial.append(raw[len(raw) - len(tail) :])  # Latin-1: same length

        items = _ITEMS(text, start, end) if start < end else []
        if first is not None:
            items.insert(0, ("", "", "", "", "", "", first))
        # An event can only break max_event_bytes if what is buffered plus this
        # chunk is larger: skip the per-event check otherwise.
        check = self._data_size + reach >= self.max_event_bytes
        error = self._parse(items, out, comments, check) or error
        if error is not None:
            self._fail(error, out)

    def _parse(
        self, items: list[tuple[str, ...]], out: list[Any], comments: bool, check: bool
    ) -> SSELimitExceeded | None:
        # The hot loop: locals only. Each item is either a whole common block
        # matched by _ITEMS in C (id?, event?, data, blank line), or one line
        # ``line`` (with its LF) parsed field by field.
        data = self._data
        event_type = self._event_type
        id_buffer = self._id_buffer
        committed = self.last_event_id
        retry_block = self._retry_block
        max_event = self.max_event_bytes
        new = tuple.__new__
        cls = ServerSentEvent
        append = out.append
        counted = len(data)  # data lines already counted in _data_size
        dispatched = False
        error: SSELimitExceeded | None = None
        for has_id, id_value, has_event, event_value, value, blank, line in items:
            if not line:
                # Common lines: the same steps as taking them one by one.
                if has_id:
                    id_buffer = id_value if id_value.isascii() else _utf8(id_value)
                if has_event:
                    event_type = event_value
                if not blank:
                    data.append(value)
                    continue
                if data:
                    data.append(value)
                    value = "\n".join(data)
                    data = []
                    counted = 0
                if check and len(value) >= max_event:  # the buffer also held a final LF
                    error = _limit_error("max_event_bytes", len(value) + 1, max_event)
                    break
                if not value.isascii():
                    value = _utf8(value)
                if event_type:
                    if not event_type.isascii():
                        event_type = _utf8(event_type)
                    append(new(cls, (event_type, value, id_buffer, retry_block)))
                    event_type = ""
                else:
                    append(new(cls, ("message", value, id_buffer, retry_block)))
                committed = id_buffer
                retry_block = None
                dispatched = True
            elif line == "\n":
                # Blank line: dispatch (nothing when no data line came) and commit the id.
                if data:
                    value = "\n".join(data)
                    data = []
                    counted = 0
                    if check and len(value) >= max_event:
                        error = _limit_error("max_event_bytes", len(value) + 1, max_event)
                        break
                    if not value.isascii():
                        value = _utf8(value)
                    if event_type and not event_type.isascii():
                        event_type = _utf8(event_type)
                    append(new(cls, (event_type or "message", value, id_buffer, retry_block)))
                committed = id_buffer
                event_type = ""
                retry_block = None
                dispatched = True
            elif line[0] == ":":
                if comments:
                    text = line[2:-1] if line[1] == " " else line[1:-1]
                    append(SSEComment(text if text.isascii() else _utf8(text)))
            else:
                name, _, value = line[:-1].partition(":")
                if value[:1] == " ":
                    value = value[1:]
                if name == "data":
                    data.append(value)
                elif name == "event":
                    event_type = value
                elif name == "id":
                    if "\0" not in value:
                        id_buffer = value if value.isascii() else _utf8(value)
                elif (
                    name == "retry"
                    and value.isascii()
                    and value.isdigit()
                    and len(value) <= _MAX_RETRY_DIGITS
                ):
                    retry_block = self.retry = int(value)
                # Any other field name is ignored, as the spec says.
        if dispatched:
            self._data_size = 0
        self._data = data
        self._event_type = event_type
        self._id_buffer = id_buffer
        self.last_event_id = committed
        self._retry_block = retry_block
        if error is None and len(data) > counted:
            # Bound a block that keeps growing across chunks; count each line once.
            size = self._data_size + sum(map(len, data[counted:])) + len(data) - counted
            self._data_size = size
            if size > max_event:
                error = _limit_error("max_event_bytes", size, max_event)
        return error


@overload
def aiter_sse(
    chunks: AsyncIterable[bytes],
    *,
    idle_timeout: float | None,
    decoder: SSEDecoder | None = None,
    include_comments: Literal[False] = False,
) -> AsyncGenerator[ServerSentEvent, None]: ...


@overload
def aiter_sse(
    chunks: AsyncIterable[bytes],
    *,
    idle_timeout: float | None,
    decoder: SSEDecoder | None = None,
    include_comments: Literal[True],
) -> AsyncGenerator[ServerSentEvent | SSEComment, None]: ...


async def aiter_sse(
    chunks: AsyncIterable[bytes],
    *,
    idle_timeout: float | None,
    decoder: SSEDecoder | None = None,
    include_comments: bool = False,
) -> AsyncGenerator[Any, None]:
    """
    Iterate the events of an event-stream body given as async byte chunks.

    Any chunk resets the idle timer, so comments and heartbeats count as
    activity; silence longer than ``idle_timeout`` raises
    :class:`StreamIdleTimeout`. However the iteration ends (end of body, error,
    timeout, ``break``), the decoder is closed: an unterminated event is
    discarded, as the spec says, and a decoder passed in is ready for the next
    connection with its :attr:`~SSEDecoder.last_event_id`. The chunk source is
    not closed; its owner (the HTTP response) is.

    Args:
        chunks: the body, e.g. ``response.content.iter_any()`` of aiohttp.
        idle_timeout: seconds without any byte before giving up; ``None`` waits
            forever.
        decoder: a decoder to use, e.g. one kept across reconnections for its
            :attr:`~SSEDecoder.last_event_id`, or one with other limits.
        include_comments: also yield :class:`SSEComment` items (heartbeats).

    Yields:
        Each :class:`ServerSentEvent` (and :class:`SSEComment`) in stream order.

    Raises:
        StreamIdleTimeout: no byte arrived for ``idle_timeout`` seconds.
        SSELimitExceeded: a line or event is over the decoder's limits.
        InvalidInput: ``idle_timeout`` is not positive.

    Example:
        Over an aiohttp response (plain block: it needs a server)::

            async with session.post(url, json=body) as resp:
                async for event in aiter_sse(resp.content.iter_any(), idle_timeout=60):
                    print(event.event, event.json())
    """
    if idle_timeout is not None and not idle_timeout > 0:
        raise InvalidInput(
            field="idle_timeout", value=idle_timeout, expected="seconds > 0, or None"
        )
    if decoder is None:
        decoder = SSEDecoder()
    feed = decoder.feed_with_comments if include_comments else decoder.feed
    iterator = aiter(chunks)
    try:
        while True:
            if idle_timeout is None:
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
            else:
                # move_on_after, not fail_after: a TimeoutError from the source
                # itself must not pass for our idle timeout.
                chunk = b""
                with anyio.move_on_after(idle_timeout) as scope:
                    try:
                        chunk = await anext(iterator)
                    except StopAsyncIteration:
                        break
                if scope.cancelled_caught:
                    raise StreamIdleTimeout(f"no data on the event stream for {idle_timeout} s")
            for item in feed(chunk):
                yield item
            decoder._raise_pending()
    except BaseException:
        # Whatever ended the iteration (an error, a timeout, the caller leaving
        # the loop), the half-read event must not leak into the next connection.
        decoder._abandon()
        raise
    decoder.close()
