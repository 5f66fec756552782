# The open-model policy, included into _engine.pyx: the schedule, the queue
# of due requests, and handing them to free connections (plain runs) or free
# virtual users (flows, whose dispatch is in flows.pxi).
#
# The intended request rate is piecewise linear in time (stages).  N(t), the
# number of requests intended by t, is its integral: request g (0-based,
# global across workers) is intended at T(g) where N(T(g)) = g.  Times are
# absolute offsets from the common start, so nothing drifts over a long run.

from libc.math cimport sqrt



cdef int64_t schedule_time_of(Segment* segments, int n_segments, double g, int* cursor) noexcept:
    """T(g) in ns from the start, or NEVER_NS when the schedule ends first.
    `cursor` only moves forward: callers ask for increasing g."""
    cdef Segment* s
    cdef double x, seconds, duration_s, accel, disc
    while cursor[0] < n_segments and g >= segments[cursor[0]].count_end:
        cursor[0] += 1
    if cursor[0] >= n_segments:
        return NEVER_NS
    s = &segments[cursor[0]]
    x = g - s.count_start
    if x <= 0:
        return s.start_ns
    duration_s = (s.end_ns - s.start_ns) / 1e9
    accel = (s.rate_end - s.rate_start) / duration_s
    # Solve rate_start*t + accel*t^2/2 = x in the cancellation-free form.
    disc = s.rate_start * s.rate_start + 2.0 * accel * x
    if disc < 0:
        disc = 0
    seconds = 2.0 * x / (s.rate_start + sqrt(disc))
    return s.start_ns + <int64_t>(seconds * 1e9)


cdef void set_segments(Schedule* sched, list segments) except *:
    """The GLOBAL schedule: [(start_s, end_s, rate_start, rate_end)], with N() at each end."""
    cdef int i
    cdef double count = 0.0
    sched.n_segments = len(segments)
    sched.segments = <Segment*>calloc(max(sched.n_segments, 1), sizeof(Segment))
    if sched.segments == NULL:
        raise MemoryError()
    for i, (start_s, end_s, rate_start, rate_end) in enumerate(segments):
        sched.segments[i].start_ns = <int64_t>(start_s * 1e9)
        sched.segments[i].end_ns = <int64_t>(end_s * 1e9)
        sched.segments[i].rate_start = rate_start
        sched.segments[i].rate_end = rate_end
        sched.segments[i].count_start = count
        count += (rate_start + rate_end) / 2.0 * (end_s - start_s)
        sched.segments[i].count_end = count


cdef int64_t schedule_instant(Engine e, int64_t index, int* cursor) noexcept:
    """Absolute intended instant of a global request index (NEVER_NS past the end),
    rounded up to the grid."""
    cdef int64_t grid = e.schedule.grid_ns
    cdef int64_t offset = schedule_time_of(e.schedule.segments, e.schedule.n_segments, <double>index, cursor)
    if offset == NEVER_NS:
        return NEVER_NS
    return e.start_ns + (offset + grid - 1) // grid * grid


cdef void issue_due(Engine e, int64_t now) noexcept:
    """Move every request whose instant has come into the queue, drop those
    that waited longer than the timeout, hand out what free connections (VUs)
    allow, and arm the timer for the next one."""
    cdef Schedule* s = &e.schedule
    if not e.sending:
        return
    while s.next_due_ns <= now:
        if s.queued == 0:
            s.queue_head = s.next_index
            s.queue_head_ns = s.next_due_ns
        s.queued += 1
        s.due_total += 1
        s.next_index += s.index_step
        s.next_due_ns = schedule_instant(e, s.next_index, &s.due_cursor)
    drain_queue(e, now)
    e._arm_timer(e._next_timer_ns())


cdef void drain_queue(Engine e, int64_t now) noexcept:
    """Drop the due requests that waited longer than the timeout (loudly:
    counted), then the policy hands the rest to free connections or VUs."""
    cdef Schedule* s = &e.schedule
    while s.queued > 0 and now - s.queue_head_ns > e.timeout_ns:
        s.dropped += 1
        advance_head(e)
    e.policy.dispatch_due(e, now)


cdef void advance_head(Engine e) noexcept:
    """The oldest due request is gone (sent or dropped)."""
    cdef Schedule* s = &e.schedule
    s.queued -= 1
    s.queue_head += s.index_step
    if s.queued > 0:
        s.queue_head_ns = schedule_instant(e, s.queue_head, &s.head_cursor)


