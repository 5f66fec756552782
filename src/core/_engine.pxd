# The engine: one per worker process.  All per-connection state lives in C
# structs (like wrk's); no Python object is touched per request.
#
# A mode-agnostic connection core (the Engine's own fields: sockets, the epoll
# set, framing, counters, timeouts) plus two parts chosen once at set-up:
#   transport (transport.pxd; tcp.pxi, tls.pxi), per host: connect / handshake / read / write / close
#   policy (Policy below): what a connection event means for the load -
#       closed.pxi (closed model), schedule.pxi (open model), flows.pxi (plans)
# The callbacks call `self.policy.X(self, ...)`; none of them asks which mode runs.
cimport cython
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

from surge.core._histogram cimport Histogram
from surge.core._tls cimport Negotiated
from surge.core.conn cimport Conn
from surge.core.counters cimport Counters, TlsCounters
from surge.core.flows cimport Flows, Step, Template, VU
from surge.core.includes.sys cimport epoll_event, sockaddr_storage, socklen_t
from surge.core.schedule cimport Schedule

cdef class Engine

# The load policy: what each connection event means.  One table per kind of
# run (closed, open; plain or flows), picked once before the first connect.
ctypedef void (*conn_event_fn)(Engine e, Conn* c, int64_t now) noexcept
ctypedef bint (*response_fn)(Engine e, Conn* c, int64_t now) noexcept
ctypedef void (*fail_fn)(Engine e, Conn* c, int kind, int64_t now) noexcept
ctypedef void (*engine_event_fn)(Engine e, int64_t now) noexcept
ctypedef void (*vu_event_fn)(Engine e, uint32_t v, int64_t now) noexcept

cdef struct Policy:
    const char* name
    engine_event_fn start           # start(): the first requests
    conn_event_fn connected         # a connection opened (and finished its handshake)
    response_fn response            # one response ended; False: stop framing this read (connection closed or done)
    conn_event_fn read_done         # every byte of one read was framed
    conn_event_fn idle_closed       # the peer closed a connection with nothing in flight
    fail_fn failed                  # a connection failed (already counted and closed)
    engine_event_fn dispatch_due    # open model: hand the queue of due requests out
    vu_event_fn iteration_done      # flows: a VU finished (or aborted) an iteration


