# How a slot's value is escaped where it lands: one implementation, in C,
# used by the engine for every request it renders and by Python
# (surge.core._escape) wherever it needs the same bytes.
from libc.stdint cimport int64_t

from surge.core._limits cimport ESCAPE_HEADER, ESCAPE_JSON, ESCAPE_RAW, ESCAPE_URL

# Most bytes one input byte can become (JSON's \u00XX).
cdef enum:
    ESCAPE_MAX_GROWTH = 6


cdef inline char hex_digit(unsigned int d, bint upper) noexcept nogil:
    return <char>(48 + d if d < 10 else (55 if upper else 87) + d)


cdef inline bint url_keeps(unsigned char ch) noexcept nogil:
    """RFC 3986 section 2.3: the unreserved characters, ALPHA / DIGIT / "-" / "." / "_" / "~",
    are the only ones that mean the same percent-encoded or not, so a value
    keeps them and percent-encodes every other byte (UTF-8 bytes included)."""
    return (b'a' <= ch <= b'z' or b'A' <= ch <= b'Z' or b'0' <= ch <= b'9'
            or ch == b'-' or ch == b'.' or ch == b'_' or ch == b'~')


cdef inline int64_t escape_into(char* out, const char* src, int64_t n, int escape) noexcept nogil:
    """src[0:n] escaped as `escape` says into out (room for ESCAPE_MAX_GROWTH * n
    bytes); returns the bytes written.
      ESCAPE_URL     percent-encoding, upper-case hex (RFC 3986 2.1), all but unreserved
      ESCAPE_HEADER  as is, CR and LF dropped (no header injection from extracted values)
      ESCAPE_JSON    inside a JSON string: quote and backslash escaped, controls as \\u00xx
      ESCAPE_RAW     as is"""
    cdef int64_t i, at = 0
    cdef unsigned char ch
    for i in range(n):
        ch = <unsigned char>src[i]
        if escape == ESCAPE_URL:
            if url_keeps(ch):
                out[at] = <char>ch
                at += 1
            else:
                out[at] = b'%'
                out[at + 1] = hex_digit(ch >> 4, True)
                out[at + 2] = hex_digit(ch & 15, True)
                at += 3
        elif escape == ESCAPE_HEADER:
            if ch != b'\r' and ch != b'\n':
                out[at] = <char>ch
                at += 1
        elif escape == ESCAPE_JSON and (ch == b'"' or ch == b'\\'):
            out[at] = b'\\'
            out[at + 1] = <char>ch
            at += 2
        elif escape == ESCAPE_JSON and ch < 0x20:
            out[at] = b'\\'
            out[at + 1] = b'u'
            out[at + 2] = b'0'
            out[at + 3] = b'0'
            out[at + 4] = hex_digit(ch >> 4, False)
            out[at + 5] = hex_digit(ch & 15, False)
            at += 6
        else:
            out[at] = <char>ch
            at += 1
    return at
