"""
The SSE decoder, rule by rule (WHATWG "parsing an event stream"), under every chunking.

Each rule test names the rule it checks. Every vector is fed as one chunk, split
in two at every byte boundary, and as 1-byte chunks (the idea of openai-python
``tests/test_sse_framing.py::test_every_chunk_boundary``). Hypothesis then
checks that any chunking of any byte stream gives the same events and final id
as one chunk, and the same as a literal transcription of the spec below.
"""

from __future__ import annotations

import itertools
import re
import tracemalloc
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aivideo_async._exceptions import InvalidInput, SSELimitExceeded
from aivideo_async._sse import ServerSentEvent, SSEComment, SSEDecoder

Item = ServerSentEvent | SSEComment


def ev(
    data: str, event: str = "message", id: str | None = None, retry: int | None = None
) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=data, id=id, retry=retry)


# ---------------------------------------------------------------------------
# Helpers


def chunkings(stream: bytes) -> Iterator[list[bytes]]:
    """One chunk, every split in two, and 1-byte chunks."""
    yield [stream]
    for index in range(len(stream) + 1):
        yield [stream[:index], stream[index:]]
    yield [stream[i : i + 1] for i in range(len(stream))]


def decode(
    chunks: Sequence[bytes], *, comments: bool = False, **limits: int
) -> tuple[list[Item], SSEDecoder]:
    decoder = SSEDecoder(**limits)
    items: list[Item] = []
    for chunk in chunks:
        items += decoder.feed_with_comments(chunk) if comments else decoder.feed(chunk)
    decoder.close()
    return items, decoder


def assert_every_chunking(
    stream: bytes,
    expected: list[Item],
    *,
    last_event_id: str | None = None,
    comments: bool = False,
) -> None:
    for chunks in chunkings(stream):
        items, decoder = decode(chunks, comments=comments)
        assert items == expected, chunks
        assert decoder.last_event_id == last_event_id, chunks


def decode_until_error(
    chunks: Sequence[bytes], **limits: int
) -> tuple[list[Item], SSELimitExceeded | None]:
    decoder = SSEDecoder(**limits)
    items: list[Item] = []
    try:
        for chunk in chunks:
            items += decoder.feed(chunk)
        decoder.close()
    except SSELimitExceeded as exc:
        return items, exc
    return items, None


# ---------------------------------------------------------------------------
# A literal transcription of the spec, line by line, used as the oracle.


def reference(
    stream: bytes, *, comments: bool = False
) -> tuple[list[Item], str | None, int | None]:
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split("\r\n|\r|\n", text)
    lines.pop()  # an unterminated last line is discarded (often "")
    items: list[Item] = []
    data = ""
    event_type = ""
    id_buffer: str | None = None
    last_event_id: str | None = None
    retry: int | None = None
    block_retry: int | None = None
    for line in lines:
        if line == "":
            last_event_id = id_buffer
            if data != "":
                data = data.removesuffix("\n")
                items.append(
                    ServerSentEvent(event_type or "message", data, last_event_id, block_retry)
                )
            data = ""
            event_type = ""
            block_retry = None
            continue
        if line.startswith(":"):
            if comments:
                items.append(SSEComment(line[1:].removeprefix(" ")))
            continue
        if ":" in line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
        else:
            name, value = line, ""
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
        elif name == "id":
            if "\0" not in value:
                id_buffer = value
        elif (
            name == "retry"
            and value
            and all(c in "0123456789" for c in value)
            and len(value) <= 4000
        ):
            retry = block_retry = int(value)
    return items, last_event_id, retry


# ---------------------------------------------------------------------------
# Rules


def test_rule_utf8_with_replacement_decoded_incrementally() -> None:
    """Rule: UTF-8 with U+FFFD replacement; a character split across chunks decodes once."""
    stream = (
        "data: é€😀\n\n".encode()
        + b"data: a\xffb\xe2\x82\n\n"
        + b"event: \xf0\x9f\x98\x80\ndata: x\n\n"
    )
    assert_every_chunking(
        stream,
        [ev("é€😀"), ev("a\ufffdb\ufffd"), ev("x", event="😀")],
    )


