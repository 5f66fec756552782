# HTTP/1.1 response framing, included into _engine.pyx.
#
# frame_step() consumes bytes of one connection's stream until either the
# buffer is used up or one response has ended (framer.complete).  It keeps no
# bytes between reads, except a partial header block (copied to `carry`,
# rare: a header block split across reads).  Only what framing needs is read
# from the head: status, Content-Length, Transfer-Encoding, Connection, and
# Set-Cookie when the framer has a cookie jar (cookies.pxi).
# Steps that check or extract read headers from the captured head
# (extract.pxi: header_value); framing never looks at other headers.

from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memchr, memcpy

DEF MAX_HEAD_BYTES = 65536


cdef inline void framer_reset(Framer* f) noexcept:
    """Ready for the next response on a fresh or continuing connection."""
    f.state = F_HEAD
    f.status = 0
    f.remaining = 0
    f.hex_digits = 0
    f.line_len = 0
    f.keep_alive = True
    f.complete = False
    f.carry_len = 0
    f.cap_len = 0
    f.cap_head_len = 0
    f.location_len = 0


cdef inline void framer_free(Framer* f) noexcept:
    free(f.carry)
    f.carry = NULL
    f.carry_cap = 0
    f.carry_len = 0
    free(f.location)
    f.location = NULL
    f.location_cap = 0
    f.location_len = 0


cdef inline bint ieq_prefix(const char* p, Py_ssize_t n, const char* lower) noexcept:
    """p[0:len(lower)] equals `lower`, ASCII case-insensitively."""
    cdef Py_ssize_t i = 0
    while lower[i] != 0:
        if i >= n or (p[i] | 0x20) != lower[i]:
            return False
        i += 1
    return True


cdef inline bint icontains(const char* p, Py_ssize_t n, const char* lower, Py_ssize_t m) noexcept:
    cdef Py_ssize_t i
    for i in range(n - m + 1):
        if ieq_prefix(p + i, n - i, lower):
            return True
    return False


cdef struct HeadFacts:
    # What the headers say about the body.
    bint chunked
    bint has_length
    int64_t length


cdef Py_ssize_t parse_head(Framer* f, const char* p, Py_ssize_t n) noexcept:
    """Parse a status line + headers at p.  Returns the bytes of the whole
    head (> 0), 0 when incomplete, -1 when malformed."""
    cdef const char* eol = <const char*>memchr(p, b'\n', n)
    if eol == NULL:
        return 0
    if not parse_status_line(f, p, eol - p):
        return -1
    cdef HeadFacts facts
    facts.chunked = False
    facts.has_length = False
    facts.length = 0
    cdef Py_ssize_t pos = (eol - p) + 1, line_len
    cdef const char* line
    while True:
        eol = <const char*>memchr(p + pos, b'\n', n - pos)
        if eol == NULL:
            return 0
        line = p + pos
        line_len = eol - line
        if line_len > 0 and line[line_len - 1] == b'\r':
            line_len -= 1
        pos = (eol - p) + 1
        if line_len == 0:
            break                       # empty line: end of the head
        if not parse_header_line(f, line, line_len, &facts):
            return -1
    choose_body_framing(f, &facts)
    return pos


cdef inline bint parse_status_line(Framer* f, const char* p, Py_ssize_t line_len) noexcept:
    """"HTTP/1.x SSS ..." at least; sets the status and the version's keep-alive default."""
    if line_len < 12 or not ieq_prefix(p, 7, b"http/1.") or p[8] != b' ':
        return False
    cdef int d0 = p[9] - 48, d1 = p[10] - 48, d2 = p[11] - 48
    if not (0 <= d0 <= 9 and 0 <= d1 <= 9 and 0 <= d2 <= 9) or d0 < 1 or d0 > 5:
        return False
    f.status = d0 * 100 + d1 * 10 + d2
    f.keep_alive = p[7] != b'0'         # HTTP/1.0 closes unless it says keep-alive
    return True


