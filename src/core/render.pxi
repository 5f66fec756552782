# Rendering a step's request from its templates, included into _engine.pyx.
# Literal parts are copied; slots are filled (data rows, extracted variables,
# builtins) and escaped for where they land (escape.pxd).  The fast path
# renders its one static step once, with this same code.

cdef const char* WORDS[32]
WORDS[:] = [b"alpha", b"bravo", b"charlie", b"delta", b"echo", b"foxtrot", b"golf", b"hotel",
            b"india", b"juliet", b"kilo", b"lima", b"mike", b"november", b"oscar", b"papa",
            b"quebec", b"romeo", b"sierra", b"tango", b"uniform", b"victor", b"whiskey", b"xray",
            b"yankee", b"zulu", b"shoes", b"laptop", b"coffee", b"garden", b"guitar", b"camera"]
cdef const char* HEX = b"0123456789abcdef"
DEF SLOT_BYTES = 40             # a builtin's text: a uuid (36) or a 64-bit decimal


cdef bint render_step(Engine e, Conn* c, Step* st, VU* vu, uint32_t v) noexcept:
    """The step's request bytes into the connection's own buffer, ready to send."""
    cdef int64_t n = render_into(e, st, vu, v, &c.rendered, &c.rendered_cap)
    if n < 0:
        return False
    c.out = c.rendered
    c.out_pos = 0
    c.out_wrap = NO_WRAP
    c.unsent_bytes = n
    return True


cdef int64_t render_into(Engine e, Step* st, VU* vu, uint32_t v, char** buf, int64_t* cap) noexcept:
    """Head template, Content-Length, blank line, body template into buf[0];
    returns the length (-1: out of memory).  Content-Length is added when the
    body is not empty or the method carries one, unless the user's headers
    gave it.  vu may be NULL for an all-literal step (the fast path)."""
    cdef int64_t body_len = render_template(e, &st.body, vu, v, &e.flow.scratch, &e.flow.scratch_cap, 0)
    cdef int64_t at = render_template(e, &st.head, vu, v, buf, cap, 0)
    if body_len < 0 or at < 0 or not reserve(buf, cap, at + body_len + 64):
        return -1
    if not st.length_given and (st.send_length or body_len):
        at = append_content_length(buf[0], at, body_len)
    buf[0][at] = b'\r'
    buf[0][at + 1] = b'\n'
    at += 2
    if body_len:
        memcpy(buf[0] + at, e.flow.scratch, body_len)
        at += body_len
    return at


cdef inline bint reserve(char** buf, int64_t* cap, int64_t need) noexcept:
    """buf[0] holds at least `need` bytes (grown a few times, then never)."""
    if need <= cap[0]:
        return True
    cap[0] = max(need, 512, cap[0] * 2)
    buf[0] = <char*>realloc(buf[0], cap[0])
    if buf[0] == NULL:
        cap[0] = 0
        return False
    return True


cdef int64_t render_template(Engine e, Template* t, VU* vu, uint32_t v, char** buf, int64_t* cap,
                             int64_t at) noexcept:
    """The template's parts appended at buf[0] + at; the new end (-1: out of memory)."""
    cdef int i
    cdef TemplatePart* p
    cdef const char* src
    cdef int64_t n
    cdef char tmp[SLOT_BYTES]
    for i in range(t.n_parts):
        p = &t.parts[i]
        if p.kind == PART_COOKIES:      # the Cookie header and the jar's note of this request (cookies.pxi)
            at = cookie_header_into(e, vu, &e.flow.steps[p.a], p.b, buf, cap, at)
            if at < 0:
                return -1
            continue
        if p.kind == PART_LITERAL:
            src, n = p.literal, p.literal_len
        elif p.escape == ESCAPE_JSON_VALUE:
            at = render_typed(e, p, vu, v, buf, cap, at)
            if at < 0:
                return -1
            continue
        elif p.kind == PART_RANDOM_STRING:       # letters and digits: nothing to escape anywhere
            if not reserve(buf, cap, at + p.width + 1):
                return -1
            at += write_random_string(e, buf[0] + at, p.width)
            continue
        else:
            n = slot_value(e, p, vu, v, tmp, &src)
            if p.escape != ESCAPE_RAW and not (p.escape == ESCAPE_JSON and p.kind == PART_VAR
                                               and vu.var_types[p.a] == VAR_JSON_STRING):
                if not reserve(buf, cap, at + ESCAPE_MAX_GROWTH * n + 1):
                    return -1
                at += escape_into(buf[0] + at, src, n, p.escape)
                continue
            # (a JSON string extracted from JSON goes back into a JSON string as it was sent)
        if not reserve(buf, cap, at + n + 1):
            return -1
        memcpy(buf[0] + at, src, n)
        at += n
    return at


