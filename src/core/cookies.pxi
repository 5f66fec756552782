# Cookies, included into _engine.pyx: one jar per virtual user (RFC 6265).
#
# Filled from Set-Cookie: framing.pxi calls jar_capture() for each such header
# line of a response when the connection's framer has a jar (the step keeps
# cookies).  Sent as one Cookie header, written by render.pxi where a step's
# head has a PART_COOKIES part; surge.run.flows puts one only on steps that
# could find a cookie in the jar or must note their request for a Set-Cookie.
# A flow without cookies pays nothing: no part, no jar on its framers.
#
# Bounds: JAR_MAX_COOKIES (50) per VU over every host of the plan (browsers
# keep about 50 per domain, and one VU of a load test talks to a few hosts);
# COOKIE_MAX_BYTES (4096) for name + value, as browsers take; a larger cookie
# is ignored, as they do.  A full jar drops its expired cookies, then the one
# set longest ago.  A jar's slots are allocated when its first cookie arrives
# and each cookie's buffer is reused after a reset, so iterations in steady
# state allocate nothing.
#
# Where RFC 6265 leaves room:
# - no public suffix list: a Domain without an inner dot ("com", "localhost")
#   is taken only when it names the request's own host (then host-only);
# - a Secure cookie set over http is kept (RFC 6265; 6265bis refuses it) and,
#   like every Secure cookie, sent only to https hosts;
# - Max-Age wins over Expires; an Expires date is turned into the run's
#   CLOCK_MONOTONIC clock once, when the cookie arrives;
# - SameSite and the other attributes are ignored: no request here is cross-site.

cdef extern from "<time.h>" nogil:
    int CLOCK_REALTIME

DEF MAX_AGE_LIMIT_S = 3153600000    # 100 years: later expiries are "never" for a run
DEF NS_PER_S = 1000000000


cdef struct CookieText:
    # One Set-Cookie value, parsed: pointers into the header line.
    const char* name
    int32_t name_len
    const char* value
    int32_t value_len
    const char* domain          # NULL: no Domain attribute (leading dot removed)
    int32_t domain_len
    const char* path            # NULL: the request's default path
    int32_t path_len
    bint has_max_age
    int64_t max_age_s
    bint has_expires
    int64_t expires_unix_s
    bint secure
    bint http_only


# ---- set-up (called from _engine.pyx) --------------------------------------------------
cdef void cookies_setup(Engine e, object tables) except *:
    """The hosts as cookies see them, and the reset rule, from the FlowTables."""
    cdef CookieTable* t = &e.flow.cookies
    cdef int i
    hosts = tables.cookie_hosts
    t.n_hosts = len(hosts)
    t.n_all_hosts = max(e.n_hosts, t.n_hosts)
    t.hosts = <CookieHost*>calloc(max(t.n_all_hosts, 1), sizeof(CookieHost))
    if t.hosts == NULL:
        raise MemoryError()
    for i, (name, https, is_ip) in enumerate(hosts):
        e.keepalive.append(name)
        t.hosts[i].name = PyBytes_AS_STRING(name)
        t.hosts[i].name_len = len(name)
        t.hosts[i].https = https
        t.hosts[i].is_ip = is_ip
    t.reset_each_iteration = tables.cookies_reset_each_iteration
    for i in range(e.flow.n_vus):
        e.flow.vus[i].jar.table = t


cdef void compile_step_cookies(Engine e, Step* st, object spec) except *:
    """The step's cookie flags and the cookies it sets (name, value template)."""
    cdef int k
    st.cookies_capture = spec.cookies_capture
    st.cookies_hops = spec.cookies_hops
    st.n_set_cookies = len(spec.set_cookies)
    if st.n_set_cookies == 0:
        return
    st.set_cookies = <StepCookie*>calloc(st.n_set_cookies, sizeof(StepCookie))
    if st.set_cookies == NULL:
        raise MemoryError()
    for k, (name, parts) in enumerate(spec.set_cookies):
        e.keepalive.append(name)
        st.set_cookies[k].name = PyBytes_AS_STRING(name)
        st.set_cookies[k].name_len = len(name)
        e._compile_template(&st.set_cookies[k].value, parts, e.keepalive)


