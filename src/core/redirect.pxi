# Following redirects in flows, included into _engine.pyx after flows.pxi.
#
# A step with follow_redirects: N > 0 follows up to N hops of 301/302/303/
# 307/308 with a Location.  Everything happens in C, only on a redirect
# response: the framer keeps the Location value (framing.pxi), the reference
# is resolved against the request just answered (RFC 3986 section 5), and
# the hop's request is rebuilt from that request's bytes:
#   - 301/302 turn POST into GET, 303 turns every method but HEAD into GET
#     (as browsers do, the Fetch standard's rule); the body and its headers
#     (Content-Length, Content-Type, Content-Encoding/-Language/-Location) go;
#   - 307/308 keep the method and the very same body bytes;
#   - to another origin, Authorization, Proxy-Authorization and Cookie go;
#   - Host names the hop's host.
# A Location on a host of the plan goes over that host's connection of the
# VU.  Another http origin takes one of REDIRECT_SLOTS extra host slots per
# engine (connections VU x slot like any host's), resolved once per worker
# with getaddrinfo when first seen (a blocking call, at most REDIRECT_SLOTS
# times per worker and run; a name that fails stays failed).  An https
# origin that is not a host of the plan, a name that does not resolve, or no
# free slot: the step counts a connect error and the iteration ends.
# The step's latency runs from its first request to the last response; each
# hop is counted (RD_HOPS, by status) apart from the step's responses, and a
# redirect past N is the step's response and a failed check (RD_LIMIT).

cdef extern from "<netdb.h>" nogil:
    cdef struct addrinfo:
        int ai_flags
        int ai_family
        int ai_socktype
        int ai_protocol
        socklen_t ai_addrlen
        sockaddr* ai_addr
        char* ai_canonname
        addrinfo* ai_next
    int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res)
    void freeaddrinfo(addrinfo* res)
    int AI_NUMERICSERV

DEF REDIRECT_SLOTS = 4          # hosts first seen in a Location, per engine (Python reads redirect_slots())
DEF MAX_TARGET_BYTES = 8192     # a resolved request target longer than this is refused

DEF RH_PLAN = 0                 # a host of the plan
DEF RH_FREE = 1                 # a redirect slot not used yet
DEF RH_READY = 2                # a redirect slot, resolved
DEF RH_FAILED = 3               # a redirect slot whose name did not resolve (never looked up again)

# Per step: RD_COUNTERS counters.
DEF RD_HOPS = 0                 # redirects followed
DEF RD_LIMIT = 1                # chains that hit follow_redirects (the 3xx was the step's response)
DEF RD_STATUS = 2               # hops by status: RD_STATUS + (status - 300), 300..308
DEF RD_COUNTERS = 11


def redirect_slots():
    """How many hosts first seen in a Location one engine can reach."""
    return REDIRECT_SLOTS


# ---- set-up ------------------------------------------------------------------------
cdef int redirect_extra_hosts(object tables) noexcept:
    """The host slots to add for Locations on hosts outside the plan (0: no step follows)."""
    return REDIRECT_SLOTS if any(getattr(step, "follow", 0) for step in tables.steps) else 0


cdef void redirect_setup(Engine e, object tables) except *:
    """The host table Locations are matched against, the counters, and every
    connection's framer told to keep Location.  Nothing when no step follows."""
    cdef int i
    cdef uint32_t k
    cdef RedirectHost* h
    if not any(getattr(step, "follow", 0) for step in tables.steps):
        return
    e.flow.step_redirects = <int64_t*>calloc(e.flow.n_steps * RD_COUNTERS, sizeof(int64_t))
    e.flow.rhosts = <RedirectHost*>calloc(e.n_hosts, sizeof(RedirectHost))
    if e.flow.step_redirects == NULL or e.flow.rhosts == NULL:
        raise MemoryError()
    e.flow.n_plan_hosts = len(tables.redirect_hosts)
    for i in range(e.n_hosts):
        h = &e.flow.rhosts[i]
        if i >= e.flow.n_plan_hosts:
            h.state = RH_FREE
            continue
        https, name, port, authority = tables.redirect_hosts[i]
        if len(name) >= 256 or len(authority) >= 264:
            raise ValueError("host name too long")
        h.https = https
        h.port = port
        h.state = RH_PLAN
        memcpy(h.name, PyBytes_AS_STRING(name), len(name))
        h.name_len = len(name)
        memcpy(h.authority, PyBytes_AS_STRING(authority), len(authority))
        h.authority_len = len(authority)
    for k in range(e.conn_count):
        e.conns[k].framer.want_location = True