cdef inline bint parse_header_line(Framer* f, const char* line, Py_ssize_t line_len, HeadFacts* facts) noexcept:
    """One header line: only Content-Length, Connection and Transfer-Encoding
    matter for framing.  False: malformed."""
    cdef char c = line[0] | 0x20
    if c == b'c':
        if ieq_prefix(line, line_len, b"content-length:"):
            facts.has_length = True
            return parse_length(line, line_len, &facts.length)
        if ieq_prefix(line, line_len, b"connection:"):
            if icontains(line + 11, line_len - 11, b"close", 5):
                f.keep_alive = False
            elif icontains(line + 11, line_len - 11, b"keep-alive", 10):
                f.keep_alive = True
    elif c == b't':
        if ieq_prefix(line, line_len, b"transfer-encoding:") and icontains(line + 18, line_len - 18, b"chunked", 7):
            facts.chunked = True
    elif c == b's' and f.cookie_jar != NULL and ieq_prefix(line, line_len, b"set-cookie:"):
        jar_capture(f.cookie_jar, line + 11, line_len - 11)     # cookies.pxi
    elif c == b'l' and f.want_location and ieq_prefix(line, line_len, b"location:"):
        keep_location(f, line + 9, line_len - 9)        # redirect.pxi
    return True


cdef inline bint parse_length(const char* line, Py_ssize_t line_len, int64_t* length) noexcept:
    """The decimal value of a Content-Length line (at most 15 digits)."""
    cdef Py_ssize_t value_at = 15, i
    while value_at < line_len and (line[value_at] == b' ' or line[value_at] == b'\t'):
        value_at += 1
    if value_at == line_len:
        return False
    length[0] = 0
    for i in range(value_at, line_len):
        if line[i] == b' ' or line[i] == b'\t':
            break
        if not (b'0' <= line[i] <= b'9') or length[0] > 100000000000000:
            return False
        length[0] = length[0] * 10 + (line[i] - 48)
    return True


cdef inline void choose_body_framing(Framer* f, HeadFacts* facts) noexcept:
    """How the body ends, in RFC 9112 order."""
    if f.head_request or f.status == 204 or f.status == 304 or f.status < 200:
        f.state = F_HEAD
        f.complete = f.status >= 200 or f.status == 101   # 1xx (but 101) is skipped
    elif facts.chunked:
        f.state = F_CHUNK_SIZE
        f.remaining = 0
        f.hex_digits = 0
    elif facts.has_length:
        if facts.length == 0:
            f.complete = True
        else:
            f.state = F_BODY_LENGTH
            f.remaining = facts.length
    else:
        f.state = F_BODY_EOF


cdef inline void capture_head(Framer* f, const char* head, Py_ssize_t n) noexcept:
    """Flows that check or extract keep the head (a 1xx head is dropped)."""
    if f.state == F_HEAD and not f.complete:
        f.cap_len = 0               # 1xx: the real response follows
    else:
        f.cap_len = 0
        capture_append(f, head, n)
        f.cap_head_len = f.cap_len


cdef Py_ssize_t frame_head(Framer* f, const char* buf, Py_ssize_t n) noexcept:
    """The F_HEAD state: parse in place, or through `carry` when split."""
    cdef Py_ssize_t r, old_len, take
    if f.carry_len == 0:
        r = parse_head(f, buf, n)
        if r > 0 and f.capture:
            capture_head(f, buf, r)
        if r != 0:
            return r
        old_len = 0                     # incomplete: keep the bytes for the next read
    else:
        old_len = f.carry_len
    # Keep at most MAX_HEAD_BYTES in all: a read that ends the head may also
    # carry bodies and later responses (a full 64-KiB read after a split head).
    take = min(n, MAX_HEAD_BYTES - old_len)
    if take <= 0 or (old_len == 0 and take < n):
        return -1                       # no end of head within MAX_HEAD_BYTES
    if old_len + take > f.carry_cap:
        f.carry_cap = <int32_t>max(old_len + take, 1024)
        f.carry = <char*>realloc(f.carry, f.carry_cap)
        if f.carry == NULL:
            f.carry_cap = 0
            return -1
    memcpy(f.carry + old_len, buf, take)
    f.carry_len = <int32_t>(old_len + take)
    if old_len == 0:
        return take
    r = parse_head(f, f.carry, f.carry_len)
    if r < 0:
        return r
    if r == 0:                          # still incomplete: all of this read is head so far
        return take if take == n else -1
    if f.capture:
        capture_head(f, f.carry, r)
    f.carry_len = 0
    return r - old_len                  # bytes of *this* buffer that belonged to the head


