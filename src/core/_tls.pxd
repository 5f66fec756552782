# TLS for the engine: one TlsContext (an SSL_CTX) per host per worker, and
# the few C helpers that both the engine's TLS transport (tls.pxi) and
# TlsContext.probe() use, so that a probe and a load connection are set up
# the same way.
from surge.core.includes.ssl cimport SSL, SSL_CTX, SSL_SESSION

# The longest reason text kept ("certificate verify failed (unable to get local issuer certificate)").
cdef enum:
    TLS_REASON_BYTES = 112


cdef struct TlsShared:
    # What every connection of one context shares.  It lives inside the
    # TlsContext object (which the engine keeps referenced), and the
    # SSL_CTX's ex_data slot 0 points to it, for the callbacks.
    SSL_CTX* ctx
    const char* sni             # the name sent as SNI; NULL for an IP literal (RFC 6066)
    SSL_SESSION* session        # the last session the server issued (resume); NULL: none yet
    int keylog_fd               # NSS key-log lines appended here; -1: none
    bint resume
    bint probing                # a probe's session is not kept (the run's first handshakes stay full)
    # The last certificates the server sent that verified (remember_verified
    # in _tls.pyx): their DER, concatenated, and the chain built then
    # (a STACK_OF(X509), trust anchor included).  NULL: none yet.
    unsigned char* verified_der
    size_t verified_der_len
    void* verified_chain
    long long chains_verified   # full X509_verify_cert() runs that passed
    long long chains_reused     # handshakes whose certificates were those already verified


cdef struct Negotiated:
    # What a finished handshake agreed on.  The strings are libssl's own
    # static names: they stay valid for the life of the process.
    bint resumed
    const char* protocol        # "TLSv1.3"
    const char* cipher          # "TLS_AES_128_GCM_SHA256"
    const char* group           # "X25519" (NULL: not known)
    bint ktls_send
    bint ktls_recv


cdef class TlsContext:
    cdef SSL_CTX* ctx
    cdef TlsShared shared
    cdef bytes _sni                 # keeps shared.sni alive
    cdef readonly str server_name
    cdef readonly bint verify
    cdef readonly bint resume
    cdef readonly bint ktls
    cdef readonly object keylog
    cdef _set_verify(self, str name, cacert)
    cdef _set_client_cert(self, cert, key)
    cdef _set_lists(self, ciphers, tls13_ciphers, groups)
    cdef _open_keylog(self, keylog)
    cdef dict _probe_handshake(self, sock, double deadline, double timeout_s)


# A new client SSL for a connected (or connecting) socket: SNI, the last
# session to resume.  NULL when out of memory.
cdef SSL* tls_new(TlsShared* t, int fd) noexcept
# After SSL_connect() returned 1.
cdef void tls_negotiated(SSL* ssl, Negotiated* out) noexcept
# Why an operation failed with SSL_ERROR_SSL, one line into out
# ("certificate verify failed (self-signed certificate)"); empties the
# thread's error queue.
cdef void tls_error_text(SSL* ssl, char* out, size_t cap) noexcept
