# The open model's state (schedule.pxi): piecewise-linear rate segments, the
# due-request queue (an index range) and the stack of free connections or VUs.
from libc.stdint cimport int64_t, uint32_t

cdef struct Segment:
    int64_t start_ns        # offset from the run's start
    int64_t end_ns
    double rate_start       # requests/s at start_ns
    double rate_end         # requests/s at end_ns (linear in between)
    double count_start      # N(start_ns): requests intended before this segment
    double count_end        # N(end_ns)

cdef struct Schedule:
    Segment* segments
    int n_segments
    int64_t grid_ns             # due instants are rounded up to this grid: one wake-up per batch
    int64_t next_index          # next global request index this worker makes due
    int64_t index_step          # workers take every W-th index of the global schedule
    int due_cursor
    int head_cursor
    int64_t next_due_ns         # NEVER_NS: nothing is due (the closed model's value throughout)
    int64_t queue_head          # oldest due-but-unsent index
    int64_t queue_head_ns       # its intended instant
    int64_t queued
    int64_t due_total
    int64_t dropped
    uint32_t* free_stack        # free connections (plain) or VUs (flows)
    uint32_t free_top
    int64_t idle_timeout_ns     # open model: a connection idle this long is closed (0: never)
    uint32_t* parked            # plain: slots below n_opened closed for idling, reopened first
    uint32_t n_parked