cdef void cookies_free(Engine e) noexcept:
    cdef uint32_t v
    cdef int i
    if e.flow.vus != NULL:
        for v in range(e.flow.n_vus):
            jar_free(&e.flow.vus[v].jar)
    if e.flow.steps != NULL:
        for i in range(e.flow.n_steps):
            if e.flow.steps[i].set_cookies != NULL:
                for v in range(<uint32_t>e.flow.steps[i].n_set_cookies):
                    free(e.flow.steps[i].set_cookies[v].value.parts)
                free(e.flow.steps[i].set_cookies)
                e.flow.steps[i].set_cookies = NULL
    free(e.flow.cookies.hosts)
    e.flow.cookies.hosts = NULL
    free(e.flow.cookies.scratch)
    e.flow.cookies.scratch = NULL


cdef void jar_free(CookieJar* jar) noexcept:
    cdef int k
    free(jar.path)
    jar.path = NULL
    jar.path_cap = 0
    if jar.cookies == NULL:
        return
    for k in range(JAR_MAX_COOKIES):
        free(jar.cookies[k].data)
    free(jar.cookies)
    jar.cookies = NULL
    jar.n = 0


# ---- the hooks of a request's life (flows.pxi, render.pxi, framing.pxi) ------------------
cdef inline void jar_new_iteration(Engine e, VU* vu) noexcept:
    """cookies: {reset: iteration} (the default): each iteration starts empty."""
    if e.flow.cookies.reset_each_iteration:
        vu.jar.n = 0


cdef inline void* jar_sink(VU* vu, Step* st) noexcept:
    """What the framer of this step's connection feeds Set-Cookie to (NULL: not read)."""
    return &vu.jar if st.cookies_capture else NULL


cdef int64_t cookie_header_into(Engine e, VU* vu, Step* st, bint send, char** buf, int64_t* cap,
                                int64_t at) noexcept:
    """A PART_COOKIES part: note the request (its host, and its path in buf[0],
    rendered up to `at`) for its response's Set-Cookie, put the step's own
    cookies into the jar, then (send) the Cookie header of the cookies this
    request matches.  Returns the new end (-1: out of memory)."""
    cdef CookieJar* jar = &vu.jar
    jar_note_request(jar, st.host, buf, at)
    if st.n_set_cookies and not jar_set_step_cookies(e, vu, st):
        return -1
    if not send or jar.n == 0:
        return at
    return jar_header_into(jar, buf, cap, at)


cdef void jar_note_request(CookieJar* jar, int host, char** buf, int64_t at) noexcept:
    """The request line starts buf[0]: "METHOD SP path[?query] SP HTTP/1.1".
    Its path is copied: the buffer may be shared (a redirect hop's) or grown."""
    cdef const char* line = buf[0]
    cdef int64_t i = 0, j
    cdef char* grown
    while i < at and line[i] != b' ':
        i += 1
    i += 1
    j = i
    while j < at and line[j] != b' ' and line[j] != b'?' and line[j] != b'#' and line[j] != b'\r':
        j += 1
    jar.host = host
    jar.noted = False
    jar.path_len = 0
    if j > i:
        if j - i > jar.path_cap:
            grown = <char*>realloc(jar.path, max(j - i, 64))
            if grown == NULL:
                return
            jar.path = grown
            jar.path_cap = <int32_t>max(j - i, 64)
        memcpy(jar.path, line + i, j - i)
        jar.path_len = <int32_t>(j - i)
    jar.noted = True


cdef inline void request_path(CookieJar* jar, const char** path, int32_t* path_len) noexcept:
    """The noted request's path ("/" when it has none: RFC 6265 section 5.1.4)."""
    if jar.path_len == 0 or jar.path[0] != b'/':
        path[0] = b"/"
        path_len[0] = 1
    else:
        path[0] = jar.path
        path_len[0] = jar.path_len