@cython.final
cdef class Engine:
    # ---- the core ----------------------------------------------------------
    cdef Policy policy
    cdef int epfd
    cdef int n_hosts
    cdef sockaddr_storage* host_addrs       # per host, in the tables' host order
    cdef socklen_t* host_addr_lens
    cdef int* host_families
    cdef const void** host_transports       # per host: its Transport (TCP or TLS), copied to each Conn
    cdef void** host_shared                 # per host: the TLS context's TlsShared (NULL: TCP)
    cdef list tls_contexts                  # the TlsContexts those point into (kept alive)
    cdef bint any_tls                       # some host is TLS: snapshot() reports handshakes
    # --bind: source addresses, grouped by family ([0]: IPv4, [1]: IPv6): a connection to a
    # host of family f takes bind_first[f] + (i / hosts + bind_base[f]) mod bind_count[f]
    # (src/run/limits.py); none of f: the kernel's choice
    cdef sockaddr_storage* bind_addrs
    cdef socklen_t* bind_lens
    cdef int n_binds
    cdef int bind_first[2]
    cdef int bind_count[2]
    cdef uint32_t bind_base[2]
    # connects that failed for want of a resource (cumulative): EADDRNOTAVAIL, EMFILE/ENFILE
    cdef int64_t ports_exhausted
    cdef int64_t fds_exhausted
    cdef bint reuse_conns                   # keep-alive (False: close after each response, reconnect)
    cdef uint32_t conn_count
    cdef Conn* conns
    cdef int64_t* sent_ns
    cdef int64_t* intended_ns
    cdef char* read_buf             # one per worker: framing keeps no bytes between reads
    cdef epoll_event* events
    cdef uint32_t* early_list       # connections whose connect completed at once (_connect), served
    cdef uint32_t n_early           #   at the end of the current call (_serve_early): never nested
    cdef int probe_credit           # connects may be probed while > 0 (see _probe_connected)
    cdef uint32_t probe_skipped     # connects not probed since the credit ran out
    cdef bint drain_useful          # the last extra epoll_wait of on_ready found events
    cdef uint32_t drain_skipped     # wake-ups without an extra epoll_wait since one came back empty
    cdef int32_t depth              # pipelining depth (requests in flight per connection)
    cdef uint32_t active_limit      # closed: connections (flows: VUs) wanted now; open: the maximum
    cdef uint32_t n_opened          # connections [0, n_opened) are in use
    cdef int64_t timeout_ns
    cdef int64_t retry_backoff_ns
    cdef int timer_fd               # wakes the engine for due requests and thinkers (in the epoll set)
    cdef int64_t timer_armed_ns
    cdef int64_t start_ns           # the common start instant (CLOCK_MONOTONIC)
    cdef bint sending               # between start() and stop()
    cdef bint stopped
    cdef bint counted               # -n mode: stop issuing at the quota
    cdef int64_t quota_left         # requests not yet issued (-n mode)
    cdef object on_event            # Python callable for rare events ("settled", "done")
    cdef bint settled_signalled
    cdef bint done_signalled
    cdef Counters counters
    cdef readonly Histogram latency_us      # current interval only; reset by snapshot()
    cdef readonly Histogram latency_uncorrected_us
    cdef int64_t previous_max_us    # the slowest response of the last snapshot interval
    cdef int64_t min_response_bytes # smallest complete response seen (0: none yet)
    cdef int32_t lowat_max_bytes    # the highest SO_RCVLOWAT set; 1 (never set) where the kernel holds ciphertext
    cdef readonly Histogram connect_us      # TCP connect times, this interval (reset by snapshot())
    cdef readonly Histogram handshake_us    # TLS handshake times, this interval
    cdef TlsCounters tls
    # ---- the fast path (one static step) -----------------------------------
    cdef char* request_buf          # the request repeated depth+1 times
    cdef int64_t request_len
    cdef bint batch_timing          # pipelining: wait for the whole batch (else each response)
    # ---- the open model ----------------------------------------------------
    cdef bint open_model
    cdef Schedule schedule
    # ---- flows ---------------------------------------------------------------
    cdef bint flows
    cdef Flows flow
    cdef list step_latency          # Histogram per step (this interval), from the write
    cdef list step_latency_corrected    # open model: Histogram per step (this interval), from its intended instant; else None
    cdef object keepalive           # Python objects the C tables point into

    # core (_engine.pyx)
    cdef void _connect(self, Conn* c, int64_t now) noexcept
    cdef bint _probe_connected(self, Conn* c, int64_t now) noexcept
    cdef void _on_connect_ready(self, Conn* c, uint32_t ev, int64_t now) noexcept
    cdef void _tcp_up(self, Conn* c, int64_t now) noexcept
    cdef void _serve_early(self) noexcept
    cdef void _serve_events(self, int n) noexcept
    cdef void _handshake(self, Conn* c, int64_t now) noexcept
    cdef void _opened(self, Conn* c, Negotiated* hs, int64_t now) noexcept
    cdef void _count_handshake(self, Conn* c, Negotiated* hs, int64_t now) noexcept
    cdef void _fail_transport(self, Conn* c, int kind, int64_t now) noexcept
    cdef void _count_tls_reason(self, const char* text) noexcept
    cdef void _set_state(self, Conn* c, int state) noexcept
    cdef void _watch(self, Conn* c, bint want_write) noexcept
    cdef void _retry_later(self, Conn* c, int64_t now) noexcept
    cdef int64_t _retry_delay_ns(self, Conn* c, int64_t now) noexcept
    cdef void _retire(self, Conn* c) noexcept
    cdef void _close(self, Conn* c, bint requeue) noexcept
    cdef void _fail(self, Conn* c, int kind, int64_t now) noexcept
    cdef void _on_readable(self, Conn* c) noexcept
    cdef void _on_eof(self, Conn* c, int64_t now) noexcept
    cdef bint _frame_read(self, Conn* c, Py_ssize_t n, int64_t now) noexcept
    cdef void _count_response(self, Conn* c) noexcept
    cdef void _commit(self, Conn* c, int32_t slot, int64_t intended, int64_t now) noexcept
    cdef void _flush(self, Conn* c) noexcept
    cdef void _arm_timer(self, int64_t when_ns) noexcept
    cdef int64_t _next_timer_ns(self) noexcept
    cdef void _woke(self, int64_t now) noexcept
    cdef void _check_progress(self) noexcept
    cdef void _signal(self, str name) noexcept
    cdef void _open_timer(self) except *
    cdef void _sweep_conn(self, Conn* c, int64_t now, int64_t stall_ns) noexcept
    # set-up
    cdef void _set_hosts(self, list hosts) except *
    cdef void _set_binds(self, tuple binds, int64_t user_base) except *
    cdef void _alloc_connections(self, uint32_t connections, int32_t depth) except *
    cdef void _use_static(self) except *
    cdef void _compile_steps(self, list steps) except *
    cdef void _compile_step(self, Step* st, object spec) except *
    cdef void _compile_extracts(self, Step* st, tuple extracts) except *
    cdef void _compile_template(self, Template* t, tuple parts, list keep) except *
    cdef void* _compile_regex(self, bytes pattern) except NULL
    cdef void _use_flows(self, object tables, int64_t user_base, uint64_t seed, tuple worker) except *
    cdef void _compile_scenarios(self, list scenarios) except *
    cdef void _compile_feeders(self, list feeders, tuple worker) except *
    cdef void _alloc_vus(self) except *
    cdef void _free_flows(self) noexcept
    cdef dict _static_flow_snapshot(self, tuple latency, tuple corrected)
    cdef dict _connection_snapshot(self)