cdef void redirect_free(Engine e) noexcept:
    free(e.flow.step_redirects)
    free(e.flow.rhosts)
    free(e.flow.hop_scratch)


cdef object redirect_snapshot(Engine e):
    """Per step: (hops, chains that hit the limit, {status: hops}); None when no step follows."""
    cdef int i, k
    cdef int64_t* rd
    if e.flow.step_redirects == NULL:
        return None
    out = []
    for i in range(e.flow.n_steps):
        rd = e.flow.step_redirects + i * RD_COUNTERS
        out.append((rd[RD_HOPS], rd[RD_LIMIT],
                    {300 + k: rd[RD_STATUS + k] for k in range(RD_COUNTERS - RD_STATUS) if rd[RD_STATUS + k]}))
    return out


# ---- the framer's Location (called from framing.pxi) --------------------------------
cdef void keep_location(Framer* f, const char* value, Py_ssize_t n) noexcept:
    while n > 0 and (value[0] == b' ' or value[0] == b'\t'):
        value += 1
        n -= 1
    while n > 0 and (value[n - 1] == b' ' or value[n - 1] == b'\t'):
        n -= 1
    if n > MAX_TARGET_BYTES:
        return                          # refused later: no Location kept
    if n > f.location_cap:
        f.location = <char*>realloc(f.location, n)
        if f.location == NULL:
            f.location_cap = 0
            f.location_len = 0
            return
        f.location_cap = <int32_t>n
    memcpy(f.location, value, n)
    f.location_len = <int32_t>n


# ---- after a response (called first thing from vu_after_response) --------------------
cdef inline bint is_redirect(int status) noexcept:
    return status == 301 or status == 302 or status == 303 or status == 307 or status == 308


cdef bint redirect_take(Engine e, Conn* c, uint32_t v, Step* st, int sid, int64_t* latency_us,
                        int64_t now, bint defer) noexcept:
    """True: the response was a redirect that is followed (counted as a hop,
    the hop's request sent or its connection opened); the step is not done.
    False: the step's response (a chain's last: latency_us becomes the chain's)."""
    cdef VU* vu = &e.flow.vus[v]
    cdef int64_t* rd = e.flow.step_redirects + sid * RD_COUNTERS
    cdef int64_t* counts = e.flow.step_counts + sid * FLOW_COUNTERS
    cdef int status = c.framer.status
    if is_redirect(status) and c.framer.location_len > 0:
        if vu.hops >= st.follow_max:
            rd[RD_LIMIT] += 1                   # "redirect limit N exceeded": a failed check
            counts[SC_CHECKS] += 1
            counts[SC_CHECK_FAILURES] += 1
        else:
            if vu.hops == 0:
                vu.chain_sent_ns = now - latency_us[0] * 1000
            vu.hops += 1
            rd[RD_HOPS] += 1
            rd[RD_STATUS + status - 300] += 1
            # (its Set-Cookie is already in the VU's jar: the framer stored it while parsing the head)
            c.framer.cap_len = 0
            if not hop_prepare(e, c, v, status):
                e.counters.errors[ERR_CONNECT] += 1     # no way to that host: an error of the step
                vu_abort(e, v, ERR_CONNECT, e.retry_backoff_ns, now)
                return True
            if defer:                           # the connection closes after this response
                vu.state = VU_THINKING
                heap_push(e, v, now + 1)
            else:
                hop_send(e, v, now)
            return True
    if vu.hops > 0:
        latency_us[0] = (now - vu.chain_sent_ns) // 1000
        vu.hops = 0
    return False