cdef int64_t cookie_hop_into(Engine e, VU* vu, Step* st, int host, char** buf, int64_t* cap,
                             int64_t at) noexcept:
    """A redirect hop's request (redirect.pxi), its request line and Host
    written in buf[0] up to `at`: note it for its response's Set-Cookie and
    add the jar's Cookie header for the hop's host and path.  Nothing when
    the step keeps no cookies.  Returns the new end (-1: out of memory)."""
    cdef CookieTable* t = &e.flow.cookies
    cdef CookieHost* h
    cdef int32_t i
    if not st.cookies_hops or t.hosts == NULL or not 0 <= host < t.n_all_hosts:
        return at
    if host >= t.n_hosts:               # a host first seen in a Location: its slot's name now
        if e.flow.rhosts == NULL:
            return at
        h = &t.hosts[host]
        h.name = e.flow.rhosts[host].name
        h.name_len = e.flow.rhosts[host].name_len
        h.https = e.flow.rhosts[host].https
        h.is_ip = h.name_len > 0
        for i in range(h.name_len):
            if not (h.name[i] == b'.' or h.name[i] == b':' or b'0' <= h.name[i] <= b'9'):
                h.is_ip = False
    jar_note_request(&vu.jar, host, buf, at)
    if vu.jar.n == 0:
        return at
    return jar_header_into(&vu.jar, buf, cap, at)


cdef bint jar_set_step_cookies(Engine e, VU* vu, Step* st) noexcept:
    """`cookies: {name: value}`: host-only cookies of the step's host, Path=/,
    for the session, rendered now (values may be templates)."""
    cdef CookieTable* t = &e.flow.cookies
    cdef CookieHost* host = &t.hosts[st.host]
    cdef int k
    cdef int64_t n
    cdef uint32_t v = <uint32_t>(vu - e.flow.vus)
    for k in range(st.n_set_cookies):
        n = render_template(e, &st.set_cookies[k].value, vu, v, &t.scratch, &t.scratch_cap, 0)
        if n < 0:
            return False
        jar_store(&vu.jar, st.set_cookies[k].name, st.set_cookies[k].name_len, t.scratch, <int32_t>n,
                  host.name, host.name_len, b"/", 1, True, False, False, 0, False)
    return True


cdef void jar_capture(void* sink, const char* p, Py_ssize_t n) noexcept:
    """One Set-Cookie header's value (framing.pxi, while it parses a head),
    read against the request it answers (RFC 6265 section 5.3).  A head split
    over reads is parsed again when it completes: storing the same cookie
    twice replaces it with itself, so the result is the same."""
    cdef CookieJar* jar = <CookieJar*>sink
    cdef CookieText ck
    cdef CookieHost* host
    cdef char domain[COOKIE_MAX_ATTR_BYTES]
    cdef const char* domain_p
    cdef const char* path
    cdef int32_t domain_len, path_len
    cdef int64_t now, expires = 0, delta_s
    cdef bint host_only = True, expired = False
    cdef int i
    if not jar.noted or jar.table == NULL or not parse_set_cookie(p, n, &ck):
        return
    host = &jar.table.hosts[jar.host]
    now = jar_now(jar.table)
    if ck.has_max_age:
        expired = ck.max_age_s <= 0
        expires = now + min(ck.max_age_s, MAX_AGE_LIMIT_S) * NS_PER_S
    elif ck.has_expires:
        delta_s = ck.expires_unix_s - realtime_s()
        expired = delta_s <= 0
        expires = now + min(delta_s, MAX_AGE_LIMIT_S) * NS_PER_S
    if ck.domain != NULL:
        for i in range(ck.domain_len):
            domain[i] = lower_ascii(ck.domain[i])
        if not domain_allowed(host, domain, ck.domain_len, &host_only):
            return                      # another site's Domain: ignored (section 5.3 step 6)
        domain_p, domain_len = domain, ck.domain_len
        if host_only:
            domain_p, domain_len = host.name, host.name_len
    else:
        domain_p, domain_len = host.name, host.name_len
    if ck.path != NULL:
        path, path_len = ck.path, ck.path_len
    else:
        default_path(jar, &path, &path_len)
    jar_store(jar, ck.name, ck.name_len, ck.value, ck.value_len, domain_p, domain_len, path, path_len,
              host_only, ck.secure, ck.http_only, 0 if expired else expires, expired)


cdef bint domain_allowed(CookieHost* host, const char* domain, int32_t domain_len, bint* host_only) noexcept:
    """Whether a Domain attribute may be set by this host (it domain-matches
    the host); host_only: it is a single label naming the host itself."""
    cdef int32_t i
    cdef bint has_dot = False
    if domain_len == host.name_len and memcmp(domain, host.name, domain_len) == 0:
        for i in range(domain_len):
            has_dot = has_dot or domain[i] == b'.'
        host_only[0] = not has_dot or host.is_ip
        return True
    host_only[0] = False
    if host.is_ip or not domain_suffix(host.name, host.name_len, domain, domain_len):
        return False
    for i in range(domain_len):
        if domain[i] == b'.':
            return True
    return False                        # "com": no public suffix list, so no bare label


