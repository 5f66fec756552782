from libc.stdint cimport int64_t, uint64_t


cdef enum FrameState:
    READ_HEAD         # waiting for a complete request head
    READ_BODY         # skipping a Content-Length body (never buffered)
    READ_CHUNK_SIZE   # waiting for a chunk-size line
    READ_CHUNK_DATA   # skipping a chunk's data
    READ_CHUNK_END    # waiting for the CRLF after a chunk's data
    READ_TRAILER      # skipping trailer lines up to the blank line
    DISCARD           # the connection is closing: input is ignored


cdef class ServeConfig:
    cdef readonly object loop
    cdef readonly int status
    cdef readonly Py_ssize_t body_size_bytes
    cdef readonly int64_t delay_ns
    cdef readonly bint close
    cdef readonly bytes status_path
    cdef readonly Py_ssize_t worker_index

    cdef double delay_s
    # responses[kind * 2 + is_head]; kind: 0 HTTP/1.1 keep-alive,
    # 1 HTTP/1.0 keep-alive (says so), 2 close
    cdef list responses
    cdef bytes bad_request
    cdef bytes head_too_large

    cdef uint64_t[::1] counts          # one slot per worker, shared across processes
    cdef uint64_t* own_count           # &counts[worker_index]

    # scratch space to join the responses of one read; the loop is single-threaded
    # and a batch never outlives data_received, so one buffer serves every connection
    cdef char* batch_buf
    cdef Py_ssize_t batch_len
    cdef Py_ssize_t batch_cap

    cdef int batch_append(self, bytes data) except -1
    cdef bytes status_response(self, int kind, bint is_head)


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

    cdef bint closing               # the last response is queued; close after it
    cdef bint eof_seen              # the client half-closed (answers may still be owed)
    cdef Py_ssize_t delayed_batches # batches waiting on a --delay timer
    cdef Py_ssize_t delayed_bytes   # and their size

    # back-pressure: framing stops once a batch is large, until the client reads
    cdef bint backlogged            # complete requests wait in pending
    cdef bint write_paused          # the transport asked us to stop writing
    cdef bint reading_paused

    # responses for the current read, flushed with one write
    cdef bytes batch_first          # the first one, not copied unless a second comes
    cdef Py_ssize_t batch_responses
    cdef Py_ssize_t batch_bytes
    cdef bint batch_delayable       # holds a response that --delay applies to

    cdef Py_ssize_t frame(self, const char* buf, Py_ssize_t size) except -1
    cdef int parse_head(self, const char* head, Py_ssize_t size) except -1
    cdef int finish_request(self) except -1
    cdef int reject(self, bytes response) except -1
    cdef int queue(self, bytes response) except -1
    cdef int flush(self) except -1
    cdef int drain_backlog(self) except -1
    cdef int set_reading(self, bint wanted) except -1
    cdef int consume_pending(self, Py_ssize_t used) except -1
    cdef int keep_pending(self, const char* data, Py_ssize_t size) except -1