cdef void hop_send(Engine e, uint32_t v, int64_t now) noexcept:
    """The VU's hop goes out on its connection to the hop's host (vu_send's
    twin for a request already rendered by hop_prepare)."""
    cdef VU* vu = &e.flow.vus[v]
    cdef Step* st = &e.flow.steps[e.flow.scenarios[vu.scenario].steps[vu.pos]]
    cdef Conn* c = &e.conns[v * e.n_hosts + vu.hop_host]
    vu.state = VU_BUSY
    if c.state == C_IDLE:
        e._connect(c, now)           # the hop goes out once connected (flows_connected -> vu_send)
        return
    if c.state != C_OPEN:
        return
    c.out = c.rendered
    c.out_pos = 0
    c.out_wrap = NO_WRAP
    c.unsent_bytes = vu.hop_len
    framer_reset(&c.framer)
    c.framer.head_request = vu.hop_head
    c.framer.capture = st.capture
    c.framer.cookie_jar = jar_sink(vu, st)
    c.framer.cap_len = 0
    e._commit(c, c.ring_head, now, now)
    e._flush(c)


# ---- building the hop's request -----------------------------------------------------
cdef inline bint span_is(const char* p, int64_t n, const char* word) noexcept:
    """p[0:n] equals the C string `word` exactly."""
    cdef int64_t i = 0
    while i < n and word[i] != 0 and p[i] == word[i]:
        i += 1
    return i == n and word[i] == 0


cdef int64_t find_byte(const char* p, int64_t n, char b) noexcept:
    cdef const char* at = <const char*>memchr(p, b, n)
    return (at - p) if at != NULL else -1


cdef bint hop_prepare(Engine e, Conn* c, uint32_t v, int status) noexcept:
    """The hop's request, from the request `c` just had answered and its
    response's Location, into the hop host's connection buffer.  False: the
    Location cannot be followed (bad reference, unknown https host, no slot,
    a name that does not resolve, out of memory)."""
    cdef VU* vu = &e.flow.vus[v]
    cdef const char* req = c.rendered
    cdef int64_t head_end, line_end, sp1, sp2, body_len = 0, at, i, n, eol
    cdef int base_host = c.index % e.n_hosts, host
    cdef char target[MAX_TARGET_BYTES + 16]
    cdef int64_t target_len
    cdef bint to_get, cross, same_method, drop_cookie
    cdef const char* line
    cdef Conn* hop
    if req == NULL:
        return False
    head_end = header_block_end(req, c.rendered_cap)   # the request's own head ends at the first blank line
    if head_end < 0:
        return False
    line_end = find_byte(req, head_end, b'\n')
    sp1 = find_byte(req, line_end, b' ')
    sp2 = find_byte(req + sp1 + 1, line_end - sp1 - 1, b' ') if sp1 > 0 else -1
    if sp1 <= 0 or sp2 < 0:
        return False
    sp2 += sp1 + 1
    host = resolve_location(e, base_host, req + sp1 + 1, sp2 - sp1 - 1, c.framer.location,
                            c.framer.location_len, target, &target_len)
    if host < 0:
        return False
    same_method = not (status == 303 and not span_is(req, sp1, b"HEAD")) and \
        not ((status == 301 or status == 302) and span_is(req, sp1, b"POST"))
    to_get = not same_method
    cross = not same_origin(&e.flow.rhosts[base_host], &e.flow.rhosts[host])
    # The head: request line, Host, then the earlier request's other lines.
    if not reserve(&e.flow.hop_scratch, &e.flow.hop_scratch_cap, head_end + 3 * target_len + 600):
        return False
    at = hop_start_line(e.flow.hop_scratch, req, sp1, to_get, target, target_len, &e.flow.rhosts[host])
    at = cookie_hop_into(e, vu, &e.flow.steps[e.flow.scenarios[vu.scenario].steps[vu.pos]], host,
                         &e.flow.hop_scratch, &e.flow.hop_scratch_cap, at)     # the jar's Cookie line (cookies.pxi)
    if at < 0:
        return False
    drop_cookie = e.flow.steps[e.flow.scenarios[vu.scenario].steps[vu.pos]].cookies_hops
    i = line_end + 1
    while i < head_end:
        eol = find_byte(req + i, head_end - i, b'\n')
        n = (eol + 1) if eol >= 0 else head_end - i
        line = req + i
        if hop_keeps_header(line, n, to_get, drop_cookie, cross):
            if ieq_prefix(line, n, b"content-length:"):
                body_len = content_length_of(line, n)
            memcpy(e.flow.hop_scratch + at, line, n)
            at += n
        i += n
    e.flow.hop_scratch[at] = b'\r'
    e.flow.hop_scratch[at + 1] = b'\n'
    at += 2
    # 307/308 (and 301/302 of a method other than POST): the same body bytes.
    if body_len > 0 and not to_get:
        if not reserve(&e.flow.hop_scratch, &e.flow.hop_scratch_cap, at + body_len):
            return False
        memcpy(e.flow.hop_scratch + at, req + head_end + 2, body_len)
        at += body_len
    hop = &e.conns[v * e.n_hosts + host]
    if not reserve(&hop.rendered, &hop.rendered_cap, at):
        return False
    memcpy(hop.rendered, e.flow.hop_scratch, at)
    vu.hop_host = host
    vu.hop_len = at
    vu.hop_head = not to_get and span_is(req, sp1, b"HEAD")
    return True


