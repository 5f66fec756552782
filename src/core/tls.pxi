# The TLS transport (transport.pxd), included into _engine.pyx: OpenSSL on
# the non-blocking socket itself (SSL_set_fd: no memory BIO, no copy), its
# WANT_READ / WANT_WRITE turned into the connection's epoll interest during
# the handshake and into EAGAIN afterwards.  The context (SSL_CTX, SNI,
# the session to resume) is the host's TlsShared (Conn.transport_host);
# each connection's SSL is Conn.transport_state.
#
# The error queue: OpenSSL's SSL_get_error() looks at the thread's error
# queue first, so a reason left there would make the next connection's
# WANT_READ look like a failure.  Every path that leaves an error there
# returns EPROTO, and the core then calls tls_error_text(), which empties it.
# errno is cleared before each SSL call: SSL_ERROR_SYSCALL with errno 0 means
# the peer closed, and a stale EAGAIN left from an earlier call would make a
# closed socket read as "nothing yet" and spin level-triggered epoll.
from surge.core._tls cimport TlsContext, TlsShared, tls_error_text, tls_negotiated, tls_new
from surge.core.includes.ssl cimport *


cdef int tls_open(Conn* c, int family, const sockaddr* addr, socklen_t addr_len) noexcept:
    """TCP's open, then the connection's SSL (SNI, the session to resume)."""
    if tcp_open(c, family, addr, addr_len) < 0:
        return -1
    c.transport_state = tls_new(<TlsShared*>c.transport_host, c.fd)
    if c.transport_state == NULL:
        close(c.fd)
        c.fd = -1
        set_errno(ENOMEM)
        return -1
    return 0


cdef int tls_handshake(Conn* c, Negotiated* out) noexcept:
    cdef SSL* ssl = <SSL*>c.transport_state
    cdef int r, err
    set_errno(0)
    r = SSL_connect(ssl)
    if r == 1:
        tls_negotiated(ssl, out)
        return HANDSHAKE_DONE
    err = SSL_get_error(ssl, r)
    if err == SSL_ERROR_WANT_READ:
        return HANDSHAKE_WANT_READ
    if err == SSL_ERROR_WANT_WRITE:
        return HANDSHAKE_WANT_WRITE
    tls_failed(err, ECONNRESET)         # (the peer closing mid-handshake reads as a reset)
    return HANDSHAKE_FAILED


cdef inline void tls_failed(int err, int eof_errno) noexcept:
    """errno for an operation that failed: EPROTO for a TLS error (its
    reason stays queued for tls_error_text), the socket's own for a system
    error, `eof_errno` when the peer just closed."""
    cdef int saved = errno
    if err == SSL_ERROR_SSL:
        set_errno(EPROTO)
        return
    ERR_clear_error()
    set_errno(saved if err == SSL_ERROR_SYSCALL and saved != 0 else eof_errno)


cdef ssize_t tls_read(Conn* c, char* buf, size_t n) noexcept:
    """Decrypted bytes, as recv() would return them.  With read-ahead one
    recv() takes every record that has arrived; the records already in
    OpenSSL's buffer are decrypted here too (SSL_has_pending), because epoll
    cannot report them.  Stops when `n` is full (the core reads again) or
    when nothing is buffered."""
    cdef SSL* ssl = <SSL*>c.transport_state
    cdef size_t total = 0
    cdef int r, err
    while True:
        set_errno(0)
        r = SSL_read(ssl, buf + total, <int>(n - total))
        if r > 0:
            total += r
            if total == n or not SSL_has_pending(ssl):
                return <ssize_t>total
            continue
        err = SSL_get_error(ssl, r)
        if err == SSL_ERROR_WANT_READ or err == SSL_ERROR_WANT_WRITE:
            if total > 0:
                return <ssize_t>total
            set_errno(EAGAIN)
            return -1
        if err == SSL_ERROR_ZERO_RETURN or (err == SSL_ERROR_SYSCALL and errno == 0):
            ERR_clear_error()
            return <ssize_t>total       # the end of the stream (0), after what came before it
        if err == SSL_ERROR_SYSCALL and total > 0:
            ERR_clear_error()           # (the socket reports the error again, or its end, next time)
            return <ssize_t>total
        tls_failed(err, ECONNRESET)     # a record error or alert: the bytes before it go with the connection
        return -1


cdef ssize_t tls_write(Conn* c, const char* data, size_t n) noexcept:
    """Like send(): SSL_MODE_ENABLE_PARTIAL_WRITE returns after each record,
    and SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets the core's retry come from
    c.out + c.out_pos with a length that has grown since."""
    cdef SSL* ssl = <SSL*>c.transport_state
    cdef int r, err
    set_errno(0)
    r = SSL_write(ssl, data, <int>(n if n < 0x40000000 else 0x40000000))
    if r > 0:
        return r
    err = SSL_get_error(ssl, r)
    if err == SSL_ERROR_WANT_WRITE or err == SSL_ERROR_WANT_READ:
        set_errno(EAGAIN)
        return -1
    tls_failed(err, EPIPE)
    return -1


cdef void tls_close(Conn* c) noexcept:
    """Free the SSL and close the socket.  Marked as shut down first (no
    close_notify is sent: it would cost a write per connection), so OpenSSL
    keeps its session resumable."""
    cdef SSL* ssl = <SSL*>c.transport_state
    if ssl != NULL:
        SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN)
        SSL_free(ssl)
        c.transport_state = NULL
    close(c.fd)
    c.fd = -1


cdef void tls_why(Conn* c, char* out, size_t cap) noexcept:
    tls_error_text(<SSL*>c.transport_state, out, cap)


cdef Transport TLS
TLS.name = b"tls"
TLS.open = tls_open
TLS.handshake = tls_handshake
TLS.read = tls_read
TLS.write = tls_write
TLS.close = tls_close
TLS.error_text = tls_why
TLS.plaintext_in_kernel = False     # the kernel counts ciphertext: no SO_RCVLOWAT (kTLS rx: not measured, off too)
