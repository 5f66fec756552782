# The plain TCP transport (transport.pxd), included into _engine.pyx.
# Each operation is the socket call itself; TLS (tls.pxi) wraps them.


cdef int tcp_open(Conn* c, int family, const sockaddr* addr, socklen_t addr_len) noexcept:
    """A non-blocking socket with TCP_NODELAY, its connect() started."""
    cdef int one = 1
    c.fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
    if c.fd < 0:
        return -1
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
    if connect(c.fd, addr, addr_len) < 0 and errno != EINPROGRESS:
        close(c.fd)
        c.fd = -1
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
