# Test-plan flows, included into _engine.pyx.
#
# A virtual user (VU) runs iterations: it picks a scenario by weight, takes
# the rows its data feeders give this iteration, and runs the scenario's steps
# in order.  Each step's request is rendered from a template (literal bytes and
# slots filled here in C), sent on the VU's connection to the step's host, and
# its response is checked and mined for variables only when the step asks
# (capture is off otherwise: the body is framed and dropped as usual).  Think
# time parks the VU in a min-heap served by the engine's timerfd.

from libc.math cimport log

cdef extern from "<string.h>" nogil:
    void* memmem(const void* haystack, size_t hlen, const void* needle, size_t nlen)

cdef extern from "<regex.h>" nogil:
    ctypedef struct regex_t:
        pass
    ctypedef int regoff_t
    ctypedef struct regmatch_t:
        regoff_t rm_so
        regoff_t rm_eo
    int regcomp(regex_t* preg, const char* regex, int cflags)
    int regexec(const regex_t* preg, const char* string, size_t nmatch, regmatch_t* pmatch, int eflags)
    void regfree(regex_t* preg)
    int REG_EXTENDED

DEF MAX_REGEX_GROUPS = 10
DEF UNIT_SCALE = 1.0 / 9007199254740992.0     # 2**-53: 53 random bits -> [0, 1)
DEF INT64_MAX_US = 0x7FFFFFFFFFFFFFFF           # a step's best time before its first response

# The table codes (PART_*, ESCAPE_*, EXTRACT_*, THINK_*, ORDER_*, SC_*, SCN_*)
# are in _limits.pxd, shared with surge.run.flows.

DEF VU_IDLE = 0             # open model: free for the next iteration
DEF VU_BUSY = 1             # a request is being sent, awaited, or its connection opened
DEF VU_THINKING = 2
DEF VU_DONE = 3             # its data ran out (on_exhausted: stop)



# ---- iterations ------------------------------------------------------------------
cdef uint64_t flow_rand(Engine e) noexcept:
    # xorshift64*: fast, good enough for scenario picks, think times and data.
    e.flow.rng ^= e.flow.rng >> 12
    e.flow.rng ^= e.flow.rng << 25
    e.flow.rng ^= e.flow.rng >> 27
    return e.flow.rng * <uint64_t>2685821657736338717


cdef void vu_begin(Engine e, uint32_t v, int64_t intended, int64_t now) noexcept:
    """Start an iteration: scenario by weight, this iteration's data rows.
    A scenario whose data ran out (on_exhausted: stop) is skipped from then
    on; when none is left, the VU is done."""
    cdef VU* vu = &e.flow.vus[v]
    cdef int s, tries
    if e.counted:               # -n (--targets: an iteration is one request)
        if e.quota_left <= 0:
            vu.state = VU_IDLE
            return
        e.quota_left -= 1
    for tries in range(4 * e.flow.n_scenarios + 4):
        s = pick_scenario(e)
        if s < 0:
            break
        if not take_rows(e, vu, &e.flow.scenarios[s]):
            continue                    # its data just ran out: pick again
        vu.scenario = s
        vu.pos = 0
        vu.iteration += 1
        vu.intended_ns = intended
        jar_new_iteration(e, vu)
        vu.hops = 0
        e.flow.scenario_counts[s * SCN_COUNTERS + SCN_STARTED] += 1
        vu_send(e, v, now)
        return
    vu.state = VU_DONE
    e.flow.vus_done += 1


cdef int pick_scenario(Engine e) noexcept:
    """A scenario by weight, or the next in turn (rotate); a disabled one is
    replaced by one still running (-1: none)."""
    cdef double pick
    cdef int s = 0
    if e.flow.rotate:
        s = e.flow.next_scenario
        e.flow.next_scenario = (s + 1) % e.flow.n_scenarios
        return first_enabled_scenario(e) if e.flow.scenarios[s].disabled else s
    pick = (flow_rand(e) >> 11) * UNIT_SCALE
    while s < e.flow.n_scenarios - 1 and pick >= e.flow.scenarios[s].weight_upto:
        s += 1
    if e.flow.scenarios[s].disabled:
        return first_enabled_scenario(e)
    return s


