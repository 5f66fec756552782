"""The embedded target's HTTP/1.1 protocol (an asyncio protocol for uvloop).

Requests are framed in C straight from the bytes the loop hands over: the head
is parsed only for what changes the answer (method, path, version, Connection,
Content-Length, Transfer-Encoding) and bodies are skipped, never buffered.
Responses are rendered once per worker; all responses to one read leave in a
single write, so pipelined requests cost one syscall per read, not per request.
A client that pipelines faster than it reads is paced: framing stops once a
read has produced BATCH_LIMIT_BYTES of answers and goes on as it reads them.

The demo app (app="demo", `surge serve --app demo`) routes requests instead
of giving every one the same answer: the head also yields the method, target
and Authorization and Cookie values, the body is kept (up to a limit) instead of skipped,
and demo.DemoApp makes each answer and names its route, counted per route in
shared memory beside the total. The default app pays one flag test per
request for this.

Delays and stalls. Each counted response may be held: its due time is the
instant its request was read plus a delay drawn per request (fixed, uniform,
exponential or normal, from a xorshift64* generator per worker), moved to the
end of a stall window when it falls into one. Responses on one connection
still leave in request order, so a response is never due before the one ahead
of it. Held responses wait in one binary heap per worker, woken by one
CLOCK_MONOTONIC timerfd armed on an absolute deadline with nanosecond
resolution: the loop's own timers (call_later) round to whole milliseconds
against a cached loop time, which makes a 10ms delay fire anywhere from 9 to
11ms. What remains is the kernel's wake-up latency, tens of microseconds.
"""
import json
import os
from collections import deque
from http import HTTPStatus

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from libc.math cimport cos, log, log1p, sqrt
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memmove, strerror

# The clock, the timerfd and errno: the declarations the engine uses too.
from surge.core.includes.sys cimport (CLOCK_MONOTONIC, TFD_CLOEXEC, TFD_NONBLOCK, TFD_TIMER_ABSTIME, errno,
                                      itimerspec, monotonic_ns, timerfd_create, timerfd_settime)
from surge.core.includes.sys cimport close as close_fd, read as read_fd


cdef enum:
    # Longest request head, chunk-size line or trailer line we wait for. Longer
    # ones are answered 431/400 so a client cannot make the buffer grow without end.
    HEAD_LIMIT_BYTES = 64 * 1024
    # Output one read may produce before framing pauses: a pipelining client
    # that does not read cannot make the server buffer without bound.
    BATCH_LIMIT_BYTES = 1024 * 1024
    # Enough digits for any length we can skip; more would overflow int64.
    MAX_DECIMAL_DIGITS = 18
    MAX_HEX_DIGITS = 15

# Index 0: HTTP/1.1 keep-alive (implied); 1: HTTP/1.0 keep-alive, which must be
# said; 2: the connection closes after this response.
cdef tuple CONNECTION_HEADERS = (b"", b"Connection: keep-alive\r\n", b"Connection: close\r\n")
cdef int KIND_CLOSE = 2

# the names ServeConfig(delay_kind=...) takes
DELAY_KINDS = {"none": DELAY_NONE, "fixed": DELAY_FIXED, "uniform": DELAY_UNIFORM,
               "exp": DELAY_EXP, "normal": DELAY_NORMAL}
cdef uint64_t GOLDEN_GAMMA = 0x9E3779B97F4A7C15ULL
cdef double TWO_PI = 6.283185307179586


cdef inline uint64_t splitmix64(uint64_t x) noexcept nogil:
    """Spreads a seed's bits, so seeds 1, 2, 3 start unrelated sequences."""
    x += GOLDEN_GAMMA
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL
    return x ^ (x >> 31)


cdef inline double next_unit(uint64_t* state) noexcept nogil:
    """A uniform double in [0, 1) from xorshift64* (53 random bits)."""
    cdef uint64_t x = state[0]
    x ^= x >> 12
    x ^= x << 25
    x ^= x >> 27
    state[0] = x
    return <double>((x * 0x2545F4914F6CDD1DULL) >> 11) * (1.0 / 9007199254740992.0)


cdef int append_bytes(char** buf, Py_ssize_t* length, Py_ssize_t* cap, const char* data, Py_ssize_t size,
                      Py_ssize_t min_cap) except -1:
    """Append to a malloc'd buffer, doubling it (at least to min_cap) when full."""
    cdef Py_ssize_t new_cap
    cdef char* grown
    if length[0] + size > cap[0]:
        new_cap = max(cap[0] * 2, length[0] + size, min_cap)
        grown = <char*>realloc(buf[0], new_cap)
        if grown == NULL:
            raise MemoryError()
        buf[0] = grown
        cap[0] = new_cap
    memcpy(buf[0] + length[0], data, size)
    length[0] += size
    return 0


cdef inline bint held_before(HeldBatch* a, HeldBatch* b) noexcept nogil:
    return a.due_ns < b.due_ns or (a.due_ns == b.due_ns and a.seq < b.seq)


