# The flow tables (built from surge.run.flows.FlowTables) and the virtual
# users that run them (flows.pxi).
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

from surge.core.cookies cimport CookieJar, CookieTable

cdef struct TemplatePart:
    int kind                # PART_* (_limits.pxd)
    int escape              # ESCAPE_* (_limits.pxd): how the value lands (raw, URL path segment, URL query value,
                            # JSON string, header value, or a json: field's whole value, typed)
    int64_t a
    int64_t b
    int width               # PART_RANDOM_INT: zero-padded to this many digits (0: not); PART_RANDOM_STRING: length
    const char* literal     # PART_LITERAL: the bytes; PART_RANDOM_CHOICE: the items, each ending in a NUL
    int32_t literal_len

# The type of a variable's current value, for a typed json: field (render.pxi).
cdef enum:
    VAR_UNSET = 0           # not extracted (the extraction failed, or none ran yet): null
    VAR_TEXT                # a regex or header value: a JSON string
    VAR_JSON                # a JSON path's number, boolean, null, object or array: written as it came
    VAR_JSON_STRING         # a JSON path's string, its escapes as sent: written back between quotes

cdef struct Template:
    TemplatePart* parts
    int n_parts

cdef struct JsonSegment:
    int index               # >= 0: an array index; -1: an object key
    const char* key
    int32_t key_len

cdef struct Extract:
    int var
    int kind                # EXTRACT_* (_limits.pxd)
    int group
    const char* name        # header name, lower case
    int32_t name_len
    void* regex             # regex_t*
    JsonSegment* segments
    int n_segments

cdef struct StepCookie:
    # `cookies: {name: value}` in a step: put into the jar before its request is sent.
    const char* name
    int32_t name_len
    Template value

cdef struct Step:
    int host
    Template head           # request line and headers, without Content-Length and the blank line
    Template body
    bint send_length        # Content-Length even for an empty body (a body given, or POST/PUT/PATCH)
    bint length_given       # the user's headers carry Content-Length: none is added
    bint head_request
    unsigned char* status_ok        # 600 flags, NULL: any status passes
    const char* body_contains
    int32_t body_contains_len
    void* body_regex                # regex_t*, NULL: none
    int64_t max_latency_us          # 0: none
    Extract* extracts
    int n_extracts
    int think_kind                  # THINK_* (_limits.pxd)
    int64_t think_a_ns
    int64_t think_b_ns
    int64_t timeout_ns              # this step's request timeout (0: the engine's timeout_ns)
    bint capture                    # keep the response's head and body (checks or extracts need them)
    int n_checks                    # checks per response: status, body, regex, latency, each extract
    bint cookies_capture            # Set-Cookie in its responses goes into the VU's jar (cookies.pxi)
    bint cookies_hops               # its redirect hops get the jar's Cookie header (cookies.pxi)
    StepCookie* set_cookies         # cookies it sets before sending (its head then has a PART_COOKIES part)
    int n_set_cookies
    int follow_max                  # follow_redirects: hops followed at most (0: none; redirect.pxi)

cdef struct Scenario:
    double weight_upto      # cumulative share, the last one is 1.0
    int* steps
    int n_steps
    int* feeders            # feeders whose rows this scenario's templates read
    int n_feeders
    bint disabled           # a feeder it reads ran out (on_exhausted: stop)

cdef struct Feeder:
    int n_rows
    int n_cols
    const char** values     # row-major
    int32_t* lengths
    const unsigned char* types  # per cell: 1 when a JSON-lines value is not a string (NULL: every cell is text)
    int order               # ORDER_* (_limits.pxd)
    bint stop_when_done     # on_exhausted: stop (else recycle)
    int64_t next            # next row (sequential, unique)
    int64_t stride          # unique: rows are split over the workers

cdef struct VU:
    int state               # VU_* in flows.pxi
    int scenario
    int pos                 # position in the scenario's steps
    int64_t iteration
    int64_t* rows           # current row of each feeder
    char** var_values       # one buffer per extracted variable, reused (grown, never shrunk)
    int32_t* var_lengths    # the current value's length (0: not extracted)
    int32_t* var_caps       # each buffer's capacity
    unsigned char* var_types    # VAR_* of each variable's current value
    int64_t wake_ns         # thinking until
    int64_t intended_ns     # open model: when the current step was due (its iteration's arrival, then
                            # chained: flows.pxi chain_intended); 0: closed model, timed from the send
    bint aborted            # a transport error ended this iteration early
    CookieJar jar           # its cookies (empty and unallocated unless a response sets one)
    int hops                # redirects followed in the current step (> 0: its next request is a hop)
    int hop_host            # the host the hop goes to (a plan host, or a redirect slot)
    int64_t hop_len         # the hop's request bytes, rendered into that host's Conn.rendered
    bint hop_head           # the hop is a HEAD request
    int64_t chain_sent_ns   # when the step's first request went out (its latency covers the chain)


cdef struct RedirectHost:
    # Where a Location may lead: the plan's hosts, then the slots for hosts
    # first seen in a Location at run time (plain http, resolved once).
    bint https
    char name[256]          # lower case, IPv6 without brackets
    int32_t name_len
    int port
    char authority[264]     # for the Host header: name, [v6], :port when not the scheme's default
    int32_t authority_len
    int state               # RH_* in redirect.pxi


cdef struct Flows:
    Step* steps
    int n_steps
    Scenario* scenarios
    int n_scenarios
    Feeder* feeders
    int n_feeders
    int n_vars
    VU* vus
    uint32_t n_vus              # 0: no flows (the fast path)
    uint32_t vus_done
    int64_t* heap_wake          # think heap: min-heap of (wake instant, vu)
    uint32_t* heap_vu
    uint32_t heap_len
    uint64_t rng                # xorshift64* state
    bint rotate                 # scenarios taken in turn (--targets --order round-robin), not by weight
    int next_scenario           # rotate: the next one
    int64_t user_base           # global number of this worker's first VU
    char* scratch               # body rendering
    int64_t scratch_cap
    int64_t* step_counts        # per step: FLOW_COUNTERS counters
    int64_t* step_statuses      # per step: STATUS_SLOTS status counters
    int64_t* scenario_counts    # per scenario: SCN_COUNTERS counters
    CookieTable cookies         # what the VUs' jars share: the hosts as cookies see them
    int64_t* step_best_us       # open model, per step: its fastest response so far (µs from the write),
                                # the service time of the intended chain (flows.pxi chain_intended); else NULL
    int64_t* step_redirects     # per step: RD_COUNTERS counters (redirect.pxi); NULL: no step follows
    RedirectHost* rhosts        # per host of the engine (plan hosts, then redirect slots)
    int n_plan_hosts
    char* hop_scratch           # a hop's request is built here, then copied to its connection
    int64_t hop_scratch_cap
