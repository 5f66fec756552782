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

DEF READ_BUF_BYTES = 65536
DEF MAX_EVENTS = 512

ERROR_KINDS = ("connect", "read", "write", "timeout", "parse", "closed")


cdef class Engine:
    """Connections to one address, each sending the same pre-rendered request.

    quota < 0: send until stop(); quota >= 0: issue exactly `quota` requests
    (each ends as a response or an error), then report "done".
    on_event(name) is called for rare events: "settled" (every connection has
    connected or failed once), "done" (quota used up and nothing in flight).
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
        self.read_buf = <char*>malloc(READ_BUF_BYTES)
        self.events = <epoll_event*>calloc(MAX_EVENTS, sizeof(epoll_event))
        if not (self.request_buf and self.conns and self.sent_ns and self.read_buf and self.events):
            raise MemoryError()
        cdef uint32_t i
        for i in range(connections):
            self.conns[i].fd = -1
            self.conns[i].index = i
            self.conns[i].sent_ns = self.sent_ns + <size_t>i * depth
            framer_reset(&self.conns[i].framer)
            self.conns[i].framer.head_request = head_request
        self.head_request = head_request
        self.counted = quota >= 0
        self.quota_left = quota if quota >= 0 else 0
        self.timeout_ns = timeout_ns
        self.retry_backoff_ns = 50_000_000
        self.on_event = on_event
        self.latency_us = Histogram()

    def __dealloc__(self):
        cdef uint32_t i
        if self.conns != NULL:
            for i in range(self.conn_count):
                if self.conns[i].fd >= 0:
                    close(self.conns[i].fd)
                framer_free(&self.conns[i].framer)
        if self.epfd >= 0:
            close(self.epfd)
        free(self.conns)
        free(self.sent_ns)
        free(self.request_buf)
        free(self.read_buf)
        free(self.events)

    @property
    def epoll_fd(self):
        """The descriptor to watch for readability (loop.add_reader)."""
        return self.epfd

    # ---- lifecycle (called from Python a few times per run) -----------------
    def connect_all(self):
        """Open every connection; "settled" fires when each has connected or failed once."""
        cdef int64_t now = monotonic_ns()
        cdef uint32_t i
        for i in range(self.conn_count):
            self._connect(&self.conns[i], now)
        self._check_progress()

    def start(self):
        """Begin sending on every open connection."""
        if self.stopped:
            return
        self.sending = True
        cdef int64_t now = monotonic_ns()
        cdef uint32_t i
        for i in range(self.conn_count):
            if self.conns[i].state == C_OPEN:
                self._refill(&self.conns[i], now)
        self._check_progress()

    def stop(self):
        """Stop sending and close every connection.  Returns the number of
        requests that were in flight and are abandoned."""
        self.sending = False
        self.stopped = True
        abandoned = self.in_flight_total
        cdef uint32_t i
        for i in range(self.conn_count):
            if self.conns[i].fd >= 0:
                close(self.conns[i].fd)
                self.conns[i].fd = -1
            if self.conns[i].state == C_OPEN:
                self.open_conns -= 1
            self.conns[i].state = C_IDLE
            self.conns[i].in_flight = 0
            framer_free(&self.conns[i].framer)
        self.in_flight_total = 0
        return abandoned

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
                if now >= c.state_since_ns:
                    self._connect(c, now)
        self._check_progress()

    def on_ready(self):
        """The epoll set is readable: serve every ready connection (level-triggered,
        so anything left over wakes us again)."""
        cdef int n = epoll_wait(self.epfd, self.events, MAX_EVENTS, 0)
        cdef int i
        cdef uint32_t ev
        cdef Conn* c
        for i in range(n):
            c = &self.conns[self.events[i].data.u32]
            ev = self.events[i].events
            if c.state == C_OPEN:
                if ev & (EPOLLIN | EPOLLERR | EPOLLHUP):
                    self._on_readable(c)
                if c.state == C_OPEN and (ev & EPOLLOUT) and c.want_write:
                    self._flush(c)
            elif c.state == C_CONNECTING:
                self._on_connect_ready(c, monotonic_ns())
        self._check_progress()

    def snapshot(self):
        """Cumulative counters plus this interval's latency histogram (then reset)."""
        stats, packed = self.latency_us.to_sparse()
        self.latency_us.reset()
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
        }

    # ---- connections --------------------------------------------------------
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
        c.state = C_CONNECTING
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
        c.state = C_OPEN
        self.open_conns += 1
        self.connects += 1
        ev.events = EPOLLIN
        ev.data.u64 = 0
        ev.data.u32 = c.index
        epoll_ctl(self.epfd, EPOLL_CTL_MOD, c.fd, &ev)
        if self.sending:
            self._refill(c, now)

    cdef void _retry_later(self, Conn* c, int64_t now) noexcept:
        c.state = C_RETRY_WAIT
        c.state_since_ns = now + self.retry_backoff_ns

    cdef void _close(self, Conn* c, bint requeue) noexcept:
        """Close the socket.  requeue: in-flight requests were never answered
        and go back to the quota (the peer said it would close, or they were
        sent behind a request that failed)."""
        if c.fd >= 0:
            close(c.fd)
            c.fd = -1
        if c.state == C_OPEN:
            self.open_conns -= 1
        self.in_flight_total -= c.in_flight
        if self.counted and requeue:
            self.quota_left += c.in_flight
        c.in_flight = 0
        c.unsent_bytes = 0
        c.state = C_IDLE
        framer_free(&c.framer)

    cdef void _fail(self, Conn* c, int kind, int64_t now) noexcept:
        """Count one error; the oldest in-flight request is the failed one, the
        others are issued again; reconnect."""
        self.errors[kind] += 1
        if c.in_flight > 0:
            c.in_flight -= 1
            self.in_flight_total -= 1
        self._close(c, True)
        if kind == ERR_CONNECT:
            self._retry_later(c, now)
        elif not self.stopped:
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
        self._refill(c, now)

    cdef void _on_response(self, Conn* c, int64_t now) noexcept:
        cdef int status = c.framer.status
        record_value(self.latency_us, (now - c.sent_ns[c.ring_head]) // 1000)
        c.ring_head += 1
        if c.ring_head == self.depth:
            c.ring_head = 0
        c.in_flight -= 1
        self.in_flight_total -= 1
        self.completed += 1
        self.status_counts[status if 100 <= status <= 599 else 0] += 1

    cdef void _refill(self, Conn* c, int64_t now) noexcept:
        """When a connection has nothing in flight, commit `depth` requests and
        write them in one send().  With pipelining this sends batches of D, as
        wrk's pipelining does: topping up after every read measured ~40% more
        kernel CPU per request (many small writes; bench/RESULTS.md)."""
        if not self.sending or c.in_flight > 0:
            return
        cdef int32_t want = self.depth - c.in_flight, slot, k
        if self.counted:
            if want > self.quota_left:
                want = <int32_t>self.quota_left
            self.quota_left -= want
        if want <= 0:
            return
        slot = c.ring_head + c.in_flight
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

    cdef void _check_progress(self) noexcept:
        """Tell Python about the rare transitions (one call each per run)."""
        cdef uint32_t i
        if not self.settled_signalled:
            for i in range(self.conn_count):
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