cdef int64_t render_typed(Engine e, TemplatePart* p, VU* vu, uint32_t v, char** buf, int64_t* cap,
                          int64_t at) noexcept:
    """A json: field that is exactly one slot, as a JSON value of the slot's
    type (surge.plan.template): bare, quoted, or null; the new end (-1: out of memory)."""
    cdef const char* src
    cdef int64_t n
    cdef char tmp[SLOT_BYTES]
    cdef int kind = typed_kind(e, p, vu)
    if p.kind == PART_RANDOM_STRING:
        if not reserve(buf, cap, at + p.width + 3):
            return -1
        buf[0][at] = b'"'
        at += 1 + write_random_string(e, buf[0] + at + 1, p.width)
        buf[0][at] = b'"'
        return at + 1
    n = slot_value(e, p, vu, v, tmp, &src) if kind != VAR_UNSET else 0
    if kind == VAR_UNSET or (kind == VAR_JSON and n == 0):
        if not reserve(buf, cap, at + 5):
            return -1
        memcpy(buf[0] + at, b"null", 4)
        return at + 4
    if not reserve(buf, cap, at + ESCAPE_MAX_GROWTH * n + 3):
        return -1
    if kind == VAR_JSON:
        memcpy(buf[0] + at, src, n)
        return at + n
    buf[0][at] = b'"'
    at += 1
    if kind == VAR_JSON_STRING:
        memcpy(buf[0] + at, src, n)
        at += n
    else:
        at += escape_into(buf[0] + at, src, n, ESCAPE_JSON)
    buf[0][at] = b'"'
    return at + 1


cdef int typed_kind(Engine e, TemplatePart* p, VU* vu) noexcept:
    """VAR_* of a slot's value this request: what an extraction found, a
    JSON-lines cell's type, or the builtin's (numbers bare, the rest text)."""
    cdef Feeder* f
    if p.kind == PART_VAR:
        return vu.var_types[p.a]
    if p.kind == PART_DATA:
        f = &e.flow.feeders[p.a]
        if f.types != NULL and f.types[vu.rows[p.a] * f.n_cols + p.b]:
            return VAR_JSON
        return VAR_TEXT
    if p.kind == PART_RANDOM_INT:
        return VAR_JSON if p.width == 0 else VAR_TEXT
    if p.kind == PART_ITERATION or p.kind == PART_USER:
        return VAR_JSON
    if p.kind == PART_TIMESTAMP:
        return VAR_JSON if p.a != TIMESTAMP_ISO else VAR_TEXT
    if p.kind == PART_RANDOM_CHOICE:
        return VAR_JSON if p.b else VAR_TEXT
    return VAR_TEXT


cdef int64_t slot_value(Engine e, TemplatePart* p, VU* vu, uint32_t v, char* tmp, const char** src) noexcept:
    """A slot's value for this request: src[0] points at it (a data row, a
    variable, a word, a choice, or tmp for a builtin written here); returns its length."""
    cdef Feeder* f
    cdef int64_t n = 0, cell, k
    src[0] = tmp
    if p.kind == PART_DATA:
        f = &e.flow.feeders[p.a]
        cell = vu.rows[p.a] * f.n_cols + p.b
        src[0] = f.values[cell]
        return f.lengths[cell]
    if p.kind == PART_VAR:
        src[0] = vu.var_values[p.a]
        return vu.var_lengths[p.a] if src[0] != NULL else 0
    if p.kind == PART_RANDOM_WORD:
        src[0] = WORDS[flow_rand(e) % 32]
        while src[0][n] != 0:
            n += 1
        return n
    if p.kind == PART_UUID:
        return write_uuid(e, tmp)
    if p.kind == PART_RANDOM_INT:
        return write_padded(tmp, p.a + <int64_t>(flow_rand(e) % <uint64_t>(p.b - p.a + 1)), p.width)
    if p.kind == PART_ITERATION:
        return write_decimal(tmp, vu.iteration)
    if p.kind == PART_RANDOM_CHOICE:           # the k-th of the NUL-ended items
        src[0] = p.literal
        for k in range(<int64_t>(flow_rand(e) % <uint64_t>p.a)):
            src[0] += strlen(src[0]) + 1
        return strlen(src[0])
    if p.kind == PART_TIMESTAMP:
        return write_timestamp(tmp, p.a)
    return write_decimal(tmp, e.flow.user_base + v + 1)        # PART_USER


