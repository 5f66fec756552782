# A transport: the operations on one connection's byte stream, chosen once
# per engine.  Plain TCP (tcp.pxi) is the first; TLS adds a second set (its
# per-connection state in Conn.transport_state), without touching the load
# policies, which only ever call these.
from surge.core.conn cimport Conn
from surge.core.includes.sys cimport sockaddr, socklen_t, ssize_t

# Results of handshake().
cdef enum:
    HANDSHAKE_DONE = 1
    HANDSHAKE_AGAIN = 0     # wants the socket readable/writable again (TLS)
    HANDSHAKE_FAILED = -1

ctypedef int (*open_fn)(Conn* c, int family, const sockaddr* addr, socklen_t addr_len) noexcept
ctypedef int (*handshake_fn)(Conn* c) noexcept
ctypedef ssize_t (*read_fn)(Conn* c, char* buf, size_t n) noexcept
ctypedef ssize_t (*write_fn)(Conn* c, const char* data, size_t n) noexcept
ctypedef void (*close_fn)(Conn* c) noexcept

cdef struct Transport:
    open_fn open            # socket + non-blocking connect: 0 (in progress or done), -1 (errno says)
    handshake_fn handshake  # once connected (HANDSHAKE_*); TCP: done at once
    read_fn read            # like recv(): > 0 bytes, 0 peer closed, -1 errno
    write_fn write          # like send()
    close_fn close          # close the socket, free the transport's state