def test_rule_invalid_utf8_next_to_line_end_and_in_id() -> None:
    """Rule: U+FFFD replacement never swallows a line end; ids and comments decode too."""
    stream = b"id: \xc3\xa9\xe2\ndata: \xe2\x82\r\n\r\n:\xc3\n"
    assert_every_chunking(
        stream,
        [ev("\ufffd", id="é\ufffd"), SSEComment("\ufffd")],
        last_event_id="é\ufffd",
        comments=True,
    )


def test_rule_one_leading_bom_is_stripped() -> None:
    """Rule: one leading BOM is stripped, even when split across chunks."""
    assert_every_chunking(b"\xef\xbb\xbfdata: a\n\n", [ev("a")])


def test_rule_only_one_bom_is_stripped() -> None:
    """Rule: only one BOM: a second one is part of the first field name (ignored field)."""
    assert_every_chunking(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n", [ev("b")])


def test_rule_bom_prefix_that_is_not_a_bom() -> None:
    """Rule: bytes that only start like a BOM are content, not dropped."""
    assert_every_chunking(
        b"\xef\xbbdata: a\n\ndata: b\n\n:\xef\n", [ev("b"), SSEComment("\ufffd")], comments=True
    )


def test_rule_bom_only_at_stream_start() -> None:
    """Rule: a BOM after the start is data (U+FEFF kept)."""
    assert_every_chunking(b"data: \xef\xbb\xbfa\n\n", [ev("\ufeffa")])


def test_rule_crlf_lf_cr_end_lines_in_any_mix() -> None:
    """Rule: CRLF, LF and CR end a line in any mix (CRLF split across chunks is one end)."""
    stream = b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\rdata: e\n\n\r\n"
    assert_every_chunking(stream, [ev("a\nb\nc"), ev("d"), ev("e")])


def test_rule_cr_as_final_byte_ends_a_line() -> None:
    """Rule: a CR as the very last byte ends a line (and dispatches here)."""
    assert_every_chunking(b"data: a\r\r", [ev("a")])
    assert_every_chunking(b"data: a\n\r", [ev("a")])


def test_rule_lf_after_cr_across_chunks_is_one_line_end() -> None:
    """Rule: CR then LF in the next chunk is one line end, not two (no extra blank line)."""
    items, _ = decode([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
    assert items == [ev("a\nb")]


def test_rule_no_other_character_ends_a_line() -> None:
    """Rule: U+2028, U+2029, U+0085, VT, FF, FS, GS, RS do not end a line."""
    odd = "\u2028\u2029\u0085\x0b\x0c\x1c\x1d\x1e"
    stream = f"data: a{odd}b\n\nid: 1{odd}\n\n".encode()
    assert_every_chunking(stream, [ev(f"a{odd}b")], last_event_id=f"1{odd}")


def test_rule_empty_line_dispatches() -> None:
    """Rule: an empty line dispatches the event; nothing before it does."""
    assert_every_chunking(b"data: a\n\ndata: b\n\n", [ev("a"), ev("b")])
    assert_every_chunking(b"data: a\ndata: b\n", [])


def test_rule_colon_starts_a_comment() -> None:
    """Rule: ':' starts a comment; feed() drops it, feed_with_comments() returns it."""
    stream = b": heartbeat\n:\n:  two spaces\ndata: a\n: inside\n\n"
    assert_every_chunking(stream, [ev("a")])
    assert_every_chunking(
        stream,
        [
            SSEComment("heartbeat"),
            SSEComment(""),
            SSEComment(" two spaces"),
            SSEComment("inside"),
            ev("a"),
        ],
        comments=True,
    )


def test_rule_comment_does_not_end_or_reset_an_event() -> None:
    """Rule: comments carry no field and no dispatch (heartbeats between data lines)."""
    assert_every_chunking(
        b"event: t\n: hb\nid: 9\n: hb\ndata: a\n\n", [ev("a", event="t", id="9")], last_event_id="9"
    )


def test_rule_line_without_colon_is_field_with_empty_value() -> None:
    """Rule: a line with no colon is a field name with an empty value."""
    stream = b"data\n\nid: 3\nid\ndata\ndata\n\nevent\ndata: x\n\nretry\ndata: y\n\n"
    assert_every_chunking(
        stream, [ev(""), ev("\n", id=""), ev("x", id=""), ev("y", id="")], last_event_id=""
    )


def test_rule_exactly_one_space_after_colon_is_stripped() -> None:
    """Rule: one space after the colon is stripped, not two, and no other whitespace."""
    stream = b"data:a\n\ndata: a\n\ndata:  a\n\ndata:\ta\n\nevent:  t\nid:  7\ndata: b \n\n"
    assert_every_chunking(
        stream,
        [ev("a"), ev("a"), ev(" a"), ev("\ta"), ev("b ", event=" t", id=" 7")],
        last_event_id=" 7",
    )


def test_rule_data_lines_join_with_lf_and_one_trailing_lf_removed() -> None:
    """Rule: data appends value + LF; one trailing LF is removed at dispatch."""
    stream = b"data: a\ndata:\ndata: b\n\ndata:\ndata:\n\ndata:\n\n"
    assert_every_chunking(stream, [ev("a\n\nb"), ev("\n"), ev("")])


def test_rule_empty_data_buffer_dispatches_nothing_but_commits_id() -> None:
    """Rule: a block without data (event/id/retry only) dispatches nothing; its id is committed."""
    stream = b"id: 1\nevent: t\nretry: 5\n\ndata: a\n\nid: 2\n\n"
    assert_every_chunking(stream, [ev("a", id="1")], last_event_id="2")


def test_rule_event_sets_type_default_message() -> None:
    """Rule: event sets the type for one event; default and empty type mean 'message'."""
    stream = (
        b"event: update\ndata: a\n\ndata: b\n\nevent:\ndata: c\n\nevent: x\nevent: y\ndata: d\n\n"
    )
    assert_every_chunking(stream, [ev("a", event="update"), ev("b"), ev("c"), ev("d", event="y")])


def test_rule_event_type_of_a_dataless_block_does_not_leak() -> None:
    """Rule: the type buffer is reset by every blank line, even when nothing dispatches."""
    assert_every_chunking(b"event: t\n\ndata: a\n\n", [ev("a")])


def test_rule_id_with_nul_is_ignored() -> None:
    """Rule: an id field containing NUL is ignored (the previous id stays)."""
    stream = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\nid: \x00\ndata: c\n\n"
    assert_every_chunking(
        stream, [ev("a", id="1"), ev("b", id="1"), ev("c", id="1")], last_event_id="1"
    )


def test_rule_id_persists_across_events() -> None:
    """Rule: the id persists; None until set, "" when set to empty."""
    stream = b"data: a\n\nid: 7\ndata: b\n\ndata: c\n\nid\ndata: d\n\ndata: e\n\n"
    assert_every_chunking(
        stream,
        [ev("a"), ev("b", id="7"), ev("c", id="7"), ev("d", id=""), ev("e", id="")],
        last_event_id="",
    )


def test_rule_retry_only_when_ascii_digits() -> None:
    """Rule: retry is honoured only when the value is ASCII digits only."""
    stream = (
        "retry: 1500\ndata: a\n\nretry: 15x\ndata: b\n\nretry: -1\ndata: c\n\n"
        "retry: ١٢\ndata: d\n\nretry: ²\ndata: e\n\nretry:\ndata: f\n\nretry:  7\ndata: g\n\n"
    ).encode()
    assert_every_chunking(
        stream, [ev("a", retry=1500), ev("b"), ev("c"), ev("d"), ev("e"), ev("f"), ev("g")]
    )
    _, decoder = decode([stream])
    assert decoder.retry == 1500


def test_rule_retry_with_absurdly_many_digits_is_ignored_not_a_crash() -> None:
    """Rule: retry digits beyond Python's int conversion limit are ignored (documented)."""
    items, decoder = decode([b"retry: " + b"9" * 5000 + b"\ndata: a\n\nretry: 0007\ndata: b\n\n"])
    assert items == [ev("a"), ev("b", retry=7)]
    assert decoder.retry == 7


def test_rule_retry_applies_without_data() -> None:
    """Rule: retry is applied when seen, even in a block that dispatches nothing."""
    decoder = SSEDecoder()
    assert decoder.feed(b"retry: 250\n\n") == []
    assert decoder.retry == 250


def test_rule_unterminated_block_at_end_is_discarded_with_its_id() -> None:
    """Rule: an unterminated block at end of stream is discarded, its id included."""
    assert_every_chunking(
        b"id: 1\ndata: a\n\nid: 2\ndata: b\n", [ev("a", id="1")], last_event_id="1"
    )
    assert_every_chunking(b"id: 1\ndata: a\n\nid: 2\ndata: b", [ev("a", id="1")], last_event_id="1")


def test_rule_close_readies_a_reconnection_keeping_the_id() -> None:
    """Rule: after close() the next stream starts fresh (BOM allowed) and the id carries over."""
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\ndata: a\n\nid: 2\ndata: lost") == [ev("a", id="1")]
    decoder.close()
    assert decoder.feed(b"\xef\xbb\xbfdata: b\n\n") == [ev("b", id="1")]
    assert decoder.last_event_id == "1"


def test_rule_line_limit_raises_naming_the_limit() -> None:
    """Rule: a line over max_line_bytes (bytes, without its ending) raises, naming the limit."""
    ok = b"data: 1234\n\n"  # a 10-byte line
    for chunks in chunkings(ok + b"data: 12345\n\n"):
        items, error = decode_until_error(chunks, max_line_bytes=10)
        assert items == [ev("1234")], chunks
        assert error is not None
        assert error.limit == "max_line_bytes"


def test_rule_line_limit_counts_bytes_not_characters() -> None:
    """Rule: the line limit counts UTF-8 bytes: 'data: ' + 2 x 'é' is 10 bytes."""
    assert decode_until_error([b"data: \xc3\xa9\xc3\xa9\n\n"], max_line_bytes=10) == (
        [ev("éé")],
        None,
    )
    _, error = decode_until_error([b"data: \xc3\xa9\xc3\xa9!\n\n"], max_line_bytes=10)
    assert error is not None


def test_rule_line_limit_applies_to_an_unterminated_line() -> None:
    """Rule: an over-long line raises before its end arrives, and after earlier events."""
    for chunks in chunkings(b"data: a\n\n" + b"x" * 12):
        items, error = decode_until_error(chunks, max_line_bytes=10)
        assert items == [ev("a")], chunks
        assert error is not None
        assert error.limit == "max_line_bytes"


def test_rule_event_limit_raises_naming_the_limit() -> None:
    """Rule: an event whose data buffer (value + LF per line) exceeds max_event_bytes raises."""
    assert decode_until_error([b"data: 1234\ndata: 1234\n\n"], max_event_bytes=10) == (
        [ev("1234\n1234")],
        None,
    )
    for chunks in chunkings(b"data: a\n\ndata: 1234\ndata: 12345\n\ndata: b\n\n"):
        items, error = decode_until_error(chunks, max_event_bytes=10)
        assert items == [ev("a")], chunks
        assert error is not None
        assert error.limit == "max_event_bytes"


def test_rule_event_limit_bounds_a_block_that_never_ends() -> None:
    """Rule: endless data lines without a blank line raise instead of buffering forever."""
    decoder = SSEDecoder(max_event_bytes=1000)
    lines = iter([b"data: 0123456789\n"] * 1000)
    with pytest.raises(SSELimitExceeded) as info:  # noqa: PT012  (the loop is under test)
        for line in lines:
            decoder.feed(line)
    assert next(lines, None) is not None  # it stopped early
    assert info.value.limit == "max_event_bytes"
    assert info.value.size is not None
    assert 1000 < info.value.size <= 1000 + 17


def test_rule_unbounded_line_raises_without_memory_growth() -> None:
    """Rule: memory never grows with an unbounded line (bounded by the limit plus one chunk)."""
    limit = 256 * 1024
    decoder = SSEDecoder(max_line_bytes=limit)
    chunk = b"x" * 1024
    fed = 0
    tracemalloc.start()
    try:
        with pytest.raises(SSELimitExceeded) as info:  # noqa: PT012  (the loop is under test)
            while fed < 64 * limit:  # without the limit this would buffer 16 MiB
                decoder.feed(chunk)
                fed += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
        # The broken decoder refuses more input instead of buffering it.
        for _ in range(100):
            with pytest.raises(SSELimitExceeded):
                decoder.feed(chunk)
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.limit == "max_line_bytes"
    assert fed == limit  # it raised on the chunk that crossed the limit
    assert peak < 3 * limit
    assert current < limit


def test_rule_broken_decoder_raises_until_closed() -> None:
    """Rule: after a limit error every feed raises it; close() clears the broken state."""
    decoder = SSEDecoder(max_line_bytes=4)
    with pytest.raises(SSELimitExceeded):
        decoder.feed(b"data: long\n\n")
    with pytest.raises(SSELimitExceeded):
        decoder.feed(b"\n")
    decoder.close()
    assert decoder.feed(b"data\n\n") == [ev("")]


def test_rule_limit_after_events_in_same_chunk_returns_them_first() -> None:
    """Rule: events complete before the violation are returned; the next call raises."""
    decoder = SSEDecoder(max_line_bytes=10)
    assert decoder.feed(b"id: 1\ndata: a\n\ndata: far too long\n\n") == [ev("a", id="1")]
    assert decoder.last_event_id == "1"
    with pytest.raises(SSELimitExceeded):
        decoder.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_line_bytes": 0}, "max_line_bytes"),
        ({"max_event_bytes": -1}, "max_event_bytes"),
        ({"max_line_bytes": 1.5}, "max_line_bytes"),
        ({"max_event_bytes": True}, "max_event_bytes"),
    ],
)
def test_bad_limits_raise_invalid_input(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        SSEDecoder(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_event_json_helper_and_immutability() -> None:
    event = ServerSentEvent(data='{"parts": [1]}')
    assert event.json() == {"parts": [1]}
    with pytest.raises(AttributeError):
        event.data = "x"  # type: ignore[misc]


def test_adk_style_stream_matches_reference() -> None:
    """A NemoVideo/ADK-like stream: id/event/data blocks, heartbeats, an error event."""
    blocks = []
    for i in range(60):
        if i % 25 == 0:
            blocks.append(": heartbeat\n")
        payload = '{"content":{"parts":[{"text":"chunk %d é"}],"role":"model"},"id":"q%d"}' % (i, i)
        blocks.append(f"id: {i}\nevent: message\ndata: {payload}\n\n")
    blocks.append('data: {"error": "boom"}\n\n')
    stream = "".join(blocks).encode()
    expected, last_id, _ = reference(stream, comments=True)
    assert len(expected) == 64  # 60 events, 3 heartbeats, 1 error
    for size in (1, 3, 7, 64, 4096):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        items, decoder = decode(chunks, comments=True)
        assert items == expected
        assert decoder.last_event_id == last_id == "59"


# ---------------------------------------------------------------------------
# Properties

TOKENS = [
    b"data",
    b"data:",
    b"data: ",
    b"id",
    b"id: ",
    b"event",
    b"event:",
    b"retry: ",
    b"retry:",
    b":",
    b": ",
    b" ",
    b"x",
    b"12",
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xef",
    b"\xe2\x82\xac",
    b"\xe2\x82",
    b"\x82",
    b"\xff",
    b"\xf0\x9f\x98\x80",
    "\u2028".encode(),
    "\u0085".encode(),
    b"\x0b\x0c",
    "\u0661".encode(),  # ARABIC-INDIC DIGIT ONE: a digit, not ASCII
]

# Whole lines, so that realistic blocks (id/event/data runs, blank lines) are common.
sse_lines = st.builds(
    lambda name, colon, value, end: name + colon + value + end,
    st.sampled_from([b"data", b"id", b"event", b"retry", b"", b"dat", b"ids", b"\xef\xbb\xbf"]),
    st.sampled_from([b": ", b":", b"", b":  "]),
    st.lists(st.sampled_from([*TOKENS[10:], b"7", b"abc", b"\xc3\xa9"]), max_size=4).map(b"".join),
    st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n", b"\r\n\r\n", b""]),
)

sse_streams = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join),
    st.lists(sse_lines, max_size=30).map(b"".join),
    st.binary(max_size=200),
)


@st.composite
def chunked(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    stream = draw(sse_streams)
    cuts = sorted(draw(st.sets(st.integers(0, len(stream)), max_size=len(stream) + 1)))
    bounds = [0, *cuts, len(stream)]
    return stream, [stream[a:b] for a, b in itertools.pairwise(bounds)]


@given(chunked())
def test_property_any_chunking_gives_the_same_events_and_id(
    case: tuple[bytes, list[bytes]],
) -> None:
    stream, chunks = case
    whole, one = decode([stream], comments=True)
    split, many = decode(chunks, comments=True)
    assert split == whole
    assert (many.last_event_id, many.retry) == (one.last_event_id, one.retry)


@given(chunked())
def test_property_matches_the_literal_spec(case: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = case
    items, decoder = decode(chunks, comments=True)
    assert (items, decoder.last_event_id, decoder.retry) == reference(stream, comments=True)
    events, _ = decode(chunks)
    assert events == [item for item in items if isinstance(item, ServerSentEvent)]


@given(
    st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(TOKENS)), max_size=40),
    st.integers(1, 64),
    st.integers(1, 64),
)
def test_property_fuzz_only_limit_errors(
    chunks: list[bytes], max_line: int, max_event: int
) -> None:
    """Arbitrary bytes never raise anything but SSELimitExceeded, and the limits hold."""
    decoder = SSEDecoder(max_line_bytes=max_line, max_event_bytes=max_event)
    limit: str | None = None
    try:
        for chunk in chunks:
            for item in decoder.feed_with_comments(chunk):
                if isinstance(item, ServerSentEvent):
                    # Characters never outnumber the bytes they came from.
                    assert len(item.data) + 1 <= max_event
        decoder.close()
    except SSELimitExceeded as exc:
        limit = exc.limit
    assert limit in {None, "max_line_bytes", "max_event_bytes"}


@given(chunked(), st.integers(1, 40), st.integers(1, 40))
def test_property_limit_errors_do_not_depend_on_chunking(
    case: tuple[bytes, list[bytes]], max_line: int, max_event: int
) -> None:
    """Whether a limit breaks, which one, and the events before it: the same for any chunking."""
    stream, chunks = case
    limits = {"max_line_bytes": max_line, "max_event_bytes": max_event}
    whole_items, whole_error = decode_until_error([stream], **limits)
    split_items, split_error = decode_until_error(chunks, **limits)
    assert split_items == whole_items
    assert (split_error is None) == (whole_error is None)
    if whole_error is not None and split_error is not None:
        assert split_error.limit == whole_error.limit
