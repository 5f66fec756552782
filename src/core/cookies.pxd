# The cookie jar of each virtual user (cookies.pxi does the work): RFC 6265
# cookies taken from Set-Cookie and sent back as one Cookie header.
from libc.stdint cimport int32_t, int64_t

# Bounds (why these numbers: cookies.pxi's header comment).
cdef enum:
    JAR_MAX_COOKIES = 50        # per virtual user, over every host of the plan
    COOKIE_MAX_BYTES = 4096     # name + value of one cookie; a larger one is ignored
    COOKIE_MAX_ATTR_BYTES = 1024    # a Domain or Path value; a longer one is ignored (RFC 6265bis)


cdef struct Cookie:
    char* data              # name, value, domain, path back to back (owned; reused after a reset)
    int32_t data_cap
    int32_t name_len
    int32_t value_len
    int32_t domain_len      # lower case, without a leading dot
    int32_t path_len
    int64_t expires_ns      # the CLOCK_MONOTONIC instant it expires; 0: a session cookie (never, in a run)
    int64_t created         # the jar's sequence number: Cookie header order among equal paths, eviction
    bint host_only          # no Domain attribute: sent to the host that set it only
    bint secure             # sent over https only
    bint http_only          # parsed and kept; a load generator has no scripts to hide it from


cdef struct CookieHost:
    # One host of the plan as cookies see it (RFC 6265 section 5.1.2: the
    # host name in lower case; an IPv6 literal without its brackets).
    const char* name
    int32_t name_len
    bint https              # a Secure cookie is sent only to such a host
    bint is_ip              # an IP literal: a Domain attribute must equal it


cdef struct CookieTable:
    # What every jar of one engine shares.
    CookieHost* hosts       # in the engine's host order (redirect slots after the plan's: filled per hop)
    int n_hosts             # the plan's hosts
    int n_all_hosts         # with the redirect slots
    bint reset_each_iteration   # cookies: {reset: iteration} (the default) else never
    char* scratch           # a step-set cookie's rendered value (the body uses Flows.scratch meanwhile)
    int64_t scratch_cap
    int64_t clock_skew_ns   # added to the clock (tests move time forward; 0 in runs)


cdef struct CookieJar:
    Cookie* cookies         # JAR_MAX_COOKIES slots, allocated when the first cookie arrives
    int n
    int64_t next_seq
    CookieTable* table
    # The request in flight, noted when its Cookie header is rendered: a
    # Set-Cookie in its response is read against this host and path.
    bint noted
    int host
    char* path              # the request's path, up to '?' (owned, reused)
    int32_t path_len
    int32_t path_cap
