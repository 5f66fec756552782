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
from libc.stdint cimport int32_t, int64_t, uint32_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from surge.core._histogram cimport Histogram, record_value
from surge.core.includes.sys cimport *

include "framing.pxi"
include "schedule.pxi"

DEF READ_BUF_BYTES = 65536
DEF MAX_EVENTS = 512
DEF TIMER_TOKEN = 0xFFFFFFFF      # epoll data of the schedule's timerfd

ERROR_KINDS = ("connect", "read", "write", "timeout", "parse", "closed")


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

    def __cinit__(self, int family, bytes sockaddr, bytes request, uint32_t connections,
                  int32_t depth, int64_t quota, int64_t timeout_ns, bint head_request,
                  object on_event):
        if connections < 1 or depth < 1:
            raise ValueError("connections and depth must be >= 1")
        if len(sockaddr) > sizeof(sockaddr_storage):
            raise ValueError("socket address too long")
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            raise OSError(errno, "epoll_create1 failed")
        self.family = family
        memset(&self.addr, 0, sizeof(sockaddr_storage))
        memcpy(&self.addr, PyBytes_AS_STRING(sockaddr), len(sockaddr))
        self.addr_len = <socklen_t>len(sockaddr)
        self.request_len = PyBytes_GET_SIZE(request)
        if self.request_len == 0:
            raise ValueError("empty request")
        # depth+1 copies: any run of <= depth requests starting at any offset
        # within the first copy is contiguous, so one send() covers it.
        self.request_buf = <char*>malloc(self.request_len * (depth + 1))
        cdef int32_t k
        for k in range(depth + 1):
            memcpy(self.request_buf + k * self.request_len, PyBytes_AS_STRING(request), self.request_len)
        self.depth = depth
        self.conn_count = connections
        self.conns = <Conn*>calloc(connections, sizeof(Conn))
        self.sent_ns = <int64_t*>calloc(<size_t>connections * depth, sizeof(int64_t))
        self.intended_ns = <int64_t*>calloc(<size_t>connections * depth, sizeof(int64_t))
        self.free_stack = <uint32_t*>calloc(connections, sizeof(uint32_t))
        self.read_buf = <char*>malloc(READ_BUF_BYTES)
        self.events = <epoll_event*>calloc(MAX_EVENTS, sizeof(epoll_event))
        if not (self.request_buf and self.conns and self.sent_ns and self.intended_ns and self.free_stack
                and self.read_buf and self.events):
            raise MemoryError()
        cdef uint32_t i
        for i in range(connections):
            self.conns[i].fd = -1
            self.conns[i].index = i
            self.conns[i].sent_ns = self.sent_ns + <size_t>i * depth
            self.conns[i].intended_ns = self.intended_ns + <size_t>i * depth
            framer_reset(&self.conns[i].framer)
            self.conns[i].framer.head_request = head_request
        self.head_request = head_request
        self.counted = quota >= 0
        self.quota_left = quota if quota >= 0 else 0
        self.timeout_ns = timeout_ns
        self.retry_backoff_ns = 50_000_000
        self.on_event = on_event
        self.latency_us = Histogram()
        self.latency_uncorrected_us = Histogram()
        self.active_limit = connections
        self.n_opened = connections
        self.timer_fd = -1
        self.next_due_ns = NEVER_NS

    def __dealloc__(self):
        cdef uint32_t i
        if self.conns != NULL:
            for i in range(self.conn_count):
                if self.conns[i].fd >= 0:
                    close(self.conns[i].fd)
                framer_free(&self.conns[i].framer)
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
        self.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if self.timer_fd < 0:
            raise OSError(errno, "timerfd_create failed")
        cdef epoll_event ev
        ev.events = EPOLLIN | EPOLLET      # settime() resets the count: no read() needed
        ev.data.u64 = 0
        ev.data.u32 = TIMER_TOKEN
        epoll_ctl(self.epfd, EPOLL_CTL_ADD, self.timer_fd, &ev)

    def connect_all(self):
        """Open the first connections (closed: the active ones; open: the initial
        pool); "settled" fires when each has connected or failed once."""
        cdef int64_t now = monotonic_ns()
        cdef uint32_t i
        for i in range(self.n_opened):
            self._connect(&self.conns[i], now)
        self._check_progress()

    def start(self, int64_t start_ns=0):
        """Begin sending; the open-model schedule counts from start_ns (the
        common start instant of all workers), default now."""
        if self.stopped:
            return
        cdef int64_t now = monotonic_ns()
        self.start_ns = start_ns if start_ns > 0 else now
        self.sending = True
        cdef uint32_t i
        if self.open_model:
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
        """Closed model: ramp to `wanted` connections (stages).  Extra ones
        close once their requests are answered."""
        if self.open_model or self.stopped:
            return
        cdef int64_t now = monotonic_ns()
        cdef uint32_t i
        cdef Conn* c
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

    def intended_by(self, double offset_s):
        """N(offset): requests the global schedule intends from the start to offset_s."""
        return schedule_count_at(self.segments, self.n_segments, <int64_t>(offset_s * 1e9))

    def sweep(self):
        """Time out requests and connects older than the timeout; retry
        failed connects whose back-off has passed.  Call a few times a second."""
        if self.stopped:
            return
        cdef int64_t now = monotonic_ns()
        cdef uint32_t i
        cdef Conn* c
        for i in range(self.conn_count):
            c = &self.conns[i]
            if c.state == C_OPEN and c.in_flight > 0:
                if now - c.sent_ns[c.ring_head] > self.timeout_ns:
                    self._fail(c, ERR_TIMEOUT, now)
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
        self._check_progress()

    def snapshot(self):
        """Cumulative counters plus this interval's latency histogram (then reset)."""
        stats, packed = self.latency_us.to_sparse()
        self.latency_us.reset()
        uncorrected = None
        if self.open_model:
            uncorrected = self.latency_uncorrected_us.to_sparse()
            self.latency_uncorrected_us.reset()
        statuses = {}
        cdef int s
        for s in range(600):
            if self.status_counts[s]:
                statuses[s] = self.status_counts[s]
        return {
            "completed": self.completed,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "errors": {ERROR_KINDS[k]: self.errors[k] for k in range(ERR_KINDS)},
            "statuses": statuses,
            "open_connections": self.open_conns,
            "connects": self.connects,
            "in_flight": self.in_flight_total,
            "latency": (stats, packed),
            "latency_uncorrected": uncorrected,
            "due": self.due_total,
            "dropped": self.dropped,
            "queued": self.queued,
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
        cdef int one = 1, r
        cdef epoll_event ev
        framer_reset(&c.framer)
        c.in_flight = 0
        c.ring_head = 0
        c.unsent_bytes = 0
        c.write_pos = 0
        c.want_write = False
        c.fd = socket(self.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
        if c.fd < 0:
            self.errors[ERR_CONNECT] += 1
            self._retry_later(c, now)
            return
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
        r = connect(c.fd, <sockaddr*>&self.addr, self.addr_len)
        if r < 0 and errno != EINPROGRESS:
            close(c.fd)
            c.fd = -1
            self.errors[ERR_CONNECT] += 1
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
        if self.open_model:
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
            if frame_eof(&c.framer):
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
            if c.framer.complete:
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
        cdef ssize_t w
        cdef epoll_event ev
        while c.unsent_bytes > 0:
            w = send(c.fd, self.request_buf + c.write_pos, <size_t>c.unsent_bytes, MSG_NOSIGNAL)
            if w > 0:
                self.bytes_out += w
                c.unsent_bytes -= w
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
        self._arm_timer(self.next_due_ns)

    cdef void _advance_head(self) noexcept:
        self.queued -= 1
        self.queue_head += self.index_step
        if self.queued > 0:
            self.queue_head_ns = self._schedule_instant(self.queue_head, &self.head_cursor)

    cdef void _drain_queue(self, int64_t now) noexcept:
        cdef Conn* c
        cdef int64_t wanted
        # A request that waited longer than the timeout is dropped, loudly.
        while self.queued > 0 and now - self.queue_head_ns > self.timeout_ns:
            self.dropped += 1
            self._advance_head()
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
        if (self.counted and self.sending and not self.done_signalled
                and self.quota_left == 0 and self.in_flight_total == 0):
            self.done_signalled = True
            self._signal("done")

    cdef void _signal(self, str name) noexcept:
        try:
            self.on_event(name)
        except BaseException:
            pass


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