cdef int64_t hop_start_line(char* out, const char* req, int64_t sp1, bint to_get, const char* target,
                            int64_t target_len, RedirectHost* to) noexcept:
    """The hop's request line and Host line into `out` (reserved by the
    caller); returns their length.  The method is the request's own, or GET."""
    cdef int64_t at
    if to_get:
        memcpy(out, b"GET ", 4)
        at = 4
    else:
        memcpy(out, req, sp1 + 1)
        at = sp1 + 1
    at += copy_target(out + at, target, target_len)
    memcpy(out + at, b" HTTP/1.1\r\nHost: ", 17)
    at += 17
    memcpy(out + at, to.authority, to.authority_len)
    at += to.authority_len
    out[at] = b'\r'
    out[at + 1] = b'\n'
    return at + 2


cdef bint hop_keeps_header(const char* line, int64_t n, bint to_get, bint drop_cookie, bint cross) noexcept:
    """Whether a header line of the redirected request goes on to the hop:
    never Host (the hop writes its own); no body headers when the hop turns
    into a GET; no Cookie line when the jar wrote the hop's own; no
    credentials or cookies to another origin (as browsers, RFC 9110 15.4)."""
    if find_byte(line, n, b':') <= 0 or ieq_prefix(line, n, b"host:"):
        return False
    if to_get and (ieq_prefix(line, n, b"content-length:") or ieq_prefix(line, n, b"content-type:")
                   or ieq_prefix(line, n, b"content-encoding:") or ieq_prefix(line, n, b"content-language:")
                   or ieq_prefix(line, n, b"content-location:")):
        return False
    if drop_cookie and ieq_prefix(line, n, b"cookie:"):
        return False
    if cross and (ieq_prefix(line, n, b"authorization:") or ieq_prefix(line, n, b"proxy-authorization:")
                  or ieq_prefix(line, n, b"cookie:")):
        return False
    return True


cdef int64_t header_block_end(const char* req, int64_t cap) noexcept:
    """Where the blank line ending the request head starts (its CRLF CRLF's second CRLF), -1: none."""
    cdef const char* at = <const char*>memmem(req, cap, b"\r\n\r\n", 4)
    return (at - req) + 2 if at != NULL else -1


cdef int64_t content_length_of(const char* line, int64_t n) noexcept:
    cdef int64_t i = 15, value = 0
    while i < n and (line[i] == b' ' or line[i] == b'\t'):
        i += 1
    while i < n and b'0' <= line[i] <= b'9':
        value = value * 10 + (line[i] - 48)
        i += 1
    return value


cdef inline bint must_escape(unsigned char b) noexcept:
    return b <= 0x20 or b >= 0x7F or b == b'"' or b == b'<' or b == b'>' or b == b'\\' or b == b'^' \
        or b == b'`' or b == b'{' or b == b'|' or b == b'}'


cdef int64_t copy_target(char* out, const char* target, int64_t n) noexcept:
    """The resolved target into the request line, with bytes a request line
    cannot carry (spaces, controls, non-ASCII) percent-encoded (3n bytes at most)."""
    cdef int64_t i, at = 0
    cdef unsigned char b
    for i in range(n):
        b = <unsigned char>target[i]
        if must_escape(b):
            out[at] = b'%'
            out[at + 1] = HEX_UPPER[b >> 4]
            out[at + 2] = HEX_UPPER[b & 15]
            at += 3
        else:
            out[at] = <char>b
            at += 1
    return at


