"""Random and mutated HTTP/1.1 response streams, for fuzzing the engine's framing.

`responses(rng)` yields byte strings: well-formed responses of every framing
(Content-Length, chunked with extensions and trailers, close-delimited, HEAD-like,
1xx before the final one, pipelined runs), the same with random mutations (bytes
flipped, inserted, deleted, cut), and plain garbage, including heads past the
64-KiB head limit.  `splits(rng, data)` cuts one into reads at random points.
Used by tests/core/test_framing_fuzz.py (10,000 in the suite) and
bench/fuzz_framing.py (1,000,000 or more).
"""
from __future__ import annotations

import random

STATUSES = (100, 101, 200, 201, 204, 206, 301, 302, 304, 400, 404, 500, 503, 599)
HEAD_LIMIT_BYTES = 65536        # the engine's MAX_HEAD_BYTES (framing.pxi)
TOKENS = (b"HTTP/1.1 ", b"HTTP/1.0 ", b"\r\n", b"\n", b"\r\n\r\n", b":", b" ", b"0", b"9", b"f", b";",
          b"Content-Length: ", b"Transfer-Encoding: chunked", b"Connection: close", b"Location: /x",
          b"Set-Cookie: a=b", b"\x00", b"\xff", b"-1", b"99999999999999999999")


def _head(rng: random.Random, status: int, extra: list[bytes]) -> bytes:
    version = b"HTTP/1.0" if rng.random() < 0.1 else b"HTTP/1.1"
    lines = [version + b" %d OK" % status]
    for _ in range(rng.randint(0, 6)):
        lines.append(b"X-H%d: %s" % (rng.randrange(100), b"v" * rng.randint(0, 40)))
    if rng.random() < 0.2:
        lines.append(b"Location: /next/" + b"p" * rng.randint(0, 200))
    if rng.random() < 0.2:
        lines.append(b"Set-Cookie: s=%d; Path=/" % rng.randrange(1000))
    lines += extra
    rng.shuffle(lines[1:])
    return b"\r\n".join(lines) + b"\r\n\r\n"


def well_formed(rng: random.Random) -> bytes:
    """One response (sometimes a 1xx first) whose framing is valid."""
    return well_formed_with_status(rng)[0]


def well_formed_with_status(rng: random.Random) -> tuple[bytes, int, bool]:
    """(response, its final status, whether its body ends only at EOF)."""
    status = rng.choice(STATUSES[2:])
    body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    kind = rng.random()
    prefix = _head(rng, 100, []) if rng.random() < 0.05 else b""
    if status in (204, 304) or kind < 0.4:
        return prefix + _head(rng, status, [b"Content-Length: %d" % (0 if status in (204, 304) else len(body))]) + \
            (b"" if status in (204, 304) else body), status, False
    if kind < 0.8:
        chunks, rest = [], body
        while rest:
            n = rng.randint(1, len(rest))
            ext = b";e=%d" % n if rng.random() < 0.2 else b""
            chunks.append(b"%x%s\r\n%s\r\n" % (n, ext, rest[:n]))
            rest = rest[n:]
        trailers = b"X-T: 1\r\n" if rng.random() < 0.2 else b""
        return prefix + _head(rng, status, [b"Transfer-Encoding: chunked"]) + b"".join(chunks) + b"0\r\n" + \
            trailers + b"\r\n", status, False
    return prefix + _head(rng, status, [b"Connection: close"]) + body, status, True     # ends at EOF


def mutate(rng: random.Random, data: bytes) -> bytes:
    """`data` with 1-8 random edits: flip, insert (a byte or a token), delete, duplicate, cut."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        at = rng.randrange(len(out) + 1)
        if op < 0.3 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif op < 0.55:
            out[at:at] = rng.choice(TOKENS)
        elif op < 0.7:
            del out[at:at + rng.randint(1, 8)]
        elif op < 0.85:
            out[at:at] = out[at:at + rng.randint(1, 64)] * rng.randint(1, 4)
        else:
            del out[at:]
    return bytes(out)


def oversized_head(rng: random.Random) -> bytes:
    """A head that never ends within the limit: one huge header, or very many."""
    if rng.random() < 0.5:
        return b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (HEAD_LIMIT_BYTES + rng.randint(1, 5000))
    return b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * (HEAD_LIMIT_BYTES // 6 + rng.randint(1, 500))


def garbage(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))


def responses(rng: random.Random):
    """An endless stream of (kind, bytes, statuses) to feed a fresh framer;
    `statuses` (valid streams only, else None) are the responses it holds, in
    order, the last one possibly ending only at EOF."""
    while True:
        r = rng.random()
        if r < 0.35:
            parts, statuses = [], []
            for _ in range(rng.randint(1, 4)):          # pipelined; a close-delimited one ends the stream
                data, status, at_eof = well_formed_with_status(rng)
                parts.append(data)
                statuses.append(status)
                if at_eof:
                    break
            yield "valid", b"".join(parts), statuses
        elif r < 0.9:
            yield "mutated", mutate(rng, b"".join(well_formed(rng) for _ in range(rng.randint(1, 3)))), None
        elif r < 0.98:
            yield "garbage", garbage(rng), None
        else:
            yield "oversized", oversized_head(rng), None


# What one framer may hold on the heap: a split head (64 KiB), a captured
# response (1 MiB, extract.pxi), a Location (8 KiB), and realloc's rounding.
MAX_HELD_BYTES = HEAD_LIMIT_BYTES + 2 * 1048576 + 8192


def frame_stream(framer_class, rng: random.Random, data: bytes, pieces: list[bytes]):
    """Feed `pieces` to a fresh framer (capture and Location on at random);
    returns (statuses of the responses that ended, 'parse' or 'eof' or 'open',
    the most bytes it held).  Raises only on a framing bug."""
    framer = framer_class(capture=rng.random() < 0.5, want_location=rng.random() < 0.5)
    statuses, held = [], 0
    for piece in pieces:
        ended, ok = framer.feed_until_malformed(piece)
        statuses += [status for status, _ in ended]
        if not ok:
            return statuses, "parse", max(held, framer.held_bytes)
        held = max(held, framer.held_bytes)
    ended = framer.eof()
    if ended is not None:
        statuses.append(ended)
        return statuses, "eof", held
    return statuses, "open", held


def splits(rng: random.Random, data: bytes) -> list[bytes]:
    """`data` cut into 1-6 reads at random points (sometimes byte by byte at the start)."""
    if not data:
        return [data]
    cuts = sorted(rng.randrange(1, len(data) + 1) for _ in range(rng.randint(0, 5)))
    if rng.random() < 0.05:
        cuts = list(range(1, min(len(data), 40))) + cuts
    pieces, last = [], 0
    for cut in cuts + [len(data)]:
        if cut > last:
            pieces.append(data[last:cut])
            last = cut
    return pieces
