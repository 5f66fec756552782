# cython: language_level=3
"""The request engine of one worker process.

A uvloop loop watches one epoll descriptor (`Engine.epoll_fd`) with
`loop.add_reader(engine.epoll_fd, engine.on_ready)`; every connection lives in
that epoll set and in a C array.  One Python call per loop wake-up serves all
the connections that are ready: recv into a shared buffer, frame responses,
record latencies, send the next requests (pre-rendered bytes) - all in C.
Timers (start, per-second snapshots, timeout sweeps, the deadline) stay on
the uvloop loop, driven by the worker (surge.run.worker).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from surge.core._histogram cimport Histogram, record_value
from surge.core._limits cimport *
from surge.core.includes.sys cimport *

include "framing.pxi"
include "schedule.pxi"
include "flows.pxi"

DEF READ_BUF_BYTES = 65536
# sweep() checks a connection waiting on SO_RCVLOWAT for bytes stuck below
# the mark once its oldest request is this old (or twice the slowest recent
# response, if more).
DEF LOWAT_STALL_NS = 50_000_000
# The highest low-water mark set.  Linux grows the receive buffer to fit a
# mark and clamps the TCP window to it: at 64 KiB, 100-KiB responses
# pipelined 4 deep ran at ~0.6x the throughput.  A few KiB per wake-up
# already amortise it.
DEF LOWAT_MAX_BYTES = 16384
DEF MAX_EVENTS = 512
DEF TIMER_TOKEN = 0xFFFFFFFF      # epoll data of the schedule's timerfd

from surge.core._limits import ERROR_KINDS


cdef class Engine:
    """Connections to one address, each sending the same pre-rendered request.

    quota < 0: send until stop(); quota >= 0: issue exactly `quota` requests
    (each ends as a response or an error), then report "done".
    on_event(name) is called for rare events: "settled" (every connection has
    connected or failed once), "done" (quota used up and nothing in flight).

    Closed model (default): every active connection keeps `depth` requests in
    flight; set_active_connections() ramps the number of active connections.
    Open model (use_open_model): requests are due on a schedule, wait for a
    free connection (opened on demand up to a maximum), and their latency is
    recorded from the intended instant (latency_us) and from the actual write
    (latency_uncorrected_us).
    """

    def __cinit__(self, list hosts, object tables, *, uint32_t users, int32_t pipeline, int64_t quota,
                  int64_t timeout_ns, object on_event, str pipeline_timing="batch", int64_t user_base=0,
                  uint64_t seed=1, tuple worker=(0, 1)):
        """hosts: [(family, sockaddr bytes)] in tables.hosts order.  tables: a
        surge.run.flows.FlowTables.  users: this worker's virtual users (a URL
        run: its connections); connections = users x hosts.  The engine takes
        its fast path (the request rendered once, SO_RCVLOWAT reads, batch
        pipelining) when the tables are one static step; pipeline > 1 needs it."""
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
        self.timer_fd = -1
        self.next_due_ns = NEVER_NS
        self.keepalive = []
        self.report_steps = tables.report_steps
        self.set_pipeline_timing(pipeline_timing)
        self._set_hosts(hosts)
        self._alloc_connections(users * self.n_hosts, pipeline)
        self.counted = quota >= 0
        self.quota_left = quota if quota >= 0 else 0
        self.timeout_ns = timeout_ns
        self.retry_backoff_ns = 50_000_000
        self.on_event = on_event
        self.latency_us = Histogram()
        self.latency_uncorrected_us = Histogram()
        self._compile_steps(tables.steps)
        if static:
            self._use_static()
        else:
            self._use_flows(tables, user_base, seed, worker)

    cdef void _set_hosts(self, list hosts) except *:
        cdef int i
        self.n_hosts = len(hosts)
        self.host_addrs = <sockaddr_storage*>calloc(self.n_hosts, sizeof(sockaddr_storage))
        self.host_addr_lens = <socklen_t*>calloc(self.n_hosts, sizeof(socklen_t))
        self.host_families = <int*>calloc(self.n_hosts, sizeof(int))
        if not (self.host_addrs and self.host_addr_lens and self.host_families):
            raise MemoryError()
        for i, (family, sockaddr) in enumerate(hosts):
            if len(sockaddr) > sizeof(sockaddr_storage):
                raise ValueError("socket address too long")
            memcpy(&self.host_addrs[i], PyBytes_AS_STRING(sockaddr), len(sockaddr))
            self.host_addr_lens[i] = <socklen_t>len(sockaddr)
            self.host_families[i] = family

    cdef void _alloc_connections(self, uint32_t connections, int32_t depth) except *:
        """The connection array, each with a ring of `depth` send instants."""
        cdef uint32_t i
        self.depth = depth
        self.conn_count = connections
        self.conns = <Conn*>calloc(connections, sizeof(Conn))
        self.sent_ns = <int64_t*>calloc(<size_t>connections * depth, sizeof(int64_t))
        self.intended_ns = <int64_t*>calloc(<size_t>connections * depth, sizeof(int64_t))
        self.free_stack = <uint32_t*>calloc(connections, sizeof(uint32_t))
        self.read_buf = <char*>malloc(READ_BUF_BYTES)
        self.events = <epoll_event*>calloc(MAX_EVENTS, sizeof(epoll_event))
        if not (self.conns and self.sent_ns and self.intended_ns and self.free_stack and self.read_buf
                and self.events):
            raise MemoryError()
        for i in range(connections):
            self.conns[i].fd = -1
            self.conns[i].index = i
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
        self.request_len = self._render_into(&self.steps[0], NULL, 0, &rendered, &cap)
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
        self.head_request = self.steps[0].head_request
        for k in range(<int32_t>self.conn_count):
            self.conns[k].framer.head_request = self.head_request

    cdef void _compile_steps(self, list steps) except *:
        """Each surge.run.flows.EngineStep into a C Step, with its counters."""
        cdef int i
        self.n_steps = len(steps)
        self.steps = <Step*>calloc(self.n_steps, sizeof(Step))
        self.step_counts = <int64_t*>calloc(self.n_steps * FLOW_COUNTERS, sizeof(int64_t))
        self.step_statuses = <int64_t*>calloc(self.n_steps * STATUS_SLOTS, sizeof(int64_t))
        if not (self.steps and self.step_counts and self.step_statuses):
            raise MemoryError()
        self.step_latency = [Histogram() for _ in range(self.n_steps)]
        for i, spec in enumerate(steps):
            self._compile_step(&self.steps[i], spec)

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
        self._compile_extracts(st, spec.extracts)
        st.think_kind, st.think_a_ns, st.think_b_ns = spec.think
        st.capture = bool(st.n_extracts or st.body_contains != NULL or st.body_regex != NULL)

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
            if kind == EXTRACT_HEADER:
                name = expr.lower()
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
                    close(self.conns[i].fd)
                framer_free(&self.conns[i].framer)
                free(self.conns[i].framer.cap_buf)
                free(self.conns[i].out)
        self._free_flows()
        if self.epfd >= 0:
            close(self.epfd)
        if self.timer_fd >= 0:
            close(self.timer_fd)
        free(self.conns)
        free(self.sent_ns)
        free(self.intended_ns)
        free(self.free_stack)
        free(self.segments)
        free(self.request_buf)
        free(self.read_buf)
        free(self.events)

    @property
    def epoll_fd(self):
        """The descriptor to watch for readability (loop.add_reader)."""
        return self.epfd

    # ---- lifecycle (called from Python a few times per run) -----------------
    def use_open_model(self, list segments, int64_t first_index, int64_t index_step,
                       uint32_t initial_connections, int64_t grid_ns=0):
        """Switch to the open model.  segments: [(start_s, end_s, rate_start, rate_end)]
        of the GLOBAL schedule; this worker takes indices first_index, +index_step, ...
        The engine's connection capacity is the maximum opened on demand.
        grid_ns > 0: each request's intended instant is rounded up to a multiple
        of grid_ns from the start, so requests go out in batches (one timer
        wake-up each) and the batch instant is what latency is corrected from."""
        cdef int i
        cdef double count = 0.0
        if self.sending or self.open_model:
            raise RuntimeError("use_open_model() must be called once, before start()")
        self.n_segments = len(segments)
        self.segments = <Segment*>calloc(max(self.n_segments, 1), sizeof(Segment))
        if self.segments == NULL:
            raise MemoryError()
        for i, (start_s, end_s, rate_start, rate_end) in enumerate(segments):
            self.segments[i].start_ns = <int64_t>(start_s * 1e9)
            self.segments[i].end_ns = <int64_t>(end_s * 1e9)
            self.segments[i].rate_start = rate_start
            self.segments[i].rate_end = rate_end
            self.segments[i].count_start = count
            count += (rate_start + rate_end) / 2.0 * (end_s - start_s)
            self.segments[i].count_end = count
        self.open_model = True
        self.grid_ns = max(grid_ns, 1)
        self.next_index = first_index
        self.index_step = index_step
        self.n_opened = min(initial_connections, self.conn_count)
        self.active_limit = self.conn_count
        if self.timer_fd < 0:
            self._open_timer()

    def connect_all(self):
        """Open the first connections (closed: the active ones; open: the initial
        pool); "settled" fires when each has connected or failed once."""
        cdef int64_t now = monotonic_ns()
        cdef uint32_t i
        for i in range(self.n_opened):
            self._connect(&self.conns[i], now)
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
        # Flows and the open model read on every arrival (their latencies
        # start at different instants); closed plain runs use _set_lowat.
        self.lowat_reads = not self.open_model and not self.flows
        self.start_ns = start_ns if start_ns > 0 else now
        self.sending = True
        cdef uint32_t i
        if self.flows:
            if self.open_model:
                for i in range(self.n_vus):
                    self.free_stack[self.free_top] = self.n_vus - 1 - i
                    self.free_top += 1
                self.next_due_ns = self._schedule_instant(self.next_index, &self.due_cursor)
                self._issue_due(now)
            else:
                for i in range(min(self.active_limit, self.n_vus)):
                    self._vu_begin(i, 0, now)
        elif self.open_model:
            self.next_due_ns = self._schedule_instant(self.next_index, &self.due_cursor)
            for i in range(self.n_opened):
                if self.conns[i].state == C_OPEN:
                    self._on_idle(&self.conns[i], now)
            self._issue_due(now)
        else:
            for i in range(self.conn_count):
                if self.conns[i].state == C_OPEN:
                    self._refill(&self.conns[i], now)
        self._check_progress()

    def set_active_connections(self, uint32_t wanted):
        """Closed model: ramp to `wanted` connections (stages), or with flows to
        `wanted` virtual users.  Extra ones stop after their current request
        (a VU: after its iteration)."""
        if self.open_model or self.stopped:
            return
        cdef int64_t now = monotonic_ns()
        cdef uint32_t i
        cdef Conn* c
        if self.flows:
            self.active_limit = min(wanted, self.n_vus)
            if self.sending:
                for i in range(self.active_limit):
                    if self.vus[i].state == VU_IDLE:
                        self._vu_begin(i, 0, now)
            return
        self.active_limit = min(wanted, self.conn_count)
        self.n_opened = max(self.n_opened, self.active_limit)
        for i in range(self.conn_count):
            c = &self.conns[i]
            if i < self.active_limit:
                if c.state == C_IDLE:
                    self._connect(c, now)
            elif c.state == C_RETRY_WAIT or c.state == C_CONNECTING or (c.state == C_OPEN and c.in_flight == 0):
                self._retire(c)

    def stop(self):
        """Stop sending and close every connection.  Returns (requests in flight,
        requests due but unsent): both abandoned, neither counted as done."""
        self.sending = False
        self.stopped = True
        abandoned = self.in_flight_total
        queued = self.queued
        self.queued = 0
        cdef uint32_t i
        for i in range(self.conn_count):
            if self.conns[i].fd >= 0:
                close(self.conns[i].fd)
                self.conns[i].fd = -1
            self._set_state(&self.conns[i], C_IDLE)
            self.conns[i].in_flight = 0
            framer_free(&self.conns[i].framer)
        self.in_flight_total = 0
        self._arm_timer(NEVER_NS)
        return abandoned, queued

    def sweep(self):
        """Time out requests and connects older than the timeout; retry
        failed connects whose back-off has passed.  Call a few times a second."""
        if self.stopped:
            return
        cdef int64_t now = monotonic_ns()
        cdef uint32_t i
        cdef Conn* c
        # A connection waiting on SO_RCVLOWAT is looked at once its oldest
        # request is older than twice the slowest recent response (at least
        # 50 ms): normal waits stay unexamined even with 10,000 connections.
        cdef int64_t stall_ns = 2000 * max(self.previous_max_us, self.latency_us.max_value)
        if stall_ns < LOWAT_STALL_NS:
            stall_ns = LOWAT_STALL_NS
        for i in range(self.conn_count):
            c = &self.conns[i]
            if c.state == C_OPEN and c.in_flight > 0:
                if now - c.sent_ns[c.ring_head] > self.timeout_ns:
                    self._fail(c, ERR_TIMEOUT, now)
                elif c.lowat > 1 and now - c.sent_ns[c.ring_head] > stall_ns:
                    self._unstall(c)
            elif c.state == C_CONNECTING:
                if now - c.state_since_ns > self.timeout_ns:
                    self._fail(c, ERR_CONNECT, now)
            elif c.state == C_RETRY_WAIT:
                if i >= self.n_opened or (not self.open_model and i >= self.active_limit):
                    self._retire(c)
                elif now >= c.state_since_ns:
                    self._connect(c, now)
        if self.open_model and self.sending:
            self._issue_due(now)          # also drops requests that waited too long
        self._check_progress()

    def on_ready(self):
        """The epoll set is readable: serve every ready connection (level-triggered,
        so anything left over wakes us again)."""
        cdef int n = epoll_wait(self.epfd, self.events, MAX_EVENTS, 0)
        cdef int i
        cdef uint32_t ev
        cdef Conn* c
        for i in range(n):
            if self.events[i].data.u32 == TIMER_TOKEN:
                self.timer_armed_ns = NEVER_NS      # fired
                self._issue_due(monotonic_ns())
                if self.flows:
                    self._wake_thinkers(monotonic_ns())
                continue
            c = &self.conns[self.events[i].data.u32]
            ev = self.events[i].events
            if c.state == C_OPEN:
                if ev & (EPOLLIN | EPOLLERR | EPOLLHUP):
                    self._on_readable(c)
                if c.state == C_OPEN and (ev & EPOLLOUT) and c.want_write:
                    self._flush(c)
            elif c.state == C_CONNECTING:
                self._on_connect_ready(c, monotonic_ns())
        if self.open_model and self.sending and self.next_due_ns <= monotonic_ns():
            self._issue_due(monotonic_ns())     # awake anyway: saves a timer wake-up
        if self.flows and self.heap_len > 0 and self.heap_wake[0] <= monotonic_ns():
            self._wake_thinkers(monotonic_ns())
        self._check_progress()

    def snapshot(self):
        """Cumulative counters plus this interval's latency histogram (then reset).
        "flows": per-step counters (flow_snapshot) when the tables report steps."""
        latency = self.latency_us.to_sparse()
        uncorrected = self.latency_uncorrected_us.to_sparse() if self.open_model else None
        flows = None
        if self.flows:
            flows = self.flow_snapshot()
        elif self.report_steps:
            flows = self._static_flow_snapshot(uncorrected if self.open_model else latency)
        self.previous_max_us = self.latency_us.max_value
        self.latency_us.reset()
        if self.open_model:
            self.latency_uncorrected_us.reset()
        return {
            "completed": self.completed,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "errors": {ERROR_KINDS[k]: self.errors[k] for k in range(ERR_KINDS)},
            "statuses": _nonzero(self.status_counts, STATUS_SLOTS),
            "open_connections": self.open_conns,
            "connects": self.connects,
            "in_flight": self.in_flight_total,
            "latency": latency,
            "latency_uncorrected": uncorrected,
            "due": self.due_total,
            "dropped": self.dropped,
            "queued": self.queued,
            "flows": flows,
        }

    # ---- connections --------------------------------------------------------
    cdef void _set_state(self, Conn* c, int state) noexcept:
        """Every state change goes through here, so the counts stay true."""
        if c.state == C_OPEN:
            self.open_conns -= 1
        elif c.state == C_CONNECTING:
            self.connecting_conns -= 1
        if state == C_OPEN:
            self.open_conns += 1
        elif state == C_CONNECTING:
            self.connecting_conns += 1
        c.state = state

    cdef void _connect(self, Conn* c, int64_t now) noexcept:
        cdef int one = 1, r = 0
        cdef epoll_event ev
        framer_reset(&c.framer)
        c.in_flight = 0
        c.ring_head = 0
        c.unsent_bytes = 0
        c.write_pos = 0
        c.want_write = False
        c.response_bytes = 0
        c.lowat = 1
        cdef int host = c.index % self.n_hosts      # connections are VU-major: v * n_hosts + host
        c.fd = socket(self.host_families[host], SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
        if c.fd >= 0:
            setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
            r = connect(c.fd, <sockaddr*>&self.host_addrs[host], self.host_addr_lens[host])
        if c.fd < 0 or (r < 0 and errno != EINPROGRESS):
            if c.fd >= 0:
                close(c.fd)
                c.fd = -1
            self.errors[ERR_CONNECT] += 1
            if self.flows:
                self._set_state(c, C_IDLE)
                self._vu_abort(c.index // self.n_hosts, ERR_CONNECT, now)
            else:
                self._retry_later(c, now)
            return
        self._set_state(c, C_CONNECTING)
        c.state_since_ns = now
        ev.events = EPOLLOUT
        ev.data.u64 = 0
        ev.data.u32 = c.index
        epoll_ctl(self.epfd, EPOLL_CTL_ADD, c.fd, &ev)

    cdef void _on_connect_ready(self, Conn* c, int64_t now) noexcept:
        cdef int err = 0
        cdef socklen_t err_len = sizeof(err)
        cdef epoll_event ev
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &err_len)
        if err != 0:
            self._fail(c, ERR_CONNECT, now)
            return
        self._set_state(c, C_OPEN)
        self.connects += 1
        ev.events = EPOLLIN
        ev.data.u64 = 0
        ev.data.u32 = c.index
        epoll_ctl(self.epfd, EPOLL_CTL_MOD, c.fd, &ev)
        if self.flows:
            self._vu_resume(c.index // self.n_hosts, now)
        elif self.open_model:
            self._on_idle(c, now)
        elif self.sending:
            self._refill(c, now)

    cdef void _retry_later(self, Conn* c, int64_t now) noexcept:
        self._set_state(c, C_RETRY_WAIT)
        c.state_since_ns = now + self.retry_backoff_ns

    cdef void _close(self, Conn* c, bint requeue) noexcept:
        """Close the socket.  requeue: in-flight requests were never answered
        and go back to the quota (the peer said it would close, or they were
        sent behind a request that failed)."""
        if c.fd >= 0:
            close(c.fd)
            c.fd = -1
        self._set_state(c, C_IDLE)
        self.in_flight_total -= c.in_flight
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
        others are issued again; reconnect (unless ramped down)."""
        self.errors[kind] += 1
        if c.in_flight > 0:
            c.in_flight -= 1
            self.in_flight_total -= 1
        self._close(c, True)
        if self.flows:
            self._vu_abort(c.index // self.n_hosts, kind, now)
            return
        if self.stopped or (not self.open_model and c.index >= self.active_limit):
            return
        if kind == ERR_CONNECT:
            self._retry_later(c, now)
        else:
            self._connect(c, now)

    # ---- the request loop -----------------------------------------------------
    cdef void _on_readable(self, Conn* c) noexcept:
        cdef ssize_t n = recv(c.fd, self.read_buf, READ_BUF_BYTES, 0)
        cdef int64_t now = monotonic_ns()
        cdef Py_ssize_t pos = 0, r
        if n < 0:
            if errno == EAGAIN or errno == EWOULDBLOCK or errno == EINTR:
                return
            self._fail(c, ERR_READ, now)
            return
        if n == 0:
            if self.flows and c.in_flight == 0:
                self._close(c, False)            # reconnected when next needed
                return
            if frame_eof(&c.framer):
                if self.flows:
                    c.framer.keep_alive = False
                    self._flow_complete(c, now)
                    return
                self._on_response(c, now)        # close-delimited body ended
                self._close(c, True)
                self._connect(c, now)
            elif c.in_flight > 0:
                self._fail(c, ERR_CLOSED, now)   # closed before the response ended
            else:
                self._close(c, False)            # idle keep-alive connection closed
                self._connect(c, now)
            return
        self.bytes_in += n
        while pos < n:
            if c.in_flight == 0:
                self._fail(c, ERR_PARSE, now)    # bytes nobody asked for
                return
            r = frame_step(&c.framer, self.read_buf + pos, n - pos)
            if r < 0:
                self._fail(c, ERR_PARSE, now)
                return
            pos += r
            c.response_bytes += r
            if c.framer.complete:
                if c.response_bytes < self.min_response_bytes or self.min_response_bytes == 0:
                    self.min_response_bytes = c.response_bytes
                c.response_bytes = 0
                if self.flows:
                    self._flow_complete(c, now)
                    return
                self._on_response(c, now)
                if not c.framer.keep_alive:
                    # The peer closes after this response: unanswered requests
                    # are issued again on a new connection, not counted as errors.
                    self._close(c, True)
                    if not self.stopped:
                        self._connect(c, now)
                    return
        if self.open_model:
            if c.in_flight == 0:
                self._on_idle(c, now)
        else:
            self._refill(c, now)
            if self.lowat_reads and c.state == C_OPEN:
                self._set_lowat(c)

    cdef void _set_lowat(self, Conn* c) noexcept:
        """Ask the kernel not to wake us for this connection until the bytes
        still expected can all be there (SO_RCVLOWAT): the rest of the current
        response, plus with batch timing every other response in flight, each
        counted at the smallest response size seen so far.  nginx writes each
        pipelined response separately, so waking per arrival cost ~15 recv()
        and wake-ups per batch of 16, on both sides of the loopback.  A
        response smaller than any seen before can leave us short of the mark:
        sweep() notices and lowers it (_unstall).  One setsockopt() only when
        the mark changes, so a steady run makes none."""
        if c.in_flight == 0 or self.min_response_bytes == 0:
            return
        cdef int64_t want
        if c.framer.state == F_BODY_LENGTH and c.framer.remaining > 0:
            want = c.framer.remaining                    # exact
        else:
            want = self.min_response_bytes - c.response_bytes
            if want < 1:
                want = 1
        if self.batch_timing:
            want += (c.in_flight - 1) * self.min_response_bytes
        if want > LOWAT_MAX_BYTES:
            want = LOWAT_MAX_BYTES
        if want != c.lowat:
            c.lowat = <int32_t>want
            setsockopt(c.fd, SOL_SOCKET, SO_RCVLOWAT, &c.lowat, sizeof(c.lowat))

    cdef void _unstall(self, Conn* c) noexcept:
        """Bytes are waiting but fewer than the low-water mark (responses got
        smaller): drop the mark so that epoll reports them now."""
        cdef int pending = 0
        if ioctl(c.fd, FIONREAD, &pending) == 0 and pending > 0:
            c.lowat = 1
            setsockopt(c.fd, SOL_SOCKET, SO_RCVLOWAT, &c.lowat, sizeof(c.lowat))

    cdef void _on_response(self, Conn* c, int64_t now) noexcept:
        cdef int status = c.framer.status
        if self.open_model:
            record_value(self.latency_us, (now - c.intended_ns[c.ring_head]) // 1000)
            record_value(self.latency_uncorrected_us, (now - c.sent_ns[c.ring_head]) // 1000)
        else:
            record_value(self.latency_us, (now - c.sent_ns[c.ring_head]) // 1000)
        c.ring_head += 1
        if c.ring_head == self.depth:
            c.ring_head = 0
        c.in_flight -= 1
        self.in_flight_total -= 1
        self.completed += 1
        self.status_counts[status if 100 <= status <= 599 else 0] += 1

    cdef void _refill(self, Conn* c, int64_t now) noexcept:
        """Closed model.  When a connection has nothing in flight, commit `depth`
        requests and write them in one send().  With pipelining this sends
        batches of D, as wrk's pipelining does: topping up after every read
        measured ~40% more kernel CPU per request (many small writes)."""
        if not self.sending or c.in_flight > 0:
            return
        if c.index >= self.active_limit:
            self._retire(c)
            return
        cdef int32_t want = self.depth, slot, k
        if self.counted:
            if want > self.quota_left:
                want = <int32_t>self.quota_left
            self.quota_left -= want
        if want <= 0:
            return
        slot = c.ring_head
        for k in range(want):
            if slot >= self.depth:
                slot -= self.depth
            c.sent_ns[slot] = now
            slot += 1
        c.in_flight += want
        self.in_flight_total += want
        c.unsent_bytes += want * self.request_len
        self._flush(c)

    cdef void _flush(self, Conn* c) noexcept:
        """Write what is committed and unsent: from the repeated request (plain
        runs) or the connection's rendered request (flows)."""
        cdef ssize_t w
        cdef epoll_event ev
        cdef const char* data
        while c.unsent_bytes > 0:
            data = c.out + c.out_pos if self.flows else self.request_buf + c.write_pos
            w = send(c.fd, data, <size_t>c.unsent_bytes, MSG_NOSIGNAL)
            if w > 0:
                self.bytes_out += w
                c.unsent_bytes -= w
                if self.flows:
                    c.out_pos += w
                else:
                    c.write_pos = <int32_t>((c.write_pos + w) % self.request_len)
            elif w < 0 and errno == EINTR:
                continue
            elif w < 0 and (errno == EAGAIN or errno == EWOULDBLOCK):
                if not c.want_write:
                    c.want_write = True
                    ev.events = EPOLLIN | EPOLLOUT
                    ev.data.u64 = 0
                    ev.data.u32 = c.index
                    epoll_ctl(self.epfd, EPOLL_CTL_MOD, c.fd, &ev)
                return
            else:
                self._fail(c, ERR_WRITE, monotonic_ns())
                return
        if c.want_write:
            c.want_write = False
            ev.events = EPOLLIN
            ev.data.u64 = 0
            ev.data.u32 = c.index
            epoll_ctl(self.epfd, EPOLL_CTL_MOD, c.fd, &ev)

    # ---- the open model ---------------------------------------------------------
    cdef int64_t _schedule_instant(self, int64_t index, int* cursor) noexcept:
        """Absolute intended instant of a global request index (NEVER_NS past the end)."""
        cdef int64_t offset = schedule_time_of(self.segments, self.n_segments, <double>index, cursor)
        if offset == NEVER_NS:
            return NEVER_NS
        return self.start_ns + (offset + self.grid_ns - 1) // self.grid_ns * self.grid_ns

    cdef void _issue_due(self, int64_t now) noexcept:
        """Move every request whose instant has come into the queue, send what
        free connections allow, and arm the timer for the next one."""
        if not self.sending:
            return
        while self.next_due_ns <= now:
            if self.queued == 0:
                self.queue_head = self.next_index
                self.queue_head_ns = self.next_due_ns
            self.queued += 1
            self.due_total += 1
            self.next_index += self.index_step
            self.next_due_ns = self._schedule_instant(self.next_index, &self.due_cursor)
        self._drain_queue(now)
        self._arm_timer(self._next_timer_ns())

    cdef void _advance_head(self) noexcept:
        self.queued -= 1
        self.queue_head += self.index_step
        if self.queued > 0:
            self.queue_head_ns = self._schedule_instant(self.queue_head, &self.head_cursor)

    cdef void _drain_queue(self, int64_t now) noexcept:
        cdef Conn* c
        cdef int64_t wanted, intended
        # A request that waited longer than the timeout is dropped, loudly.
        while self.queued > 0 and now - self.queue_head_ns > self.timeout_ns:
            self.dropped += 1
            self._advance_head()
        if self.flows:
            # Each due arrival starts a scenario iteration on a free VU.
            while self.queued > 0 and self.free_top > 0:
                self.free_top -= 1
                intended = self.queue_head_ns
                self._advance_head()
                self._vu_begin(self.free_stack[self.free_top], intended, now)
            return
        while self.queued > 0 and self.free_top > 0:
            self.free_top -= 1
            c = &self.conns[self.free_stack[self.free_top]]
            c.is_free = False
            if c.state != C_OPEN or c.in_flight != 0:
                continue                    # closed or busy since it was pushed
            self._send_open(c, self.queue_head_ns, now)
            self._advance_head()
        # Still waiting: open connections on demand, up to the maximum.
        wanted = self.queued - self.connecting_conns
        while wanted > 0 and self.n_opened < self.active_limit:
            self._connect(&self.conns[self.n_opened], now)
            self.n_opened += 1
            wanted -= 1

    cdef void _on_idle(self, Conn* c, int64_t now) noexcept:
        """Open model: a connection has nothing in flight; it takes the oldest
        waiting request (the free stack is LIFO, so it is popped first)."""
        if not c.is_free:
            c.is_free = True
            self.free_stack[self.free_top] = c.index
            self.free_top += 1
        if self.sending and self.queued > 0:
            self._drain_queue(now)

    cdef void _send_open(self, Conn* c, int64_t intended, int64_t now) noexcept:
        cdef int32_t slot = c.ring_head + c.in_flight
        if slot >= self.depth:
            slot -= self.depth
        c.sent_ns[slot] = now
        c.intended_ns[slot] = intended
        c.in_flight += 1
        self.in_flight_total += 1
        c.unsent_bytes += self.request_len
        self._flush(c)

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

    cdef void _check_progress(self) noexcept:
        """Tell Python about the rare transitions (one call each per run)."""
        cdef uint32_t i
        if not self.settled_signalled:
            for i in range(self.n_opened):
                if self.conns[i].state == C_CONNECTING or self.conns[i].state == C_IDLE:
                    return
            self.settled_signalled = True
            self._signal("settled")
        if self.flows and self.sending and not self.done_signalled and self.vus_done == self.n_vus:
            self.done_signalled = True      # every VU's data ran out (on_exhausted: stop)
            self._signal("done")
        if (self.counted and self.sending and not self.done_signalled
                and self.quota_left == 0 and self.in_flight_total == 0):
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
        self.n_vus = self.conn_count // self.n_hosts
        self.n_vars = len(tables.var_names)
        self._compile_scenarios(tables.scenarios)
        self._compile_feeders(tables.feeders, worker)
        self._alloc_vus()
        self.user_base = user_base
        self.rng = seed or 0x9E3779B97F4A7C15
        self.n_opened = 0
        self.active_limit = self.n_vus
        if self.timer_fd < 0:
            self._open_timer()

    cdef void _compile_scenarios(self, list scenarios) except *:
        cdef int i, j
        cdef double upto = 0.0
        self.n_scenarios = len(scenarios)
        self.scenarios = <Scenario*>calloc(self.n_scenarios, sizeof(Scenario))
        self.scenario_counts = <int64_t*>calloc(self.n_scenarios * SCN_COUNTERS, sizeof(int64_t))
        for i, (share, step_ids, feeder_ids) in enumerate(scenarios):
            upto += share
            self.scenarios[i].weight_upto = upto
            self.scenarios[i].n_steps = len(step_ids)
            self.scenarios[i].steps = <int*>calloc(max(len(step_ids), 1), sizeof(int))
            for j, sid in enumerate(step_ids):
                self.scenarios[i].steps[j] = sid
            self.scenarios[i].n_feeders = len(feeder_ids)
            self.scenarios[i].feeders = <int*>calloc(max(len(feeder_ids), 1), sizeof(int))
            for j, fid in enumerate(feeder_ids):
                self.scenarios[i].feeders[j] = fid
        self.scenarios[self.n_scenarios - 1].weight_upto = 1.0

    cdef void _compile_feeders(self, list feeders, tuple worker) except *:
        """Data rows as C string tables.  worker: (index, count), for unique
        feeders (rows index, index+count, ...)."""
        cdef int i, r, col
        cdef Feeder* f
        keep = self.keepalive
        self.n_feeders = len(feeders)
        self.feeders = <Feeder*>calloc(max(self.n_feeders, 1), sizeof(Feeder))
        for i, (rows, order, stop_when_done) in enumerate(feeders):
            f = &self.feeders[i]
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
        cdef int slots_vars = max(self.n_vars, 1)
        self.vus = <VU*>calloc(self.n_vus, sizeof(VU))
        for i in range(self.n_vus):
            self.vus[i].rows = <int64_t*>calloc(max(self.n_feeders, 1), sizeof(int64_t))
            self.vus[i].var_values = <char**>calloc(slots_vars, sizeof(char*))
            self.vus[i].var_lengths = <int32_t*>calloc(slots_vars, sizeof(int32_t))
            self.vus[i].var_caps = <int32_t*>calloc(slots_vars, sizeof(int32_t))
        self.heap_wake = <int64_t*>calloc(self.n_vus, sizeof(int64_t))
        self.heap_vu = <uint32_t*>calloc(self.n_vus, sizeof(uint32_t))
        if not (self.vus and self.heap_wake and self.heap_vu):
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
            else:
                t.parts[i].kind, t.parts[i].a, t.parts[i].b, t.parts[i].escape = part

    cdef void* _compile_regex(self, bytes pattern) except NULL:
        cdef regex_t* rx = <regex_t*>malloc(sizeof(regex_t))
        if regcomp(rx, pattern, REG_EXTENDED) != 0:
            free(rx)
            raise ValueError(f"regular expression {pattern!r} does not compile (POSIX extended syntax)")
        return rx

    def flow_snapshot(self):
        """Per step: (responses, checks, check failures, errors by kind, statuses, latency),
        per scenario: (started, completed, aborted); step latencies then reset.
        On the fast path the one step's counters are the totals, and its latency
        is the interval's (reset by snapshot(), not here)."""
        cdef int i, k
        if not self.flows:
            return self._static_flow_snapshot(
                (self.latency_uncorrected_us if self.open_model else self.latency_us).to_sparse())
        steps = []
        for i in range(self.n_steps):
            base = self.step_counts + i * FLOW_COUNTERS
            hist = self.step_latency[i]
            sparse = hist.to_sparse()
            hist.reset_counts()
            steps.append((base[SC_RESPONSES], base[SC_CHECKS], base[SC_CHECK_FAILURES],
                          [base[SC_ERRORS + 1 + k] for k in range(ERR_KINDS)],
                          _nonzero(self.step_statuses + i * STATUS_SLOTS, STATUS_SLOTS), sparse))
        scenarios = [tuple(self.scenario_counts[i * SCN_COUNTERS + k] for k in range(SCN_COUNTERS))
                     for i in range(self.n_scenarios)]
        return {"steps": steps, "scenarios": scenarios, "vus_done": self.vus_done}

    cdef dict _static_flow_snapshot(self, tuple latency):
        """flow_snapshot() of the fast path: one step, one scenario, from the totals.
        An iteration is one request: completed = responses, aborted = transport
        errors (each ends an iteration in flows too), started = both plus the
        requests in flight."""
        cdef int64_t errors = 0
        cdef int k
        for k in range(ERR_KINDS):
            errors += self.errors[k]
        step = (self.completed, 0, 0, [self.errors[k] for k in range(ERR_KINDS)],
                _nonzero(self.status_counts, STATUS_SLOTS), latency)
        scenario = (self.completed + errors + self.in_flight_total, self.completed, errors)
        return {"steps": [step], "scenarios": [scenario], "vus_done": 0}

    # ---- flows: the VU state machine ------------------------------------------------
    cdef uint64_t _rand(self) noexcept:
        # xorshift64*: fast, good enough for scenario picks, think times and data.
        self.rng ^= self.rng >> 12
        self.rng ^= self.rng << 25
        self.rng ^= self.rng >> 27
        return self.rng * <uint64_t>2685821657736338717

    cdef void _vu_begin(self, uint32_t v, int64_t intended, int64_t now) noexcept:
        """Start an iteration: scenario by weight, this iteration's data rows.
        A scenario whose data ran out (on_exhausted: stop) is skipped from then
        on; when none is left, the VU is done."""
        cdef VU* vu = &self.vus[v]
        cdef double pick
        cdef int s, k, tries
        cdef Feeder* f
        cdef Scenario* scn
        for tries in range(4 * self.n_scenarios + 4):
            pick = (self._rand() >> 11) * (1.0 / 9007199254740992.0)
            s = 0
            while s < self.n_scenarios - 1 and pick >= self.scenarios[s].weight_upto:
                s += 1
            scn = &self.scenarios[s]
            if scn.disabled:
                s = self._first_enabled_scenario()
                if s < 0:
                    break
                scn = &self.scenarios[s]
            for k in range(scn.n_feeders):
                f = &self.feeders[scn.feeders[k]]
                if f.order != ORDER_RANDOM and f.next >= f.n_rows:
                    if f.stop_when_done:
                        scn.disabled = True
                        break
                    f.next %= f.n_rows
            if scn.disabled:
                continue
            for k in range(scn.n_feeders):
                f = &self.feeders[scn.feeders[k]]
                if f.order == ORDER_RANDOM:
                    vu.rows[scn.feeders[k]] = <int64_t>(self._rand() % <uint64_t>f.n_rows)
                else:
                    vu.rows[scn.feeders[k]] = f.next
                    f.next += f.stride
            vu.scenario = s
            vu.pos = 0
            vu.iteration += 1
            vu.intended_ns = intended
            self.scenario_counts[s * SCN_COUNTERS + SCN_STARTED] += 1
            self._vu_send(v, now)
            return
        vu.state = VU_DONE
        self.vus_done += 1

    cdef int _first_enabled_scenario(self) noexcept:
        """A scenario still running, picked by weight among those left (-1: none)."""
        cdef double total = 0.0, previous = 0.0, pick
        cdef int s
        for s in range(self.n_scenarios):
            if not self.scenarios[s].disabled:
                total += self.scenarios[s].weight_upto - previous
            previous = self.scenarios[s].weight_upto
        if total <= 0:
            return -1
        pick = (self._rand() >> 11) * (1.0 / 9007199254740992.0) * total
        previous = 0.0
        for s in range(self.n_scenarios):
            if not self.scenarios[s].disabled:
                pick -= self.scenarios[s].weight_upto - previous
                if pick < 0:
                    return s
            previous = self.scenarios[s].weight_upto
        for s in range(self.n_scenarios - 1, -1, -1):
            if not self.scenarios[s].disabled:
                return s
        return -1

    cdef void _vu_send(self, uint32_t v, int64_t now) noexcept:
        cdef VU* vu = &self.vus[v]
        cdef Step* st = &self.steps[self.scenarios[vu.scenario].steps[vu.pos]]
        cdef Conn* c = &self.conns[v * self.n_hosts + st.host]
        vu.state = VU_BUSY
        if c.state == C_IDLE:
            self._connect(c, now)           # the request goes out once connected
            return
        if c.state != C_OPEN:
            return
        if not self._render(c, st, vu, v):
            self._vu_abort(v, ERR_WRITE, now)
            return
        framer_reset(&c.framer)
        c.framer.head_request = st.head_request
        c.framer.capture = st.capture
        c.framer.cap_len = 0
        c.sent_ns[c.ring_head] = now
        c.intended_ns[c.ring_head] = vu.intended_ns if vu.intended_ns else now
        c.in_flight = 1
        self.in_flight_total += 1
        self._flush(c)

    cdef bint _render(self, Conn* c, Step* st, VU* vu, uint32_t v) noexcept:
        """The step's request bytes into c.out, ready to send."""
        cdef int64_t n = self._render_into(st, vu, v, &c.out, &c.out_cap)
        if n < 0:
            return False
        c.unsent_bytes = n
        c.out_pos = 0
        return True

    cdef int64_t _render_into(self, Step* st, VU* vu, uint32_t v, char** buf, int64_t* cap) noexcept:
        """Head template, Content-Length, blank line, body template into buf[0];
        returns the length (-1: out of memory).  Content-Length is added when the
        body is not empty or the method carries one, unless the user's headers
        gave it.  vu may be NULL for an all-literal step (the fast path)."""
        cdef int64_t body_len = self._render_template(&st.body, vu, v, &self.scratch, &self.scratch_cap, 0)
        cdef int64_t at = self._render_template(&st.head, vu, v, buf, cap, 0)
        if body_len < 0 or at < 0:
            return -1
        if at + body_len + 64 > cap[0]:
            cap[0] = at + body_len + 64
            buf[0] = <char*>realloc(buf[0], cap[0])
            if buf[0] == NULL:
                cap[0] = 0
                return -1
        if not st.length_given and (st.send_length or body_len):
            at = append_content_length(buf[0], at, body_len)
        buf[0][at] = b'\r'
        buf[0][at + 1] = b'\n'
        at += 2
        if body_len:
            memcpy(buf[0] + at, self.scratch, body_len)
            at += body_len
        return at

    cdef int64_t _render_template(self, Template* t, VU* vu, uint32_t v, char** buf, int64_t* cap,
                                  int64_t at) noexcept:
        cdef int i, k
        cdef TemplatePart* p
        cdef const char* src
        cdef int64_t n, value, lo, span
        cdef char tmp[40]
        cdef uint64_t r
        cdef Feeder* f
        for i in range(t.n_parts):
            p = &t.parts[i]
            src = tmp
            if p.kind == PART_LITERAL:
                src, n = p.literal, p.literal_len
            elif p.kind == PART_DATA:
                f = &self.feeders[p.a]
                src = f.values[vu.rows[p.a] * f.n_cols + p.b]
                n = f.lengths[vu.rows[p.a] * f.n_cols + p.b]
            elif p.kind == PART_VAR:
                src, n = vu.var_values[p.a], vu.var_lengths[p.a]
                if src == NULL:
                    n = 0
            elif p.kind == PART_RANDOM_WORD:
                src = WORDS[self._rand() % 32]
                n = 0
                while src[n] != 0:
                    n += 1
            elif p.kind == PART_UUID:
                r = self._rand()
                for k in range(36):
                    if k == 8 or k == 13 or k == 18 or k == 23:
                        tmp[k] = b'-'
                        continue
                    if k % 16 == 0:
                        r = self._rand()
                    tmp[k] = HEX[r & 15]
                    r >>= 4
                tmp[14] = b'4'                       # version 4
                tmp[19] = HEX[8 + (self._rand() & 3)]  # variant 10xx
                n = 36
            else:
                if p.kind == PART_RANDOM_INT:
                    lo, span = p.a, <int64_t>p.b - p.a + 1
                    value = lo + <int64_t>(self._rand() % <uint64_t>span)
                elif p.kind == PART_ITERATION:
                    value = vu.iteration
                else:   # PART_USER
                    value = self.user_base + v + 1
                n = 0
                if value < 0:
                    tmp[0] = b'-'
                    value = -value
                    n = 1
                k = 39
                while True:
                    tmp[k] = <char>(48 + value % 10)
                    value //= 10
                    if value == 0:
                        break
                    k -= 1
                memcpy(tmp + n, tmp + k, 40 - k)
                n += 40 - k
            if p.escape != ESCAPE_RAW and p.kind != PART_LITERAL:
                at = self._append_escaped(buf, cap, at, src, n, p.escape)
                if at < 0:
                    return -1
                continue
            if at + n + 1 > cap[0]:
                cap[0] = max(at + n + 1, 512, cap[0] * 2)
                buf[0] = <char*>realloc(buf[0], cap[0])
                if buf[0] == NULL:
                    cap[0] = 0
                    return -1
            memcpy(buf[0] + at, src, n)
            at += n
        return at

    cdef int64_t _append_escaped(self, char** buf, int64_t* cap, int64_t at, const char* src, int64_t n,
                                 int escape) noexcept:
        """A slot's value escaped for where it lands (at most 6 bytes per input byte)."""
        cdef int64_t i
        cdef unsigned char ch
        if at + 6 * n + 1 > cap[0]:
            cap[0] = max(at + 6 * n + 1, 512, cap[0] * 2)
            buf[0] = <char*>realloc(buf[0], cap[0])
            if buf[0] == NULL:
                cap[0] = 0
                return -1
        for i in range(n):
            ch = <unsigned char>src[i]
            if escape == ESCAPE_URL:
                if (b'a' <= ch <= b'z' or b'A' <= ch <= b'Z' or b'0' <= ch <= b'9' or ch == b'-' or ch == b'.'
                        or ch == b'_' or ch == b'~'):
                    buf[0][at] = <char>ch
                    at += 1
                else:
                    buf[0][at] = b'%'
                    buf[0][at + 1] = HEX[ch >> 4]
                    buf[0][at + 2] = HEX[ch & 15]
                    at += 3
            elif escape == ESCAPE_HEADER:
                if ch != b'\r' and ch != b'\n':
                    buf[0][at] = <char>ch
                    at += 1
            else:
                if ch == b'"' or ch == b'\\':
                    buf[0][at] = b'\\'
                    buf[0][at + 1] = <char>ch
                    at += 2
                elif ch < 0x20:
                    buf[0][at] = b'\\'
                    buf[0][at + 1] = b'u'
                    buf[0][at + 2] = b'0'
                    buf[0][at + 3] = b'0'
                    buf[0][at + 4] = HEX[ch >> 4]
                    buf[0][at + 5] = HEX[ch & 15]
                    at += 6
                else:
                    buf[0][at] = <char>ch
                    at += 1
        return at

    cdef void _vu_after_response(self, Conn* c, int64_t latency_us, int64_t now, bint defer) noexcept:
        """Account the step, run its checks and extractions, then think or go on."""
        cdef uint32_t v = c.index // self.n_hosts
        cdef VU* vu = &self.vus[v]
        cdef int sid = self.scenarios[vu.scenario].steps[vu.pos]
        cdef Step* st = &self.steps[sid]
        cdef int64_t* counts = self.step_counts + sid * FLOW_COUNTERS
        cdef int status = c.framer.status
        cdef Framer* f = &c.framer
        cdef const char* body = f.cap_buf + f.cap_head_len if f.cap_buf != NULL else NULL
        cdef int64_t body_len = f.cap_len - f.cap_head_len if f.cap_buf != NULL else 0
        cdef int64_t start = 0, length = 0, think
        cdef int k, checks = 0, failures = 0
        cdef Extract* ex
        cdef regmatch_t groups[MAX_REGEX_GROUPS]
        cdef bint found
        cdef char* grown
        record_value(<Histogram>self.step_latency[sid], latency_us)
        counts[SC_RESPONSES] += 1
        self.step_statuses[sid * STATUS_SLOTS + (status if STATUS_MIN <= status <= STATUS_MAX else 0)] += 1
        if st.status_ok != NULL:
            checks += 1
            failures += not st.status_ok[status if 100 <= status <= 599 else 0]
        if st.body_contains != NULL:
            checks += 1
            failures += body == NULL or memmem(body, body_len, st.body_contains, st.body_contains_len) == NULL
        if st.body_regex != NULL:
            checks += 1
            failures += body == NULL or regexec(<regex_t*>st.body_regex, body, 0, NULL, 0) != 0
        if st.max_latency_us:
            checks += 1
            failures += latency_us > st.max_latency_us
        for k in range(st.n_extracts):
            ex = &st.extracts[k]
            found = False
            if ex.kind == EXTRACT_JSON and body != NULL:
                found = json_find(body, body_len, ex.segments, ex.n_segments, &start, &length)
                start += f.cap_head_len
            elif ex.kind == EXTRACT_REGEX and body != NULL:
                found = regexec(<regex_t*>ex.regex, body, MAX_REGEX_GROUPS, groups, 0) == 0 and \
                    ex.group < MAX_REGEX_GROUPS and groups[ex.group].rm_so >= 0
                if found:
                    start = f.cap_head_len + groups[ex.group].rm_so
                    length = groups[ex.group].rm_eo - groups[ex.group].rm_so
            elif ex.kind == EXTRACT_HEADER and f.cap_buf != NULL:
                found = header_value(f.cap_buf, f.cap_head_len, ex.name, ex.name_len, &start, &length)
            checks += 1
            vu.var_lengths[ex.var] = 0
            if not found:
                failures += 1
                continue
            if length > vu.var_caps[ex.var]:        # grows a few times per VU, then never
                grown = <char*>realloc(vu.var_values[ex.var], length)
                if grown == NULL:
                    continue
                vu.var_values[ex.var] = grown
                vu.var_caps[ex.var] = <int32_t>length
            if length > 0:
                memcpy(vu.var_values[ex.var], f.cap_buf + start, length)
            vu.var_lengths[ex.var] = <int32_t>length
        counts[SC_CHECKS] += checks
        counts[SC_CHECK_FAILURES] += failures
        f.cap_len = 0
        think = 0
        if st.think_kind == THINK_CONSTANT:
            think = st.think_a_ns
        elif st.think_kind == THINK_UNIFORM:
            think = st.think_a_ns + <int64_t>(self._rand() % <uint64_t>(st.think_b_ns - st.think_a_ns + 1))
        elif st.think_kind == THINK_EXPONENTIAL:
            think = <int64_t>(-st.think_a_ns * log(1.0 - (self._rand() >> 11) * (1.0 / 9007199254740992.0)))
        vu.intended_ns = 0
        if defer and think == 0:
            think = 1                       # the connection closes first: go on from the timer
        if think > 0:
            vu.state = VU_THINKING
            self._heap_push(v, now + think)
        else:
            self._vu_next(v, now)

    cdef void _vu_next(self, uint32_t v, int64_t now) noexcept:
        cdef VU* vu = &self.vus[v]
        if vu.aborted:
            vu.aborted = False
            self._vu_end_iteration(v, now)
            return
        vu.pos += 1
        if vu.pos >= self.scenarios[vu.scenario].n_steps:
            self.scenario_counts[vu.scenario * SCN_COUNTERS + SCN_COMPLETED] += 1
            self._vu_end_iteration(v, now)
        elif self.sending:
            self._vu_send(v, now)

    cdef void _vu_end_iteration(self, uint32_t v, int64_t now) noexcept:
        if not self.sending:
            return
        if self.open_model:
            self.vus[v].state = VU_IDLE
            self.free_stack[self.free_top] = v
            self.free_top += 1
            if self.queued > 0:
                self._drain_queue(now)
        elif v >= self.active_limit:
            self.vus[v].state = VU_IDLE     # ramped down: parked until wanted again
        else:
            self._vu_begin(v, 0, now)

    cdef void _vu_abort(self, uint32_t v, int kind, int64_t now) noexcept:
        """A transport error ends the iteration (later steps may need what this
        one would have extracted); the VU starts over after a short pause."""
        cdef VU* vu = &self.vus[v]
        cdef int sid
        if vu.state == VU_DONE or vu.state == VU_IDLE:
            return
        sid = self.scenarios[vu.scenario].steps[vu.pos]
        self.step_counts[sid * FLOW_COUNTERS + SC_ERRORS] += 1
        self.step_counts[sid * FLOW_COUNTERS + SC_ERRORS + 1 + kind] += 1
        self.scenario_counts[vu.scenario * SCN_COUNTERS + SCN_ABORTED] += 1
        vu.aborted = True                   # the next wake ends the iteration
        vu.state = VU_THINKING
        self._heap_push(v, now + (self.retry_backoff_ns if kind == ERR_CONNECT else 0))

    # ---- flows: the think heap -----------------------------------------------------------
    cdef void _heap_push(self, uint32_t v, int64_t wake_ns) noexcept:
        cdef uint32_t i = self.heap_len, parent
        self.heap_len += 1
        while i > 0:
            parent = (i - 1) // 2
            if self.heap_wake[parent] <= wake_ns:
                break
            self.heap_wake[i] = self.heap_wake[parent]
            self.heap_vu[i] = self.heap_vu[parent]
            i = parent
        self.heap_wake[i] = wake_ns
        self.heap_vu[i] = v
        self._arm_timer(self._next_timer_ns())

    cdef void _wake_thinkers(self, int64_t now) noexcept:
        cdef uint32_t v, i, child, last_vu
        cdef int64_t last_wake
        while self.heap_len > 0 and self.heap_wake[0] <= now and self.sending:
            v = self.heap_vu[0]
            self.heap_len -= 1
            last_wake, last_vu = self.heap_wake[self.heap_len], self.heap_vu[self.heap_len]
            i = 0
            while True:
                child = 2 * i + 1
                if child >= self.heap_len:
                    break
                if child + 1 < self.heap_len and self.heap_wake[child + 1] < self.heap_wake[child]:
                    child += 1
                if self.heap_wake[child] >= last_wake:
                    break
                self.heap_wake[i] = self.heap_wake[child]
                self.heap_vu[i] = self.heap_vu[child]
                i = child
            self.heap_wake[i] = last_wake
            self.heap_vu[i] = last_vu
            self._vu_next(v, now)
        self._arm_timer(self._next_timer_ns())

    cdef int64_t _next_timer_ns(self) noexcept:
        cdef int64_t when = self.next_due_ns if self.open_model else NEVER_NS
        if self.flows and self.heap_len > 0 and self.heap_wake[0] < when:
            when = self.heap_wake[0]
        return when

    cdef void _flow_complete(self, Conn* c, int64_t now) noexcept:
        """A flow step's response ended: record it, then the VU goes on."""
        cdef int status = c.framer.status
        cdef int64_t latency_us = (now - c.sent_ns[c.ring_head]) // 1000
        record_value(self.latency_us, (now - c.intended_ns[c.ring_head]) // 1000)
        if self.open_model:
            record_value(self.latency_uncorrected_us, latency_us)
        c.in_flight = 0
        self.in_flight_total -= 1
        self.completed += 1
        self.status_counts[status if 100 <= status <= 599 else 0] += 1
        cdef bint closing = not c.framer.keep_alive
        self._vu_after_response(c, latency_us, now, closing)
        if closing:
            self._close(c, False)           # reconnected when the VU next needs this host

    cdef void _vu_resume(self, uint32_t v, int64_t now) noexcept:
        """A VU's connection just opened: send the step that waited for it."""
        cdef VU* vu = &self.vus[v]
        if vu.state == VU_BUSY and self.sending:
            self._vu_send(v, now)

    cdef void _open_timer(self) except *:
        cdef epoll_event ev
        self.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if self.timer_fd < 0:
            raise OSError(errno, "timerfd_create failed")
        ev.events = EPOLLIN | EPOLLET      # settime() resets the count: no read() needed
        ev.data.u64 = 0
        ev.data.u32 = TIMER_TOKEN
        epoll_ctl(self.epfd, EPOLL_CTL_ADD, self.timer_fd, &ev)

    cdef void _free_flows(self) noexcept:
        cdef int i, j
        cdef uint32_t v
        if self.steps != NULL:
            for i in range(self.n_steps):
                free(self.steps[i].head.parts)
                free(self.steps[i].body.parts)
                if self.steps[i].body_regex != NULL:
                    regfree(<regex_t*>self.steps[i].body_regex)
                    free(self.steps[i].body_regex)
                for j in range(self.steps[i].n_extracts):
                    if self.steps[i].extracts[j].regex != NULL:
                        regfree(<regex_t*>self.steps[i].extracts[j].regex)
                        free(self.steps[i].extracts[j].regex)
                    free(self.steps[i].extracts[j].segments)
                free(self.steps[i].extracts)
        if self.scenarios != NULL:
            for i in range(self.n_scenarios):
                free(self.scenarios[i].steps)
                free(self.scenarios[i].feeders)
        if self.feeders != NULL:
            for i in range(self.n_feeders):
                free(self.feeders[i].values)
                free(self.feeders[i].lengths)
        if self.vus != NULL:
            for v in range(self.n_vus):
                for j in range(self.n_vars):
                    free(self.vus[v].var_values[j])
                free(self.vus[v].var_values)
                free(self.vus[v].var_lengths)
                free(self.vus[v].var_caps)
                free(self.vus[v].rows)
        free(self.steps); free(self.scenarios); free(self.feeders); free(self.vus)
        free(self.heap_wake); free(self.heap_vu); free(self.scratch)
        free(self.step_counts); free(self.step_statuses); free(self.scenario_counts)
        free(self.host_addrs); free(self.host_addr_lens); free(self.host_families)



cdef dict _nonzero(int64_t* counts, int n):
    """{index: count} of the non-zero counters (status slots)."""
    cdef int i
    return {i: counts[i] for i in range(n) if counts[i]}


cdef class ResponseFramer:
    """The engine's framing, for tests and benchmarks: feed bytes, get the
    status of each response that ended."""
    cdef Framer framer

    def __cinit__(self, bint head_request=False):
        framer_reset(&self.framer)
        self.framer.head_request = head_request

    def __dealloc__(self):
        framer_free(&self.framer)

    def feed(self, bytes data):
        """Frame `data`; returns [(status, keep_alive), ...] for responses that ended.
        Raises ValueError for a malformed response."""
        cdef const char* p = PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data), pos = 0, r
        out = []
        while pos < n:
            r = frame_step(&self.framer, p + pos, n - pos)
            if r < 0:
                raise ValueError("malformed HTTP response")
            pos += r
            if self.framer.complete:
                out.append((self.framer.status, bool(self.framer.keep_alive)))
        return out

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
