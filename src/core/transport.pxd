# A transport: the operations on one connection's byte stream.  Each host's
# transport is chosen once, at set-up (Engine._set_hosts: plain TCP, tcp.pxi,
# or TLS, tls.pxi), and every connection points at its host's table
# (Conn.transport), so the core calls `tx(c).read(...)` and never asks which
# one runs.  The load policies never call these; they see plaintext bytes.
from surge.core._tls cimport Negotiated
from surge.core.conn cimport Conn
from surge.core.includes.sys cimport sockaddr, socklen_t, ssize_t

cdef extern from "<errno.h>" nogil:
    int EPROTO          # set by a transport for a TLS error (handshake, alert, record): error_text() says which
    int ECONNRESET
    int EPIPE
    int ENOMEM
    int EALREADY        # connect() again: the first is still in progress
    int EISCONN

cdef extern from *:
    """
    #include <errno.h>
    static inline void surge_set_errno(int value) { errno = value; }
    """
    void set_errno "surge_set_errno"(int value) noexcept nogil   # (assigning `errno` in Cython makes a local)

# Results of handshake().
cdef enum:
    HANDSHAKE_DONE = 1
    HANDSHAKE_WANT_READ = 0     # call again once the socket is readable
    HANDSHAKE_WANT_WRITE = 2    # call again once the socket is writable
    HANDSHAKE_FAILED = -1       # errno: EPROTO (a TLS error), else the socket's (a reset: ECONNRESET)

ctypedef int (*open_fn)(Conn* c, int family, const sockaddr* addr, socklen_t addr_len) noexcept
ctypedef int (*handshake_fn)(Conn* c, Negotiated* out) noexcept
ctypedef ssize_t (*read_fn)(Conn* c, char* buf, size_t n) noexcept
ctypedef ssize_t (*write_fn)(Conn* c, const char* data, size_t n) noexcept
ctypedef void (*close_fn)(Conn* c) noexcept
ctypedef void (*error_text_fn)(Conn* c, char* out, size_t cap) noexcept

cdef struct Transport:
    const char* name
    open_fn open            # socket + non-blocking connect: 0 (in progress or done), -1 (errno says)
    handshake_fn handshake  # once TCP is up (HANDSHAKE_*); fills `out` when done (TLS); TCP: done at once
    read_fn read            # like recv(): > 0 bytes, 0 peer closed, -1 errno (EAGAIN: nothing now).
                            #   Reads until `n` or until nothing is buffered in user space, so that
                            #   level-triggered epoll never leaves decrypted bytes stranded; a read
                            #   that fills `n` is followed by another (the core loops).
    write_fn write          # like send(); a retry may pass a moved and longer buffer (same bytes first)
    close_fn close          # close the socket, free the transport's state
    error_text_fn error_text  # after EPROTO: the reason, one line (and the TLS error queue emptied)
    bint plaintext_in_kernel  # the socket's receive queue holds what read() returns:
                              #   SO_RCVLOWAT and FIONREAD (closed.pxi) apply (TCP yes, TLS no)


cdef inline const Transport* tx(Conn* c) noexcept nogil:
    return <const Transport*>c.transport
