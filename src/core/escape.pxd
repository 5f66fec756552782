# How a slot's value is escaped where it lands: one implementation, in C,
# used by the engine for every request it renders and by Python through
# surge.core._escape (surge.plan.template.escape_value), so both give the
# same bytes.
#
# The URL rule (RFC 3986).  A value is data, never syntax: it keeps only the
# characters that cannot change how the URL around it is read, and every
# other byte (UTF-8 bytes of non-ASCII text included) is percent-encoded with
# upper-case hex (section 2.1).  "%" itself is always encoded, so a value is
# sent as given, never taken as already encoded.
#   - Always literal: the unreserved characters  A-Z a-z 0-9 - . _ ~  (2.3).
#   - In a path segment (ESCAPE_PATH): also the sub-delimiters ! $ & ' ( ) * + , ; =
#     and : @, which pchar allows (3.3).  Encoded: "/" (it would start a new
#     segment), "?" (the query), "#" (the fragment), and the rest.
#   - In a query value (ESCAPE_QUERY): also ! $ ' ( ) * , ; : @ / ?, which the
#     query allows (3.4).  Encoded besides the rest: "&" and "=" (they would
#     split or start a key=value pair), "+" (form decoders read it as a
#     space), "#" (the fragment).
# A slot is in the query when a literal "?" comes before it in the template
# (surge.run.flows decides it once, when the tables are built).
from libc.stdint cimport int64_t
from libc.string cimport memcpy

from surge.core._limits cimport ESCAPE_HEADER, ESCAPE_JSON, ESCAPE_PATH, ESCAPE_QUERY, ESCAPE_RAW

# Most bytes one input byte can become (JSON's \u00xx).
cdef enum:
    ESCAPE_MAX_GROWTH = 6


cdef inline char hex_digit(unsigned int d, bint upper) noexcept nogil:
    return <char>(48 + d if d < 10 else (55 if upper else 87) + d)


cdef inline bint unreserved(unsigned char ch) noexcept nogil:
    return (b'a' <= ch <= b'z' or b'A' <= ch <= b'Z' or b'0' <= ch <= b'9'
            or ch == b'-' or ch == b'.' or ch == b'_' or ch == b'~')


cdef inline bint url_keeps(unsigned char ch, int escape) noexcept nogil:
    """The byte stays literal in a path segment / query value (the rule above)."""
    if unreserved(ch):
        return True
    if ch == b'!' or ch == b'$' or ch == b"'" or ch == b'(' or ch == b')' or ch == b'*' or ch == b',' \
            or ch == b';' or ch == b':' or ch == b'@':
        return True                     # legal in both
    if escape == ESCAPE_PATH:
        return ch == b'&' or ch == b'+' or ch == b'='
    return ch == b'/' or ch == b'?'     # ESCAPE_QUERY


cdef inline bint kept_as_is(unsigned char ch, int escape) noexcept nogil:
    """The byte is written unchanged by escape_into."""
    if escape == ESCAPE_PATH or escape == ESCAPE_QUERY:
        return url_keeps(ch, escape)
    if escape == ESCAPE_HEADER:
        return ch != b'\r' and ch != b'\n'
    if escape == ESCAPE_JSON:
        return ch >= 0x20 and ch != b'"' and ch != b'\\'
    return True


cdef inline int64_t literal_prefix(const char* src, int64_t n, int escape) noexcept nogil:
    """How many leading bytes need no escaping."""
    cdef int64_t i = 0
    while i < n and kept_as_is(<unsigned char>src[i], escape):
        i += 1
    return i


cdef inline int64_t escape_into(char* out, const char* src, int64_t n, int escape) noexcept nogil:
    """src[0:n] escaped as `escape` says into out (room for ESCAPE_MAX_GROWTH * n
    bytes); returns the bytes written.
      ESCAPE_PATH, ESCAPE_QUERY  percent-encoding, the URL rule above
      ESCAPE_HEADER  as is, CR and LF dropped (no header injection from extracted values)
      ESCAPE_JSON    inside a JSON string: quote and backslash escaped, controls as \\u00xx
      ESCAPE_RAW     as is"""
    cdef int64_t i, at = literal_prefix(src, n, escape)
    cdef unsigned char ch
    cdef bint url = escape == ESCAPE_PATH or escape == ESCAPE_QUERY
    memcpy(out, src, at)                # most values (tokens, feeder rows) are all prefix: one copy
    for i in range(at, n):
        ch = <unsigned char>src[i]
        if url and not url_keeps(ch, escape):
            out[at] = b'%'
            out[at + 1] = hex_digit(ch >> 4, True)
            out[at + 2] = hex_digit(ch & 15, True)
            at += 3
        elif escape == ESCAPE_HEADER and (ch == b'\r' or ch == b'\n'):
            pass
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
