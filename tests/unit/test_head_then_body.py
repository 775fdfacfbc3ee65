"""``HeadThenBody``: a response's head and its body leave in one write, nothing waits longer
than one turn of the event loop, big writes are never held."""

from __future__ import annotations

import asyncio

import pytest

from sqltide.server_protocol import HeadThenBody


class Recording(asyncio.Transport):
    """A transport that keeps what is written (each ``write`` call separately)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name == "peername" else default


@pytest.fixture
def loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _turn(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))


def test_head_and_body_written_in_one_turn_go_out_together(loop: asyncio.AbstractEventLoop) -> None:
    raw = Recording()
    t = HeadThenBody(raw, loop)
    t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert raw.writes == []  # held for company
    t.write(b"{}")
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    _turn(loop)  # the scheduled flush finds nothing left
    assert len(raw.writes) == 1


def test_a_lone_small_write_leaves_at_the_end_of_the_turn(loop: asyncio.AbstractEventLoop) -> None:
    raw = Recording()
    t = HeadThenBody(raw, loop)
    t.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    _turn(loop)
    assert raw.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_big_writes_pass_straight_through(loop: asyncio.AbstractEventLoop) -> None:
    raw = Recording()
    t = HeadThenBody(raw, loop)
    big = b"x" * (HeadThenBody.HOLD_MAX + 1)
    t.write(big)
    assert raw.writes == [big]
    t.write(b"head")
    t.write(big)  # joined with the held head, sent at once
    assert raw.writes == [big, b"head" + big]


def test_close_sends_what_is_held_first_and_the_rest_is_delegated(
    loop: asyncio.AbstractEventLoop,
) -> None:
    raw = Recording()
    t = HeadThenBody(raw, loop)
    t.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    t.close()
    assert raw.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and raw.closed
    assert t.get_extra_info("peername") == ("127.0.0.1", 1)
    t.write(b"late")
    _turn(loop)  # a closing transport gets nothing more
    assert raw.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"]
