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
        else:
            n = slot_value(e, p, vu, v, tmp, &src)
        if p.escape != ESCAPE_RAW and p.kind != PART_LITERAL:
            if not reserve(buf, cap, at + ESCAPE_MAX_GROWTH * n + 1):
                return -1
            at += escape_into(buf[0] + at, src, n, p.escape)
            continue
        if not reserve(buf, cap, at + n + 1):
            return -1
        memcpy(buf[0] + at, src, n)
        at += n
    return at


cdef int64_t slot_value(Engine e, TemplatePart* p, VU* vu, uint32_t v, char* tmp, const char** src) noexcept:
    """A slot's value for this request: src[0] points at it (a data row, a
    variable, a word, or tmp for a builtin written here); returns its length."""
    cdef Feeder* f
    cdef int64_t n = 0, cell
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
        return write_decimal(tmp, p.a + <int64_t>(flow_rand(e) % <uint64_t>(<int64_t>p.b - p.a + 1)))
    if p.kind == PART_ITERATION:
        return write_decimal(tmp, vu.iteration)
    return write_decimal(tmp, e.flow.user_base + v + 1)        # PART_USER


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