cdef inline bint domain_suffix(const char* name, int32_t name_len, const char* domain, int32_t domain_len) noexcept:
    """name ends with "." + domain (section 5.1.3's second rule)."""
    return (name_len > domain_len and name[name_len - domain_len - 1] == b'.'
            and memcmp(name + name_len - domain_len, domain, domain_len) == 0)


cdef void default_path(CookieJar* jar, const char** path, int32_t* path_len) noexcept:
    """Section 5.1.4: the request's path up to its last "/", or "/"."""
    cdef const char* p
    cdef int32_t n, last
    request_path(jar, &p, &n)
    last = n - 1
    while last > 0 and p[last] != b'/':
        last -= 1
    if last <= 0:
        path[0], path_len[0] = b"/", 1
    else:
        path[0], path_len[0] = p, last


# ---- the jar -------------------------------------------------------------------------------
cdef inline int64_t jar_now(CookieTable* t) noexcept:
    return monotonic_ns() + t.clock_skew_ns


cdef inline int64_t realtime_s() noexcept:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec


cdef inline char lower_ascii(char ch) noexcept:
    return ch | 0x20 if b'A' <= ch <= b'Z' else ch


cdef inline const char* cookie_domain(Cookie* c) noexcept:
    return c.data + c.name_len + c.value_len


cdef inline const char* cookie_path(Cookie* c) noexcept:
    return c.data + c.name_len + c.value_len + c.domain_len


cdef int jar_find(CookieJar* jar, const char* name, int32_t name_len, const char* domain, int32_t domain_len,
                  const char* path, int32_t path_len) noexcept:
    """The slot of the cookie with this name, domain and path (-1: none)."""
    cdef int k
    cdef Cookie* c
    for k in range(jar.n):
        c = &jar.cookies[k]
        if (c.name_len == name_len and c.domain_len == domain_len and c.path_len == path_len
                and memcmp(c.data, name, name_len) == 0 and memcmp(cookie_domain(c), domain, domain_len) == 0
                and memcmp(cookie_path(c), path, path_len) == 0):
            return k
    return -1


cdef void jar_remove(CookieJar* jar, int k) noexcept:
    """Drop slot k; the last cookie takes its place (order is kept by `created`)."""
    cdef Cookie gone = jar.cookies[k]
    jar.n -= 1
    jar.cookies[k] = jar.cookies[jar.n]
    jar.cookies[jar.n] = gone           # its buffer is reused by the next cookie


cdef void jar_make_room(CookieJar* jar, int64_t now) noexcept:
    """A full jar: drop the expired cookies, else the one set longest ago."""
    cdef int k = 0, oldest = 0
    while k < jar.n:
        if jar.cookies[k].expires_ns and jar.cookies[k].expires_ns <= now:
            jar_remove(jar, k)
        else:
            k += 1
    if jar.n < JAR_MAX_COOKIES:
        return
    for k in range(1, jar.n):
        if jar.cookies[k].created < jar.cookies[oldest].created:
            oldest = k
    jar_remove(jar, oldest)


