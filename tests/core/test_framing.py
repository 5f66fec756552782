"""Response framing in the engine (the same C code, through ResponseFramer)."""
import pytest

from surge.core._engine import ResponseFramer

NGINX_LIKE = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Thu, 26 Nov 2026 19:21:49 GMT\r\n"
              b"Content-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello")
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;name=value;flag\r\nhello\r\n1A\r\n" + b"z" * 26 + b"\r\n"
           b"0;last=1\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n")


def feed_bytewise(framer, data):
    out = []
    for i in range(len(data)):
        out += framer.feed(data[i:i + 1])
    return out


@pytest.mark.parametrize("response", [NGINX_LIKE, CHUNKED], ids=["content-length", "chunked"])
def test_whole_and_byte_by_byte_agree(response):
    assert ResponseFramer().feed(response) == [(200, True)]
    framer = ResponseFramer()
    assert feed_bytewise(framer, response) == [(200, True)]
    assert framer.idle


def test_every_split_point_of_two_responses():
    data = NGINX_LIKE + CHUNKED
    for cut in range(1, len(data)):
        framer = ResponseFramer()
        got = framer.feed(data[:cut]) + framer.feed(data[cut:])
        assert got == [(200, True), (200, True)], cut


def test_many_pipelined_responses_in_one_read():
    data = b"".join(NGINX_LIKE.replace(b"200 OK", f"{200 + i % 3} OK".encode()) for i in range(100))
    got = ResponseFramer().feed(data)
    assert [s for s, _ in got] == [200 + i % 3 for i in range(100)]


def test_body_split_across_reads():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
    framer = ResponseFramer()
    assert framer.feed(head + b"x" * 40000) == []
    assert framer.feed(b"x" * 59999) == []
    assert framer.feed(b"x") == [(200, True)]


def test_close_delimited_body_ends_at_eof():
    framer = ResponseFramer()
    assert framer.feed(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body") == []
    assert framer.feed(b" more body") == []
    assert framer.eof() == 200


def test_head_request_has_no_body_whatever_content_length_says():
    framer = ResponseFramer(head_request=True)
    assert framer.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n" * 2) == [(200, True), (200, True)]


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status):
    resp = f"HTTP/1.1 {status} X\r\nContent-Length: 10\r\n\r\n".encode()
    assert ResponseFramer().feed(resp + NGINX_LIKE) == [(status, True), (200, True)]


def test_1xx_is_skipped():
    data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + NGINX_LIKE
    assert ResponseFramer().feed(data) == [(200, True)]
    assert feed_bytewise(ResponseFramer(), data) == [(200, True)]


@pytest.mark.parametrize("head, keep_alive", [
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.1 200 OK\r\nconnection: CLOSE\r\ncontent-length: 0\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", True),              # bare LF line ends
])
def test_connection_persistence(head, keep_alive):
    assert ResponseFramer().feed(head) == [(200, keep_alive)]


def test_chunked_wins_over_content_length():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert ResponseFramer().feed(data) == [(200, True)]


def test_large_header_block_split_many_times():
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(300)) + \
        b"Content-Length: 2\r\n\r\nok"
    framer = ResponseFramer()
    out = []
    for i in range(0, len(head), 777):
        out += framer.feed(head[i:i + 777])
    assert out == [(200, True)]



def test_a_split_head_then_a_full_read():
    """A head cut at the end of one read, then a read as large as the engine's
    buffer (64 KiB) with the head's rest and much of a large body: framed.  Only
    the head's own bytes count against the 64-KiB head bound (this read used to
    be refused as an over-long head, a parse error)."""
    head = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 100000\r\n\r\n"
    rest = head[20:] + b"x" * 100000 + NGINX_LIKE
    framer = ResponseFramer()
    assert framer.feed(head[:20]) == []
    assert framer.feed(rest[:65536]) == []
    assert framer.feed(rest[65536:]) == [(200, True), (200, True)]


def test_a_head_longer_than_64_kib_is_refused_across_reads():
    framer = ResponseFramer()
    assert framer.feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 65000) == []
    with pytest.raises(ValueError):
        framer.feed(b"a" * 1000 + b"\r\n\r\n")

@pytest.mark.parametrize("garbage", [
    b"hello garbage\r\n\r\n",
    b"HTTP/1.1 2x0 OK\r\n\r\n",
    b"HTTP/2 200\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX",
    b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000,
])
def test_malformed_responses_raise(garbage):
    with pytest.raises(ValueError):
        ResponseFramer().feed(garbage)
