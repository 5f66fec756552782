# The open-model schedule, included into _engine.pyx.
#
# The intended request rate is piecewise linear in time (stages).  N(t), the
# number of requests intended by t, is its integral: request g (0-based,
# global across workers) is intended at T(g) where N(T(g)) = g.  Times are
# absolute offsets from the common start, so nothing drifts over a long run.

from libc.math cimport sqrt

DEF NEVER_NS = 0x7fffffffffffffff


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


cdef double schedule_count_at(Segment* segments, int n_segments, int64_t offset_ns) noexcept:
    """N(offset): requests intended from the start up to `offset_ns`."""
    cdef int i
    cdef double t, duration_s
    if n_segments == 0 or offset_ns <= segments[0].start_ns:
        return 0.0
    for i in range(n_segments):
        if offset_ns < segments[i].end_ns:
            t = (offset_ns - segments[i].start_ns) / 1e9
            duration_s = (segments[i].end_ns - segments[i].start_ns) / 1e9
            return (segments[i].count_start + segments[i].rate_start * t
                    + 0.5 * (segments[i].rate_end - segments[i].rate_start) / duration_s * t * t)
    return segments[n_segments - 1].count_end