cdef void jar_store(CookieJar* jar, const char* name, int32_t name_len, const char* value, int32_t value_len,
                    const char* domain, int32_t domain_len, const char* path, int32_t path_len,
                    bint host_only, bint secure, bint http_only, int64_t expires_ns, bint expired) noexcept:
    """Section 5.3 step 11: a cookie replaces the one with its name, domain and
    path (keeping that one's creation time); an expired one only deletes."""
    cdef int k = -1
    cdef int64_t created
    cdef int32_t need = name_len + value_len + domain_len + path_len
    cdef Cookie* c
    cdef char* grown
    if name_len + value_len > COOKIE_MAX_BYTES:
        return
    if jar.cookies != NULL:
        k = jar_find(jar, name, name_len, domain, domain_len, path, path_len)
    if expired:
        if k >= 0:
            jar_remove(jar, k)
        return
    if jar.cookies == NULL:
        jar.cookies = <Cookie*>calloc(JAR_MAX_COOKIES, sizeof(Cookie))
        if jar.cookies == NULL:
            return
    if k >= 0:
        created = jar.cookies[k].created
    else:
        if jar.n == JAR_MAX_COOKIES:
            jar_make_room(jar, jar_now(jar.table))
        k = jar.n
        jar.n += 1
        created = jar.next_seq
        jar.next_seq += 1
    c = &jar.cookies[k]
    if need > c.data_cap:
        grown = <char*>realloc(c.data, max(need, 64))
        if grown == NULL:
            jar_remove(jar, k)
            return
        c.data = grown
        c.data_cap = max(need, 64)
    memcpy(c.data, name, name_len)
    memcpy(c.data + name_len, value, value_len)
    memcpy(c.data + name_len + value_len, domain, domain_len)
    memcpy(c.data + name_len + value_len + domain_len, path, path_len)
    c.name_len, c.value_len, c.domain_len, c.path_len = name_len, value_len, domain_len, path_len
    c.expires_ns = expires_ns
    c.created = created
    c.host_only, c.secure, c.http_only = host_only, secure, http_only


cdef bint host_matches(Cookie* c, CookieHost* host) noexcept:
    """Section 5.4 step 1: a host-only cookie goes to its host only; a Domain
    cookie to that domain and the names under it (not to an IP address)."""
    if c.domain_len == host.name_len and memcmp(cookie_domain(c), host.name, host.name_len) == 0:
        return True
    return not c.host_only and not host.is_ip and domain_suffix(host.name, host.name_len, cookie_domain(c),
                                                                 c.domain_len)


cdef bint path_matches(Cookie* c, const char* path, int32_t path_len) noexcept:
    """Section 5.1.4: the cookie's path is the request's, or a prefix of it
    ending at a "/"."""
    cdef const char* cp = cookie_path(c)
    if c.path_len > path_len or memcmp(cp, path, c.path_len) != 0:
        return False
    return c.path_len == path_len or cp[c.path_len - 1] == b'/' or path[c.path_len] == b'/'


cdef bint sends(CookieJar* jar, Cookie* c, CookieHost* host, const char* path, int32_t path_len) noexcept:
    return (not c.secure or host.https) and host_matches(c, host) and path_matches(c, path, path_len)


cdef int64_t jar_header_into(CookieJar* jar, char** buf, int64_t* cap, int64_t at) noexcept:
    """`Cookie: a=1; b=2\\r\\n` of the cookies the noted request matches, longer
    paths first, then older first (section 5.4 step 2); expired ones are
    dropped on the way.  Nothing when none matches."""
    cdef int order[JAR_MAX_COOKIES]
    cdef int n_sent = 0, k = 0, i
    cdef int64_t now = jar_now(jar.table), need = 10
    cdef CookieHost* host = &jar.table.hosts[jar.host]
    cdef const char* path
    cdef int32_t path_len
    cdef Cookie* c
    request_path(jar, &path, &path_len)
    while k < jar.n:
        c = &jar.cookies[k]
        if c.expires_ns and c.expires_ns <= now:
            jar_remove(jar, k)          # the last slot moves here: not seen yet
            continue
        if sends(jar, c, host, path, path_len):
            i = n_sent
            while i > 0 and sent_before(c, &jar.cookies[order[i - 1]]):
                order[i] = order[i - 1]
                i -= 1
            order[i] = k
            n_sent += 1
            need += c.name_len + c.value_len + 3
        k += 1
    if n_sent == 0:
        return at
    if not reserve(buf, cap, at + need + 1):
        return -1
    memcpy(buf[0] + at, b"Cookie: ", 8)
    at += 8
    for i in range(n_sent):
        c = &jar.cookies[order[i]]
        if i:
            buf[0][at] = b';'
            buf[0][at + 1] = b' '
            at += 2
        memcpy(buf[0] + at, c.data, c.name_len)
        at += c.name_len
        buf[0][at] = b'='
        at += 1
        memcpy(buf[0] + at, c.data + c.name_len, c.value_len)
        at += c.value_len
    buf[0][at] = b'\r'
    buf[0][at + 1] = b'\n'
    return at + 2


cdef inline bint sent_before(Cookie* a, Cookie* b) noexcept:
    return a.path_len > b.path_len or (a.path_len == b.path_len and a.created < b.created)