def render_response(int status, Py_ssize_t body_size_bytes, int kind, bint is_head):
    """The full response bytes for one status, body size and connection kind."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    head = b"HTTP/1.1 %d %s\r\n" % (status, reason.encode("latin-1"))
    # 204 and 304 carry no body, and 204 must not even announce one (RFC 9110 §8.6)
    bodiless = status == 204 or status == 304
    if not bodiless:
        head += b"Content-Length: %d\r\n" % body_size_bytes
    head += CONNECTION_HEADERS[kind] + b"\r\n"
    if bodiless or is_head:
        return head
    return head + b"x" * body_size_bytes


cdef inline Py_ssize_t find_head_end(const char* buf, Py_ssize_t size) noexcept nogil:
    """Length of the head up to and including its blank line, or -1 if incomplete."""
    cdef Py_ssize_t start = 0, newline_at
    cdef const char* newline
    while True:
        newline = <const char*>memchr(buf + start, c'\n', size - start)
        if newline == NULL:
            return -1
        newline_at = newline - buf
        # bare LF line ends are accepted too (RFC 9112 §2.2 allows it)
        if newline_at + 1 < size and buf[newline_at + 1] == c'\n':
            return newline_at + 2
        if newline_at + 2 < size and buf[newline_at + 1] == c'\r' and buf[newline_at + 2] == c'\n':
            return newline_at + 3
        start = newline_at + 1


cdef inline bint equals_lower(const char* text, Py_ssize_t size,
                              const char* lower, Py_ssize_t lower_size) noexcept nogil:
    """ASCII case-insensitive comparison with an already lower-case name."""
    cdef Py_ssize_t i
    cdef char c
    if size != lower_size:
        return False
    for i in range(size):
        c = text[i]
        if c'A' <= c <= c'Z':
            c = c + 32
        if c != lower[i]:
            return False
    return True


cdef inline bint is_space(char c) noexcept nogil:
    return c == c' ' or c == c'\t'


cdef inline int64_t parse_decimal(const char* text, Py_ssize_t size) noexcept nogil:
    """A Content-Length value, or -1 when it is not a plain run of digits."""
    cdef int64_t value = 0
    cdef Py_ssize_t i
    if size == 0 or size > MAX_DECIMAL_DIGITS:
        return -1
    for i in range(size):
        if not (c'0' <= text[i] <= c'9'):
            return -1
        value = value * 10 + (text[i] - c'0')
    return value


cdef inline int64_t parse_chunk_size(const char* line, Py_ssize_t size) noexcept nogil:
    """The size on a chunk-size line (extensions ignored), or -1 when malformed."""
    cdef int64_t value = 0
    cdef Py_ssize_t i = 0
    cdef char c
    while i < size:
        c = line[i]
        if c'0' <= c <= c'9':
            value = value * 16 + (c - c'0')
        elif c'a' <= c <= c'f':
            value = value * 16 + (c - c'a' + 10)
        elif c'A' <= c <= c'F':
            value = value * 16 + (c - c'A' + 10)
        else:
            break
        i += 1
    if i == 0 or i > MAX_HEX_DIGITS:
        return -1
    while i < size and is_space(line[i]):
        i += 1
    if i < size and line[i] != c';':
        return -1
    return value


cdef inline bint ends_with_chunked(const char* value, const char* value_end) noexcept nogil:
    """Whether `chunked` is the last transfer coding listed (RFC 9112 §6.3)."""
    cdef Py_ssize_t size = value_end - value
    if size < 7 or not equals_lower(value_end - 7, 7, b"chunked", 7):
        return False
    return size == 7 or (value_end - 8)[0] == c',' or is_space((value_end - 8)[0])


cdef class ServeConfig:
    """What one worker answers, rendered once, and where it counts what it served.

    `counts` is a writable buffer of uint64 with one slot per worker (shared
    memory across processes); this worker adds only to `counts[worker_index]`,
    so no lock is needed. Status-path answers report the sum of all slots.

    Delays: delay_kind "fixed" (delay_a_ns), "uniform" (delay_a_ns to
    delay_b_ns), "exp" (mean delay_a_ns) or "normal" (mean delay_a_ns, standard
    deviation delay_b_ns; negative draws are drawn again); delay_ns=N is short
    for fixed. seed (an int) makes the draws repeatable; each worker_index gets
    its own sequence. Stalls: every stall_every_ns, counted from started_at_ns
    (CLOCK_MONOTONIC, default now), responses are held for stall_ns; the first
    window opens one period after the start. Delays and stalls need `loop`.
    Status-path answers skip both, unless held answers are ahead of them.
    """

    def __cinit__(self):
        self.timer_fd = -1

    def __init__(self, *, int status=200, Py_ssize_t body_size_bytes=0, int64_t delay_ns=0,
                 str delay_kind=None, int64_t delay_a_ns=0, int64_t delay_b_ns=0, object seed=None,
                 int64_t stall_ns=0, int64_t stall_every_ns=0, object started_at_ns=None,
                 bint close=False, str status_path="/__surge/status", object counts=None,
                 Py_ssize_t worker_index=0, object loop=None, str app="default",
                 object route_counts=None, object token_secret=None,
                 int64_t service_ns=0, Py_ssize_t service_slots=0,
                 int64_t idle_timeout_ns=0, Py_ssize_t max_connections=0):
        cdef int kind
        cdef uint64_t seed_bits
        if not 200 <= status <= 599:
            raise ValueError(f"status must be from 200 to 599, got {status}")
        if body_size_bytes < 0:
            raise ValueError(f"body_size_bytes must be >= 0, got {body_size_bytes}")
        if delay_kind is None:
            delay_kind = "fixed" if delay_ns > 0 else "none"
            delay_a_ns = delay_ns
        elif delay_ns:
            raise ValueError("give delay_ns or delay_kind, not both")
        if delay_kind not in DELAY_KINDS:
            raise ValueError(f"delay_kind must be one of {', '.join(DELAY_KINDS)}, got {delay_kind!r}")
        self.delay_kind = DELAY_KINDS[delay_kind]
        if self.delay_kind == DELAY_UNIFORM and not 0 <= delay_a_ns <= delay_b_ns:
            raise ValueError(f"a uniform delay needs 0 <= low <= high, got {delay_a_ns}ns to {delay_b_ns}ns")
        if self.delay_kind in (DELAY_FIXED, DELAY_EXP, DELAY_NORMAL) and delay_a_ns <= 0:
            raise ValueError(f"a {delay_kind} delay needs a value > 0, got {delay_a_ns}ns")
        if self.delay_kind == DELAY_NORMAL and delay_b_ns < 0:
            raise ValueError(f"a normal delay needs a standard deviation >= 0, got {delay_b_ns}ns")
        self.delay_a_ns = delay_a_ns
        self.delay_b_ns = delay_b_ns
        if stall_ns or stall_every_ns:
            if not 0 < stall_ns < stall_every_ns:
                raise ValueError(f"stalls need 0 < stall_ns < stall_every_ns, got {stall_ns} and {stall_every_ns}")
        self.stall_ns = stall_ns
        self.stall_every_ns = stall_every_ns
        self.started_at_ns = monotonic_ns() if started_at_ns is None else started_at_ns
        if service_ns < 0 or (service_ns > 0) != (service_slots > 0) or service_slots < 0:
            raise ValueError(f"a service time needs service_ns > 0 and service_slots >= 1, "
                             f"got {service_ns}ns and {service_slots}")
        if service_ns and (self.delay_kind != DELAY_NONE or stall_ns > 0):
            raise ValueError("a service time does not combine with a delay or stalls")
        self.service_ns = service_ns
        self.service_slots = service_slots
        self.timed = self.delay_kind != DELAY_NONE or stall_ns > 0 or service_ns > 0
        if self.timed and loop is None:
            raise ValueError("a delay or stalls need the event loop to schedule on")
        seed_bits = int.from_bytes(os.urandom(8), "little") if seed is None else <uint64_t>(seed & 0xFFFFFFFFFFFFFFFF)
        self.rng_state = splitmix64(seed_bits ^ splitmix64(<uint64_t>worker_index))
        if self.rng_state == 0:
            self.rng_state = GOLDEN_GAMMA  # xorshift stays at 0 forever
        if counts is None:
            counts = memoryview(bytearray(8)).cast("Q")
        self.counts = counts
        if not 0 <= worker_index < self.counts.shape[0]:
            raise ValueError(f"worker_index must be below {self.counts.shape[0]}, got {worker_index}")
        self.own_count = &self.counts[worker_index]
        self.worker_index = worker_index
        if app not in ("default", "demo"):
            raise ValueError(f"app must be 'default' or 'demo', got {app!r}")
        self.app = app
        self.demo = app == "demo"
        if self.demo:
            from surge.serve import demo
            self.demo_app = demo.DemoApp(worker_index, token_secret)
            self.route_names = demo.ROUTES
            self.route_slots = demo.ROUTE_SLOTS
            self.body_limit_bytes = demo.BODY_LIMIT_BYTES
            if route_counts is None:
                route_counts = memoryview(bytearray(8 * self.route_slots * self.counts.shape[0])).cast("Q")
            self.route_counts = route_counts
            if self.route_counts.shape[0] != self.route_slots * self.counts.shape[0]:
                raise ValueError(f"route_counts needs {self.route_slots} slots per worker "
                                 f"({self.route_slots * self.counts.shape[0]}), got {self.route_counts.shape[0]}")
            self.own_route_counts = &self.route_counts[worker_index * self.route_slots]
        self.loop = loop
        self.status = status
        self.body_size_bytes = body_size_bytes
        self.close = close
        self.status_path = status_path.encode("latin-1")
        self.responses = []
        for kind in range(3):
            for is_head in (False, True):
                self.responses.append(render_response(status, body_size_bytes, kind, is_head))
        self.open_protocols = set()
        if idle_timeout_ns < 0 or max_connections < 0:
            raise ValueError(f"idle_timeout_ns and max_connections must be >= 0, got {idle_timeout_ns}, "
                             f"{max_connections}")
        if idle_timeout_ns and loop is None:
            raise ValueError("an idle timeout needs the event loop to sweep on")
        self.idle_timeout_ns = idle_timeout_ns
        self.max_connections = max_connections
        if idle_timeout_ns:
            loop.call_later(self.sweep_interval_s(), self.sweep_idle)
        self.bad_request = render_response(400, 0, KIND_CLOSE, False)
        self.head_too_large = render_response(431, 0, KIND_CLOSE, False)
        if self.timed:
            self.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
            if self.timer_fd < 0:
                raise OSError(errno, f"timerfd_create: {strerror(errno).decode()}")
            loop.add_reader(self.timer_fd, self._timer_fired)

    def __dealloc__(self):
        cdef Py_ssize_t i
        free(self.batch_buf)
        for i in range(self.held_len):
            Py_DECREF(<object>self.held[i].protocol)
            Py_DECREF(<object>self.held[i].data)
        free(self.held)
        for i in range(self.waiting_len):
            Py_DECREF(<object>self.waiting[(self.waiting_head + i) % self.waiting_cap].protocol)
        free(self.waiting)
        if self.timer_fd >= 0:
            if self.loop is not None and not self.loop.is_closed():
                self.loop.remove_reader(self.timer_fd)
            close_fd(self.timer_fd)

    def sweep_interval_s(self):
        """How often the idle sweep runs: a quarter of the timeout, at most 1 s."""
        return min(1.0, self.idle_timeout_ns / 4e9)

    def sweep_idle(self):
        """Close every connection that made no progress for idle_timeout_ns: no
        request completed (a slow or stopped head or body: slowloris) and no
        answer drained from its write buffer (a client that does not read).
        Answers the server itself holds (--delay, stalls, --service-time) are
        waiting on purpose and keep their connection."""
        cdef ServeProtocol protocol
        cdef int64_t now_ns = monotonic_ns()
        cdef Py_ssize_t buffered
        for protocol in list(self.open_protocols):
            if protocol.transport is None:
                continue
            buffered = protocol.transport.get_write_buffer_size()
            if (protocol.requests_here != protocol.requests_at_sweep or buffered < protocol.buffered_at_sweep
                    or protocol.delayed_batches > 0 or (protocol.awaiting is not None and protocol.awaiting)):
                protocol.idle_since_ns = now_ns
            protocol.requests_at_sweep = protocol.requests_here
            protocol.buffered_at_sweep = buffered
            if now_ns - protocol.idle_since_ns >= self.idle_timeout_ns:
                self.closed_idle += 1
                protocol.transport.abort()      # what it buffered is dropped with it
        self.loop.call_later(self.sweep_interval_s(), self.sweep_idle)

    @property
    def open_connections(self):
        return len(self.open_protocols)

    def __call__(self):
        """A protocol for one new connection (the factory create_server wants)."""
        return ServeProtocol(self)

    def served(self):
        """Requests served by all workers so far (status requests excluded)."""
        cdef uint64_t total = 0
        cdef Py_ssize_t i
        for i in range(self.counts.shape[0]):
            total += self.counts[i]
        return total

    def route_counts_by_name(self):
        """Requests per route served by all workers so far (demo app; {} otherwise)."""
        cdef Py_ssize_t worker, route
        if not self.demo:
            return {}
        totals = {}
        for route in range(len(self.route_names)):
            total = 0
            for worker in range(self.counts.shape[0]):
                total += self.route_counts[worker * self.route_slots + route]
            totals[self.route_names[route]] = total
        return totals

    cdef int batch_append(self, bytes data) except -1:
        cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t new_cap
        cdef char* grown
        if self.batch_len + size > self.batch_cap:
            new_cap = max(self.batch_cap * 2, self.batch_len + size, 16 * 1024)
            grown = <char*>realloc(self.batch_buf, new_cap)
            if grown == NULL:
                raise MemoryError()
            self.batch_buf = grown
            self.batch_cap = new_cap
        memcpy(self.batch_buf + self.batch_len, PyBytes_AS_STRING(data), size)
        self.batch_len += size
        return 0

    cdef bytes status_response(self, int kind, bint is_head):
        body = (b'{"requests": %d, "workers": %d, "started_at_monotonic_ns": %d, '
                b'"stall_ns": %d, "stall_every_ns": %d, "app": "%s", '
                b'"service_time_ns": %d, "concurrency": %d, "capacity_per_s": %s, "now_monotonic_ns": %d'
                % (self.served(), self.counts.shape[0], self.started_at_ns,
                   self.stall_ns, self.stall_every_ns, self.app.encode(),
                   self.service_ns, self.service_slots, self.capacity_json(), monotonic_ns()))
        # this worker's (the one that answered): hardening at work
        body += (b', "open_connections": %d, "closed_idle": %d, "refused_over_limit": %d'
                 % (len(self.open_protocols), self.closed_idle, self.refused_over_limit))
        if self.demo:
            body += b', "routes": ' + json.dumps(self.route_counts_by_name()).encode()
        body += b"}"
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Cache-Control: no-store\r\nContent-Length: %d\r\n%s\r\n"
                % (len(body), CONNECTION_HEADERS[kind]))
        return head if is_head else head + body

    cdef bytes capacity_json(self):
        if not self.service_ns:
            return b"null"
        # every worker: service_slots requests per service time
        return repr(self.counts.shape[0] * self.service_slots * 1e9 / self.service_ns).encode()

    # -- the service queue (--service-time, --concurrency) ----------------------
    # A request holds one of service_slots slots for service_ns; the rest wait in
    # arrival order. A slot is handed on at the instant its request's service
    # ends (the held answer's due_ns), not when the timer happens to fire: a
    # late wake-up delays that answer but never the next request's start, so
    # the capacity stays service_slots / service_ns while requests wait. A
    # waiting request whose connection closed is dropped, not served.

    cdef int admit(self, ServeProtocol protocol, int64_t arrival_ns) except -1:
        """A request was read: start it if a slot is free, else it waits its turn."""
        cdef Py_ssize_t new_cap, i
        cdef Waiting* grown
        if self.in_service < self.service_slots:
            return self.start_service(protocol, arrival_ns)
        if self.waiting_len == self.waiting_cap:
            new_cap = max(self.waiting_cap * 2, 256)
            grown = <Waiting*>malloc(new_cap * sizeof(Waiting))
            if grown == NULL:
                raise MemoryError()
            for i in range(self.waiting_len):  # unwrap the ring into the new array
                grown[i] = self.waiting[(self.waiting_head + i) % self.waiting_cap]
            free(self.waiting)
            self.waiting = grown
            self.waiting_cap = new_cap
            self.waiting_head = 0
        i = (self.waiting_head + self.waiting_len) % self.waiting_cap
        Py_INCREF(protocol)
        self.waiting[i].protocol = <PyObject*>protocol
        self.waiting[i].arrival_ns = arrival_ns
        self.waiting_len += 1
        return 0

    cdef int start_service(self, ServeProtocol protocol, int64_t start_ns) except -1:
        """Give a slot to the connection's oldest answer waiting for one."""
        cdef int64_t due_ns = start_ns + self.service_ns
        answer = protocol.awaiting.popleft()
        self.in_service += 1
        if due_ns > protocol.last_due_ns:
            protocol.last_due_ns = due_ns
        return self.hold(due_ns, protocol, <bytes>answer[0], <bint>answer[1], True)

    cdef int service_ended(self, int64_t ended_ns) except -1:
        """A request's service ended at ended_ns: count it, hand its slot on."""
        cdef Waiting next_up
        self.in_service -= 1
        self.own_count[0] += 1
        while self.in_service < self.service_slots and self.waiting_len > 0:
            next_up = self.waiting[self.waiting_head]
            self.waiting_head = (self.waiting_head + 1) % self.waiting_cap
            self.waiting_len -= 1
            protocol = <ServeProtocol>next_up.protocol
            Py_DECREF(protocol)  # the ring's reference; the local keeps it alive
            if protocol.transport is None or not protocol.awaiting:
                continue  # its client has gone: nobody to serve
            self.start_service(protocol, max(next_up.arrival_ns, ended_ns))
        return 0

    # -- delays, stalls and held responses --------------------------------------

    cdef int64_t draw_delay_ns(self) noexcept nogil:
        """This request's delay, drawn from the configured distribution."""
        cdef double value, radius
        if self.delay_kind == DELAY_FIXED:
            return self.delay_a_ns
        if self.delay_kind == DELAY_UNIFORM:
            return self.delay_a_ns + <int64_t>(next_unit(&self.rng_state) * (self.delay_b_ns - self.delay_a_ns))
        if self.delay_kind == DELAY_EXP:
            # inverse CDF; 1 - u is in (0, 1], so the log is finite
            return <int64_t>(-self.delay_a_ns * log1p(-next_unit(&self.rng_state)))
        if self.delay_kind == DELAY_NORMAL:
            while True:  # truncated at 0: the mean is > 0, so most draws are kept
                radius = sqrt(-2.0 * log(1.0 - next_unit(&self.rng_state)))
                value = self.delay_a_ns + self.delay_b_ns * radius * cos(TWO_PI * next_unit(&self.rng_state))
                if value >= 0:
                    return <int64_t>value
        return 0

    def draw_delays_ns(self, Py_ssize_t count):
        """The next `count` delays this worker would give its requests (the same
        draws, advancing the same generator): lets tests check the distributions
        exactly, apart from the timing noise a busy machine adds to a real run."""
        return [self.draw_delay_ns() for _ in range(count)]

    cdef int64_t stall_end_ns(self, int64_t at_ns) noexcept nogil:
        """The end of the stall window holding at_ns, or 0 outside every window.

        Windows are [start + k*every, start + k*every + stall) for k >= 1.
        """
        cdef int64_t since_start_ns, phase_ns
        if self.stall_ns == 0:
            return 0
        since_start_ns = at_ns - self.started_at_ns
        if since_start_ns < self.stall_every_ns:
            return 0
        phase_ns = since_start_ns % self.stall_every_ns
        if phase_ns < self.stall_ns:
            return at_ns - phase_ns + self.stall_ns
        return 0

    cdef int hold(self, int64_t due_ns, ServeProtocol protocol, bytes data, bint close_after,
                  bint ends_service) except -1:
        """Keep a batch until due_ns (and any stall then) has passed."""
        cdef Py_ssize_t new_cap, child, parent
        cdef HeldBatch* grown
        cdef HeldBatch entry
        if self.held_len == self.held_cap:
            new_cap = max(self.held_cap * 2, 64)
            grown = <HeldBatch*>realloc(self.held, new_cap * sizeof(HeldBatch))
            if grown == NULL:
                raise MemoryError()
            self.held = grown
            self.held_cap = new_cap
        Py_INCREF(protocol)
        Py_INCREF(data)
        entry.due_ns = due_ns
        entry.seq = self.held_seq
        entry.protocol = <PyObject*>protocol
        entry.data = <PyObject*>data
        entry.close_after = close_after
        entry.ends_service = ends_service
        self.held_seq += 1
        # sift up
        child = self.held_len
        self.held_len += 1
        while child > 0:
            parent = (child - 1) >> 1
            if not held_before(&entry, &self.held[parent]):
                break
            self.held[child] = self.held[parent]
            child = parent
        self.held[child] = entry
        if self.armed_ns == 0 or due_ns < self.armed_ns:
            self.arm(due_ns)
        return 0

    cdef int arm(self, int64_t due_ns) except -1:
        """Set the timerfd to fire at due_ns (absolute; one in the past fires at once)."""
        cdef itimerspec spec
        spec.it_interval.tv_sec = 0
        spec.it_interval.tv_nsec = 0
        spec.it_value.tv_sec = due_ns // 1000000000
        spec.it_value.tv_nsec = due_ns % 1000000000
        if timerfd_settime(self.timer_fd, TFD_TIMER_ABSTIME, &spec, NULL) != 0:
            raise OSError(errno, f"timerfd_settime: {strerror(errno).decode()}")
        self.armed_ns = due_ns
        return 0

    def _timer_fired(self):
        """The loop's reader callback for the timerfd: send what is due."""
        cdef uint64_t expirations
        cdef int64_t now_ns, stall_end_ns
        cdef HeldBatch entry, last
        cdef Py_ssize_t parent, child
        cdef object protocol, data
        read_fd(self.timer_fd, &expirations, sizeof(expirations))  # EAGAIN when re-armed: fine
        self.armed_ns = 0
        now_ns = monotonic_ns()
        try:
            while self.held_len > 0 and self.held[0].due_ns <= now_ns:
                stall_end_ns = self.stall_end_ns(now_ns)
                if stall_end_ns:
                    # a wake-up inside a window: nothing leaves until it ends
                    self.arm(stall_end_ns)
                    return
                entry = self.held[0]
                # pop: move the last entry down from the root
                self.held_len -= 1
                last = self.held[self.held_len]
                parent = 0
                while True:
                    child = 2 * parent + 1
                    if child >= self.held_len:
                        break
                    if child + 1 < self.held_len and held_before(&self.held[child + 1], &self.held[child]):
                        child += 1
                    if not held_before(&self.held[child], &last):
                        break
                    self.held[parent] = self.held[child]
                    parent = child
                if self.held_len > 0:
                    self.held[parent] = last
                protocol = <object>entry.protocol
                data = <object>entry.data
                Py_DECREF(protocol)  # the heap's references; the locals keep them alive
                Py_DECREF(data)
                (<ServeProtocol>protocol).send_held(data, entry.close_after)
                if entry.ends_service:
                    self.service_ended(entry.due_ns)
                now_ns = monotonic_ns()
        except BaseException:
            if self.held_len > 0:
                self.arm(self.held[0].due_ns)  # what is still held must not be stranded
            raise
        if self.held_len > 0:
            self.arm(self.held[0].due_ns)


