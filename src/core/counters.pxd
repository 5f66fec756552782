# What the engine counts, cumulative (the parent takes deltas between snapshots).
from libc.stdint cimport int64_t

from surge.core._limits cimport ERR_KINDS, STATUS_MAX, STATUS_MIN, STATUS_SLOTS

cdef struct Counters:
    int64_t completed               # responses
    int64_t bytes_in
    int64_t bytes_out
    int64_t errors[ERR_KINDS]
    int64_t status_counts[STATUS_SLOTS]     # slot 0: a status outside STATUS_MIN..STATUS_MAX
    int64_t connects                # successful connects, reconnects included
    int64_t open_conns
    int64_t connecting_conns
    int64_t in_flight_total


cdef inline int status_slot(int status) noexcept nogil:
    """The counter slot of a status code (0 for one outside 100..599)."""
    return status if STATUS_MIN <= status <= STATUS_MAX else 0


# TLS, per engine: handshakes, the first session, why TLS failed.
cdef enum:
    TLS_REASON_SLOTS = 16           # distinct reasons kept; the rest count under "other"
    TLS_REASON_TEXT = 112           # bytes of one reason ("certificate verify failed (...)")

cdef struct TlsReason:
    char text[TLS_REASON_TEXT]
    int64_t count

cdef struct TlsCounters:
    int64_t full                    # handshakes done without resumption
    int64_t resumed                 # handshakes that resumed a session
    int n_reasons
    TlsReason reasons[TLS_REASON_SLOTS]
    int64_t other_reasons
    bint have_session               # the first completed handshake, below (libssl's static names)
    const char* protocol
    const char* cipher
    const char* group
    bint ktls_send
    bint ktls_recv