cdef bint take_rows(Engine e, VU* vu, Scenario* scn) noexcept:
    """This iteration's row of each feeder the scenario reads.  False (and the
    scenario disabled) when a feeder with on_exhausted: stop has run out."""
    cdef int k
    cdef Feeder* f
    for k in range(scn.n_feeders):
        f = &e.flow.feeders[scn.feeders[k]]
        if f.order != ORDER_RANDOM and f.next >= f.n_rows:
            if f.stop_when_done:
                scn.disabled = True
                return False
            f.next %= f.n_rows
    for k in range(scn.n_feeders):
        f = &e.flow.feeders[scn.feeders[k]]
        if f.order == ORDER_RANDOM:
            vu.rows[scn.feeders[k]] = <int64_t>(flow_rand(e) % <uint64_t>f.n_rows)
        else:
            vu.rows[scn.feeders[k]] = f.next
            f.next += f.stride
    return True


cdef int first_enabled_scenario(Engine e) noexcept:
    """A scenario still running, picked by weight among those left (-1: none)."""
    cdef double total = 0.0, previous = 0.0, pick
    cdef int s
    for s in range(e.flow.n_scenarios):
        if not e.flow.scenarios[s].disabled:
            total += e.flow.scenarios[s].weight_upto - previous
        previous = e.flow.scenarios[s].weight_upto
    if total <= 0:
        return -1
    pick = (flow_rand(e) >> 11) * UNIT_SCALE * total
    previous = 0.0
    for s in range(e.flow.n_scenarios):
        if not e.flow.scenarios[s].disabled:
            pick -= e.flow.scenarios[s].weight_upto - previous
            if pick < 0:
                return s
        previous = e.flow.scenarios[s].weight_upto
    for s in range(e.flow.n_scenarios - 1, -1, -1):
        if not e.flow.scenarios[s].disabled:
            return s
    return -1



cdef void vu_send(Engine e, uint32_t v, int64_t now) noexcept:
    """The VU's current step goes out on its connection to the step's host
    (opened first if need be: vu_resume sends it then)."""
    cdef VU* vu = &e.flow.vus[v]
    cdef Step* st = &e.flow.steps[e.flow.scenarios[vu.scenario].steps[vu.pos]]
    cdef Conn* c = &e.conns[v * e.n_hosts + st.host]
    if vu.hops:
        hop_send(e, v, now)             # a redirect's next request (redirect.pxi)
        return
    vu.state = VU_BUSY
    if c.state == C_IDLE:
        e._connect(c, now)           # the request goes out once connected
        return
    if c.state != C_OPEN:
        return
    if not render_step(e, c, st, vu, v):
        vu_abort(e, v, ERR_WRITE, 0, now)
        return
    framer_reset(&c.framer)
    c.framer.head_request = st.head_request
    c.framer.capture = st.capture
    c.framer.cap_len = 0
    c.framer.cookie_jar = jar_sink(vu, st)
    e._commit(c, c.ring_head, vu.intended_ns if vu.intended_ns else now, now)
    e._flush(c)



cdef void vu_after_response(Engine e, Conn* c, int64_t latency_us, int64_t now, bint defer) noexcept:
    """Account the step, run its checks and extractions, then think or go on.
    defer: the connection closes after this response, so the VU goes on from
    the timer (after the close), not from inside this callback."""
    cdef uint32_t v = c.index // e.n_hosts
    cdef VU* vu = &e.flow.vus[v]
    cdef int sid = e.flow.scenarios[vu.scenario].steps[vu.pos]
    cdef Step* st = &e.flow.steps[sid]
    cdef int64_t* counts = e.flow.step_counts + sid * FLOW_COUNTERS
    cdef int64_t think
    if st.follow_max and redirect_take(e, c, v, st, sid, &latency_us, now, defer):
        return                          # a redirect followed: the step goes on (redirect.pxi)
    record_value(<Histogram>e.step_latency[sid], latency_us)
    counts[SC_RESPONSES] += 1
    e.flow.step_statuses[sid * STATUS_SLOTS + status_slot(c.framer.status)] += 1
    counts[SC_CHECKS] += st.n_checks
    counts[SC_CHECK_FAILURES] += failed_checks(st, &c.framer, latency_us) + failed_extracts(st, &c.framer, vu)
    c.framer.cap_len = 0
    think = think_ns(e, st)
    chain_intended(e, vu, sid, latency_us, think, now)
    if defer and think == 0:
        think = 1
    if think > 0:
        vu.state = VU_THINKING
        heap_push(e, v, now + think)
    else:
        vu_next(e, v, now)