cdef void schedule_begin(Engine e) noexcept:
    e.schedule.next_due_ns = schedule_instant(e, e.schedule.next_index, &e.schedule.due_cursor)


# ---- plain runs: due requests go to free connections ----------------------------
cdef void send_due(Engine e, int64_t now) noexcept:
    """The dispatch of plain runs: each free connection takes the oldest due
    request; those still waiting open connections on demand, up to the maximum."""
    cdef Schedule* s = &e.schedule
    cdef Conn* c
    cdef int64_t wanted
    while s.queued > 0 and s.free_top > 0:
        s.free_top -= 1
        c = &e.conns[s.free_stack[s.free_top]]
        c.is_free = False
        if c.state != C_OPEN or c.in_flight != 0:
            continue                    # closed or busy since it was pushed
        send_one(e, c, s.queue_head_ns, now)
        advance_head(e)
    wanted = s.queued - e.counters.connecting_conns
    while wanted > 0:
        if s.n_parked > 0:              # a slot closed for idling first, then a new one
            s.n_parked -= 1
            c = &e.conns[s.parked[s.n_parked]]
        elif e.n_opened < e.active_limit:
            c = &e.conns[e.n_opened]
            e.n_opened += 1
        else:
            break
        e._connect(c, now)
        wanted -= 1


cdef void park(Engine e, Conn* c) noexcept:
    """Plain open model: close an idle connection (ours timed out, or the
    server closed it); send_due opens its slot again when due requests wait
    and no connection is free.  Not reconnected now: nothing needs it."""
    e._close(c, False)
    e.schedule.parked[e.schedule.n_parked] = c.index
    e.schedule.n_parked += 1


cdef void open_idle_closed(Engine e, Conn* c, int64_t now) noexcept:
    park(e, c)


cdef void send_one(Engine e, Conn* c, int64_t intended, int64_t now) noexcept:
    cdef int32_t slot = c.ring_head + c.in_flight
    if slot >= e.depth:
        slot -= e.depth
    e._commit(c, slot, intended, now)
    c.unsent_bytes += e.request_len
    e._flush(c)


cdef void on_idle(Engine e, Conn* c, int64_t now) noexcept:
    """A connection has nothing in flight: onto the free stack (LIFO, so it
    is popped first), and it takes the oldest waiting request."""
    c.idle_since_ns = now
    if not c.is_free:
        c.is_free = True
        e.schedule.free_stack[e.schedule.free_top] = c.index
        e.schedule.free_top += 1
    if e.sending and e.schedule.queued > 0:
        drain_queue(e, now)


# ---- the policy table -------------------------------------------------------------
cdef void open_start(Engine e, int64_t now) noexcept:
    cdef uint32_t i
    schedule_begin(e)
    for i in range(e.n_opened):
        if e.conns[i].state == C_OPEN:
            on_idle(e, &e.conns[i], now)
    issue_due(e, now)


cdef bint open_response(Engine e, Conn* c, int64_t now) noexcept:
    record_value(e.latency_us, (now - c.intended_ns[c.ring_head]) // 1000)
    record_value(e.latency_uncorrected_us, (now - c.sent_ns[c.ring_head]) // 1000)
    e._count_response(c)
    return keep_or_reconnect(e, c, now)


cdef void open_read_done(Engine e, Conn* c, int64_t now) noexcept:
    if c.in_flight == 0:
        on_idle(e, c, now)


cdef void open_failed(Engine e, Conn* c, int kind, int64_t now) noexcept:
    if e.stopped:
        return
    if not c.established:               # the connect or its handshake failed: back off, then retry
        e._retry_later(c, now)
    else:
        e._connect(c, now)


cdef Policy OPEN_PLAIN
OPEN_PLAIN.name = b"open"
OPEN_PLAIN.start = open_start
OPEN_PLAIN.connected = on_idle
OPEN_PLAIN.response = open_response
OPEN_PLAIN.read_done = open_read_done
OPEN_PLAIN.idle_closed = open_idle_closed
OPEN_PLAIN.failed = open_failed
OPEN_PLAIN.dispatch_due = send_due
OPEN_PLAIN.iteration_done = no_iteration