cdef const char* HEX_UPPER = b"0123456789ABCDEF"


cdef inline bint same_origin(RedirectHost* a, RedirectHost* b) noexcept:
    return (a == b or (a.https == b.https and a.port == b.port and a.name_len == b.name_len
                       and memcmp(a.name, b.name, a.name_len) == 0))


# ---- RFC 3986 section 5: resolving the Location -----------------------------------------
cdef int resolve_location(Engine e, int base_host, const char* base, int64_t base_len, const char* ref,
                          int64_t ref_len, char* out, int64_t* out_len) noexcept:
    """The host index and the request target (path and query, in `out`) the
    reference leads to from `base` (the origin-form target of the request
    answered) on base_host.  -1: it cannot be followed."""
    cdef int64_t i, scheme_end = -1, auth_start, auth_end, path_start
    cdef int host = base_host
    cdef bint https
    cdef int64_t hash_at = find_byte(ref, ref_len, b'#')
    if hash_at >= 0:
        ref_len = hash_at                   # the fragment stays with the client
    # A scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" before any "/", "?".
    if ref_len > 0 and is_alpha(ref[0]):
        for i in range(1, ref_len):
            if ref[i] == b':':
                scheme_end = i
                break
            if not (is_alpha(ref[i]) or (b'0' <= ref[i] <= b'9') or ref[i] == b'+' or ref[i] == b'-'
                    or ref[i] == b'.'):
                break
    if scheme_end >= 0:
        if scheme_end == 4 and ieq_prefix(ref, 4, b"http"):
            https = False
        elif scheme_end == 5 and ieq_prefix(ref, 5, b"https"):
            https = True
        else:
            return -1                       # only http and https are followed
        if ref_len < scheme_end + 3 or ref[scheme_end + 1] != b'/' or ref[scheme_end + 2] != b'/':
            return -1                       # "http:path": no authority
        auth_start = scheme_end + 3
    elif ref_len >= 2 and ref[0] == b'/' and ref[1] == b'/':
        https = e.flow.rhosts[base_host].https      # scheme-relative
        auth_start = 2
    else:
        resolve_path(base, base_len, ref, ref_len, out, out_len)
        return base_host if out_len[0] >= 0 else -1
    auth_end = auth_start
    while auth_end < ref_len and ref[auth_end] != b'/' and ref[auth_end] != b'?':
        auth_end += 1
    host = host_of_authority(e, https, ref + auth_start, auth_end - auth_start)
    if host < 0:
        return -1
    # An authority's path is absolute: its dot segments removed, "/" when empty.
    if ref_len - auth_end > MAX_TARGET_BYTES:
        return -1
    if auth_end == ref_len or ref[auth_end] == b'?':
        out[0] = b'/'
        memcpy(out + 1, ref + auth_end, ref_len - auth_end)
        out_len[0] = 1 + ref_len - auth_end
    else:
        out_len[0] = absolute_path(ref + auth_end, ref_len - auth_end, out)
    return host if out_len[0] >= 0 else -1


cdef inline bint is_alpha(char ch) noexcept:
    return (b'a' <= ch <= b'z') or (b'A' <= ch <= b'Z')


cdef int64_t absolute_path(const char* ref, int64_t n, char* out) noexcept:
    """An absolute path (and query) with its dot segments removed."""
    cdef int64_t q = find_byte(ref, n, b'?'), path_n, at
    path_n = q if q >= 0 else n
    at = remove_dot_segments(ref, path_n, out)
    if at == 0:
        out[0] = b'/'
        at = 1
    if q >= 0:
        if at + n - q > MAX_TARGET_BYTES:
            return -1
        memcpy(out + at, ref + q, n - q)
        at += n - q
    return at


