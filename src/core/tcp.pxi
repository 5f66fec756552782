# The plain TCP transport (transport.pxd), included into _engine.pyx.
# Each operation is the socket call itself; TLS (tls.pxi) wraps them.

cdef extern from *:
    """
    #include <netinet/in.h>
    #ifndef IP_BIND_ADDRESS_NO_PORT
    #define IP_BIND_ADDRESS_NO_PORT 24
    #endif
    """
    int IP_BIND_ADDRESS_NO_PORT     # bind() keeps the port open until connect() picks it per 4-tuple


cdef int tcp_open(Conn* c, int family, const sockaddr* addr, socklen_t addr_len) noexcept:
    """A non-blocking socket with TCP_NODELAY, its connect() started."""
    cdef int one = 1, saved
    c.fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
    if c.fd < 0:
        return -1
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
    if c.bind_len:                  # --bind: this source address, the port chosen by connect()
        setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one))
        if bind(c.fd, <const sockaddr*>c.bind_addr, c.bind_len) < 0:
            saved = errno
            close(c.fd)
            c.fd = -1
            set_errno(saved)
            return -1
    if connect(c.fd, addr, addr_len) < 0 and errno != EINPROGRESS:
        saved = errno               # (the caller tells ports and descriptors running out by it)
        close(c.fd)
        c.fd = -1
        set_errno(saved)
        return -1
    return 0


cdef int tcp_connected(Conn* c, const sockaddr* addr, socklen_t addr_len) noexcept:
    """Whether the connect that tcp_open() started has completed: 1 yes,
    0 still in progress, -1 it failed (errno says why).  connect() again on
    the socket answers it in one call, sending nothing: 0 once the TCP
    handshake is done, EALREADY while it runs, the first attempt's error
    (ECONNREFUSED) if it failed.  (A zero-length send() cannot tell: this
    kernel returns 0 for it while the SYN is unanswered.)"""
    if connect(c.fd, addr, addr_len) == 0:
        return 1
    if errno == EISCONN:
        return 1
    if errno == EALREADY or errno == EINPROGRESS or errno == EINTR:
        return 0
    return -1


cdef int tcp_handshake(Conn* c, Negotiated* out) noexcept:
    return HANDSHAKE_DONE               # (out.protocol stays NULL: no TLS session)


cdef ssize_t tcp_read(Conn* c, char* buf, size_t n) noexcept:
    return recv(c.fd, buf, n, 0)


cdef ssize_t tcp_write(Conn* c, const char* data, size_t n) noexcept:
    return send(c.fd, data, n, MSG_NOSIGNAL)


cdef void tcp_close(Conn* c) noexcept:
    close(c.fd)
    c.fd = -1


cdef void tcp_why(Conn* c, char* out, size_t cap) noexcept:
    out[0] = 0                          # (TCP never reports EPROTO)


cdef Transport TCP
TCP.name = b"tcp"
TCP.open = tcp_open
TCP.handshake = tcp_handshake
TCP.read = tcp_read
TCP.write = tcp_write
TCP.close = tcp_close
TCP.error_text = tcp_why
TCP.plaintext_in_kernel = True
