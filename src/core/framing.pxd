# HTTP/1.1 response framing state of one connection (framing.pxi does the work).
from libc.stdint cimport int32_t, int64_t

cdef enum:
    F_HEAD = 0          # waiting for a complete status line + header block
    F_BODY_LENGTH       # Content-Length body: `remaining` bytes left
    F_BODY_EOF          # close-delimited body: until the peer closes
    F_CHUNK_SIZE        # hex digits of a chunk size
    F_CHUNK_EXT         # ";ext=val" after the size, up to LF
    F_CHUNK_DATA        # `remaining` bytes of chunk data
    F_CHUNK_DATA_END    # CRLF after chunk data
    F_TRAILERS          # trailer lines after the last chunk, up to an empty line

cdef struct Framer:
    int state
    bint capture            # keep the head and body of this response (flows that check or extract)
    char* cap_buf           # head bytes, then body bytes (truncated at MAX_CAPTURE_BYTES)
    int64_t cap_len
    int64_t cap_cap
    int64_t cap_head_len    # where the body starts in cap_buf
    int status              # status code of the response being framed
    int64_t remaining       # body or chunk bytes still expected
    int hex_digits          # digits seen in the current chunk size
    int line_len            # bytes in the current trailer line
    bint keep_alive         # False when the response says the connection closes
    bint complete           # set by frame_step when one response has ended
    bint head_request       # responses carry no body (HEAD)
    void* cookie_jar        # flows with cookies: the VU's CookieJar*, fed each Set-Cookie (NULL: not read)
    char* carry             # partial header block kept across reads (rare)
    int32_t carry_len
    int32_t carry_cap
    bint want_location      # keep the Location header's value (a plan step follows redirects: redirect.pxi)
    char* location          # its value, copied out of the read buffer (owned)
    int32_t location_len    # 0: the response has no Location
    int32_t location_cap
