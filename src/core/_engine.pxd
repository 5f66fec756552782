# The engine: one per worker process.  All per-connection state lives in C
# structs (like wrk's); no Python object is touched per request.
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

from surge.core._histogram cimport Histogram
from surge.core._limits cimport ERR_KINDS, STATUS_SLOTS
from surge.core.includes.sys cimport epoll_event, sockaddr_storage, socklen_t

# The open-model schedule (schedule.pxi): piecewise-linear rate segments.
cdef struct Segment:
    int64_t start_ns        # offset from the run's start
    int64_t end_ns
    double rate_start       # requests/s at start_ns
    double rate_end         # requests/s at end_ns (linear in between)
    double count_start      # N(start_ns): requests intended before this segment
    double count_end        # N(end_ns)

# Response framing state (framing.pxi).
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
    char* carry             # partial header block kept across reads (rare)
    int32_t carry_len
    int32_t carry_cap

cdef enum:
    C_IDLE = 0          # no socket
    C_CONNECTING        # non-blocking connect in progress
    C_OPEN              # connected, keep-alive
    C_RETRY_WAIT        # connect failed; retried by sweep() after a back-off

cdef struct Conn:
    int fd
    int state
    uint32_t index
    int32_t in_flight           # requests committed and not yet answered
    int32_t ring_head           # slot of the oldest in-flight request
    int64_t* sent_ns            # ring of `depth` send instants (into Engine.sent_ns)
    int64_t* intended_ns        # open model: ring of intended send instants
    bint is_free                # open model: on the free stack
    char* out                   # flows: this connection's rendered request
    int64_t out_cap
    int64_t out_pos             # flows: next byte of `out` to write
    int64_t unsent_bytes        # committed request bytes not yet written
    int32_t write_pos           # offset of the next byte within one request
    bint want_write             # EPOLLOUT registered
    int64_t state_since_ns      # when connecting started / retry is due
    int64_t response_bytes      # bytes of the response being framed, so far
    int32_t lowat               # the socket's SO_RCVLOWAT (1: the kernel default)
    Framer framer


# ---- flows (test plans), flows.pxi -------------------------------------------
cdef struct TemplatePart:
    int kind                # PART_* in flows.pxi
    int escape              # ESCAPE_* in flows.pxi: how the value lands (raw, URL, JSON string)
    int a
    int b
    const char* literal
    int32_t literal_len

cdef struct Template:
    TemplatePart* parts
    int n_parts

cdef struct JsonSegment:
    int index               # >= 0: an array index; -1: an object key
    const char* key
    int32_t key_len

cdef struct Extract:
    int var
    int kind                # EXTRACT_* in flows.pxi
    int group
    const char* name        # header name, lower case
    int32_t name_len
    void* regex             # regex_t*
    JsonSegment* segments
    int n_segments

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
    int think_kind                  # THINK_* in flows.pxi
    int64_t think_a_ns
    int64_t think_b_ns
    bint capture

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
    int order               # ORDER_* in flows.pxi
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
    int64_t wake_ns         # thinking until
    int64_t intended_ns     # open model: when this iteration was due (0: not the first step)
    bint aborted            # a transport error ended this iteration early


