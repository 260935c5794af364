"""The incremental SSE parser: line endings, fields, comments, and any split of a stream."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatepass.errors import UpstreamProtocolError
from gatepass.providers.sse import SseEvent, SseParser


def parse_all(chunks: list[bytes], *, keep_raw: bool = False) -> tuple[list[SseEvent], SseParser]:
    parser = SseParser(keep_raw=keep_raw)
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events, parser


def fields(events: list[SseEvent]) -> list[tuple[str | None, str, str | None, int | None, bool]]:
    return [(e.event, e.data, e.id, e.retry, e.has_data) for e in events]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_events_with_each_line_ending(eol: bytes) -> None:
    stream = eol.join([b"event: ping", b"data: {}", b"", b"data: a", b"data:b", b"", b""])
    events, parser = parse_all([stream])
    assert fields(events) == [("ping", "{}", None, None, True), (None, "a\nb", None, None, True)]
    assert parser.pending == b""


def test_comments_ids_retry_and_unknown_fields() -> None:
    stream = b": keep-alive\n\nid: 7\nretry: 1500\nfoo: bar\ndata\n\nretry: soon\ndata: x\n\n"
    events, _ = parse_all([stream])
    assert fields(events) == [
        (None, "", None, None, False),  # a comment-only block: returned, but not an event with data
        (None, "", "7", 1500, True),  # "data" with no colon is a data line with an empty value
        (None, "x", "7", None, True),  # the last id persists; a bad retry is ignored
    ]


def test_only_one_space_after_the_colon_is_removed() -> None:
    events, _ = parse_all([b"data:  two spaces\n\n"])
    assert events[0].data == " two spaces"


def test_an_id_with_nul_is_ignored_and_a_bom_is_stripped() -> None:
    events, _ = parse_all([b"\xef\xbb\xbfid: a\x00b\ndata: x\n\n"])
    assert fields(events) == [(None, "x", None, None, True)]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    events, parser = parse_all([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"], keep_raw=True)
    assert [e.data for e in events] == ["a", "b"]
    assert b"".join(e.raw for e in events) + parser.pending == b"data: a\r\n\r\ndata: b\r\n\r\n"


def test_an_unfinished_block_is_never_returned_and_stays_pending() -> None:
    events, parser = parse_all([b"data: a\n\ndata: half"], keep_raw=True)
    assert [e.data for e in events] == ["a"]
    assert parser.pending == b"data: half"


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    events, _ = parse_all([b"data: \xff\n\n"])
    assert events[0].data == "\ufffd"


def test_oversized_line_or_block_is_a_protocol_error() -> None:
    parser = SseParser(max_event_bytes=64)
    with pytest.raises(UpstreamProtocolError):
        parser.feed(b"data: " + b"x" * 100)
    raw_parser = SseParser(keep_raw=True, max_event_bytes=64)
    with pytest.raises(UpstreamProtocolError):
        raw_parser.feed(b"data: x\n" * 20)


# -- property: any split of a stream gives the same events -----------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"), max_size=12)
_LINE = st.one_of(
    st.builds(lambda v: f"data: {v}", _TEXT),
    st.builds(lambda v: f"data:{v}", _TEXT),
    st.builds(lambda v: f"event: {v}", _TEXT),
    st.builds(lambda v: f"id: {v}", _TEXT),
    st.builds(lambda v: f":{v}", _TEXT),
    st.builds(lambda v: f"retry: {v}", st.integers(0, 10_000)),
)
_BLOCK = st.lists(_LINE, min_size=1, max_size=4)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """A stream of blocks with mixed line endings (never a \\r followed by a \\n-terminated blank line)."""
    lines: list[str] = []
    for block in draw(st.lists(_BLOCK, max_size=6)):
        lines += [*block, ""]
    if draw(st.booleans()):
        lines += draw(_BLOCK)  # an unfinished trailing block
    out, previous = [], b"\n"
    for line in lines:
        choices = [b"\n", b"\r\n", b"\r"]
        if previous == b"\r" and line == "":
            choices = [b"\r\n", b"\r"]  # "\r" + "\n" would read as one CRLF
        ending = draw(st.sampled_from(choices))
        out.append(line.encode() + ending)
        previous = ending
    prefix = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return prefix + b"".join(out)


@st.composite
def splits(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    stream = draw(streams())
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    bounds = [0, *cuts, len(stream)]
    return stream, [stream[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(splits())
def test_any_split_gives_the_same_events_and_raw_bytes(case: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = case
    whole, _ = parse_all([stream])
    split, parser = parse_all(chunks, keep_raw=True)
    assert fields(split) == fields(whole)
    assert b"".join(e.raw for e in split) + parser.pending == stream


@settings(max_examples=100, deadline=None)
@given(streams())
def test_byte_by_byte_equals_whole(stream: bytes) -> None:
    whole, _ = parse_all([stream])
    single, _ = parse_all([stream[i : i + 1] for i in range(len(stream))])
    assert fields(single) == fields(whole)