cdef Py_ssize_t frame_step(Framer* f, const char* buf, Py_ssize_t n) noexcept:
    """Consume bytes until `n` are used or one response ends.  Returns the
    bytes consumed, or -1 for a malformed response."""
    cdef Py_ssize_t pos = 0, r
    f.complete = False
    while pos < n and not f.complete:
        if f.state == F_HEAD:
            r = frame_head(f, buf + pos, n - pos)
            if r < 0:
                return -1
            pos += r
        elif f.state == F_BODY_LENGTH:
            pos += frame_length_body(f, buf + pos, n - pos)
        elif f.state == F_CHUNK_DATA or f.state == F_BODY_EOF:
            pos += frame_body(f, buf + pos, n - pos)
        elif chunk_byte(f, buf[pos]) < 0:
            return -1
        else:
            pos += 1
    return pos


cdef inline Py_ssize_t frame_length_body(Framer* f, const char* buf, Py_ssize_t n) noexcept:
    """Content-Length body bytes (the common case, kept apart from chunks)."""
    cdef Py_ssize_t take = min(f.remaining, n)
    if f.capture:
        capture_append(f, buf, take)
    f.remaining -= take
    if f.remaining == 0:
        f.state = F_HEAD
        f.complete = True
    return take


cdef inline Py_ssize_t frame_body(Framer* f, const char* buf, Py_ssize_t n) noexcept:
    """Chunk data, or a body until the peer closes, kept only when the
    response is captured; returns the bytes taken."""
    cdef Py_ssize_t take = n if f.state == F_BODY_EOF else min(f.remaining, n)
    if f.capture:
        capture_append(f, buf, take)
    if f.state == F_BODY_EOF:
        return take                     # ends when the peer closes (frame_eof)
    f.remaining -= take
    if f.remaining == 0:
        f.state = F_CHUNK_DATA_END
    return take


cdef int chunk_byte(Framer* f, char c) noexcept:
    """One byte of chunked framing outside chunk data: the size line, its
    extensions, the CRLF after data, trailers.  -1: malformed."""
    if f.state == F_CHUNK_SIZE:
        return chunk_size_byte(f, c)
    if f.state == F_CHUNK_EXT:
        if c == b'\n':
            return end_chunk_size(f)
    elif f.state == F_CHUNK_DATA_END:
        if c == b'\n':
            f.state = F_CHUNK_SIZE
            f.remaining = 0
            f.hex_digits = 0
        elif c != b'\r':
            return -1
    else:   # F_TRAILERS
        if c == b'\n':
            if f.line_len == 0:
                f.state = F_HEAD
                f.complete = True
            f.line_len = 0
        elif c != b'\r':
            f.line_len += 1
            if f.line_len > MAX_HEAD_BYTES:
                return -1
    return 0


cdef inline int chunk_size_byte(Framer* f, char c) noexcept:
    cdef int digit
    if b'0' <= c <= b'9':
        digit = c - 48
    elif b'a' <= (c | 0x20) <= b'f':
        digit = (c | 0x20) - 87
    elif c == b';' or c == b' ' or c == b'\t':
        f.state = F_CHUNK_EXT
        return 0
    elif c == b'\r':
        return 0
    elif c == b'\n':
        return end_chunk_size(f)
    else:
        return -1
    if f.hex_digits >= 15:
        return -1
    f.remaining = f.remaining * 16 + digit
    f.hex_digits += 1
    return 0


cdef inline int end_chunk_size(Framer* f) noexcept:
    """The size line ended: its data follows, or the trailers after the last (0) chunk."""
    if f.hex_digits == 0:
        return -1
    f.state = F_CHUNK_DATA if f.remaining else F_TRAILERS
    f.line_len = 0
    return 0


cdef inline bint frame_eof(Framer* f) noexcept:
    """The peer closed: True when that ends a close-delimited response."""
    if f.state == F_BODY_EOF:
        f.state = F_HEAD
        f.complete = True
        return True
    return False


cdef inline bint frame_idle(Framer* f) noexcept:
    """No response is partly received."""
    return f.state == F_HEAD and f.carry_len == 0
