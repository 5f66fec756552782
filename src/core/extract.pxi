# What flows read from responses, included into _engine.pyx: the capture of
# a response's head and body (for steps that check or extract), a JSON path
# walked over raw JSON, and one header's value.

DEF MAX_CAPTURE_BYTES = 1048576

# ---- capture (called from framing.pxi) ------------------------------------------
cdef inline void capture_append(Framer* f, const char* p, int64_t n) noexcept:
    cdef int64_t room = MAX_CAPTURE_BYTES - f.cap_len
    cdef int64_t want
    if n > room:
        n = room
    if n <= 0:
        return
    if f.cap_len + n + 1 > f.cap_cap:
        want = max(f.cap_len + n + 1, 4096, f.cap_cap * 2)
        f.cap_buf = <char*>realloc(f.cap_buf, want)
        if f.cap_buf == NULL:
            f.cap_cap = 0
            f.cap_len = 0
            return
        f.cap_cap = want
    memcpy(f.cap_buf + f.cap_len, p, n)
    f.cap_len += n
    f.cap_buf[f.cap_len] = 0            # regexec wants a C string


# ---- JSON path: walk raw JSON without building it -----------------------------------
cdef inline int64_t json_ws(const char* s, int64_t i, int64_t n) noexcept:
    while i < n and (s[i] == b' ' or s[i] == b'\n' or s[i] == b'\r' or s[i] == b'\t'):
        i += 1
    return i


cdef int64_t json_skip(const char* s, int64_t i, int64_t n) noexcept:
    """Index just past the value starting at i (-1 when malformed)."""
    cdef int depth = 0
    cdef bint in_string = False
    i = json_ws(s, i, n)
    if i >= n:
        return -1
    if s[i] != b'{' and s[i] != b'[' and s[i] != b'"':
        while i < n and s[i] != b',' and s[i] != b'}' and s[i] != b']' and s[i] != b' ' and s[i] != b'\n':
            i += 1
        return i
    while i < n:
        if in_string:
            if s[i] == b'\\':
                i += 1
            elif s[i] == b'"':
                in_string = False
                if depth == 0:
                    return i + 1
        elif s[i] == b'"':
            in_string = True
        elif s[i] == b'{' or s[i] == b'[':
            depth += 1
        elif s[i] == b'}' or s[i] == b']':
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


cdef bint json_find(const char* s, int64_t n, JsonSegment* segs, int n_segs,
                    int64_t* out_start, int64_t* out_len) noexcept:
    """The value at the path; strings without their quotes (escapes kept as sent)."""
    cdef int64_t i = 0, end
    cdef int k
    for k in range(n_segs):
        i = json_ws(s, i, n)
        if i >= n:
            return False
        i = json_array_item(s, i, n, segs[k].index) if segs[k].index >= 0 else json_member(s, i, n, &segs[k])
        if i < 0:
            return False
    i = json_ws(s, i, n)
    end = json_skip(s, i, n)
    if end < 0:
        return False
    if s[i] == b'"':
        out_start[0] = i + 1
        out_len[0] = end - i - 2
    else:
        out_start[0] = i
        out_len[0] = end - i
    return True


cdef int64_t json_next_item(const char* s, int64_t i, int64_t n) noexcept:
    """Past the value at i and the comma after it (-1: malformed, or no comma)."""
    i = json_skip(s, i, n)
    if i < 0:
        return -1
    i = json_ws(s, i, n)
    if i >= n or s[i] != b',':
        return -1
    return i + 1


cdef int64_t json_array_item(const char* s, int64_t i, int64_t n, int index) noexcept:
    """At an array (s[i] == '['): where item `index` starts (-1: none)."""
    cdef int k
    if s[i] != b'[':
        return -1
    i += 1
    for k in range(index):
        i = json_next_item(s, i, n)
        if i < 0:
            return -1
    return i


cdef int64_t json_member(const char* s, int64_t i, int64_t n, JsonSegment* seg) noexcept:
    """At an object (s[i] == '{'): where the value of key seg.key starts (-1: none)."""
    cdef int64_t key_start, end
    if s[i] != b'{':
        return -1
    i += 1
    while True:
        i = json_ws(s, i, n)
        if i >= n or s[i] != b'"':
            return -1
        key_start = i + 1
        end = json_skip(s, i, n)
        if end < 0:
            return -1
        i = json_ws(s, end, n)
        if i >= n or s[i] != b':':
            return -1
        i += 1
        if end - 1 - key_start == seg.key_len and memcmp(s + key_start, seg.key, seg.key_len) == 0:
            return i
        i = json_next_item(s, i, n)
        if i < 0:
            return -1


cdef bint header_value(const char* head, int64_t n, const char* lower_name, int32_t name_len,
                       int64_t* out_start, int64_t* out_len) noexcept:
    """The first header named lower_name (case-insensitive) in a head block."""
    cdef int64_t i = 0, line_end, v
    cdef const char* eol
    while i < n:
        eol = <const char*>memchr(head + i, b'\n', n - i)
        line_end = (eol - head) if eol != NULL else n
        if line_end - i > name_len and head[i + name_len] == b':' and ieq_prefix(head + i, name_len, lower_name):
            v = i + name_len + 1
            while v < line_end and (head[v] == b' ' or head[v] == b'\t'):
                v += 1
            out_start[0] = v
            out_len[0] = line_end - v
            while out_len[0] > 0 and (head[v + out_len[0] - 1] == b'\r' or head[v + out_len[0] - 1] == b' '):
                out_len[0] -= 1
            return True
        i = line_end + 1
    return False