# ---- corrected latency along an iteration (open model) ---------------------------
# An open-model iteration is due at its arrival instant (the schedule), and so
# is its first step.  Each later step is due at its predecessor's intended
# completion plus the think time drawn for it:
#
#     intended[k+1] = intended[k] + best[k] + think[k]
#
# where best[k] is step k's fastest response so far in this worker (µs from
# the write): the intended chain is the iteration as it would have run had
# every step been served as fast as this server serves it.  Why not the
# predecessor's measured latency (intended[k] + latency[k]): that takes a
# stall that held step k into step k+1's intended instant, so k+1 would look
# healthy although the stall delayed it by as much as it delayed k.  With the
# best time, whatever held step k back (a stall, a server queue, a late
# wake-up, a VU that waited for its connection) stays in the corrected
# latency of every later step it delays; a step's uncorrected latency (from
# its own write) shows only what happened to that request.  Two more reasons
# for the minimum over an estimate of the typical time: a stall only ever
# raises latencies, so it cannot move the minimum (an average or a median
# seen during a stall would absorb part of it); and best[k] <= this response's
# latency, so intended[k+1] <= the actual send (which comes think[k] after
# the response, or later), and corrected >= uncorrected by construction, as
# for a first step.  The price: ordinary variation of earlier steps above
# their best counts too (a few tens of µs per step on loopback).
cdef inline void chain_intended(Engine e, VU* vu, int sid, int64_t latency_us, int64_t think,
                                int64_t now) noexcept:
    """After step `sid`'s response (a redirect chain's last: latency_us is the
    chain's): the step's corrected latency, then the VU's next step's intended
    instant (open model; the closed model keeps 0, timed from the send)."""
    cdef int64_t* best
    if vu.intended_ns == 0:
        return
    record_step_corrected(e, vu, sid, now)
    best = e.flow.step_best_us + sid
    if latency_us < best[0]:
        best[0] = latency_us
    vu.intended_ns += best[0] * 1000 + think