cdef class ServeProtocol:
    """One client connection: frame requests, answer each in order."""

    def __cinit__(self, ServeConfig config not None):
        self.config = config
        self.state = READ_HEAD

    def __dealloc__(self):
        free(self.pending)
        free(self.body)

    # -- asyncio protocol interface -------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        cdef ServeConfig config = self.config
        if config.max_connections and len(config.open_protocols) >= config.max_connections:
            config.refused_over_limit += 1      # a connection flood: bounded memory, not an fd per client
            self.state = DISCARD
            transport.abort()
            return
        config.open_protocols.add(self)
        if config.idle_timeout_ns:
            self.idle_since_ns = monotonic_ns()

    def connection_lost(self, exc):
        self.config.open_protocols.discard(self)
        self.transport = None
        self.awaiting = None            # what still waits for a slot is dropped there
        self.state = DISCARD
        self.backlogged = False
        self.batch_first = None
        free(self.pending)
        self.pending = NULL
        self.pending_len = self.pending_cap = 0
        free(self.body)
        self.body = NULL
        self.body_len = self.body_cap = 0

    def eof_received(self):
        self.eof_seen = True
        # keep the socket open while answers are still owed
        return self.delayed_batches > 0 or self.backlogged

    def pause_writing(self):
        # the client does not read as fast as it asks: stop reading until it does
        self.write_paused = True
        self.set_reading(False)

    def resume_writing(self):
        self.write_paused = False
        self.drain_backlog()

    def data_received(self, bytes data not None):
        cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t used
        if self.state == DISCARD:
            return
        if self.pending_len == 0:
            # the common case: frame in place, copy only an unframed tail
            used = self.frame(PyBytes_AS_STRING(data), size)
            if used < size and self.state != DISCARD:
                self.keep_pending(PyBytes_AS_STRING(data) + used, size - used)
        else:
            self.keep_pending(PyBytes_AS_STRING(data), size)
            self.consume_pending(self.frame(self.pending, self.pending_len))
        self.flush()
        if self.backlogged:
            self.drain_backlog()

    cdef int send_held(self, bytes data, bint close_after) except -1:
        """A held batch is due (its delay and any stall have passed)."""
        self.delayed_batches -= 1
        self.delayed_bytes -= PyBytes_GET_SIZE(data)
        if self.transport is None:
            return 0
        self.transport.write(data)
        if close_after:
            self.transport.close()
        else:
            self.drain_backlog()
        return 0

    # -- back-pressure ----------------------------------------------------------

    cdef int drain_backlog(self) except -1:
        """Answer requests the batch limit left waiting, as fast as the client reads."""
        while (self.backlogged and not self.write_paused and self.state != DISCARD
               and self.delayed_bytes < BATCH_LIMIT_BYTES):
            self.backlogged = False
            self.consume_pending(self.frame(self.pending, self.pending_len))
            self.flush()
        if self.transport is None or self.state == DISCARD:
            return 0
        if self.eof_seen and not self.backlogged and self.delayed_batches == 0:
            self.transport.close()  # everything the client asked for is answered
            return 0
        self.set_reading(not self.backlogged and not self.write_paused)
        return 0

    cdef int set_reading(self, bint wanted) except -1:
        if self.transport is None or wanted != self.reading_paused:
            return 0  # already as wanted
        if wanted:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()
        self.reading_paused = not wanted
        return 0

    # -- framing ---------------------------------------------------------------

    cdef Py_ssize_t frame(self, const char* buf, Py_ssize_t size) except -1:
        """Answer every complete request in buf; return how many bytes were used."""
        cdef Py_ssize_t pos = 0, head_size, line_size, take
        cdef const char* line
        cdef const char* newline
        cdef int64_t chunk_size
        if self.config.timed:
            self.now_ns = monotonic_ns()  # delays count from the read of the request
        while pos < size:
            if self.state == READ_HEAD:
                if self.batch_bytes + self.delayed_bytes >= BATCH_LIMIT_BYTES:
                    # enough output for now; the rest waits in pending (drain_backlog)
                    self.backlogged = True
                    break
                # RFC 9112 §2.2: empty lines before a request line are ignored
                while pos < size and (buf[pos] == c'\r' or buf[pos] == c'\n'):
                    pos += 1
                if pos == size:
                    break
                head_size = find_head_end(buf + pos, size - pos)
                if head_size < 0 or head_size > HEAD_LIMIT_BYTES:
                    if head_size > HEAD_LIMIT_BYTES or size - pos > HEAD_LIMIT_BYTES:
                        self.reject(self.config.head_too_large)
                    break
                if self.parse_head(buf + pos, head_size) != 0:
                    self.reject(self.config.bad_request)
                    break
                pos += head_size
                if self.request_chunked:
                    self.state = READ_CHUNK_SIZE
                elif self.body_left_bytes > 0:
                    self.state = READ_BODY
                else:
                    self.finish_request()
            elif self.state == READ_BODY or self.state == READ_CHUNK_DATA:
                take = size - pos
                if take > self.body_left_bytes:
                    take = self.body_left_bytes
                if self.config.demo:
                    self.keep_body(buf + pos, take)
                pos += take
                self.body_left_bytes -= take
                if self.body_left_bytes == 0:
                    if self.state == READ_BODY:
                        self.finish_request()
                    else:
                        self.state = READ_CHUNK_END
            elif self.state == DISCARD:
                return size
            else:
                # the line-based states: chunk size, chunk end, trailer
                newline = <const char*>memchr(buf + pos, c'\n', size - pos)
                if newline == NULL:
                    if size - pos > HEAD_LIMIT_BYTES:
                        self.reject(self.config.bad_request)
                    break
                line = buf + pos
                line_size = newline - line
                pos += line_size + 1
                if line_size > 0 and line[line_size - 1] == c'\r':
                    line_size -= 1
                if self.state == READ_CHUNK_SIZE:
                    chunk_size = parse_chunk_size(line, line_size)
                    if chunk_size < 0:
                        self.reject(self.config.bad_request)
                        break
                    if chunk_size == 0:
                        self.state = READ_TRAILER
                    else:
                        self.body_left_bytes = chunk_size
                        self.state = READ_CHUNK_DATA
                elif self.state == READ_CHUNK_END:
                    if line_size != 0:
                        self.reject(self.config.bad_request)
                        break
                    self.state = READ_CHUNK_SIZE
                elif line_size == 0:
                    # the blank line after the trailers ends a chunked request
                    self.finish_request()
        if self.state == DISCARD:
            return size
        return pos

    cdef int parse_head(self, const char* head, Py_ssize_t size) except -1:
        """Read what the answer depends on; 0 when usable, 1 when malformed."""
        cdef const char* head_end = head + size
        cdef const char* line = head
        cdef const char* line_end
        cdef const char* newline
        cdef const char* method_end
        cdef const char* target
        cdef const char* target_end
        cdef const char* path_end
        cdef const char* colon
        cdef const char* value
        cdef const char* value_end
        cdef const char* token
        cdef const char* token_end
        cdef Py_ssize_t name_size
        cdef int64_t length = 0, header_length
        cdef bint has_length = False, chunked = False
        cdef bint says_close = False, says_keep_alive = False, keep_alive
        cdef int minor_version
        cdef bytes status_path = self.config.status_path

        # request line: METHOD SP TARGET SP HTTP/1.x
        newline = <const char*>memchr(line, c'\n', head_end - line)
        line_end = newline
        if line_end > line and (line_end - 1)[0] == c'\r':
            line_end -= 1
        method_end = <const char*>memchr(line, c' ', line_end - line)
        if method_end == NULL or method_end == line:
            return 1
        target = method_end + 1
        target_end = <const char*>memchr(target, c' ', line_end - target)
        if target_end == NULL or target_end == target:
            return 1
        if line_end - (target_end + 1) != 8 or memcmp(target_end + 1, b"HTTP/1.", 7) != 0:
            return 1
        if target_end[8] == c'1':
            minor_version = 1
        elif target_end[8] == c'0':
            minor_version = 0
        else:
            return 1
        self.request_is_head = method_end - line == 4 and memcmp(line, b"HEAD", 4) == 0
        if self.config.demo:
            self.request_method = PyBytes_FromStringAndSize(line, method_end - line)
            self.request_target = PyBytes_FromStringAndSize(target, target_end - target)
            self.request_authorization = None
            self.request_cookie = None
            self.body_len = 0
            self.body_too_large = False
        path_end = <const char*>memchr(target, c'?', target_end - target)
        if path_end == NULL:
            path_end = target_end
        self.request_is_status = (
            path_end - target == PyBytes_GET_SIZE(status_path)
            and memcmp(target, PyBytes_AS_STRING(status_path), path_end - target) == 0)

        # header fields, up to the blank line that find_head_end found
        line = newline + 1
        while line < head_end:
            newline = <const char*>memchr(line, c'\n', head_end - line)
            line_end = newline
            if line_end > line and (line_end - 1)[0] == c'\r':
                line_end -= 1
            if line_end == line:
                break
            if is_space(line[0]):
                return 1  # obsolete line folding is rejected (RFC 9112 §5.2)
            colon = <const char*>memchr(line, c':', line_end - line)
            if colon == NULL or colon == line or is_space((colon - 1)[0]):
                return 1  # no whitespace between name and colon (RFC 9112 §5.1)
            name_size = colon - line
            value = colon + 1
            value_end = line_end
            while value < value_end and is_space(value[0]):
                value += 1
            while value_end > value and is_space((value_end - 1)[0]):
                value_end -= 1
            if equals_lower(line, name_size, b"content-length", 14):
                header_length = parse_decimal(value, value_end - value)
                if header_length < 0 or (has_length and header_length != length):
                    return 1
                has_length = True
                length = header_length
            elif equals_lower(line, name_size, b"transfer-encoding", 17):
                # only chunked can be framed; anything else leaves the length unknown
                if not ends_with_chunked(value, value_end):
                    return 1
                chunked = True
            elif equals_lower(line, name_size, b"connection", 10):
                token = value
                while token < value_end:
                    token_end = <const char*>memchr(token, c',', value_end - token)
                    if token_end == NULL:
                        token_end = value_end
                    value = token_end  # reuse as the trimmed end
                    while token < value and is_space(token[0]):
                        token += 1
                    while value > token and is_space((value - 1)[0]):
                        value -= 1
                    if equals_lower(token, value - token, b"close", 5):
                        says_close = True
                    elif equals_lower(token, value - token, b"keep-alive", 10):
                        says_keep_alive = True
                    token = token_end + 1
            elif self.config.demo and equals_lower(line, name_size, b"authorization", 13):
                self.request_authorization = PyBytes_FromStringAndSize(value, value_end - value)
            elif self.config.demo and equals_lower(line, name_size, b"cookie", 6):
                cookie = PyBytes_FromStringAndSize(value, value_end - value)
                # two Cookie lines read as one (RFC 6265 section 5.4 wants one)
                self.request_cookie = cookie if self.request_cookie is None else self.request_cookie + b"; " + cookie
            line = newline + 1

        self.request_chunked = chunked
        self.body_left_bytes = 0 if chunked else length
        if self.config.demo and length > self.config.body_limit_bytes:
            self.body_too_large = True  # skipped as it arrives, never kept
        if minor_version == 1:
            keep_alive = not says_close
        else:
            keep_alive = says_keep_alive and not says_close
        if chunked and (has_length or minor_version == 0):
            # a framing conflict: answer, then close (RFC 9112 §6.1)
            keep_alive = False
        if self.config.close or not keep_alive:
            self.request_kind = KIND_CLOSE
        else:
            self.request_kind = 1 if minor_version == 0 else 0
        return 0

    # -- answering ---------------------------------------------------------------

    cdef int finish_request(self) except -1:
        cdef ServeConfig config = self.config
        cdef int64_t due_ns, stall_end_ns
        self.requests_here += 1
        if config.service_ns:
            self.finish_served_request()
        elif config.timed:
            if self.request_is_status:
                due_ns = self.last_due_ns  # no delay of its own, but never ahead of others
            else:
                due_ns = self.now_ns + config.draw_delay_ns()
                stall_end_ns = config.stall_end_ns(due_ns)
                if stall_end_ns:
                    due_ns = stall_end_ns
                if due_ns < self.last_due_ns:
                    due_ns = self.last_due_ns  # HTTP/1.1: answers leave in request order
            self.last_due_ns = due_ns
            if due_ns <= self.now_ns:
                due_ns = 0  # due now: may join what is sent at the end of this read
            if self.batch_responses > 0 and due_ns != self.batch_due_ns:
                self.flush()  # a batch goes out at one instant
            self.batch_due_ns = due_ns
        if config.service_ns:
            pass  # answered by finish_served_request
        elif self.request_is_status:
            self.queue(config.status_response(self.request_kind, self.request_is_head))
        elif config.demo:
            self.queue(self.demo_response())
            config.own_count[0] += 1
        else:
            self.queue(<bytes>config.responses[self.request_kind * 2 + self.request_is_head])
            # counted when answered (when held: when its answer is held), so a
            # status request later in the same read includes it
            config.own_count[0] += 1
        if self.request_kind == KIND_CLOSE:
            self.closing = True
            self.state = DISCARD
        else:
            self.state = READ_HEAD
        return 0

    cdef int finish_served_request(self) except -1:
        """--service-time: a counted request waits for a slot (counted when its
        service ends); a status request is answered at once, behind what this
        connection is still owed."""
        cdef ServeConfig config = self.config
        cdef int64_t due_ns
        if self.request_is_status:
            response = config.status_response(self.request_kind, self.request_is_head)
            if self.rides_along(response, self.request_kind == KIND_CLOSE):
                return 0
            due_ns = self.last_due_ns if self.last_due_ns > self.now_ns else 0
            if self.batch_responses > 0 and due_ns != self.batch_due_ns:
                self.flush()
            self.batch_due_ns = due_ns
            self.queue(response)
            return 0
        response = self.demo_response() if config.demo else \
            <bytes>config.responses[self.request_kind * 2 + self.request_is_head]
        self.flush()            # status answers batched before it go out ahead of it
        return self.await_service(response)

    cdef int await_service(self, bytes response) except -1:
        if self.awaiting is None:
            self.awaiting = deque()
        self.awaiting.append([response, self.request_kind == KIND_CLOSE])
        # owed, like a held answer: keeps an half-closed socket open and counts
        # towards the output that pauses framing
        self.delayed_batches += 1
        self.delayed_bytes += PyBytes_GET_SIZE(response)
        return self.config.admit(self, self.now_ns)

    cdef bint rides_along(self, bytes response, bint close_after) except -1:
        """Append an answer that needs no service to the last one waiting for a
        slot on this connection (answers leave in request order); False when
        none waits."""
        if self.awaiting is None or not self.awaiting:
            return False
        last = self.awaiting[len(self.awaiting) - 1]
        last[0] = <bytes>last[0] + response
        last[1] = last[1] or close_after
        self.delayed_bytes += PyBytes_GET_SIZE(response)
        return True

    cdef int reject(self, bytes response) except -1:
        """Answer a request we cannot frame, then close: the stream is lost."""
        if self.config.service_ns and self.rides_along(response, True):
            self.closing = True
            self.state = DISCARD
            return 0
        self.queue(response)
        self.closing = True
        self.state = DISCARD
        return 0

    cdef int queue(self, bytes response) except -1:
        cdef ServeConfig config = self.config
        if self.batch_responses == 0:
            self.batch_first = response
        else:
            if self.batch_responses == 1:
                config.batch_len = 0
                config.batch_append(self.batch_first)
                self.batch_first = None
            config.batch_append(response)
        self.batch_responses += 1
        self.batch_bytes += PyBytes_GET_SIZE(response)
        return 0

    cdef int flush(self) except -1:
        """Send the batched responses with one write, or hold them until due."""
        cdef ServeConfig config = self.config
        cdef bytes data
        cdef bint held = self.batch_due_ns > 0 or self.delayed_batches > 0
        # due now but behind held answers (due, not yet sent): those are due by
        # now_ns, so holding until now_ns keeps it behind them
        cdef int64_t due_ns = self.batch_due_ns if self.batch_due_ns > 0 else self.now_ns
        if self.batch_responses == 0:
            return 0
        if self.batch_responses == 1:
            data = self.batch_first
            self.batch_first = None
        else:
            data = PyBytes_FromStringAndSize(config.batch_buf, config.batch_len)
        self.batch_responses = 0
        self.batch_bytes = 0
        self.batch_due_ns = 0
        if held:
            self.delayed_batches += 1
            self.delayed_bytes += PyBytes_GET_SIZE(data)
            config.hold(due_ns, self, data, self.closing, False)
            return 0
        self.transport.write(data)
        if self.closing:
            self.transport.close()
        return 0

    cdef int consume_pending(self, Py_ssize_t used) except -1:
        """Drop the first `used` bytes of pending (all of it once closing)."""
        if self.state == DISCARD or used >= self.pending_len:
            self.pending_len = 0
        elif used > 0:
            memmove(self.pending, self.pending + used, self.pending_len - used)
            self.pending_len -= used
        return 0

    cdef int keep_body(self, const char* data, Py_ssize_t size) except -1:
        """Keep part of a request body for the demo app, up to its limit."""
        if self.body_too_large or size == 0:
            return 0
        if self.body_len + size > self.config.body_limit_bytes:
            self.body_too_large = True  # the rest is skipped; the app answers 413
            return 0
        append_bytes(&self.body, &self.body_len, &self.body_cap, data, size, 1024)
        return 0

    cdef bytes demo_response(self):
        """Route the request just framed through the demo app; count its route."""
        cdef ServeConfig config = self.config
        cdef Py_ssize_t route
        body = PyBytes_FromStringAndSize(self.body, self.body_len) if self.body_len else None
        route, response = config.demo_app.respond(
            self.request_method, self.request_target, self.request_authorization, body,
            self.body_too_large, <bytes>CONNECTION_HEADERS[self.request_kind], self.request_is_head,
            self.request_cookie)
        if 0 <= route < config.route_slots:
            config.own_route_counts[route] += 1
        self.request_method = self.request_target = self.request_authorization = self.request_cookie = None
        self.body_len = 0
        self.body_too_large = False
        return response

    cdef int keep_pending(self, const char* data, Py_ssize_t size) except -1:
        append_bytes(&self.pending, &self.pending_len, &self.pending_cap, data, size, 4096)
        return 0