cdef bint jar_extract(VU* vu, Extract* ex) noexcept:
    """extract: {VAR: {cookie: NAME}}: the value of cookie NAME for the step's
    host (the one its request would send first, else the one set last);
    False: none."""
    cdef CookieJar* jar = &vu.jar
    cdef CookieHost* host
    cdef const char* path
    cdef int32_t path_len
    cdef int k, best = -1
    cdef bint best_sent = False, sent
    cdef int64_t now
    cdef Cookie* c
    if jar.n == 0 or not jar.noted:
        return False
    host = &jar.table.hosts[jar.host]
    now = jar_now(jar.table)
    request_path(jar, &path, &path_len)
    for k in range(jar.n):
        c = &jar.cookies[k]
        if (c.name_len != ex.name_len or memcmp(c.data, ex.name, ex.name_len) != 0
                or (c.expires_ns and c.expires_ns <= now) or not host_matches(c, host)):
            continue
        sent = sends(jar, c, host, path, path_len)
        if (best < 0 or (sent and not best_sent)
                or (sent == best_sent and (sent_before(c, &jar.cookies[best]) if sent
                                           else c.created > jar.cookies[best].created))):
            best, best_sent = k, sent
    if best < 0:
        return False
    c = &jar.cookies[best]
    if set_variable(vu, ex.var, c.data + c.name_len, c.value_len):
        vu.var_lengths[ex.var] = c.value_len
    return True


# ---- Set-Cookie (RFC 6265 section 5.2) -------------------------------------------------------
cdef inline bint cookie_space(char ch) noexcept:
    return ch == b' ' or ch == b'\t'


cdef void trim_span(const char* p, Py_ssize_t start, Py_ssize_t end, const char** out, int32_t* out_len) noexcept:
    while start < end and cookie_space(p[start]):
        start += 1
    while end > start and cookie_space(p[end - 1]):
        end -= 1
    out[0] = p + start
    out_len[0] = <int32_t>(end - start)


cdef inline bint attribute_is(const char* name, int32_t n, const char* lower) noexcept:
    """The attribute's name is `lower`, ASCII case-insensitively."""
    cdef int32_t i = 0
    while i < n:
        if lower[i] == 0 or lower_ascii(name[i]) != lower[i]:
            return False
        i += 1
    return lower[n] == 0


cdef bint parse_set_cookie(const char* p, Py_ssize_t n, CookieText* out) noexcept:
    """The name=value pair and the attributes; False: the header is ignored
    (no "=", an empty name, or name + value over COOKIE_MAX_BYTES)."""
    cdef Py_ssize_t end = 0, eq = 0, attr_end
    memset(out, 0, sizeof(CookieText))
    while end < n and p[end] != b';':
        end += 1
    while eq < end and p[eq] != b'=':
        eq += 1
    if eq == end:
        return False
    trim_span(p, 0, eq, &out.name, &out.name_len)
    trim_span(p, eq + 1, end, &out.value, &out.value_len)
    if out.name_len == 0 or <int64_t>out.name_len + out.value_len > COOKIE_MAX_BYTES:
        return False
    while end < n:                      # p[end] is a ';'
        attr_end = end + 1
        while attr_end < n and p[attr_end] != b';':
            attr_end += 1
        parse_attribute(p + end + 1, attr_end - end - 1, out)
        end = attr_end
    return True


cdef void parse_attribute(const char* p, Py_ssize_t n, CookieText* out) noexcept:
    """One cookie-av (section 5.2.1-5.2.6); the last of a kind wins, and one
    that does not parse is ignored."""
    cdef Py_ssize_t eq = 0
    cdef const char* name
    cdef const char* value
    cdef int32_t name_len, value_len
    while eq < n and p[eq] != b'=':
        eq += 1
    trim_span(p, 0, eq, &name, &name_len)
    if eq < n:
        trim_span(p, eq + 1, n, &value, &value_len)
    else:
        value, value_len = p + n, 0
    if attribute_is(name, name_len, b"expires"):
        out.has_expires = parse_cookie_date(value, value_len, &out.expires_unix_s) or out.has_expires
    elif attribute_is(name, name_len, b"max-age"):
        if parse_max_age(value, value_len, &out.max_age_s):
            out.has_max_age = True
    elif attribute_is(name, name_len, b"domain"):
        if value_len > 0 and value[0] == b'.':
            value += 1
            value_len -= 1
        if 0 < value_len <= COOKIE_MAX_ATTR_BYTES:
            out.domain, out.domain_len = value, value_len
    elif attribute_is(name, name_len, b"path"):
        if 0 < value_len <= COOKIE_MAX_ATTR_BYTES and value[0] == b'/':
            out.path, out.path_len = value, value_len
        else:
            out.path = NULL             # section 5.2.4: the default path
    elif attribute_is(name, name_len, b"secure"):
        out.secure = True
    elif attribute_is(name, name_len, b"httponly"):
        out.http_only = True