cdef inline void record_step_corrected(Engine e, VU* vu, int sid, int64_t now) noexcept:
    """Open model: the step's latency from its intended instant to its (last) response, in its own histogram."""
    record_value(<Histogram>e.step_latency_corrected[sid], (now - vu.intended_ns) // 1000)


cdef void use_open_step_latency(Engine e) except *:
    """The open model's per-step state: a corrected histogram and a best time per step."""
    cdef int i
    e.step_latency_corrected = [Histogram() for _ in range(e.flow.n_steps)]
    e.flow.step_best_us = <int64_t*>malloc(max(e.flow.n_steps, 1) * sizeof(int64_t))
    if e.flow.step_best_us == NULL:
        raise MemoryError()
    for i in range(e.flow.n_steps):
        e.flow.step_best_us[i] = INT64_MAX_US


cdef int failed_checks(Step* st, Framer* f, int64_t latency_us) noexcept:
    """How many of the step's expectations (status, body, latency) failed."""
    cdef const char* body = f.cap_buf + f.cap_head_len if f.cap_buf != NULL else NULL
    cdef int64_t body_len = f.cap_len - f.cap_head_len if f.cap_buf != NULL else 0
    cdef int failures = 0
    if st.status_ok != NULL:
        failures += not st.status_ok[status_slot(f.status)]
    if st.body_contains != NULL:
        failures += body == NULL or memmem(body, body_len, st.body_contains, st.body_contains_len) == NULL
    if st.body_regex != NULL:
        failures += body == NULL or regexec(<regex_t*>st.body_regex, body, 0, NULL, 0) != 0
    if st.max_latency_us:
        failures += latency_us > st.max_latency_us
    return failures


cdef int failed_extracts(Step* st, Framer* f, VU* vu) noexcept:
    """Run the step's extractions into the VU's variables; how many found nothing
    (each is a check: its variable is then empty)."""
    cdef int k, failures = 0
    cdef int64_t start = 0, length = 0
    cdef Extract* ex
    for k in range(st.n_extracts):
        ex = &st.extracts[k]
        vu.var_lengths[ex.var] = 0
        vu.var_types[ex.var] = VAR_UNSET
        if ex.kind == EXTRACT_COOKIE:
            if jar_extract(vu, ex):
                vu.var_types[ex.var] = VAR_TEXT
            else:
                failures += 1
        elif not find_extract(ex, f, &start, &length):
            failures += 1
        elif set_variable(vu, ex.var, f.cap_buf + start, length):
            vu.var_lengths[ex.var] = <int32_t>length
            vu.var_types[ex.var] = extracted_type(ex, f, start)
    return failures


cdef bint find_extract(Extract* ex, Framer* f, int64_t* start, int64_t* length) noexcept:
    """Where the extraction's value is in the captured head + body."""
    cdef const char* body = f.cap_buf + f.cap_head_len if f.cap_buf != NULL else NULL
    cdef int64_t body_len = f.cap_len - f.cap_head_len if f.cap_buf != NULL else 0
    cdef regmatch_t groups[MAX_REGEX_GROUPS]
    if ex.kind == EXTRACT_HEADER:
        return f.cap_buf != NULL and header_value(f.cap_buf, f.cap_head_len, ex.name, ex.name_len, start, length)
    if body == NULL:
        return False
    if ex.kind == EXTRACT_JSON:
        if not json_find(body, body_len, ex.segments, ex.n_segments, start, length):
            return False
        start[0] += f.cap_head_len
        return True
    if (regexec(<regex_t*>ex.regex, body, MAX_REGEX_GROUPS, groups, 0) != 0 or ex.group >= MAX_REGEX_GROUPS
            or groups[ex.group].rm_so < 0):
        return False
    start[0] = f.cap_head_len + groups[ex.group].rm_so
    length[0] = groups[ex.group].rm_eo - groups[ex.group].rm_so
    return True


cdef inline unsigned char extracted_type(Extract* ex, Framer* f, int64_t start) noexcept:
    """VAR_* of a value just extracted: a JSON path's string starts right after
    its opening quote; any other JSON value follows ':', ',', '[', a space or
    the head's last line break, never a quote."""
    if ex.kind != EXTRACT_JSON:
        return VAR_TEXT
    return VAR_JSON_STRING if f.cap_buf[start - 1] == b'"' else VAR_JSON


cdef bint set_variable(VU* vu, int var, const char* value, int64_t length) noexcept:
    """Copy a value into the VU's buffer for `var` (grown a few times per VU, then never)."""
    cdef char* grown
    if length > vu.var_caps[var]:
        grown = <char*>realloc(vu.var_values[var], length)
        if grown == NULL:
            return False
        vu.var_values[var] = grown
        vu.var_caps[var] = <int32_t>length
    if length > 0:
        memcpy(vu.var_values[var], value, length)
    return True


cdef int64_t think_ns(Engine e, Step* st) noexcept:
    if st.think_kind == THINK_CONSTANT:
        return st.think_a_ns
    if st.think_kind == THINK_UNIFORM:
        return st.think_a_ns + <int64_t>(flow_rand(e) % <uint64_t>(st.think_b_ns - st.think_a_ns + 1))
    if st.think_kind == THINK_EXPONENTIAL:
        return <int64_t>(-st.think_a_ns * log(1.0 - (flow_rand(e) >> 11) * UNIT_SCALE))
    return 0


cdef void vu_next(Engine e, uint32_t v, int64_t now) noexcept:
    cdef VU* vu = &e.flow.vus[v]
    if vu.aborted:
        vu.aborted = False
        vu_end_iteration(e, v, now)
        return
    if vu.hops:
        vu_send(e, v, now)              # a redirect's hop, after its connection closed (redirect.pxi)
        return
    vu.pos += 1
    if vu.pos >= e.flow.scenarios[vu.scenario].n_steps:
        e.flow.scenario_counts[vu.scenario * SCN_COUNTERS + SCN_COMPLETED] += 1
        vu_end_iteration(e, v, now)
    elif e.sending:
        vu_send(e, v, now)



cdef void vu_end_iteration(Engine e, uint32_t v, int64_t now) noexcept:
    if e.sending:
        e.policy.iteration_done(e, v, now)



cdef void vu_abort(Engine e, uint32_t v, int kind, int64_t wait_ns, int64_t now) noexcept:
    """A transport error ends the iteration (later steps may need what this
    one would have extracted); the VU starts over after `wait_ns`: 0, or the
    retry back-off when the connection never got through its connect or
    handshake (a refused port or a certificate that fails would otherwise spin)."""
    cdef VU* vu = &e.flow.vus[v]
    cdef int sid
    if vu.state == VU_DONE or vu.state == VU_IDLE:
        return
    sid = e.flow.scenarios[vu.scenario].steps[vu.pos]
    e.flow.step_counts[sid * FLOW_COUNTERS + SC_ERRORS] += 1
    e.flow.step_counts[sid * FLOW_COUNTERS + SC_ERRORS + 1 + kind] += 1
    e.flow.scenario_counts[vu.scenario * SCN_COUNTERS + SCN_ABORTED] += 1
    vu.aborted = True                   # the next wake ends the iteration
    vu.state = VU_THINKING
    heap_push(e, v, now + wait_ns)



cdef void heap_push(Engine e, uint32_t v, int64_t wake_ns) noexcept:
    cdef uint32_t i = e.flow.heap_len, parent
    e.flow.heap_len += 1
    while i > 0:
        parent = (i - 1) // 2
        if e.flow.heap_wake[parent] <= wake_ns:
            break
        e.flow.heap_wake[i] = e.flow.heap_wake[parent]
        e.flow.heap_vu[i] = e.flow.heap_vu[parent]
        i = parent
    e.flow.heap_wake[i] = wake_ns
    e.flow.heap_vu[i] = v
    e._arm_timer(e._next_timer_ns())



cdef void wake_thinkers(Engine e, int64_t now) noexcept:
    cdef uint32_t v, i, child, last_vu
    cdef int64_t last_wake
    while e.flow.heap_len > 0 and e.flow.heap_wake[0] <= now and e.sending:
        v = e.flow.heap_vu[0]
        e.flow.heap_len -= 1
        last_wake, last_vu = e.flow.heap_wake[e.flow.heap_len], e.flow.heap_vu[e.flow.heap_len]
        i = 0
        while True:
            child = 2 * i + 1
            if child >= e.flow.heap_len:
                break
            if child + 1 < e.flow.heap_len and e.flow.heap_wake[child + 1] < e.flow.heap_wake[child]:
                child += 1
            if e.flow.heap_wake[child] >= last_wake:
                break
            e.flow.heap_wake[i] = e.flow.heap_wake[child]
            e.flow.heap_vu[i] = e.flow.heap_vu[child]
            i = child
        e.flow.heap_wake[i] = last_wake
        e.flow.heap_vu[i] = last_vu
        vu_next(e, v, now)
    e._arm_timer(e._next_timer_ns())



cdef bint flow_response_open(Engine e, Conn* c, int64_t now) noexcept:
    """The open model also records latency from the write (uncorrected); each
    step's own corrected latency is chain_intended's (vu_after_response)."""
    record_value(e.latency_uncorrected_us, (now - c.sent_ns[c.ring_head]) // 1000)
    c.idle_since_ns = now
    return flow_response(e, c, now)


cdef bint flow_response(Engine e, Conn* c, int64_t now) noexcept:
    """A flow step's response ended: record it from the intended instant (the
    step's own histogram: from the write; the open model's corrected one is
    chain_intended's), then the VU goes on.  False: a step
    has one request, nothing more is framed from this read."""
    cdef int64_t latency_us = (now - c.sent_ns[c.ring_head]) // 1000
    record_value(e.latency_us, (now - c.intended_ns[c.ring_head]) // 1000)
    e._count_response(c)
    cdef bint closing = not c.framer.keep_alive
    vu_after_response(e, c, latency_us, now, closing)
    if closing:
        e._close(c, False)           # reconnected when the VU next needs this host
    return False



cdef inline int64_t request_timeout_ns(Engine e, Conn* c) noexcept:
    """How old the oldest request on c may get: its step's own timeout (a plan's
    `timeout:` or `defaults: timeout:`), else the engine's.  Read by the sweep
    (a few times a second per connection), never per request."""
    cdef VU* vu
    cdef int64_t step_ns
    if not e.flows:
        return e.timeout_ns
    vu = &e.flow.vus[c.index // e.n_hosts]
    step_ns = e.flow.steps[e.flow.scenarios[vu.scenario].steps[vu.pos]].timeout_ns
    return step_ns if step_ns > 0 else e.timeout_ns



# ---- the policy tables ------------------------------------------------------------
cdef void flows_connected(Engine e, Conn* c, int64_t now) noexcept:
    """A VU's connection just opened: send the step that waited for it."""
    cdef uint32_t v = c.index // e.n_hosts
    if e.flow.vus[v].state == VU_BUSY and e.sending:
        vu_send(e, v, now)


cdef void flows_read_done(Engine e, Conn* c, int64_t now) noexcept:
    pass                                # the response is not complete yet


cdef void flows_idle_closed(Engine e, Conn* c, int64_t now) noexcept:
    e._close(c, False)                  # reconnected when the VU next needs it


cdef void close_idle(Engine e, Conn* c) noexcept:
    """The open model's idle timeout (Engine._sweep_conn): a connection with
    nothing in flight for that long is closed.  Plain: its slot is parked for
    send_due.  Flows: only while its VU is free (a VU thinking mid-iteration
    keeps it); the VU reconnects when it next needs the host."""
    if not e.flows:
        park(e, c)
    elif e.flow.vus[c.index // e.n_hosts].state == VU_IDLE:
        e._close(c, False)


cdef void flows_failed(Engine e, Conn* c, int kind, int64_t now) noexcept:
    """A VU's connection failed.  One that never got through its connect or
    handshake waits the plain connections' bounded, jittered back-off
    (Engine._retry_delay_ns: 50 ms doubling to 800 ms with each failure in a
    row), so many VUs against a target that is down make no busy loop."""
    cdef bint never_up = kind == ERR_CONNECT or not c.established
    vu_abort(e, c.index // e.n_hosts, kind, e._retry_delay_ns(c, now) if never_up else 0, now)


cdef void flows_closed_start(Engine e, int64_t now) noexcept:
    cdef uint32_t v
    for v in range(min(e.active_limit, e.flow.n_vus)):
        vu_begin(e, v, 0, now)


cdef void flows_closed_iteration_done(Engine e, uint32_t v, int64_t now) noexcept:
    if v >= e.active_limit:
        e.flow.vus[v].state = VU_IDLE   # ramped down: parked until wanted again
    else:
        vu_begin(e, v, 0, now)


cdef void flows_set_active(Engine e, uint32_t wanted, int64_t now) noexcept:
    """Closed model: `wanted` VUs run; extra ones park after their iteration."""
    cdef uint32_t v
    e.active_limit = min(wanted, e.flow.n_vus)
    if e.sending:
        for v in range(e.active_limit):
            if e.flow.vus[v].state == VU_IDLE:
                vu_begin(e, v, 0, now)


cdef void flows_open_start(Engine e, int64_t now) noexcept:
    cdef uint32_t v
    for v in range(e.flow.n_vus):      # every VU free, VU 0 on top
        e.schedule.free_stack[e.schedule.free_top] = e.flow.n_vus - 1 - v
        e.schedule.free_top += 1
    schedule_begin(e)
    issue_due(e, now)


cdef void start_due_iterations(Engine e, int64_t now) noexcept:
    """The open model's dispatch with flows: each due arrival starts an
    iteration on a free VU."""
    cdef int64_t intended
    while e.schedule.queued > 0 and e.schedule.free_top > 0:
        e.schedule.free_top -= 1
        intended = e.schedule.queue_head_ns
        advance_head(e)
        vu_begin(e, e.schedule.free_stack[e.schedule.free_top], intended, now)


cdef void flows_open_iteration_done(Engine e, uint32_t v, int64_t now) noexcept:
    e.flow.vus[v].state = VU_IDLE
    e.schedule.free_stack[e.schedule.free_top] = v
    e.schedule.free_top += 1
    if e.schedule.queued > 0:
        drain_queue(e, now)


cdef Policy FLOWS_CLOSED
FLOWS_CLOSED.name = b"flows-closed"
FLOWS_CLOSED.start = flows_closed_start
FLOWS_CLOSED.connected = flows_connected
FLOWS_CLOSED.response = flow_response
FLOWS_CLOSED.read_done = flows_read_done
FLOWS_CLOSED.idle_closed = flows_idle_closed
FLOWS_CLOSED.failed = flows_failed
FLOWS_CLOSED.dispatch_due = no_dispatch
FLOWS_CLOSED.iteration_done = flows_closed_iteration_done

cdef Policy FLOWS_OPEN
FLOWS_OPEN.name = b"flows-open"
FLOWS_OPEN.start = flows_open_start
FLOWS_OPEN.connected = flows_connected
FLOWS_OPEN.response = flow_response_open
FLOWS_OPEN.read_done = flows_read_done
FLOWS_OPEN.idle_closed = flows_idle_closed
FLOWS_OPEN.failed = flows_failed
FLOWS_OPEN.dispatch_due = start_due_iterations
FLOWS_OPEN.iteration_done = flows_open_iteration_done



