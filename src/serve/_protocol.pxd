from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uint64_t


cdef enum FrameState:
    READ_HEAD         # waiting for a complete request head
    READ_BODY         # skipping a Content-Length body (never buffered)
    READ_CHUNK_SIZE   # waiting for a chunk-size line
    READ_CHUNK_DATA   # skipping a chunk's data
    READ_CHUNK_END    # waiting for the CRLF after a chunk's data
    READ_TRAILER      # skipping trailer lines up to the blank line
    DISCARD           # the connection is closing: input is ignored


cdef enum DelayKind:
    DELAY_NONE
    DELAY_FIXED       # delay_a_ns
    DELAY_UNIFORM     # from delay_a_ns to delay_b_ns
    DELAY_EXP         # exponential, mean delay_a_ns
    DELAY_NORMAL      # normal, mean delay_a_ns, std dev delay_b_ns, redrawn below 0


cdef struct HeldBatch:
    # responses waiting for their delay or for a stall to end
    int64_t due_ns                  # CLOCK_MONOTONIC
    uint64_t seq                    # ties keep the order batches were held in
    PyObject* protocol              # owned references
    PyObject* data
    bint close_after
    bint ends_service               # its request held a service slot until due_ns


cdef struct Waiting:
    # a request waiting for a service slot (--service-time), in arrival order
    int64_t arrival_ns              # CLOCK_MONOTONIC, when it was read
    PyObject* protocol              # owned reference


cdef class ServeProtocol


cdef class ServeConfig:
    cdef readonly object loop
    cdef readonly int status
    cdef readonly Py_ssize_t body_size_bytes
    cdef readonly int delay_kind        # a DelayKind
    cdef readonly int64_t delay_a_ns
    cdef readonly int64_t delay_b_ns
    cdef readonly int64_t stall_ns
    cdef readonly int64_t stall_every_ns
    cdef readonly int64_t started_at_ns  # CLOCK_MONOTONIC; stalls are counted from it
    cdef readonly bint close
    cdef readonly bytes status_path
    cdef readonly Py_ssize_t worker_index
    cdef readonly str app               # "default" or "demo"
    cdef readonly int64_t service_ns    # --service-time: each request holds a slot this long; 0: off
    cdef readonly Py_ssize_t service_slots  # --concurrency: slots per worker (requests in service at once)

    cdef bint timed                     # a delay or stalls: responses may be held
    cdef uint64_t rng_state             # xorshift64*, never 0
    # responses[kind * 2 + is_head]; kind: 0 HTTP/1.1 keep-alive,
    # 1 HTTP/1.0 keep-alive (says so), 2 close
    cdef list responses
    cdef bytes bad_request
    cdef bytes head_too_large

    cdef uint64_t[::1] counts          # one slot per worker, shared across processes
    cdef uint64_t* own_count           # &counts[worker_index]

    # the demo app (--app demo): requests are routed by demo.DemoApp, which
    # needs the method, target, Authorization, Cookie and body of each request
    cdef bint demo
    cdef object demo_app               # demo.DemoApp, or None for the default app
    cdef tuple route_names             # demo.ROUTES
    cdef Py_ssize_t route_slots        # counter slots per worker (demo.ROUTE_SLOTS)
    cdef Py_ssize_t body_limit_bytes   # larger request bodies are skipped, flagged
    cdef uint64_t[::1] route_counts    # route_slots per worker, shared across processes
    cdef uint64_t* own_route_counts    # &route_counts[worker_index * route_slots]

    # scratch space to join the responses of one read; the loop is single-threaded
    # and a batch never outlives data_received, so one buffer serves every connection
    cdef char* batch_buf
    cdef Py_ssize_t batch_len
    cdef Py_ssize_t batch_cap

    # held responses: a binary min-heap on (due_ns, seq), woken by one timerfd
    cdef HeldBatch* held
    cdef Py_ssize_t held_len
    cdef Py_ssize_t held_cap
    cdef uint64_t held_seq
    cdef int timer_fd
    cdef int64_t armed_ns               # what the timerfd is set to; 0: disarmed

    # the service queue (--service-time/--concurrency): at most service_slots
    # requests in service, the rest wait here in FIFO order (a ring buffer)
    cdef Py_ssize_t in_service
    cdef Waiting* waiting
    cdef Py_ssize_t waiting_head
    cdef Py_ssize_t waiting_len
    cdef Py_ssize_t waiting_cap

    # hardening: every open connection (for the idle sweep) and the bounds
    cdef set open_protocols
    cdef readonly int64_t idle_timeout_ns   # no request completed (and no answer drained) this long: closed; 0: never
    cdef readonly Py_ssize_t max_connections  # more at once per worker are closed on accept; 0: no bound
    cdef readonly uint64_t closed_idle      # connections the idle sweep closed
    cdef readonly uint64_t refused_over_limit

    cdef int batch_append(self, bytes data) except -1
    cdef bytes status_response(self, int kind, bint is_head)
    cdef int64_t draw_delay_ns(self) noexcept nogil
    cdef int64_t stall_end_ns(self, int64_t at_ns) noexcept nogil
    cdef int hold(self, int64_t due_ns, ServeProtocol protocol, bytes data, bint close_after,
                  bint ends_service) except -1
    cdef int arm(self, int64_t due_ns) except -1
    cdef int admit(self, ServeProtocol protocol, int64_t arrival_ns) except -1
    cdef int start_service(self, ServeProtocol protocol, int64_t start_ns) except -1
    cdef int service_ended(self, int64_t ended_ns) except -1
    cdef bytes capacity_json(self)