cdef bint parse_max_age(const char* p, int32_t n, int64_t* seconds) noexcept:
    """Section 5.2.2: an optional "-" and digits (a huge value is capped)."""
    cdef int32_t i = 0
    cdef bint negative = n > 0 and p[0] == b'-'
    cdef int64_t value = 0
    if negative:
        i = 1
    if i >= n:
        return False
    while i < n:
        if not (b'0' <= p[i] <= b'9'):
            return False
        if value < MAX_AGE_LIMIT_S:
            value = value * 10 + (p[i] - 48)
        i += 1
    seconds[0] = -value if negative else value
    return True


# ---- cookie dates (RFC 6265 section 5.1.1) ---------------------------------------------------
cdef inline bint date_delimiter(unsigned char ch) noexcept:
    return (ch == 0x09 or 0x20 <= ch <= 0x2F or 0x3B <= ch <= 0x40 or 0x5B <= ch <= 0x60
            or 0x7B <= ch <= 0x7E)


cdef inline int leading_digits(const char* p, int32_t n, int most, int* value) noexcept:
    """How many digits start p (0 when more than `most`); their value in value[0]."""
    cdef int count = 0
    value[0] = 0
    while count < n and b'0' <= p[count] <= b'9':
        if count == most:
            return 0
        value[0] = value[0] * 10 + (p[count] - 48)
        count += 1
    return count


cdef bint date_time(const char* p, int32_t n, int* hms) noexcept:
    """hms-time: 1*2DIGIT ":" 1*2DIGIT ":" 1*2DIGIT, then a non-digit or the end."""
    cdef int at = 0, k, d
    for k in range(3):
        d = leading_digits(p + at, n - at, 2, &hms[k])
        if d == 0:
            return False
        at += d
        if k < 2:
            if at >= n or p[at] != b':':
                return False
            at += 1
    return True


cdef int date_month(const char* p, int32_t n) noexcept:
    """1..12 from the token's first three letters, 0 when they name no month."""
    cdef const char* names = b"janfebmaraprmayjunjulaugsepoctnovdec"
    cdef int m
    if n < 3:
        return 0
    for m in range(12):
        if (lower_ascii(p[0]) == names[3 * m] and lower_ascii(p[1]) == names[3 * m + 1]
                and lower_ascii(p[2]) == names[3 * m + 2]):
            return m + 1
    return 0


cdef bint parse_cookie_date(const char* p, int32_t n, int64_t* unix_s) noexcept:
    """The cookie-date algorithm: tokens between delimiters give the time,
    the day of month, the month and the year, each taken from the first
    token that fits.  False: the date does not parse (the attribute is then
    ignored)."""
    cdef int32_t i = 0, start
    cdef int hms[3]
    cdef int day = 0, month = 0, year = 0, value, digits
    cdef bint found_time = False, found_day = False, found_month = False, found_year = False
    cdef int days_in[12]
    days_in[:] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    while i < n:
        while i < n and date_delimiter(<unsigned char>p[i]):
            i += 1
        start = i
        while i < n and not date_delimiter(<unsigned char>p[i]):
            i += 1
        if i == start:
            break
        if not found_time and date_time(p + start, i - start, hms):
            found_time = True
            continue
        digits = leading_digits(p + start, i - start, 2, &value)
        if not found_day and digits >= 1:
            day, found_day = value, True
            continue
        if not found_month and date_month(p + start, i - start):
            month, found_month = date_month(p + start, i - start), True
            continue
        digits = leading_digits(p + start, i - start, 4, &value)
        if not found_year and digits >= 2:
            year, found_year = value, True
    if not (found_time and found_day and found_month and found_year):
        return False
    if 70 <= year <= 99:
        year += 1900
    elif 0 <= year <= 69:
        year += 2000
    if (year < 1601 or day < 1 or day > days_in[month - 1] or hms[0] > 23 or hms[1] > 59 or hms[2] > 59
            or (month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)))):
        return False
    unix_s[0] = days_since_epoch(year, month, day) * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
    return True