cdef const char* ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


cdef int64_t write_random_string(Engine e, char* out, int64_t length) noexcept:
    """`length` random letters and digits (ten base-62 digits from each 64-bit draw)."""
    cdef uint64_t r = 0
    cdef int64_t k
    for k in range(length):
        if k % 10 == 0:
            r = flow_rand(e)
        out[k] = ALNUM[r % 62]
        r //= 62
    return length


cdef int64_t write_padded(char* out, int64_t value, int width) noexcept:
    """value in decimal, its digits zero-padded to `width` (after any sign)."""
    cdef int64_t n = write_decimal(out, value)
    cdef int sign = 1 if value < 0 else 0
    cdef int64_t pad = width - (n - sign)
    if pad <= 0:
        return n
    memmove(out + sign + pad, out + sign, n - sign)
    memset(out + sign, b'0', pad)
    return n + pad


cdef extern from "<time.h>" nogil:
    struct tm:
        int tm_sec
        int tm_min
        int tm_hour
        int tm_mday
        int tm_mon
        int tm_year
    tm* gmtime_r(const time_t* timep, tm* result)
    int CLOCK_REALTIME


cdef int64_t write_timestamp(char* out, int64_t unit) noexcept:
    """The wall clock now: Unix seconds, ms or us, or `2026-12-02T07:04:05.678Z`
    (RFC 3339, UTC, ms; 24 characters).  A vDSO read, no system call."""
    cdef timespec ts
    cdef tm civil
    clock_gettime(CLOCK_REALTIME, &ts)
    if unit == TIMESTAMP_S:
        return write_decimal(out, ts.tv_sec)
    if unit == TIMESTAMP_MS:
        return write_decimal(out, <int64_t>ts.tv_sec * 1000 + ts.tv_nsec // 1000000)
    if unit == TIMESTAMP_US:
        return write_decimal(out, <int64_t>ts.tv_sec * 1000000 + ts.tv_nsec // 1000)
    gmtime_r(&ts.tv_sec, &civil)
    write_padded(out, civil.tm_year + 1900, 4)
    out[4] = b'-'
    write_padded(out + 5, civil.tm_mon + 1, 2)
    out[7] = b'-'
    write_padded(out + 8, civil.tm_mday, 2)
    out[10] = b'T'
    write_padded(out + 11, civil.tm_hour, 2)
    out[13] = b':'
    write_padded(out + 14, civil.tm_min, 2)
    out[16] = b':'
    write_padded(out + 17, civil.tm_sec, 2)
    out[19] = b'.'
    write_padded(out + 20, ts.tv_nsec // 1000000, 3)
    out[23] = b'Z'
    return 24


cdef int64_t write_uuid(Engine e, char* out) noexcept:
    """A random version-4 UUID, 36 characters."""
    cdef uint64_t r = flow_rand(e)
    cdef int k
    for k in range(36):
        if k == 8 or k == 13 or k == 18 or k == 23:
            out[k] = b'-'
            continue
        if k % 16 == 0:
            r = flow_rand(e)
        out[k] = HEX[r & 15]
        r >>= 4
    out[14] = b'4'                              # version 4
    out[19] = HEX[8 + (flow_rand(e) & 3)]       # variant 10xx
    return 36


cdef int64_t write_decimal(char* out, int64_t value) noexcept:
    """value in decimal at out (at most 20 characters); returns the length."""
    cdef char digits[24]
    cdef int nd = 0, n = 0, k
    cdef uint64_t x = <uint64_t>value
    if value < 0:
        out[0] = b'-'
        n = 1
        x = <uint64_t>(-(value + 1)) + 1      # |INT64_MIN| without overflow
    while True:
        digits[nd] = <char>(48 + x % 10)
        nd += 1
        x //= 10
        if x == 0:
            break
    for k in range(nd):
        out[n + k] = digits[nd - 1 - k]
    return n + nd


cdef inline int64_t append_content_length(char* out, int64_t at, int64_t body_len) noexcept:
    """`Content-Length: N\\r\\n` at out + at (the caller made room for 40 bytes)."""
    memcpy(out + at, b"Content-Length: ", 16)
    at += 16
    at += write_decimal(out + at, body_len)
    out[at] = b'\r'
    out[at + 1] = b'\n'
    return at + 2