cdef int64_t resolve_path(const char* base, int64_t base_len, const char* ref, int64_t ref_len,
                          char* out, int64_t* out_len) noexcept:
    """A reference without scheme or authority against the base target
    (RFC 3986 5.2.2: absolute path, query only, empty, or a relative path
    merged with the base's directory, 5.2.3); out_len[0] = -1 when too long."""
    cdef int64_t base_q = find_byte(base, base_len, b'?')
    cdef int64_t base_path_len = base_q if base_q >= 0 else base_len
    cdef int64_t last_slash, at
    cdef char merged[2 * MAX_TARGET_BYTES + 8]
    out_len[0] = -1
    if ref_len > MAX_TARGET_BYTES or base_len > MAX_TARGET_BYTES:
        return 0
    if ref_len == 0:                            # only a fragment, or nothing: the base itself
        memcpy(out, base, base_len)
        out_len[0] = base_len
    elif ref[0] == b'/':
        out_len[0] = absolute_path(ref, ref_len, out)
    elif ref[0] == b'?':                        # the base's path, the reference's query
        memcpy(out, base, base_path_len)
        memcpy(out + base_path_len, ref, ref_len)
        out_len[0] = base_path_len + ref_len
    else:                                       # merge: the base's directory + the reference
        last_slash = base_path_len - 1
        while last_slash >= 0 and base[last_slash] != b'/':
            last_slash -= 1
        at = last_slash + 1
        if at == 0:
            merged[0] = b'/'
            at = 1
        else:
            memcpy(merged, base, at)
        memcpy(merged + at, ref, ref_len)
        out_len[0] = absolute_path(merged, at + ref_len, out)
    return 0


cdef int64_t remove_dot_segments(const char* p, int64_t n, char* out) noexcept:
    """RFC 3986 5.2.4 on the path p[0:n] (no query), into out; returns its length."""
    cdef int64_t i = 0, at = 0
    while i < n:
        if n - i >= 3 and p[i] == b'.' and p[i + 1] == b'.' and p[i + 2] == b'/':
            i += 3                              # A: "../"
        elif n - i >= 2 and p[i] == b'.' and p[i + 1] == b'/':
            i += 2                              # A: "./"
        elif n - i >= 3 and p[i] == b'/' and p[i + 1] == b'.' and p[i + 2] == b'/':
            i += 2                              # B: "/./" -> "/"
        elif n - i == 2 and p[i] == b'/' and p[i + 1] == b'.':
            out[at] = b'/'                      # B: a final "/." -> "/"
            return at + 1
        elif n - i >= 4 and p[i] == b'/' and p[i + 1] == b'.' and p[i + 2] == b'.' and p[i + 3] == b'/':
            i += 3                              # C: "/../" -> "/", dropping the last output segment
            at = last_segment_start(out, at)
        elif n - i == 3 and p[i] == b'/' and p[i + 1] == b'.' and p[i + 2] == b'.':
            at = last_segment_start(out, at)    # C: a final "/.." -> "/"
            out[at] = b'/'
            return at + 1
        elif (n - i == 1 and p[i] == b'.') or (n - i == 2 and p[i] == b'.' and p[i + 1] == b'.'):
            return at                           # D: "." or ".." alone
        else:                                   # E: move the first segment (with its "/")
            out[at] = p[i]
            at += 1
            i += 1
            while i < n and p[i] != b'/':
                out[at] = p[i]
                at += 1
                i += 1
    return at


cdef inline int64_t last_segment_start(const char* out, int64_t at) noexcept:
    """Where the output's last segment (with the "/" before it) starts."""
    while at > 0:
        at -= 1
        if out[at] == b'/':
            return at
    return 0


