# One connection of the engine: a C struct in one array (like wrk's).
from libc.stdint cimport int32_t, int64_t, uint32_t

from surge.core.framing cimport Framer

cdef enum:
    C_IDLE = 0          # no socket
    C_CONNECTING        # non-blocking TCP connect in progress
    C_OPEN              # connected (handshake done), keep-alive
    C_RETRY_WAIT        # connect failed; retried by sweep() after a back-off
    C_HANDSHAKE         # TCP up, the transport's handshake (TLS) in progress; counted as connecting

cdef struct Conn:
    int fd
    int state
    uint32_t index              # in Engine.conns; flows: vu * hosts + host
    int32_t in_flight           # requests committed and not yet answered
    int32_t ring_head           # slot of the oldest in-flight request
    int64_t* sent_ns            # ring of `depth` send instants (into Engine.sent_ns)
    int64_t* intended_ns        # open model: ring of intended send instants
    bint is_free                # open model: on the free stack
    int64_t idle_since_ns       # open model: when it last had nothing in flight (the idle timeout's start)
    const char* out             # the bytes being sent: Engine.request_buf, or `rendered`
    int64_t out_pos             # next byte of `out` to write
    int64_t out_wrap            # out_pos wraps here (the fast path's repeated request); flows: never
    char* rendered              # flows: this connection's rendered request (owned)
    int64_t rendered_cap
    int64_t unsent_bytes        # committed request bytes not yet written
    bint want_write             # EPOLLOUT registered
    bint in_epoll               # the socket is in the engine's epoll set (ADD done; close() removes it)
    bint early_up               # its connect completed at once: on Engine.early_list, not yet in epoll
    int64_t state_since_ns      # when connecting started (through the handshake) / retry is due
    int64_t tcp_up_ns           # when the TCP connect completed (the handshake's start)
    bint established            # this attempt got through its handshake (else a failure backs off, like a connect's)
    int32_t connect_failures    # failed attempts in a row: the back-off doubles with each (Engine._retry_later)
    int64_t response_bytes      # bytes of the response being framed, so far
    int32_t lowat               # the socket's SO_RCVLOWAT (1: the kernel default)
    const void* transport       # its host's Transport (transport.pxd; opaque here: transport.pxd cimports Conn)
    void* transport_host        # what the transport shares per host (TLS: the context's TlsShared); TCP: NULL
    void* transport_state       # the transport's per-connection state (TLS: its SSL); TCP: NULL
    const void* bind_addr       # --bind: this connection's source sockaddr (NULL: the kernel's choice)
    uint32_t bind_len
    Framer framer