cdef class Engine:
    cdef int epfd
    cdef char* request_buf          # the request repeated depth+1 times
    cdef int64_t request_len
    cdef int32_t depth              # pipelining depth (requests in flight per connection)
    cdef uint32_t conn_count
    cdef Conn* conns
    cdef int64_t* sent_ns
    cdef int64_t* intended_ns
    cdef char* read_buf             # one per worker: framing keeps no bytes between reads
    cdef epoll_event* events
    cdef bint head_request
    cdef bint sending               # between start() and stop()
    cdef bint stopped
    cdef bint counted               # -n mode: stop issuing at the quota
    cdef int64_t quota_left         # requests not yet issued (-n mode)
    cdef int64_t in_flight_total
    cdef int64_t timeout_ns
    cdef int64_t retry_backoff_ns
    cdef object on_event            # Python callable for rare events ("settled", "done")
    cdef bint lowat_reads           # closed plain runs: wake only when a whole response (batch) can be there
    cdef bint batch_timing          # pipelining: wait for the whole batch (else each response)
    cdef int64_t min_response_bytes # smallest complete response seen (0: none yet)
    cdef int64_t previous_max_us    # the slowest response of the last snapshot interval
    cdef bint settled_signalled
    cdef bint done_signalled
    # Counters (cumulative; the parent takes deltas).
    cdef readonly Histogram latency_us      # current interval only; reset by snapshot()
    cdef int64_t completed
    cdef int64_t bytes_in
    cdef int64_t bytes_out
    cdef int64_t errors[ERR_KINDS]
    cdef int64_t status_counts[STATUS_SLOTS]         # index 0: status outside 100..599
    cdef int64_t connects                   # successful connects, reconnects included
    cdef int64_t open_conns
    cdef int64_t connecting_conns
    cdef uint32_t active_limit      # closed: connections wanted now; open: the maximum
    cdef uint32_t n_opened          # connections [0, n_opened) are in use
    # Open model (arrival rate).
    cdef bint open_model
    cdef int timer_fd               # fires when the next request is due (in the epoll set)
    cdef int64_t timer_armed_ns
    cdef Segment* segments
    cdef int n_segments
    cdef int64_t start_ns           # the common start instant (CLOCK_MONOTONIC)
    cdef int64_t grid_ns            # due instants are rounded up to this grid: one wake-up per batch
    cdef int64_t next_index         # next global request index this worker makes due
    cdef int64_t index_step         # workers take every W-th index of the global schedule
    cdef int due_cursor
    cdef int head_cursor
    cdef int64_t next_due_ns
    cdef int64_t queue_head         # oldest due-but-unsent index
    cdef int64_t queue_head_ns      # its intended instant
    cdef int64_t queued
    cdef int64_t due_total
    cdef int64_t dropped
    cdef uint32_t* free_stack
    cdef uint32_t free_top
    cdef readonly Histogram latency_uncorrected_us
    # Flows.
    cdef bint flows
    cdef int n_hosts
    cdef sockaddr_storage* host_addrs
    cdef socklen_t* host_addr_lens
    cdef int* host_families
    cdef Step* steps
    cdef int n_steps
    cdef Scenario* scenarios
    cdef int n_scenarios
    cdef Feeder* feeders
    cdef int n_feeders
    cdef int n_vars
    cdef VU* vus
    cdef uint32_t n_vus
    cdef uint32_t vus_done
    cdef int64_t* heap_wake         # think heap: min-heap of (wake instant, vu)
    cdef uint32_t* heap_vu
    cdef uint32_t heap_len
    cdef uint64_t rng               # xorshift64* state
    cdef int64_t user_base          # global number of this worker's first VU
    cdef char* scratch              # body rendering
    cdef int64_t scratch_cap
    cdef object keepalive           # Python objects the C tables point into
    cdef bint report_steps          # snapshot() carries per-step counters (plans; not URL runs)
    cdef list step_latency          # Histogram per step (this interval)
    cdef int64_t* step_counts       # per step: FLOW_COUNTERS counters
    cdef int64_t* step_statuses     # per step: 600 status counters
    cdef int64_t* scenario_counts   # per scenario: iterations started, completed, aborted

    cdef void _connect(self, Conn* c, int64_t now) noexcept
    cdef void _set_state(self, Conn* c, int state) noexcept
    cdef void _retire(self, Conn* c) noexcept
    cdef void _on_idle(self, Conn* c, int64_t now) noexcept
    cdef void _send_open(self, Conn* c, int64_t intended, int64_t now) noexcept
    cdef void _issue_due(self, int64_t now) noexcept
    cdef void _drain_queue(self, int64_t now) noexcept
    cdef void _advance_head(self) noexcept
    cdef void _arm_timer(self, int64_t when_ns) noexcept
    cdef int64_t _schedule_instant(self, int64_t index, int* cursor) noexcept
    cdef void _on_connect_ready(self, Conn* c, int64_t now) noexcept
    cdef void _on_readable(self, Conn* c) noexcept
    cdef void _on_response(self, Conn* c, int64_t now) noexcept
    cdef void _refill(self, Conn* c, int64_t now) noexcept
    cdef void _set_lowat(self, Conn* c) noexcept
    cdef void _unstall(self, Conn* c) noexcept
    cdef void _flush(self, Conn* c) noexcept
    cdef void _fail(self, Conn* c, int kind, int64_t now) noexcept
    cdef void _close(self, Conn* c, bint requeue) noexcept
    cdef void _retry_later(self, Conn* c, int64_t now) noexcept
    cdef void _check_progress(self) noexcept
    cdef void _vu_begin(self, uint32_t v, int64_t intended, int64_t now) noexcept
    cdef void _vu_send(self, uint32_t v, int64_t now) noexcept
    cdef void _vu_after_response(self, Conn* c, int64_t latency_us, int64_t now, bint defer) noexcept
    cdef void _vu_next(self, uint32_t v, int64_t now) noexcept
    cdef void _vu_abort(self, uint32_t v, int kind, int64_t now) noexcept
    cdef void _vu_end_iteration(self, uint32_t v, int64_t now) noexcept
    cdef bint _render(self, Conn* c, Step* st, VU* vu, uint32_t v) noexcept
    cdef int64_t _render_template(self, Template* t, VU* vu, uint32_t v, char** buf, int64_t* cap, int64_t at) noexcept
    cdef int64_t _append_escaped(self, char** buf, int64_t* cap, int64_t at, const char* src, int64_t n, int escape) noexcept
    cdef void _heap_push(self, uint32_t v, int64_t wake_ns) noexcept
    cdef void _wake_thinkers(self, int64_t now) noexcept
    cdef int64_t _next_timer_ns(self) noexcept
    cdef uint64_t _rand(self) noexcept
    cdef int _first_enabled_scenario(self) noexcept
    cdef void _flow_complete(self, Conn* c, int64_t now) noexcept
    cdef void _vu_resume(self, uint32_t v, int64_t now) noexcept
    cdef void _compile_template(self, Template* t, tuple parts, list keep) except *
    cdef void _set_hosts(self, list hosts) except *
    cdef void _alloc_connections(self, uint32_t connections, int32_t depth) except *
    cdef void _use_static(self) except *
    cdef void _compile_steps(self, list steps) except *
    cdef void _compile_step(self, Step* st, object spec) except *
    cdef void _compile_extracts(self, Step* st, tuple extracts) except *
    cdef void _use_flows(self, object tables, int64_t user_base, uint64_t seed, tuple worker) except *
    cdef void _compile_scenarios(self, list scenarios) except *
    cdef void _compile_feeders(self, list feeders, tuple worker) except *
    cdef void _alloc_vus(self) except *
    cdef int64_t _render_into(self, Step* st, VU* vu, uint32_t v, char** buf, int64_t* cap) noexcept
    cdef dict _static_flow_snapshot(self, tuple latency)
    cdef void* _compile_regex(self, bytes pattern) except NULL
    cdef void _open_timer(self) except *
    cdef void _free_flows(self) noexcept
    cdef void _signal(self, str name) noexcept
