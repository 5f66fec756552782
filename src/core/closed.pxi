# The closed-model policy (plain runs), included into _engine.pyx: every
# active connection keeps `depth` requests in flight; a response is answered
# by the next batch once the whole batch is in.

# sweep() checks a connection waiting on SO_RCVLOWAT for bytes stuck below
# the mark once its oldest request is this old (or twice the slowest recent
# response, if more).
DEF LOWAT_STALL_NS = 50_000_000
# The highest low-water mark set.  Linux grows the receive buffer to fit a
# mark and clamps the TCP window to it: at 64 KiB, 100-KiB responses
# pipelined 4 deep ran at ~0.6x the throughput.  A few KiB per wake-up
# already amortise it.
DEF LOWAT_MAX_BYTES = 16384


cdef void refill(Engine e, Conn* c, int64_t now) noexcept:
    """When a connection has nothing in flight, commit `depth` requests and
    write them in one send().  With pipelining this sends batches of D, as
    wrk's pipelining does: topping up after every read measured ~40% more
    kernel CPU per request (many small writes)."""
    if not e.sending or c.in_flight > 0:
        return
    if c.index >= e.active_limit:
        e._retire(c)
        return
    cdef int32_t want = e.depth, slot = c.ring_head, k
    if e.counted:
        if want > e.quota_left:
            want = <int32_t>e.quota_left
        e.quota_left -= want
    for k in range(want):               # the ring is empty: slots from ring_head on
        if slot >= e.depth:
            slot -= e.depth
        c.sent_ns[slot] = now           # (closed: latency counts from the write)
        slot += 1
    c.in_flight += want
    e.counters.in_flight_total += want
    c.unsent_bytes += want * e.request_len
    e._flush(c)


cdef void set_lowat(Engine e, Conn* c) noexcept:
    """Ask the kernel not to wake us for this connection until the bytes
    still expected can all be there (SO_RCVLOWAT): the rest of the current
    response, plus with batch timing every other response in flight, each
    counted at the smallest response size seen so far.  nginx writes each
    pipelined response separately, so waking per arrival cost ~15 recv()
    and wake-ups per batch of 16, on both sides of the loopback.  A
    response smaller than any seen before can leave us short of the mark:
    sweep() notices and lowers it (unstall).  One setsockopt() only when
    the mark changes, so a steady run makes none."""
    if c.in_flight == 0 or e.min_response_bytes == 0:
        return
    cdef int64_t want
    if c.framer.state == F_BODY_LENGTH and c.framer.remaining > 0:
        want = c.framer.remaining                    # exact
    else:
        want = e.min_response_bytes - c.response_bytes
        if want < 1:
            want = 1
    if e.batch_timing:
        want += (c.in_flight - 1) * e.min_response_bytes
    if want > e.lowat_max_bytes:        # (1 over TLS: the kernel counts ciphertext, the mark stays off)
        want = e.lowat_max_bytes
    if want != c.lowat:
        c.lowat = <int32_t>want
        setsockopt(c.fd, SOL_SOCKET, SO_RCVLOWAT, &c.lowat, sizeof(c.lowat))


cdef void unstall(Engine e, Conn* c) noexcept:
    """Bytes are waiting but fewer than the low-water mark (responses got
    smaller): drop the mark so that epoll reports them now."""
    cdef int pending = 0
    if ioctl(c.fd, FIONREAD, &pending) == 0 and pending > 0:
        c.lowat = 1
        setsockopt(c.fd, SOL_SOCKET, SO_RCVLOWAT, &c.lowat, sizeof(c.lowat))


# ---- the policy table -------------------------------------------------------------
cdef void closed_start(Engine e, int64_t now) noexcept:
    cdef uint32_t i
    for i in range(e.conn_count):
        if e.conns[i].state == C_OPEN:
            refill(e, &e.conns[i], now)


cdef void closed_connected(Engine e, Conn* c, int64_t now) noexcept:
    refill(e, c, now)                   # (nothing before start())


cdef bint closed_response(Engine e, Conn* c, int64_t now) noexcept:
    record_value(e.latency_us, (now - c.sent_ns[c.ring_head]) // 1000)
    e._count_response(c)
    return keep_or_reconnect(e, c, now)


cdef inline bint keep_or_reconnect(Engine e, Conn* c, int64_t now) noexcept:
    """After a response of a plain run.  The peer closes after it (Connection:
    close, or keep-alive off): unanswered requests are issued again on a new
    connection, not counted as errors.  With -n it reconnects only for
    requests that the connections already connecting will not take, so no
    new connection carries nothing (a request that fails goes back to the
    quota, and its own connection reconnects in closed_failed)."""
    if c.framer.keep_alive:
        return True
    e._close(c, True)
    if not e.stopped and not (e.counted and e.quota_left <= e.counters.connecting_conns * e.depth):
        e._connect(c, now)
    return False


cdef void closed_read_done(Engine e, Conn* c, int64_t now) noexcept:
    refill(e, c, now)
    if c.state == C_OPEN:
        set_lowat(e, c)


cdef void plain_idle_closed(Engine e, Conn* c, int64_t now) noexcept:
    """An idle keep-alive connection closed: open it again."""
    e._close(c, False)
    e._connect(c, now)


cdef void closed_failed(Engine e, Conn* c, int kind, int64_t now) noexcept:
    if e.stopped or c.index >= e.active_limit:
        return                          # (ramped down: stays closed)
    if not c.established:               # the connect or its handshake failed: back off, then retry
        e._retry_later(c, now)
    else:
        e._connect(c, now)


cdef void no_dispatch(Engine e, int64_t now) noexcept:
    pass


cdef void no_iteration(Engine e, uint32_t v, int64_t now) noexcept:
    pass


cdef void closed_set_active(Engine e, uint32_t wanted, int64_t now) noexcept:
    """Ramp to `wanted` connections: connect the new ones, retire the extra
    ones that have nothing in flight (the others after their response)."""
    cdef uint32_t i
    cdef Conn* c
    e.active_limit = min(wanted, e.conn_count)
    e.n_opened = max(e.n_opened, e.active_limit)
    for i in range(e.conn_count):
        c = &e.conns[i]
        if i < e.active_limit:
            if c.state == C_IDLE:
                e._connect(c, now)
        elif (c.state == C_RETRY_WAIT or c.state == C_CONNECTING or c.state == C_HANDSHAKE
              or (c.state == C_OPEN and c.in_flight == 0)):
            e._retire(c)


cdef Policy CLOSED_PLAIN
CLOSED_PLAIN.name = b"closed"
CLOSED_PLAIN.start = closed_start
CLOSED_PLAIN.connected = closed_connected
CLOSED_PLAIN.response = closed_response
CLOSED_PLAIN.read_done = closed_read_done
CLOSED_PLAIN.idle_closed = plain_idle_closed
CLOSED_PLAIN.failed = closed_failed
CLOSED_PLAIN.dispatch_due = no_dispatch
CLOSED_PLAIN.iteration_done = no_iteration