cdef class ServeProtocol:
    cdef ServeConfig config
    cdef object transport
    cdef FrameState state

    # bytes of an incomplete head or line, kept until the rest arrives
    cdef char* pending
    cdef Py_ssize_t pending_len
    cdef Py_ssize_t pending_cap

    cdef int64_t body_left_bytes    # of the current Content-Length body or chunk

    # the request being framed, known once its head is parsed
    cdef bint request_chunked
    cdef bint request_is_head
    cdef bint request_is_status
    cdef int request_kind           # 0, 1, 2 as in ServeConfig.responses

    # demo app only: what routing needs, kept until the request is answered
    cdef bytes request_method
    cdef bytes request_target
    cdef bytes request_authorization  # the header's value, or None
    cdef bytes request_cookie       # the Cookie header's value (several lines joined by "; "), or None
    cdef char* body                 # the request body (de-chunked)
    cdef Py_ssize_t body_len
    cdef Py_ssize_t body_cap
    cdef bint body_too_large        # over config.body_limit_bytes: not kept

    cdef uint64_t requests_here     # requests framed on this connection (progress, for the idle sweep)
    cdef uint64_t requests_at_sweep # ... at the last sweep
    cdef Py_ssize_t buffered_at_sweep  # the transport's write buffer at the last sweep
    cdef int64_t idle_since_ns      # when it last made progress (CLOCK_MONOTONIC)
    cdef bint closing               # the last response is queued; close after it
    cdef bint eof_seen              # the client half-closed (answers may still be owed)
    cdef Py_ssize_t delayed_batches # batches held (delay or stall)
    cdef Py_ssize_t delayed_bytes   # and their size
    cdef int64_t now_ns             # when the input being framed was read (timed only)
    cdef int64_t last_due_ns        # due time of the latest held or batched response
    # --service-time: answers waiting for a slot, in request order ([bytes, close_after]
    # lists; an answer that needs no service, a status request's, rides on the one before)
    cdef object awaiting            # collections.deque, made on first use

    # back-pressure: framing stops once a batch is large, until the client reads
    cdef bint backlogged            # complete requests wait in pending
    cdef bint write_paused          # the transport asked us to stop writing
    cdef bint reading_paused

    # responses for the current read, flushed with one write
    cdef bytes batch_first          # the first one, not copied unless a second comes
    cdef Py_ssize_t batch_responses
    cdef Py_ssize_t batch_bytes
    cdef int64_t batch_due_ns       # when the batch may go out; 0: at once

    cdef Py_ssize_t frame(self, const char* buf, Py_ssize_t size) except -1
    cdef int parse_head(self, const char* head, Py_ssize_t size) except -1
    cdef int finish_request(self) except -1
    cdef int reject(self, bytes response) except -1
    cdef bint rides_along(self, bytes response, bint close_after) except -1
    cdef int await_service(self, bytes response) except -1
    cdef int finish_served_request(self) except -1
    cdef int queue(self, bytes response) except -1
    cdef int flush(self) except -1
    cdef int send_held(self, bytes data, bint close_after) except -1
    cdef int drain_backlog(self) except -1
    cdef int set_reading(self, bint wanted) except -1
    cdef int consume_pending(self, Py_ssize_t used) except -1
    cdef int keep_pending(self, const char* data, Py_ssize_t size) except -1
    cdef int keep_body(self, const char* data, Py_ssize_t size) except -1
    cdef bytes demo_response(self)