# ---- which host: the plan's, or a slot ----------------------------------------------------
cdef int host_of_authority(Engine e, bint https, const char* a, int64_t n) noexcept:
    """The host index for an authority ("user@name:port", "[v6]:port"): a
    plan host with the same scheme, name and port, else a redirect slot
    (plain http only), resolved once.  -1: none."""
    cdef int64_t at = n - 1, name_start, name_end, port_at = -1, i
    cdef int port, h
    cdef char name[256]
    cdef int64_t name_len
    cdef RedirectHost* rh
    while at >= 0 and a[at] != b'@':
        at -= 1
    name_start = at + 1                         # past any userinfo
    if name_start < n and a[name_start] == b'[':
        name_end = name_start + 1
        while name_end < n and a[name_end] != b']':
            name_end += 1
        if name_end >= n:
            return -1
        name_start += 1
        if name_end + 1 < n:
            if a[name_end + 1] != b':':
                return -1
            port_at = name_end + 2
    else:
        name_end = name_start
        while name_end < n and a[name_end] != b':':
            name_end += 1
        if name_end < n:
            port_at = name_end + 1
    name_len = name_end - name_start
    if name_len <= 0 or name_len >= 256:
        return -1
    for i in range(name_len):
        name[i] = a[name_start + i] | 0x20 if b'A' <= a[name_start + i] <= b'Z' else a[name_start + i]
    port = 443 if https else 80
    if port_at >= 0 and port_at < n:
        port = 0
        for i in range(port_at, n):
            if not (b'0' <= a[i] <= b'9') or port > 65535:
                return -1
            port = port * 10 + (a[i] - 48)
        if port < 1 or port > 65535:
            return -1
    for h in range(e.n_hosts):
        rh = &e.flow.rhosts[h]
        if ((rh.state == RH_PLAN or rh.state == RH_READY or rh.state == RH_FAILED) and rh.https == https
                and rh.port == port and rh.name_len == name_len and memcmp(rh.name, name, name_len) == 0):
            return h if rh.state != RH_FAILED else -1
    if https:
        return -1                               # an https host must be a host of the plan (it needs TLS options)
    for h in range(e.flow.n_plan_hosts, e.n_hosts):
        if e.flow.rhosts[h].state == RH_FREE:
            return claim_slot(e, h, name, name_len, port)
    return -1


cdef int claim_slot(Engine e, int h, const char* name, int64_t name_len, int port) noexcept:
    """A redirect slot for http://name:port, resolved now (once per worker and run)."""
    cdef RedirectHost* rh = &e.flow.rhosts[h]
    cdef addrinfo hints
    cdef addrinfo* found = NULL
    cdef char service[8]
    cdef bint v6 = memchr(name, b':', name_len) != NULL
    memcpy(rh.name, name, name_len)
    rh.name[name_len] = 0
    rh.name_len = <int32_t>name_len
    rh.port = port
    rh.https = False
    rh.state = RH_FAILED
    rh.authority_len = authority_of(rh.authority, name, name_len, port, v6)
    service[write_decimal(service, port)] = 0
    memset(&hints, 0, sizeof(hints))
    hints.ai_socktype = SOCK_STREAM
    hints.ai_flags = AI_NUMERICSERV
    if getaddrinfo(rh.name, service, &hints, &found) != 0 or found == NULL:
        return -1
    if found.ai_addrlen <= sizeof(sockaddr_storage):
        memcpy(&e.host_addrs[h], found.ai_addr, found.ai_addrlen)
        e.host_addr_lens[h] = found.ai_addrlen
        e.host_families[h] = found.ai_family
        rh.state = RH_READY
    freeaddrinfo(found)
    return h if rh.state == RH_READY else -1


cdef int32_t authority_of(char* out, const char* name, int64_t name_len, int port, bint v6) noexcept:
    """The Host header's value: name (an IPv6 address in brackets), ":port" unless 80."""
    cdef int32_t at = 0
    if v6:
        out[0] = b'['
        at = 1
    memcpy(out + at, name, name_len)
    at += <int32_t>name_len
    if v6:
        out[at] = b']'
        at += 1
    if port != 80:
        out[at] = b':'
        at += 1 + <int32_t>write_decimal(out + at + 1, port)
    return at


# ---- for tests: the resolution alone ----------------------------------------------------
def resolve_reference(bytes base, bytes reference):
    """RFC 3986 section 5 as the engine applies it to a Location, for a
    reference without scheme or authority: the request target it leads to
    from the origin-form target `base` (None: it cannot be followed)."""
    cdef char out[MAX_TARGET_BYTES + 16]
    cdef int64_t out_len = -1
    cdef bytes ref = reference.split(b"#", 1)[0]
    if ref.startswith(b"//") or b"://" in ref:
        raise ValueError("a reference with an authority: resolved by the engine against its hosts")
    resolve_path(PyBytes_AS_STRING(base), len(base), PyBytes_AS_STRING(ref), len(ref), out, &out_len)
    return None if out_len < 0 else out[:out_len]
