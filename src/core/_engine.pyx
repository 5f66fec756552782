# cython: language_level=3
"""The request engine of one worker process.

A uvloop loop watches one epoll descriptor (`Engine.epoll_fd`) with
`loop.add_reader(engine.epoll_fd, engine.on_ready)`; every connection lives in
that epoll set and in a C array.  One Python call per loop wake-up serves all
the connections that are ready: read into a shared buffer, frame responses,
record latencies, send the next requests - all in C.  Timers (start,
per-second snapshots, timeout sweeps, the deadline) stay on the uvloop loop,
driven by the worker (surge.run.worker).

Where things are (see _engine.pxd for the shape):
  _engine.pyx    the connection core: set-up, connect, read, frame, write, fail, sweep
  tcp.pxi        the plain TCP transport; tls.pxi the TLS one (OpenSSL), chosen per host
  closed.pxi     the closed-model policy (connections keep `depth` requests in flight)
  schedule.pxi   the open-model policy (requests due on a schedule)
  flows.pxi      the flows policy (virtual users running a plan's scenarios)
  framing.pxi    HTTP/1.1 response framing; extract.pxi what flows read from responses
  render.pxi     request rendering from templates (escape.pxd: how slot values are escaped)
  cookies.pxi    each virtual user's cookie jar (RFC 6265): Set-Cookie in, one Cookie header out
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memmove, memset, strcmp, strlen, strncpy

from surge.core._histogram cimport Histogram, record_value
from surge.core._limits cimport *
from surge.core.conn cimport *
from surge.core.cookies cimport *
from surge.core.counters cimport *
from surge.core.escape cimport ESCAPE_MAX_GROWTH, escape_into
from surge.core.flows cimport *
from surge.core.framing cimport *
from surge.core.includes.sys cimport *
from surge.core.schedule cimport Schedule, Segment
from surge.core.transport cimport *

from surge.core._limits import ERROR_KINDS

DEF READ_BUF_BYTES = 65536
DEF MAX_EVENTS = 512
DEF TIMER_TOKEN = 0xFFFFFFFF      # epoll data of the timerfd
DEF NEVER_NS = 0x7fffffffffffffff
DEF NO_WRAP = 0x7fffffffffffffff  # Conn.out_wrap of a rendered (flows) request
# Connects probed for completing at once (_probe_connected): after this many
# misses in a row (a network, not loopback) only one in PROBE_RETRY_EVERY is.
DEF PROBE_CREDIT = 8
DEF PROBE_RETRY_EVERY = 64
# The open model closes a connection idle this long (Go's IdleConnTimeout, aiohttp's
# keepalive_timeout): what a burst opened on demand does not stay open for ever.
DEF OPEN_IDLE_TIMEOUT_NS = 15_000_000_000
# A failed connect's back-off doubles this many times at most (50 ms -> 800 ms): Engine._retry_later.
DEF RETRY_DOUBLINGS = 4
# on_ready's extra polls (see there).
DEF DRAIN_ROUNDS = 4
DEF DRAIN_NS = 1_000_000
DEF DRAIN_RETRY_EVERY = 16

include "framing.pxi"
include "extract.pxi"
include "tcp.pxi"
include "tls.pxi"
include "render.pxi"
include "closed.pxi"
include "schedule.pxi"
include "flows.pxi"
include "cookies.pxi"
include "redirect.pxi"


cdef class Engine:
    """Connections to the tables' hosts, sending the tables' requests.

    quota < 0: send until stop(); quota >= 0 (the fast path): issue exactly
    `quota` requests (each ends as a response or an error), then report "done".
    on_event(name) is called for rare events: "settled" (every connection has
    connected or failed once), "done" (quota used up and nothing in flight, or
    every VU's data ran out).

    Closed model (default): every active connection keeps `depth` requests in
    flight (flows: every active VU runs iterations); set_active_connections()
    ramps them.  Open model (use_open_model): requests (flows: iterations) are
    due on a schedule, wait for a free connection (VU), and their latency is
    recorded from the intended instant (latency_us) and from the actual write
    (latency_uncorrected_us).
    """

    def __cinit__(self, list hosts, object tables, *, uint32_t users, int32_t pipeline, int64_t quota,
                  int64_t timeout_ns, object on_event, str pipeline_timing="batch", int64_t user_base=0,
                  uint64_t seed=1, tuple worker=(0, 1), bint keepalive=True, tuple binds=()):
        """hosts: [(family, sockaddr bytes, tls)] in tables.hosts order, tls a
        surge.core._tls.TlsContext or None (plain TCP; a 2-tuple means None).
        tables: a surge.run.flows.FlowTables.  users: this worker's virtual
        users (a URL run: its connections); connections = users x hosts.  The
        engine takes its fast path (the request rendered once, SO_RCVLOWAT
        reads over TCP, batch pipelining) when the tables are one static step;
        pipeline > 1 needs it.  keepalive=False: each connection is closed
        after its response (not an error) and a new one opened; latency then
        counts from the new connection's connect (except for the first
        requests, on connections opened before the start).  binds: --bind's
        ((family, sockaddr bytes), ...): connection i of this worker binds to
        binds[(i / hosts + user_base) % len(binds)] before it connects, when its
        family is the host's (src/run/limits.py)."""
        self.epfd = -1                  # (so that __dealloc__ after a refused set-up closes nothing)
        self.drain_useful = True
        self.timer_fd = -1
        if users < 1 or pipeline < 1:
            raise ValueError("users and pipeline must be >= 1")
        if not hosts or len(hosts) != len(tables.hosts):
            raise ValueError("one address per host of the tables")
        cdef bint static = tables.is_static and len(hosts) == 1
        if pipeline > 1 and not static:
            raise ValueError("pipelining needs one static step (no slots, checks, extraction or think time)")
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            raise OSError(errno, "epoll_create1 failed")
        self.schedule.next_due_ns = NEVER_NS       # nothing is due until an open model starts
        self.policy = CLOSED_PLAIN                  # use_open_model() / flows pick another
        self.keepalive = []
        self.reuse_conns = keepalive
        self.set_pipeline_timing(pipeline_timing)
        self._set_hosts(hosts + [(0, b"", None)] * redirect_extra_hosts(tables))   # redirect slots (redirect.pxi)
        self._set_binds(binds, user_base)
        self._alloc_connections(users * self.n_hosts, pipeline)
        self.counted = quota >= 0
        self.quota_left = quota if quota >= 0 else 0
        self.timeout_ns = timeout_ns
        self.retry_backoff_ns = 50_000_000
        self.on_event = on_event
        self.latency_us = Histogram()
        self.latency_uncorrected_us = Histogram()
        self.connect_us = Histogram()
        self.handshake_us = Histogram()
        self._compile_steps(tables.steps)
        if static:
            self._use_static()
        else:
            self._use_flows(tables, user_base, seed, worker)

    cdef void _set_hosts(self, list hosts) except *:
        """Each host's address and transport, chosen here once: TLS where the
        host has a TlsContext, plain TCP otherwise."""
        cdef int i
        cdef TlsContext context
        self.n_hosts = len(hosts)
        self.host_addrs = <sockaddr_storage*>calloc(self.n_hosts, sizeof(sockaddr_storage))
        self.host_addr_lens = <socklen_t*>calloc(self.n_hosts, sizeof(socklen_t))
        self.host_families = <int*>calloc(self.n_hosts, sizeof(int))
        self.host_transports = <const void**>calloc(self.n_hosts, sizeof(void*))
        self.host_shared = <void**>calloc(self.n_hosts, sizeof(void*))
        if not (self.host_addrs and self.host_addr_lens and self.host_families and self.host_transports
                and self.host_shared):
            raise MemoryError()
        self.tls_contexts = []
        for i, host in enumerate(hosts):
            family, sockaddr = host[0], host[1]
            tls = host[2] if len(host) > 2 else None
            if len(sockaddr) > sizeof(sockaddr_storage):
                raise ValueError("socket address too long")
            memcpy(&self.host_addrs[i], PyBytes_AS_STRING(sockaddr), len(sockaddr))
            self.host_addr_lens[i] = <socklen_t>len(sockaddr)
            self.host_families[i] = family
            if tls is None:
                self.host_transports[i] = &TCP
            elif isinstance(tls, TlsContext):
                context = tls
                self.tls_contexts.append(context)
                self.host_transports[i] = &TLS
                self.host_shared[i] = &context.shared
                self.any_tls = True
            else:
                raise TypeError(f"host {i}: tls must be a TlsContext or None, got {type(tls).__name__}")
        # SO_RCVLOWAT counts the bytes in the kernel: only where they are the
        # plaintext that framing expects (the fast path has one host).
        self.lowat_max_bytes = LOWAT_MAX_BYTES if (<const Transport*>self.host_transports[0]).plaintext_in_kernel else 1

    cdef void _set_binds(self, tuple binds, int64_t user_base) except *:
        """--bind's source addresses, copied once, IPv4 ones first: each host
        takes only those of its own family, spread evenly (an IPv6 source
        cannot reach an IPv4 target; the supervisor refuses a run where a host
        has none of its family, surge.run.limits.bind_plan)."""
        cdef int i = 0, f
        self.n_binds = len(binds)
        self.bind_first[0] = self.bind_first[1] = 0
        self.bind_count[0] = self.bind_count[1] = 0
        self.bind_base[0] = self.bind_base[1] = 0
        if not binds:
            return
        self.bind_addrs = <sockaddr_storage*>calloc(self.n_binds, sizeof(sockaddr_storage))
        self.bind_lens = <socklen_t*>calloc(self.n_binds, sizeof(socklen_t))
        if not (self.bind_addrs and self.bind_lens):
            raise MemoryError()
        for f, wanted in enumerate((AF_INET, AF_INET6)):
            self.bind_first[f] = i
            for family, sockaddr in binds:
                if family != wanted:
                    continue
                if len(sockaddr) > sizeof(sockaddr_storage):
                    raise ValueError("bind address too long")
                memcpy(&self.bind_addrs[i], PyBytes_AS_STRING(sockaddr), len(sockaddr))
                self.bind_lens[i] = <socklen_t>len(sockaddr)
                i += 1
            self.bind_count[f] = i - self.bind_first[f]
            self.bind_base[f] = <uint32_t>(user_base % max(1, self.bind_count[f]))
        if i != self.n_binds:
            raise ValueError("a bind address that is neither IPv4 nor IPv6")

    cdef void _alloc_connections(self, uint32_t connections, int32_t depth) except *:
        """The connection array, each with a ring of `depth` send instants."""
        cdef uint32_t i
        self.depth = depth
        self.conn_count = connections
        self.conns = <Conn*>calloc(connections, sizeof(Conn))
        self.sent_ns = <int64_t*>calloc(<size_t>connections * depth, sizeof(int64_t))
        self.intended_ns = <int64_t*>calloc(<size_t>connections * depth, sizeof(int64_t))
        self.schedule.free_stack = <uint32_t*>calloc(connections, sizeof(uint32_t))
        self.schedule.parked = <uint32_t*>calloc(connections, sizeof(uint32_t))
        self.read_buf = <char*>malloc(READ_BUF_BYTES)
        self.events = <epoll_event*>calloc(MAX_EVENTS, sizeof(epoll_event))
        self.early_list = <uint32_t*>calloc(connections, sizeof(uint32_t))
        self.probe_credit = PROBE_CREDIT
        if not (self.conns and self.sent_ns and self.intended_ns and self.schedule.free_stack and self.schedule.parked
                and self.read_buf and self.events and self.early_list):
            raise MemoryError()
        for i in range(connections):
            self.conns[i].fd = -1
            self.conns[i].index = i
            self.conns[i].transport = self.host_transports[i % self.n_hosts]
            self.conns[i].transport_host = self.host_shared[i % self.n_hosts]
            self.conns[i].sent_ns = self.sent_ns + <size_t>i * depth
            self.conns[i].intended_ns = self.intended_ns + <size_t>i * depth
            framer_reset(&self.conns[i].framer)
        self.active_limit = connections
        self.n_opened = connections

    cdef void _use_static(self) except *:
        """The fast path: the one step's request rendered once (by the same code
        that renders flow steps) into request_buf, repeated depth+1 times, so any
        run of <= depth requests starting at any offset within the first copy is
        contiguous and one send() covers it."""
        cdef char* rendered = NULL
        cdef int64_t cap = 0
        cdef int32_t k
        self.request_len = render_into(self, &self.flow.steps[0], NULL, 0, &rendered, &cap)
        if self.request_len <= 0:
            free(rendered)
            raise MemoryError()
        self.request_buf = <char*>malloc(self.request_len * (self.depth + 1))
        if self.request_buf == NULL:
            free(rendered)
            raise MemoryError()
        for k in range(self.depth + 1):
            memcpy(self.request_buf + k * self.request_len, rendered, self.request_len)
        free(rendered)
        for k in range(<int32_t>self.conn_count):
            self.conns[k].framer.head_request = self.flow.steps[0].head_request
            self.conns[k].out = self.request_buf
            self.conns[k].out_wrap = self.request_len

    cdef void _compile_steps(self, list steps) except *:
        """Each surge.run.flows.EngineStep into a C Step, with its counters."""
        cdef int i
        self.flow.n_steps = len(steps)
        self.flow.steps = <Step*>calloc(self.flow.n_steps, sizeof(Step))
        self.flow.step_counts = <int64_t*>calloc(self.flow.n_steps * FLOW_COUNTERS, sizeof(int64_t))
        self.flow.step_statuses = <int64_t*>calloc(self.flow.n_steps * STATUS_SLOTS, sizeof(int64_t))
        if not (self.flow.steps and self.flow.step_counts and self.flow.step_statuses):
            raise MemoryError()
        self.step_latency = [Histogram() for _ in range(self.flow.n_steps)]
        for i, spec in enumerate(steps):
            self._compile_step(&self.flow.steps[i], spec)

    cdef void _compile_step(self, Step* st, object spec) except *:
        keep = self.keepalive
        st.host = spec.host
        self._compile_template(&st.head, spec.head, keep)
        self._compile_template(&st.body, spec.body, keep)
        st.send_length = spec.send_length
        st.length_given = spec.length_given
        st.head_request = spec.head_request
        if spec.status_ok is not None:
            flags = bytes(spec.status_ok)
            keep.append(flags)
            st.status_ok = <unsigned char*>PyBytes_AS_STRING(flags)
        if spec.body_contains is not None:
            keep.append(spec.body_contains)
            st.body_contains = PyBytes_AS_STRING(spec.body_contains)
            st.body_contains_len = len(spec.body_contains)
        if spec.body_matches is not None:
            st.body_regex = self._compile_regex(spec.body_matches)
        st.max_latency_us = spec.max_latency_us
        st.follow_max = spec.follow
        self._compile_extracts(st, spec.extracts)
        compile_step_cookies(self, st, spec)
        st.think_kind, st.think_a_ns, st.think_b_ns = spec.think
        st.timeout_ns = spec.timeout_ns
        st.capture = bool(st.n_extracts or st.body_contains != NULL or st.body_regex != NULL)
        st.n_checks = ((st.status_ok != NULL) + (st.body_contains != NULL) + (st.body_regex != NULL)
                       + (st.max_latency_us != 0) + st.n_extracts)

    cdef void _compile_extracts(self, Step* st, tuple extracts) except *:
        cdef int j, k
        cdef Extract* ex
        keep = self.keepalive
        st.n_extracts = len(extracts)
        st.extracts = <Extract*>calloc(max(st.n_extracts, 1), sizeof(Extract))
        for j, (var, kind, expr, group) in enumerate(extracts):
            ex = &st.extracts[j]
            ex.var = var
            ex.kind = kind
            ex.group = group
            if kind == EXTRACT_HEADER or kind == EXTRACT_COOKIE:
                name = expr.lower() if kind == EXTRACT_HEADER else expr     # cookie names are case-sensitive
                keep.append(name)
                ex.name = PyBytes_AS_STRING(name)
                ex.name_len = len(name)
            elif kind == EXTRACT_REGEX:
                ex.regex = self._compile_regex(expr)
            else:
                ex.n_segments = len(expr)
                ex.segments = <JsonSegment*>calloc(max(len(expr), 1), sizeof(JsonSegment))
                for k, segment in enumerate(expr):
                    if isinstance(segment, int):
                        ex.segments[k].index = segment
                    else:
                        keep.append(segment)
                        ex.segments[k].index = -1
                        ex.segments[k].key = PyBytes_AS_STRING(segment)
                        ex.segments[k].key_len = len(segment)

    def __dealloc__(self):
        cdef uint32_t i
        if self.conns != NULL:
            for i in range(self.conn_count):
                if self.conns[i].fd >= 0:
                    tx(&self.conns[i]).close(&self.conns[i])
                framer_free(&self.conns[i].framer)
                free(self.conns[i].framer.cap_buf)
                free(self.conns[i].rendered)
        self._free_flows()
        if self.epfd >= 0:
            close(self.epfd)
        if self.timer_fd >= 0:
            close(self.timer_fd)
        free(self.conns)
        free(self.sent_ns)
        free(self.intended_ns)
        free(self.schedule.free_stack)
        free(self.schedule.parked)
        free(self.schedule.segments)
        free(self.request_buf)
        free(self.read_buf)
        free(self.events)
        free(self.early_list)

    @property
    def epoll_fd(self):
        """The descriptor to watch for readability (loop.add_reader)."""
        return self.epfd

    @property
    def policy_name(self):
        """The load policy chosen at set-up (closed, open, flows-closed, flows-open)."""
        return self.policy.name.decode()

    # ---- lifecycle (called from Python a few times per run) -----------------
    def use_open_model(self, list segments, int64_t first_index, int64_t index_step,
                       uint32_t initial_connections, int64_t grid_ns=0,
                       int64_t idle_timeout_ns=OPEN_IDLE_TIMEOUT_NS):
        """Switch to the open model.  segments: [(start_s, end_s, rate_start, rate_end)]
        of the GLOBAL schedule; this worker takes indices first_index, +index_step, ...
        The engine's connection capacity is the maximum opened on demand.
        grid_ns > 0: each request's intended instant is rounded up to a multiple
        of grid_ns from the start, so requests go out in batches (one timer
        wake-up each) and the batch instant is what latency is corrected from.
        idle_timeout_ns > 0: a connection with nothing in flight for that long
        (flows: whose VU is also free) is closed, and opened again when due
        requests need it, so the pool shrinks back after a burst (0: never)."""
        if self.sending or self.open_model:
            raise RuntimeError("use_open_model() must be called once, before start()")
        set_segments(&self.schedule, segments)
        self.open_model = True
        self.policy = FLOWS_OPEN if self.flows else OPEN_PLAIN
        if self.flows:
            use_open_step_latency(self)     # each step corrected from its intended instant (flows.pxi)
        self.schedule.grid_ns = max(grid_ns, 1)
        self.schedule.next_index = first_index
        self.schedule.index_step = index_step
        self.schedule.idle_timeout_ns = max(idle_timeout_ns, 0)
        if not self.flows:
            self.n_opened = min(initial_connections, self.conn_count)
            self.active_limit = self.conn_count
        if self.timer_fd < 0:
            self._open_timer()

    def connect_all(self):
        """Open the first connections (closed: the active ones; open: the initial
        pool; flows: none, each VU connects when it first sends); "settled"
        fires when each has connected or failed once."""
        cdef int64_t now = monotonic_ns()
        cdef uint32_t i
        for i in range(self.n_opened):
            if self.conns[i].state == C_IDLE:   # (a ramp's first set_active_connections() opened some)
                self._connect(&self.conns[i], now)
        self._serve_early()
        self._check_progress()

    def set_pipeline_timing(self, str mode):
        """'batch' (default): with pipelining, wake once a whole batch of
        responses can have arrived, and time them all then.  'each': wake for
        every response, and time each as it arrives (more wake-ups)."""
        if mode not in ("batch", "each"):
            raise ValueError(f"pipeline timing must be 'batch' or 'each', got {mode!r}")
        self.batch_timing = mode == "batch"

    def start(self, int64_t start_ns=0):
        """Begin sending; the open-model schedule counts from start_ns (the
        common start instant of all workers), default now."""
        if self.stopped:
            return
        cdef int64_t now = monotonic_ns()
        self.start_ns = start_ns if start_ns > 0 else now
        self.sending = True
        self.policy.start(self, now)
        self._serve_early()
        self._check_progress()

    def set_active_connections(self, uint32_t wanted):
        """Closed model: ramp to `wanted` connections (stages), or with flows to
        `wanted` virtual users.  Extra ones stop after their current request
        (a VU: after its iteration)."""
        if self.open_model or self.stopped:
            return
        if self.flows:
            flows_set_active(self, wanted, monotonic_ns())
        else:
            closed_set_active(self, wanted, monotonic_ns())
        self._serve_early()

    def stop(self):
        """Stop sending and close every connection.  Returns (requests in flight,
        requests due but unsent): both abandoned, neither counted as done."""
        self.sending = False
        self.stopped = True
        abandoned = self.counters.in_flight_total
        queued = self.schedule.queued
        self.schedule.queued = 0
        cdef uint32_t i
        for i in range(self.conn_count):
            if self.conns[i].fd >= 0:
                tx(&self.conns[i]).close(&self.conns[i])
            self._set_state(&self.conns[i], C_IDLE)
            self.conns[i].in_flight = 0
            framer_free(&self.conns[i].framer)
        self.counters.in_flight_total = 0
        self.n_early = 0
        self._arm_timer(NEVER_NS)
        return abandoned, queued

    def sweep(self):
        """Time out requests and connects older than the timeout; retry
        failed connects whose back-off has passed; hand out due requests.
        Call a few times a second."""
        if self.stopped:
            return
        cdef int64_t now = monotonic_ns()
        cdef uint32_t i
        # A connection waiting on SO_RCVLOWAT is looked at once its oldest
        # request is older than twice the slowest recent response (at least
        # 50 ms): normal waits stay unexamined even with 10,000 connections.
        cdef int64_t stall_ns = 2000 * max(self.previous_max_us, self.latency_us.max_value)
        if stall_ns < LOWAT_STALL_NS:
            stall_ns = LOWAT_STALL_NS
        for i in range(self.conn_count):
            self._sweep_conn(&self.conns[i], now, stall_ns)
        if self.sending:
            issue_due(self, now)          # also drops requests that waited too long
        self._serve_early()
        self._check_progress()

    cdef void _sweep_conn(self, Conn* c, int64_t now, int64_t stall_ns) noexcept:
        if c.state == C_OPEN and c.in_flight > 0:
            if now - c.sent_ns[c.ring_head] > request_timeout_ns(self, c):
                self._fail(c, ERR_TIMEOUT, now)
            elif c.lowat > 1 and now - c.sent_ns[c.ring_head] > stall_ns:
                unstall(self, c)
        elif c.state == C_OPEN:
            if self.schedule.idle_timeout_ns and now - c.idle_since_ns > self.schedule.idle_timeout_ns:
                close_idle(self, c)         # (open model: idle past the timeout)
        elif c.state == C_CONNECTING:
            if now - c.state_since_ns > self.timeout_ns:
                self._fail(c, ERR_CONNECT, now)
        elif c.state == C_HANDSHAKE:
            if now - c.state_since_ns > self.timeout_ns:
                self._fail(c, ERR_TIMEOUT, now)     # TCP is up; the handshake never finished
        elif c.state == C_RETRY_WAIT:
            if c.index >= self.n_opened or c.index >= self.active_limit:
                self._retire(c)             # ramped down meanwhile
            elif now >= c.state_since_ns:
                self._connect(c, now)

    def on_ready(self):
        """The epoll set is readable: serve every ready connection (level-triggered,
        so anything left over wakes us again).  Then, where it pays, poll again
        before going back to the loop: each return costs a uvloop wake-up and
        a Python call (~1.5 us), an empty epoll_wait ~0.3 us.  Over TLS (slower
        reads: more events arrive meanwhile) and with full batches the second
        poll mostly finds events (-c 50 over TLS: 0.47 -> 0.19 loop wake-ups
        per request); plain keep-alive at -c 50 mostly finds none, so after an
        empty one only every DRAIN_RETRY_EVERY-th wake-up (or a full batch)
        polls again.  At most DRAIN_ROUNDS polls and DRAIN_NS per call, so the
        loop's timers (ticks, sweeps, the deadline) and the supervisor's pipe
        wait no longer than that (the open model's timer is in this epoll set)."""
        cdef int n, rounds = 0
        cdef int64_t now, started = monotonic_ns()
        while True:
            n = epoll_wait(self.epfd, self.events, MAX_EVENTS, 0)
            if rounds > 0:
                self.drain_useful = n > 0
            if n > 0:
                self._serve_events(n)
            self._serve_early()
            now = monotonic_ns()
            self._woke(now)
            rounds += 1
            if n == 0 or rounds >= DRAIN_ROUNDS or now - started > DRAIN_NS:
                break
            if n < MAX_EVENTS and not self.drain_useful:
                self.drain_skipped += 1
                if self.drain_skipped < DRAIN_RETRY_EVERY:
                    break
                self.drain_skipped = 0
        self._check_progress()

    cdef void _serve_events(self, int n) noexcept:
        cdef int i
        cdef uint32_t ev
        cdef Conn* c
        for i in range(n):
            if self.events[i].data.u32 == TIMER_TOKEN:
                self.timer_armed_ns = NEVER_NS      # fired
                continue
            c = &self.conns[self.events[i].data.u32]
            ev = self.events[i].events
            if c.state == C_OPEN:
                if ev & (EPOLLIN | EPOLLERR | EPOLLHUP):
                    self._on_readable(c)
                if c.state == C_OPEN and (ev & EPOLLOUT) and c.want_write:
                    self._flush(c)
            elif c.state == C_HANDSHAKE:
                self._handshake(c, monotonic_ns())
            elif c.state == C_CONNECTING:
                self._on_connect_ready(c, ev, monotonic_ns())

    cdef void _woke(self, int64_t now) noexcept:
        """After a wake-up: requests that came due, thinkers whose time came
        (each a no-op where the policy has none: next_due_ns stays NEVER_NS in
        the closed model, the think heap stays empty without flows), then the
        timer for the next of either."""
        if self.sending and self.schedule.next_due_ns <= now:
            issue_due(self, now)
        if self.flow.heap_len > 0 and self.flow.heap_wake[0] <= now:
            wake_thinkers(self, now)
        self._arm_timer(self._next_timer_ns())

    cdef int64_t _next_timer_ns(self) noexcept:
        cdef int64_t when = self.schedule.next_due_ns
        if self.flow.heap_len > 0 and self.flow.heap_wake[0] < when:
            when = self.flow.heap_wake[0]
        return when

    def snapshot(self):
        """Cumulative counters plus this interval's latency histogram (then reset).
        "flows": the per-step and per-scenario counters (flow_snapshot), for every
        run: on the fast path they are derived here from the totals, so its
        requests count nothing twice (whether a result lists steps is the
        result's choice, surge.run.merge)."""
        latency = self.latency_us.to_sparse()
        uncorrected = self.latency_uncorrected_us.to_sparse() if self.open_model else None
        if self.flows:
            flows = self.flow_snapshot()
        else:
            flows = self._static_flow_snapshot(uncorrected if self.open_model else latency,
                                               latency if self.open_model else None)
        self.previous_max_us = self.latency_us.max_value
        self.latency_us.reset()
        self.latency_uncorrected_us.reset()
        return {
            "completed": self.counters.completed,
            "bytes_in": self.counters.bytes_in,
            "bytes_out": self.counters.bytes_out,
            "errors": {ERROR_KINDS[k]: self.counters.errors[k] for k in range(ERR_KINDS)},
            "statuses": _nonzero(self.counters.status_counts, STATUS_SLOTS),
            "open_connections": self.counters.open_conns,
            "connects": self.counters.connects,
            "in_flight": self.counters.in_flight_total,
            "latency": latency,
            "latency_uncorrected": uncorrected,
            "due": self.schedule.due_total,
            "dropped": self.schedule.dropped,
            "queued": self.schedule.queued,
            "flows": flows,
            **self._connection_snapshot(),
        }

    cdef dict _connection_snapshot(self):
        """snapshot()'s connection keys: connections opened (cumulative), this
        interval's connect and handshake histograms (then reset), and TLS's
        handshakes, errors by reason and first session (None without a TLS host)."""
        cdef int i
        connect = self.connect_us.to_sparse()
        self.connect_us.reset()
        handshake = self.handshake_us.to_sparse() if self.any_tls else None
        self.handshake_us.reset()
        errors = {self.tls.reasons[i].text.decode(errors="replace"): self.tls.reasons[i].count
                  for i in range(self.tls.n_reasons)}
        if self.tls.other_reasons:
            errors["other"] = self.tls.other_reasons
        session = None
        if self.tls.have_session:
            session = {"protocol": self.tls.protocol.decode(), "cipher": self.tls.cipher.decode(),
                       "group": self.tls.group.decode() if self.tls.group != NULL else None,
                       "ktls": bool(self.tls.ktls_send or self.tls.ktls_recv),
                       "ktls_send": bool(self.tls.ktls_send), "ktls_recv": bool(self.tls.ktls_recv)}
        return {
            "connections_opened": self.counters.connects,
            "connect": connect,
            "tls_handshake": handshake,
            "handshakes": {"full": self.tls.full, "resumed": self.tls.resumed} if self.any_tls else None,
            "tls_errors": errors,
            "tls_session": session,
            "connect_exhausted": {"ports": self.ports_exhausted, "fds": self.fds_exhausted},
        }

    # ---- connections --------------------------------------------------------
    cdef void _set_state(self, Conn* c, int state) noexcept:
        """Every state change goes through here, so the counts stay true."""
        if c.state == C_OPEN:
            self.counters.open_conns -= 1
        elif c.state == C_CONNECTING or c.state == C_HANDSHAKE:
            self.counters.connecting_conns -= 1
        if state == C_OPEN:
            self.counters.open_conns += 1
        elif state == C_CONNECTING or state == C_HANDSHAKE:
            self.counters.connecting_conns += 1
        c.state = state

    cdef void _watch(self, Conn* c, bint want_write) noexcept:
        """Register (the first time) or change the connection's epoll interest:
        EPOLLOUT while connecting; during a handshake the one direction it waits
        for (want_write: EPOLLOUT, else EPOLLIN), so that a handshake waiting for
        the server never spins on a writable socket; once open EPOLLIN, plus
        EPOLLOUT only while a write waits.  A connect that completed at once is
        first registered with the interest its handshake (or request) needs."""
        cdef epoll_event ev
        if c.state == C_CONNECTING:
            ev.events = EPOLLOUT
        elif c.state == C_HANDSHAKE:
            ev.events = EPOLLOUT if want_write else EPOLLIN
        else:
            ev.events = EPOLLIN | (EPOLLOUT if want_write else 0)
        ev.data.u64 = 0
        ev.data.u32 = c.index
        c.want_write = want_write
        epoll_ctl(self.epfd, EPOLL_CTL_MOD if c.in_epoll else EPOLL_CTL_ADD, c.fd, &ev)
        c.in_epoll = True

    cdef void _connect(self, Conn* c, int64_t now) noexcept:
        """Open the connection to its host (connections are VU-major: index =
        vu * hosts + host, so a URL run's are all host 0)."""
        cdef int host = c.index % self.n_hosts
        framer_reset(&c.framer)
        c.in_flight = 0
        c.ring_head = 0
        c.unsent_bytes = 0
        c.want_write = False
        c.response_bytes = 0
        c.lowat = 1
        c.established = False
        c.in_epoll = False
        c.early_up = False
        cdef int k, f
        c.bind_len = 0
        if self.n_binds:
            f = 1 if self.host_families[host] == AF_INET6 else 0
            if self.bind_count[f]:
                k = self.bind_first[f] + <int>((c.index // <uint32_t>self.n_hosts + self.bind_base[f])
                                               % <uint32_t>self.bind_count[f])
                c.bind_addr = &self.bind_addrs[k]
                c.bind_len = self.bind_lens[k]
        if tx(c).open(c, self.host_families[host], <sockaddr*>&self.host_addrs[host],
                      self.host_addr_lens[host]) < 0:
            if errno == EADDRNOTAVAIL:
                self.ports_exhausted += 1
            elif errno == EMFILE or errno == ENFILE:
                self.fds_exhausted += 1
            self.counters.errors[ERR_CONNECT] += 1
            self._set_state(c, C_IDLE)
            self.policy.failed(self, c, ERR_CONNECT, now)
            return
        self._set_state(c, C_CONNECTING)
        c.state_since_ns = now
        if not self._probe_connected(c, now):
            self._watch(c, False)

    cdef bint _probe_connected(self, Conn* c, int64_t now) noexcept:
        """Whether the connect just started needs no EPOLLOUT wake-up: True
        when it has completed already (the connection goes on early_list,
        served like an epoll event at the end of this call) or failed (counted
        and closed); False: in progress, watch it.  On loopback the kernel
        completes the TCP handshake within connect() (which says EINPROGRESS
        all the same), so this saves a wake-up of the loop, an epoll_ctl and a
        getsockopt per connection: of the ~4 wake-ups a TLS connection took
        with keep-alive off, the first.  Over a network every probe would miss
        (one more syscall each): after PROBE_CREDIT misses in a row only one
        connect in PROBE_RETRY_EVERY is probed, until one hits again."""
        cdef int host = c.index % self.n_hosts
        cdef int r
        if self.probe_credit <= 0:
            self.probe_skipped += 1
            if self.probe_skipped < PROBE_RETRY_EVERY:
                return False
            self.probe_skipped = 0
        if self.n_early >= self.conn_count:
            return False                    # (the list is full for this call: epoll reports it instead)
        r = tcp_connected(c, <sockaddr*>&self.host_addrs[host], self.host_addr_lens[host])
        if r == 0:
            self.probe_credit -= 1
            return False
        if r < 0:
            self._fail(c, ERR_CONNECT, now)
            return True
        self.probe_credit = PROBE_CREDIT
        self._tcp_up(c, monotonic_ns())     # (its time: the connect() calls, a loopback SYN's round trip)
        c.early_up = True
        self.early_list[self.n_early] = c.index
        self.n_early += 1
        return True

    cdef void _serve_early(self) noexcept:
        """The connections whose connect completed at once, served as epoll
        would have reported them: at the end of the call that opened them,
        never inside the policy callback that did (a response being framed,
        the open model handing out due requests, a VU's step), so no handler
        runs nested in itself.  What they open in turn joins the list: at most
        conn_count entries per call, after that _probe_connected declines and
        epoll reports the rest.  Every entry point that can connect (on_ready,
        sweep, connect_all, start, set_active_connections) ends here."""
        cdef uint32_t i = 0
        cdef Conn* c
        while i < self.n_early:
            c = &self.conns[self.early_list[i]]
            i += 1
            if c.early_up:
                c.early_up = False
                if c.state == C_CONNECTING:
                    self._handshake(c, monotonic_ns())
        self.n_early = 0

    cdef void _on_connect_ready(self, Conn* c, uint32_t ev, int64_t now) noexcept:
        """epoll reported the connect (EPOLLOUT).  A failed connect also sets
        EPOLLERR (and EPOLLHUP): the event says which, no getsockopt(SO_ERROR)
        needed (every connect error counts as one kind)."""
        if ev & (EPOLLERR | EPOLLHUP):
            self._fail(c, ERR_CONNECT, now)
            return
        self._tcp_up(c, now)
        self._handshake(c, now)             # (TCP: done at once)

    cdef void _tcp_up(self, Conn* c, int64_t now) noexcept:
        """The TCP connect completed: its time is recorded; the transport's
        handshake starts next."""
        record_value(self.connect_us, (now - c.state_since_ns) // 1000)
        c.tcp_up_ns = now

    cdef void _handshake(self, Conn* c, int64_t now) noexcept:
        """One step of the handshake: done, failed, or waiting for the
        direction it names (the epoll interest follows it)."""
        cdef Negotiated hs
        hs.protocol = NULL
        cdef int r = tx(c).handshake(c, &hs)
        cdef bint want_write
        if r == HANDSHAKE_DONE:
            # (the clock again: the server's flight can arrive while one
            # SSL_connect() runs, which then ends the handshake it began)
            self._opened(c, &hs, monotonic_ns())
        elif r == HANDSHAKE_FAILED:
            # EPROTO: tls; the ClientHello's send refused: write; a reset: read
            self._fail_transport(c, ERR_WRITE if errno == EPIPE else ERR_READ, now)
        else:
            want_write = r == HANDSHAKE_WANT_WRITE
            if c.state != C_HANDSHAKE:
                self._set_state(c, C_HANDSHAKE)         # (state_since_ns: still the connect's start)
                self._watch(c, want_write)
            elif want_write != c.want_write:
                self._watch(c, want_write)

    cdef void _opened(self, Conn* c, Negotiated* hs, int64_t now) noexcept:
        """Connected and, for TLS, the handshake done: the policy may send.
        Without keep-alive, what it sends counts its latency from the connect."""
        cdef bint was_reading = c.state == C_HANDSHAKE and not c.want_write
        if hs.protocol != NULL:
            self._count_handshake(c, hs, now)
        self._set_state(c, C_OPEN)
        c.established = True
        c.connect_failures = 0
        c.idle_since_ns = now
        self.counters.connects += 1
        if not was_reading:                             # (EPOLLIN already, after a handshake's last read)
            self._watch(c, False)
        self.policy.connected(self, c, now if self.reuse_conns else c.state_since_ns)

    cdef void _count_handshake(self, Conn* c, Negotiated* hs, int64_t now) noexcept:
        record_value(self.handshake_us, (now - c.tcp_up_ns) // 1000)
        if hs.resumed:
            self.tls.resumed += 1
        else:
            self.tls.full += 1
        if not self.tls.have_session:
            self.tls.have_session = True
            self.tls.protocol = hs.protocol
            self.tls.cipher = hs.cipher
            self.tls.group = hs.group
            self.tls.ktls_send = hs.ktls_send
            self.tls.ktls_recv = hs.ktls_recv

    cdef void _fail_transport(self, Conn* c, int kind, int64_t now) noexcept:
        """A transport operation failed (errno says how): a TLS error
        (EPROTO) counts as `tls` with its reason, anything else as `kind`."""
        cdef char text[TLS_REASON_TEXT]
        if errno == EPROTO:
            tx(c).error_text(c, text, TLS_REASON_TEXT)
            self._count_tls_reason(text)
            self._fail(c, ERR_TLS, now)
        else:
            self._fail(c, kind, now)

    cdef void _count_tls_reason(self, const char* text) noexcept:
        """One more TLS error for this reason: at most TLS_REASON_SLOTS distinct
        reasons are kept, the rest count under "other"."""
        cdef int i
        for i in range(self.tls.n_reasons):
            if strcmp(self.tls.reasons[i].text, text) == 0:
                self.tls.reasons[i].count += 1
                return
        if self.tls.n_reasons == TLS_REASON_SLOTS:
            self.tls.other_reasons += 1
            return
        i = self.tls.n_reasons
        self.tls.n_reasons += 1
        strncpy(self.tls.reasons[i].text, text, TLS_REASON_TEXT - 1)
        self.tls.reasons[i].text[TLS_REASON_TEXT - 1] = 0
        self.tls.reasons[i].count = 1

    cdef void _retry_later(self, Conn* c, int64_t now) noexcept:
        """A connect (or its handshake) failed: try again after _retry_delay_ns."""
        cdef int64_t delay_ns = self._retry_delay_ns(c, now)
        self._set_state(c, C_RETRY_WAIT)
        c.state_since_ns = now + delay_ns

    cdef int64_t _retry_delay_ns(self, Conn* c, int64_t now) noexcept:
        """The wait after c's connect (or handshake) failed, counting the failure:
        a back-off that doubles with each failure in a row, 50 ms up to 800 ms
        (RETRY_DOUBLINGS), each wait drawn from [half, all] of that ("equal
        jitter"), so a target that is down costs each connection at most ~1-2
        attempts a second instead of a busy loop, the connections' attempts do
        not come in lock-step waves, and a target that comes back is found
        within a second.  Plain connections (_retry_later) and flow VUs
        (flows.pxi flows_failed) both wait this long."""
        cdef int32_t doublings = c.connect_failures if c.connect_failures < RETRY_DOUBLINGS else RETRY_DOUBLINGS
        cdef int64_t full_ns = self.retry_backoff_ns << doublings
        cdef uint64_t mix = (<uint64_t>now) ^ ((<uint64_t>c.index + 1) * <uint64_t>0x9E3779B97F4A7C15)
        c.connect_failures = doublings + 1
        # splitmix64's finaliser: the instant and the connection's index well mixed, no state kept
        mix = (mix ^ (mix >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
        mix = (mix ^ (mix >> 27)) * <uint64_t>0x94D049BB133111EB
        mix ^= mix >> 31
        return full_ns - full_ns // 2 + <int64_t>(mix % <uint64_t>(full_ns // 2 + 1))

    cdef void _close(self, Conn* c, bint requeue) noexcept:
        """Close the socket.  requeue: in-flight requests were never answered
        and go back to the quota (the peer said it would close, or they were
        sent behind a request that failed)."""
        if c.fd >= 0:
            tx(c).close(c)
        self._set_state(c, C_IDLE)
        self.counters.in_flight_total -= c.in_flight
        if self.counted and requeue:
            self.quota_left += c.in_flight
        c.in_flight = 0
        c.unsent_bytes = 0
        framer_free(&c.framer)

    cdef void _retire(self, Conn* c) noexcept:
        """Closed-model ramp down: this connection is no longer wanted."""
        self._close(c, True)

    cdef void _fail(self, Conn* c, int kind, int64_t now) noexcept:
        """Count one error; the oldest in-flight request is the failed one, the
        others are issued again; then the policy decides (reconnect, retry
        later, or abort the VU's iteration)."""
        self.counters.errors[kind] += 1
        if c.in_flight > 0:
            c.in_flight -= 1
            self.counters.in_flight_total -= 1
        self._close(c, True)
        self.policy.failed(self, c, kind, now)

    # ---- the request loop -----------------------------------------------------
    cdef void _on_readable(self, Conn* c) noexcept:
        """Read and frame until the transport has nothing more for now.  A
        read that filled the buffer is followed by another: the rest may
        wait in the kernel, or decrypted in the transport, where epoll
        cannot see it."""
        cdef ssize_t n
        cdef int64_t now
        while True:
            n = tx(c).read(c, self.read_buf, READ_BUF_BYTES)
            now = monotonic_ns()
            if n < 0:
                if errno != EAGAIN and errno != EWOULDBLOCK and errno != EINTR:
                    self._fail_transport(c, ERR_READ, now)
                return
            if n == 0:
                self._on_eof(c, now)
                return
            self.counters.bytes_in += n
            if not self._frame_read(c, n, now):
                return
            self.policy.read_done(self, c, now)
            if n < READ_BUF_BYTES or c.state != C_OPEN:
                return

    cdef void _on_eof(self, Conn* c, int64_t now) noexcept:
        """The peer closed: a close-delimited body may have ended with it."""
        if c.in_flight > 0 and frame_eof(&c.framer):
            c.framer.keep_alive = False
            self.policy.response(self, c, now)  # closes the connection
        elif c.in_flight > 0:
            self._fail(c, ERR_CLOSED, now)      # closed before the response ended
        else:
            self.policy.idle_closed(self, c, now)

    cdef bint _frame_read(self, Conn* c, Py_ssize_t n, int64_t now) noexcept:
        """Frame one read's bytes; each response that ends goes to the policy.
        False: the connection closed or the policy wants no more of this read."""
        cdef Py_ssize_t pos = 0, r
        while pos < n:
            if c.in_flight == 0:
                self._fail(c, ERR_PARSE, now)    # bytes nobody asked for
                return False
            r = frame_step(&c.framer, self.read_buf + pos, n - pos)
            if r < 0:
                self._fail(c, ERR_PARSE, now)
                return False
            pos += r
            c.response_bytes += r
            if c.framer.complete:
                if c.response_bytes < self.min_response_bytes or self.min_response_bytes == 0:
                    self.min_response_bytes = c.response_bytes
                c.response_bytes = 0
                c.framer.keep_alive &= self.reuse_conns     # keep-alive off: the policy closes and reconnects
                if not self.policy.response(self, c, now):
                    return False
        return True

    cdef void _count_response(self, Conn* c) noexcept:
        """The oldest in-flight request got its response: counted, off the ring."""
        c.ring_head += 1
        if c.ring_head == self.depth:
            c.ring_head = 0
        c.in_flight -= 1
        self.counters.in_flight_total -= 1
        self.counters.completed += 1
        self.counters.status_counts[status_slot(c.framer.status)] += 1

    cdef void _commit(self, Conn* c, int32_t slot, int64_t intended, int64_t now) noexcept:
        """One more request in flight at ring `slot`, sent now, intended then."""
        c.sent_ns[slot] = now
        c.intended_ns[slot] = intended
        c.in_flight += 1
        self.counters.in_flight_total += 1

    cdef void _flush(self, Conn* c) noexcept:
        """Write what is committed and unsent, from c.out (the fast path's
        repeated request, wrapping at one request; or the rendered one)."""
        cdef ssize_t w
        while c.unsent_bytes > 0:
            w = tx(c).write(c, c.out + c.out_pos, <size_t>c.unsent_bytes)
            if w > 0:
                self.counters.bytes_out += w
                c.unsent_bytes -= w
                c.out_pos = (c.out_pos + w) % c.out_wrap
            elif w < 0 and errno == EINTR:
                continue
            elif w < 0 and (errno == EAGAIN or errno == EWOULDBLOCK):
                if not c.want_write:
                    self._watch(c, True)
                return
            else:
                self._fail_transport(c, ERR_WRITE, monotonic_ns())
                return
        if c.want_write:
            self._watch(c, False)

    # ---- timers and rare events ------------------------------------------------
    cdef void _arm_timer(self, int64_t when_ns) noexcept:
        cdef itimerspec spec
        if self.timer_fd < 0 or when_ns == self.timer_armed_ns:
            return
        memset(&spec, 0, sizeof(spec))
        if when_ns != NEVER_NS:
            spec.it_value.tv_sec = when_ns // 1000000000
            spec.it_value.tv_nsec = when_ns % 1000000000
            if spec.it_value.tv_sec == 0 and spec.it_value.tv_nsec == 0:
                spec.it_value.tv_nsec = 1          # zero would disarm
        timerfd_settime(self.timer_fd, TFD_TIMER_ABSTIME, &spec, NULL)
        self.timer_armed_ns = when_ns

    cdef void _open_timer(self) except *:
        cdef epoll_event ev
        self.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if self.timer_fd < 0:
            raise OSError(errno, "timerfd_create failed")
        ev.events = EPOLLIN | EPOLLET      # settime() resets the count: no read() needed
        ev.data.u64 = 0
        ev.data.u32 = TIMER_TOKEN
        epoll_ctl(self.epfd, EPOLL_CTL_ADD, self.timer_fd, &ev)

    cdef void _check_progress(self) noexcept:
        """Tell Python about the rare transitions (one call each per run)."""
        cdef uint32_t i
        if not self.settled_signalled:
            for i in range(self.n_opened):
                if (self.conns[i].state == C_CONNECTING or self.conns[i].state == C_HANDSHAKE
                        or self.conns[i].state == C_IDLE):
                    return
            self.settled_signalled = True
            self._signal("settled")
        if self.done_signalled or not self.sending:
            return
        if self.flow.n_vus > 0 and self.flow.vus_done == self.flow.n_vus:
            self.done_signalled = True      # every VU's data ran out (on_exhausted: stop)
            self._signal("done")
        elif self.counted and self.quota_left == 0 and self.counters.in_flight_total == 0:
            self.done_signalled = True
            self._signal("done")

    cdef void _signal(self, str name) noexcept:
        try:
            self.on_event(name)
        except BaseException:
            pass

    # ---- flows (test plans): set-up -----------------------------------------------
    cdef void _use_flows(self, object tables, int64_t user_base, uint64_t seed, tuple worker) except *:
        """Run the tables' flows: virtual users, each with one connection per host."""
        self.flows = True
        self.policy = FLOWS_CLOSED
        self.flow.n_vus = self.conn_count // self.n_hosts
        self.flow.n_vars = len(tables.var_names)
        self._compile_scenarios(tables.scenarios)
        self._compile_feeders(tables.feeders, worker)
        self._alloc_vus()
        cookies_setup(self, tables)
        redirect_setup(self, tables)
        self.flow.user_base = user_base
        self.flow.rng = seed or 0x9E3779B97F4A7C15
        if getattr(tables, "rotate", False):
            # Scenarios in turn (--targets --order round-robin).  Each worker starts
            # where the workers before it leave off: with -n N split as the supervisor
            # splits it (the first N % W workers one more), the totals differ by at most one.
            index, workers = worker
            total = getattr(tables, "requests_total", None) or 0
            self.flow.rotate = True
            self.flow.next_scenario = (index * (total // workers) + min(index, total % workers) if total
                                       else index) % self.flow.n_scenarios
        self.n_opened = 0
        self.active_limit = self.flow.n_vus
        if self.timer_fd < 0:
            self._open_timer()

    cdef void _compile_scenarios(self, list scenarios) except *:
        cdef int i, j
        cdef double upto = 0.0
        self.flow.n_scenarios = len(scenarios)
        self.flow.scenarios = <Scenario*>calloc(self.flow.n_scenarios, sizeof(Scenario))
        self.flow.scenario_counts = <int64_t*>calloc(self.flow.n_scenarios * SCN_COUNTERS, sizeof(int64_t))
        for i, (share, step_ids, feeder_ids) in enumerate(scenarios):
            upto += share
            self.flow.scenarios[i].weight_upto = upto
            self.flow.scenarios[i].n_steps = len(step_ids)
            self.flow.scenarios[i].steps = <int*>calloc(max(len(step_ids), 1), sizeof(int))
            for j, sid in enumerate(step_ids):
                self.flow.scenarios[i].steps[j] = sid
            self.flow.scenarios[i].n_feeders = len(feeder_ids)
            self.flow.scenarios[i].feeders = <int*>calloc(max(len(feeder_ids), 1), sizeof(int))
            for j, fid in enumerate(feeder_ids):
                self.flow.scenarios[i].feeders[j] = fid
        self.flow.scenarios[self.flow.n_scenarios - 1].weight_upto = 1.0

    cdef void _compile_feeders(self, list feeders, tuple worker) except *:
        """Data rows as C string tables.  worker: (index, count), for unique
        feeders (rows index, index+count, ...)."""
        cdef int i, r, col
        cdef Feeder* f
        keep = self.keepalive
        self.flow.n_feeders = len(feeders)
        self.flow.feeders = <Feeder*>calloc(max(self.flow.n_feeders, 1), sizeof(Feeder))
        for i, spec in enumerate(feeders):
            rows, order, stop_when_done = spec[:3]
            f = &self.flow.feeders[i]
            if len(spec) > 3 and spec[3] is not None:       # JSON-lines cells that are not strings
                keep.append(spec[3])
                f.types = <const unsigned char*>PyBytes_AS_STRING(spec[3])
            f.n_rows = len(rows)
            f.n_cols = len(rows[0]) if rows else 0
            f.values = <const char**>calloc(max(f.n_rows * f.n_cols, 1), sizeof(char*))
            f.lengths = <int32_t*>calloc(max(f.n_rows * f.n_cols, 1), sizeof(int32_t))
            for r, row in enumerate(rows):
                for col, value in enumerate(row):
                    keep.append(value)
                    f.values[r * f.n_cols + col] = PyBytes_AS_STRING(value)
                    f.lengths[r * f.n_cols + col] = len(value)
            f.order = order
            f.stop_when_done = stop_when_done
            f.next = worker[0] if order == ORDER_UNIQUE else 0
            f.stride = worker[1] if order == ORDER_UNIQUE else 1

    cdef void _alloc_vus(self) except *:
        cdef uint32_t i
        cdef int slots_vars = max(self.flow.n_vars, 1)
        self.flow.vus = <VU*>calloc(self.flow.n_vus, sizeof(VU))
        for i in range(self.flow.n_vus):
            self.flow.vus[i].rows = <int64_t*>calloc(max(self.flow.n_feeders, 1), sizeof(int64_t))
            self.flow.vus[i].var_values = <char**>calloc(slots_vars, sizeof(char*))
            self.flow.vus[i].var_lengths = <int32_t*>calloc(slots_vars, sizeof(int32_t))
            self.flow.vus[i].var_caps = <int32_t*>calloc(slots_vars, sizeof(int32_t))
            self.flow.vus[i].var_types = <unsigned char*>calloc(slots_vars, sizeof(unsigned char))
        self.flow.heap_wake = <int64_t*>calloc(self.flow.n_vus, sizeof(int64_t))
        self.flow.heap_vu = <uint32_t*>calloc(self.flow.n_vus, sizeof(uint32_t))
        if not (self.flow.vus and self.flow.heap_wake and self.flow.heap_vu):
            raise MemoryError()

    cdef void _compile_template(self, Template* t, tuple parts, list keep) except *:
        t.n_parts = len(parts)
        t.parts = <TemplatePart*>calloc(max(t.n_parts, 1), sizeof(TemplatePart))
        for i, part in enumerate(parts):
            if isinstance(part, bytes):
                keep.append(part)
                t.parts[i].kind = PART_LITERAL
                t.parts[i].literal = PyBytes_AS_STRING(part)
                t.parts[i].literal_len = len(part)
            else:       # (kind, a, b, escape[, width, items]): surge.run.flows
                t.parts[i].kind, t.parts[i].a, t.parts[i].b, t.parts[i].escape = part[:4]
                if len(part) > 4:
                    t.parts[i].width = part[4]
                    if part[5] is not None:
                        keep.append(part[5])
                        t.parts[i].literal = PyBytes_AS_STRING(part[5])
                        t.parts[i].literal_len = len(part[5])

    cdef void* _compile_regex(self, bytes pattern) except NULL:
        cdef regex_t* rx = <regex_t*>malloc(sizeof(regex_t))
        if regcomp(rx, pattern, REG_EXTENDED) != 0:
            free(rx)
            raise ValueError(f"regular expression {pattern!r} does not compile (POSIX extended syntax)")
        return rx

    def flow_snapshot(self):
        """Per step: (responses, checks, check failures, errors by kind, statuses, latency
        from the write), per scenario: (started, completed, aborted); "steps_corrected":
        the open model's per-step latency from the intended instant (None in the
        closed model); step latencies then reset.  On the fast path the one step's
        counters are the totals, and its latencies are the interval's (reset by
        snapshot(), not here)."""
        cdef int i, k
        if not self.flows:
            return self._static_flow_snapshot(
                (self.latency_uncorrected_us if self.open_model else self.latency_us).to_sparse(),
                self.latency_us.to_sparse() if self.open_model else None)
        steps = []
        for i in range(self.flow.n_steps):
            base = self.flow.step_counts + i * FLOW_COUNTERS
            hist = self.step_latency[i]
            sparse = hist.to_sparse()
            hist.reset_counts()
            steps.append((base[SC_RESPONSES], base[SC_CHECKS], base[SC_CHECK_FAILURES],
                          [base[SC_ERRORS + 1 + k] for k in range(ERR_KINDS)],
                          _nonzero(self.flow.step_statuses + i * STATUS_SLOTS, STATUS_SLOTS), sparse))
        scenarios = [tuple(self.flow.scenario_counts[i * SCN_COUNTERS + k] for k in range(SCN_COUNTERS))
                     for i in range(self.flow.n_scenarios)]
        corrected = None
        if self.step_latency_corrected is not None:
            corrected = [hist.to_sparse() for hist in self.step_latency_corrected]
            for hist in self.step_latency_corrected:
                hist.reset_counts()
        return {"steps": steps, "scenarios": scenarios, "vus_done": self.flow.vus_done,
                "redirects": redirect_snapshot(self), "steps_corrected": corrected}

    cdef dict _static_flow_snapshot(self, tuple latency, tuple corrected):
        """flow_snapshot() of the fast path: one step, one scenario, from the totals
        (latency: from the write; corrected: the open model's, else None).
        An iteration is one request: completed = responses, aborted = transport
        errors (each ends an iteration in flows too), started = both plus the
        requests in flight."""
        cdef int64_t errors = 0
        cdef int k
        for k in range(ERR_KINDS):
            errors += self.counters.errors[k]
        step = (self.counters.completed, 0, 0, [self.counters.errors[k] for k in range(ERR_KINDS)],
                _nonzero(self.counters.status_counts, STATUS_SLOTS), latency)
        scenario = (self.counters.completed + errors + self.counters.in_flight_total, self.counters.completed, errors)
        return {"steps": [step], "scenarios": [scenario], "vus_done": 0,
                "steps_corrected": [corrected] if corrected is not None else None}

    cdef void _free_flows(self) noexcept:
        cdef int i, j
        cdef uint32_t v
        cookies_free(self)
        if self.flow.steps != NULL:
            for i in range(self.flow.n_steps):
                free(self.flow.steps[i].head.parts)
                free(self.flow.steps[i].body.parts)
                if self.flow.steps[i].body_regex != NULL:
                    regfree(<regex_t*>self.flow.steps[i].body_regex)
                    free(self.flow.steps[i].body_regex)
                for j in range(self.flow.steps[i].n_extracts):
                    if self.flow.steps[i].extracts[j].regex != NULL:
                        regfree(<regex_t*>self.flow.steps[i].extracts[j].regex)
                        free(self.flow.steps[i].extracts[j].regex)
                    free(self.flow.steps[i].extracts[j].segments)
                free(self.flow.steps[i].extracts)
        if self.flow.scenarios != NULL:
            for i in range(self.flow.n_scenarios):
                free(self.flow.scenarios[i].steps)
                free(self.flow.scenarios[i].feeders)
        if self.flow.feeders != NULL:
            for i in range(self.flow.n_feeders):
                free(self.flow.feeders[i].values)
                free(self.flow.feeders[i].lengths)
        if self.flow.vus != NULL:
            for v in range(self.flow.n_vus):
                for j in range(self.flow.n_vars):
                    free(self.flow.vus[v].var_values[j])
                free(self.flow.vus[v].var_values)
                free(self.flow.vus[v].var_lengths)
                free(self.flow.vus[v].var_caps)
                free(self.flow.vus[v].var_types)
                free(self.flow.vus[v].rows)
        free(self.flow.steps); free(self.flow.scenarios); free(self.flow.feeders); free(self.flow.vus)
        free(self.flow.heap_wake); free(self.flow.heap_vu); free(self.flow.scratch)
        free(self.flow.step_counts); free(self.flow.step_statuses); free(self.flow.scenario_counts)
        free(self.flow.step_best_us)
        redirect_free(self)
        free(self.host_addrs); free(self.host_addr_lens); free(self.host_families)
        free(self.bind_addrs); free(self.bind_lens)
        free(self.host_transports); free(self.host_shared)


cdef dict _nonzero(int64_t* counts, int n):
    """{index: count} of the non-zero counters (status slots)."""
    cdef int i
    return {i: counts[i] for i in range(n) if counts[i]}


cdef class ResponseFramer:
    """The engine's framing, for tests and benchmarks: feed bytes, get the
    status of each response that ended."""
    cdef Framer framer

    def __cinit__(self, bint head_request=False, bint capture=False, bint want_location=False):
        framer_reset(&self.framer)
        self.framer.head_request = head_request
        self.framer.capture = capture               # as a flow step that checks or extracts
        self.framer.want_location = want_location   # as a step that follows redirects

    def __dealloc__(self):
        framer_free(&self.framer)
        free(self.framer.cap_buf)

    @property
    def held_bytes(self):
        """Bytes this framer holds on the heap (split head, captured response,
        Location): bounded whatever the peer sends (the fuzz tests check it)."""
        return self.framer.carry_cap + self.framer.cap_cap + self.framer.location_cap

    @property
    def captured_bytes(self):
        return self.framer.cap_len

    def feed(self, bytes data):
        """Frame `data`; returns [(status, keep_alive), ...] for responses that ended.
        Raises ValueError for a malformed response."""
        out, ok = self.feed_until_malformed(data)
        if not ok:
            raise ValueError("malformed HTTP response")
        return out

    def feed_until_malformed(self, bytes data):
        """([(status, keep_alive), ...] that ended, False if a malformed response
        stopped it): what the engine counts before a `parse` error (fuzz tests)."""
        cdef const char* p = PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data), pos = 0, r
        out = []
        while pos < n:
            r = frame_step(&self.framer, p + pos, n - pos)
            if r < 0:
                return out, False
            pos += r
            if self.framer.complete:
                out.append((self.framer.status, bool(self.framer.keep_alive)))
        return out, True

    def feed_count(self, bytes data, int repeat):
        """Frame `data` `repeat` times; returns responses ended (benchmarks)."""
        cdef const char* p = PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data), pos, r
        cdef int64_t done = 0
        cdef int k
        for k in range(repeat):
            pos = 0
            while pos < n:
                r = frame_step(&self.framer, p + pos, n - pos)
                if r < 0:
                    raise ValueError("malformed HTTP response")
                pos += r
                if self.framer.complete:
                    done += 1
        return done

    def eof(self):
        """The peer closed: the status of a close-delimited response that ended, or None."""
        if frame_eof(&self.framer):
            return self.framer.status
        return None

    @property
    def idle(self):
        """True when no response is partly received."""
        return bool(frame_idle(&self.framer))


def die_with_parent(int signum):
    """Ask the kernel to send `signum` to this process when its parent exits
    (Linux PR_SET_PDEATHSIG): a worker then dies with its supervisor, even one
    killed by SIGKILL.  Here, not through ctypes, so that no run pays ctypes'
    import (the workers import this module anyway).  Returns prctl's result (0: set)."""
    return prctl(PR_SET_PDEATHSIG, <unsigned long>signum, 0, 0, 0)