cdef int64_t days_since_epoch(int64_t year, int month, int day) noexcept:
    """Days from 1970-01-01 to this Gregorian date.  Counting years from March
    puts the leap day last, so a year's days before a month are one formula."""
    cdef int64_t y = year - (1 if month <= 2 else 0)
    cdef int64_t march_month = (month + 9) % 12             # March 0 .. February 11
    cdef int64_t day_of_year = (153 * march_month + 2) // 5 + day - 1
    cdef int64_t days = y * 365 + y // 4 - y // 100 + y // 400 + day_of_year
    return days - 719468                # the count the same formula gives for 1970-01-01


# ---- the jar outside a run, for tests ------------------------------------------------------
cdef class CookieJarProbe:
    """One jar with the engine's code, for tests: hosts as (name bytes, https,
    is_ip); receive() feeds a Set-Cookie value as if a request to
    (host, path) got it, header() gives what a request would send."""
    cdef CookieTable table
    cdef CookieJar jar
    cdef list keep
    cdef char* request
    cdef int64_t request_cap

    def __cinit__(self, list hosts):
        cdef int i
        self.keep = []
        self.table.n_hosts = len(hosts)
        self.table.hosts = <CookieHost*>calloc(max(len(hosts), 1), sizeof(CookieHost))
        for i, (name, https, is_ip) in enumerate(hosts):
            self.keep.append(name)
            self.table.hosts[i].name = PyBytes_AS_STRING(name)
            self.table.hosts[i].name_len = len(name)
            self.table.hosts[i].https = https
            self.table.hosts[i].is_ip = is_ip
        self.jar.table = &self.table

    def __dealloc__(self):
        jar_free(&self.jar)
        free(self.table.hosts)
        free(self.request)

    cdef int64_t _note(self, int host, bytes target) except -1:
        if not 0 <= host < self.table.n_hosts:
            raise IndexError("no such host")
        line = b"GET " + target + b" HTTP/1.1\r\n"
        if not reserve(&self.request, &self.request_cap, len(line) + 1):
            raise MemoryError()
        memcpy(self.request, PyBytes_AS_STRING(line), len(line))
        jar_note_request(&self.jar, host, &self.request, len(line))
        return len(line)

    def receive(self, int host, bytes target, bytes set_cookie):
        """A response to GET target on host carried `Set-Cookie: set_cookie`."""
        self._note(host, target)
        jar_capture(&self.jar, PyBytes_AS_STRING(set_cookie), len(set_cookie))

    def header(self, int host, bytes target):
        """The Cookie header's value a request to GET target on host sends (None: none)."""
        cdef int64_t at = self._note(host, target)
        cdef int64_t end = jar_header_into(&self.jar, &self.request, &self.request_cap, at)
        if end < 0:
            raise MemoryError()
        if end == at:
            return None
        return self.request[at + 8:end - 2]

    def advance(self, double seconds):
        """Move the jar's clock forward."""
        self.table.clock_skew_ns += <int64_t>(seconds * 1e9)

    def clear(self):
        self.jar.n = 0

    @property
    def count(self):
        """Cookies held (expired ones not yet dropped included)."""
        return self.jar.n

    def cookies(self):
        """[(name, value, domain, path, host_only, secure, http_only)] in slot order."""
        cdef int k
        cdef Cookie* c
        out = []
        for k in range(self.jar.n):
            c = &self.jar.cookies[k]
            out.append((c.data[:c.name_len], c.data[c.name_len:c.name_len + c.value_len],
                        cookie_domain(c)[:c.domain_len], cookie_path(c)[:c.path_len],
                        bool(c.host_only), bool(c.secure), bool(c.http_only)))
        return out


def cookie_date(bytes text):
    """RFC 6265's cookie-date parsed to Unix seconds, or None (for tests)."""
    cdef int64_t unix_s = 0
    if parse_cookie_date(PyBytes_AS_STRING(text), len(text), &unix_s):
        return unix_s
    return None
