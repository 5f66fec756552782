# cython: language_level=3
"""TLS settings for the engine: one TlsContext (an OpenSSL SSL_CTX) per host
per worker, built once, and probe(), the blocking handshake the supervisor
does before a run.

Verification is on by default, against the system trust store plus
`cacert`, with the host name (or IP address) checked.  Sessions are resumed
on reconnect: the context keeps the last session the server issued (TLS 1.3
ticket or TLS 1.2 session ID) and offers it on each new connection.

Errors: TlsConfigError (a bad option or file: one line naming it, and what
is allowed; exit 2) and TlsHandshakeError (the probe's handshake failed: a
short reason such as "certificate verify failed (self-signed certificate)").
"""
import ipaddress
import os
import select
import socket
import struct
import time

from libc.errno cimport errno
from libc.stdio cimport snprintf
from libc.stdlib cimport free, getenv, malloc
from libc.string cimport memcmp, strcmp, strdup, strlen
from posix.uio cimport iovec, writev
from posix.unistd cimport close as close_fd

from surge.core.includes.ssl cimport *

cdef extern from "<openssl/err.h>" nogil:
    int ERR_GET_REASON(unsigned long e)
cdef extern from "<openssl/x509err.h>" nogil:
    enum:
        X509_R_KEY_VALUES_MISMATCH
cdef extern from "<openssl/ssl.h>" nogil:
    enum:
        SSL_R_CERTIFICATE_VERIFY_FAILED
cdef extern from "<openssl/x509_vfy.h>" nogil:
    ctypedef struct X509:
        pass
    ctypedef struct X509_CRL:
        pass
    ctypedef struct X509_NAME:
        pass
    ctypedef struct X509_OBJECT:
        pass
    ctypedef struct X509_STORE:
        pass
    ctypedef struct X509_LOOKUP:
        pass
    ctypedef struct X509_LOOKUP_METHOD:
        pass
    ctypedef struct X509_OBJECTS "STACK_OF(X509_OBJECT)":
        pass
    ctypedef enum X509_LOOKUP_TYPE:
        X509_LU_NONE
        X509_LU_X509
        X509_LU_CRL
    ctypedef int (*X509_LOOKUP_get_by_subject_fn)(X509_LOOKUP* lookup, X509_LOOKUP_TYPE kind, const X509_NAME* name,
                                      X509_OBJECT* ret) noexcept nogil
    enum:
        X509_L_ADD_DIR
        X509_L_ADD_STORE
        X509_FILETYPE_PEM
        X509_FILETYPE_DEFAULT
    X509_STORE* SSL_CTX_get_cert_store(const SSL_CTX* ctx)
    X509_LOOKUP* X509_STORE_add_lookup(X509_STORE* store, X509_LOOKUP_METHOD* method)
    X509_LOOKUP_METHOD* X509_LOOKUP_hash_dir()
    X509_LOOKUP_METHOD* X509_LOOKUP_store()
    int X509_LOOKUP_ctrl(X509_LOOKUP* lookup, int cmd, const char* argc, long argl, char** ret)
    X509_LOOKUP_METHOD* X509_LOOKUP_meth_new(const char* name)
    int X509_LOOKUP_meth_set_get_by_subject(X509_LOOKUP_METHOD* method, X509_LOOKUP_get_by_subject_fn fn)
    int X509_LOOKUP_meth_set_free(X509_LOOKUP_METHOD* method, void (*free_fn)(X509_LOOKUP*) noexcept nogil)
    int X509_LOOKUP_set_method_data(X509_LOOKUP* lookup, void* data)
    void* X509_LOOKUP_get_method_data(const X509_LOOKUP* lookup)
    X509_STORE* X509_LOOKUP_get_store(const X509_LOOKUP* lookup)
    int X509_load_cert_crl_file(X509_LOOKUP* lookup, const char* file, int kind)
    int X509_STORE_lock(X509_STORE* store)
    int X509_STORE_unlock(X509_STORE* store)
    X509_OBJECTS* X509_STORE_get0_objects(const X509_STORE* store)
    X509_OBJECT* X509_OBJECT_retrieve_by_subject(X509_OBJECTS* objects, X509_LOOKUP_TYPE kind,
                                                 const X509_NAME* name)
    X509* X509_OBJECT_get0_X509(const X509_OBJECT* obj)
    X509_CRL* X509_OBJECT_get0_X509_CRL(const X509_OBJECT* obj)
    int X509_OBJECT_set1_X509(X509_OBJECT* obj, X509* cert)
    int X509_OBJECT_set1_X509_CRL(X509_OBJECT* obj, X509_CRL* crl)
    void X509_free(X509* cert)
    void X509_CRL_free(X509_CRL* crl)
    const char* X509_get_default_cert_file()
    const char* X509_get_default_cert_file_env()
    # The verification memory (remember_verified).
    ctypedef struct X509_STORE_CTX:
        pass
    ctypedef struct X509_STACK "STACK_OF(X509)":
        pass
    ctypedef struct ASN1_TIME:
        pass
    X509* X509_STORE_CTX_get0_cert(const X509_STORE_CTX* ctx)
    X509_STACK* X509_STORE_CTX_get0_untrusted(const X509_STORE_CTX* ctx)
    X509_STACK* X509_STORE_CTX_get1_chain(const X509_STORE_CTX* ctx)
    void X509_STORE_CTX_set0_verified_chain(X509_STORE_CTX* ctx, X509_STACK* chain)
    int X509_verify_cert(X509_STORE_CTX* ctx)
    X509_STACK* X509_chain_up_ref(X509_STACK* chain)
    int sk_X509_num(const X509_STACK* chain)
    X509* sk_X509_value(const X509_STACK* chain, int i)
    void sk_X509_pop_free(X509_STACK* chain, void (*free_fn)(X509*) noexcept nogil)
    int i2d_X509(const X509* cert, unsigned char** out)
    const ASN1_TIME* X509_get0_notBefore(const X509* cert)
    const ASN1_TIME* X509_get0_notAfter(const X509* cert)
    int X509_cmp_current_time(const ASN1_TIME* when)
cdef extern from "<openssl/ssl.h>" nogil:
    ctypedef int (*cert_verify_fn)(X509_STORE_CTX* ctx, void* arg) noexcept nogil
    void SSL_CTX_set_cert_verify_callback(SSL_CTX* ctx, cert_verify_fn cb, void* arg)

VERSIONS = {"1.2": TLS1_2_VERSION, "1.3": TLS1_3_VERSION}
ALPN_HTTP11 = b"\x08http/1.1"       # offered so that servers that look at ALPN pick HTTP/1.1


class TlsConfigError(ValueError):
    """A TLS option or file that cannot be used.  str(e) is one line naming
    it and what is allowed; `option` is the keyword it came from."""

    def __init__(self, option: str, message: str):
        super().__init__(message)
        self.option = option


class TlsHandshakeError(RuntimeError):
    """The probe's handshake failed; str(e) is the reason."""


# ---- callbacks (OpenSSL calls them; each finds its TlsShared in ex_data 0) -----
cdef int keep_session(SSL* ssl, SSL_SESSION* session) noexcept nogil:
    """The server issued a session: keep it (the last one wins) for the next
    connection of this context.  Returning 1 takes over the reference."""
    cdef TlsShared* t = <TlsShared*>SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0)
    if t == NULL or not t.resume or t.probing:
        return 0
    if t.session != NULL:
        SSL_SESSION_free(t.session)
    t.session = session
    return 1


cdef void write_keylog(const SSL* ssl, const char* line) noexcept nogil:
    """One NSS key-log line (the format Wireshark reads), appended with one
    write so that concurrent workers' lines do not interleave."""
    cdef TlsShared* t = <TlsShared*>SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0)
    cdef iovec parts[2]
    cdef char newline = 10
    if t == NULL or t.keylog_fd < 0:
        return
    parts[0].iov_base = <void*>line
    parts[0].iov_len = strlen(line)
    parts[1].iov_base = &newline
    parts[1].iov_len = 1
    writev(t.keylog_fd, parts, 2)


cdef int no_passphrase(char* buf, int size, int rwflag, void* userdata) noexcept nogil:
    """An encrypted key would otherwise prompt on the terminal: refuse it."""
    return 0


# ---- the verification memory ---------------------------------------------------
# Every full handshake verifies the server's chain (X509_verify_cert: chain
# building, a signature check per link, dates, the host name): ~56 us of CPU
# per handshake with an ECDSA P-256 chain here, 8 % of a --tls-resume off
# run's CPU.  A load test meets the same certificates on every connection,
# so a context remembers the last certificates that verified, byte for
# byte, and a handshake that presents exactly those again passes if every
# certificate of the chain built then is still within its dates.  The
# inputs of the verification are otherwise the same (the context's trust
# store, which only grows when the lazy bundle is read, and its host name
# and flags), so the answer is too; different bytes, or a failure, are
# verified in full as before.  The TLS handshake still checks the server's
# signature with the certificate's key (CertificateVerify), so the server
# proves again that it holds that key.  The probe fills it before the fork,
# so a run's workers start with it.

cdef void free_chain(void* chain) noexcept nogil:
    if chain != NULL:
        sk_X509_pop_free(<X509_STACK*>chain, X509_free)


cdef unsigned char* peer_der(X509_STORE_CTX* store, size_t* out_len) noexcept nogil:
    """The certificates the server sent (its leaf, then the others), DER,
    concatenated into one malloc'd buffer; NULL if one cannot be encoded."""
    cdef X509* leaf = X509_STORE_CTX_get0_cert(store)
    cdef X509_STACK* others = X509_STORE_CTX_get0_untrusted(store)
    cdef int count = sk_X509_num(others) if others != NULL else 0
    cdef int i, n
    cdef size_t total
    cdef unsigned char* der
    cdef unsigned char* at
    if leaf == NULL:
        return NULL
    n = i2d_X509(leaf, NULL)
    if n <= 0:
        return NULL
    total = n
    for i in range(count):
        n = i2d_X509(sk_X509_value(others, i), NULL)
        if n <= 0:
            return NULL
        total += n
    der = <unsigned char*>malloc(total)
    if der == NULL:
        return NULL
    at = der
    i2d_X509(leaf, &at)             # (advances `at` past what it wrote)
    for i in range(count):
        i2d_X509(sk_X509_value(others, i), &at)
    out_len[0] = total
    return der


cdef bint within_dates(void* chain) noexcept nogil:
    """Every certificate of the remembered chain valid now (notBefore in the
    past, notAfter in the future; a date that cannot be read: no)."""
    cdef X509_STACK* certs = <X509_STACK*>chain
    cdef X509* cert
    cdef int i
    for i in range(sk_X509_num(certs)):
        cert = sk_X509_value(certs, i)
        if X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0 \
                or X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0:
            return False
    return True


cdef int remember_verified(X509_STORE_CTX* store, void* arg) noexcept nogil:
    """The context's certificate verification (SSL_CTX_set_cert_verify_callback):
    what X509_verify_cert() would say, from memory when the server sent the
    certificates that last verified (see above)."""
    cdef TlsShared* t = <TlsShared*>arg
    cdef size_t der_len = 0
    cdef unsigned char* der = peer_der(store, &der_len)
    cdef X509_STACK* chain
    cdef int ok
    if der != NULL and t.verified_der != NULL and der_len == t.verified_der_len \
            and memcmp(der, t.verified_der, der_len) == 0 and within_dates(t.verified_chain):
        free(der)
        chain = X509_chain_up_ref(<X509_STACK*>t.verified_chain)
        if chain != NULL:
            X509_STORE_CTX_set0_verified_chain(store, chain)    # SSL_get0_verified_chain as after a full one
            t.chains_reused += 1
            return 1
        ERR_clear_error()
        der = peer_der(store, &der_len)     # (out of memory: verify in full)
    ok = X509_verify_cert(store)
    if ok == 1:
        t.chains_verified += 1
        chain = X509_STORE_CTX_get1_chain(store) if der != NULL else NULL
        if chain != NULL:
            free(t.verified_der)
            free_chain(t.verified_chain)
            t.verified_der, t.verified_der_len, t.verified_chain = der, der_len, chain
            return ok
    free(der)
    return ok


# ---- helpers shared with the engine (declared in _tls.pxd) -------------------------
cdef SSL* tls_new(TlsShared* t, int fd) noexcept:
    cdef SSL* ssl = SSL_new(t.ctx)
    if ssl == NULL:
        ERR_clear_error()               # (out of memory) not to be blamed on another connection
        return NULL
    if SSL_set_fd(ssl, fd) != 1 or (t.sni != NULL and SSL_set_tlsext_host_name(ssl, t.sni) != 1):
        SSL_free(ssl)
        ERR_clear_error()
        return NULL
    if t.session != NULL:
        SSL_set_session(ssl, t.session)
    return ssl


cdef void tls_negotiated(SSL* ssl, Negotiated* out) noexcept:
    cdef int nid = SSL_get_negotiated_group(ssl)
    out.resumed = SSL_session_reused(ssl) == 1
    out.protocol = SSL_get_version(ssl)
    out.cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl))
    out.group = OBJ_nid2sn(nid) if nid > 0 else NULL
    if out.group == NULL and nid > 0:
        out.group = SSL_group_to_name(ssl, nid)
    out.ktls_send = BIO_get_ktls_send(SSL_get_wbio(ssl)) == 1
    out.ktls_recv = BIO_get_ktls_recv(SSL_get_rbio(ssl)) == 1
    ERR_clear_error()       # OBJ_nid2sn may queue "unknown nid": never another connection's failure


cdef void tls_error_text(SSL* ssl, char* out, size_t cap) noexcept:
    cdef unsigned long code = ERR_get_error()
    cdef const char* reason = ERR_reason_error_string(code) if code != 0 else NULL
    cdef long verify
    if reason == NULL:
        reason = b"TLS protocol error"
    verify = SSL_get_verify_result(ssl) if ssl != NULL else X509_V_OK
    if code != 0 and ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED and verify != X509_V_OK:
        snprintf(out, cap, b"%s (%s)", reason, X509_verify_cert_error_string(verify))
    else:
        snprintf(out, cap, b"%s", reason)
    ERR_clear_error()


# ---- the context -----------------------------------------------------------------
# ---- the system trust store ------------------------------------------------
# SSL_CTX_set_default_verify_paths parses the whole CA bundle file (Debian:
# /etc/ssl/certs/ca-certificates.crt, ~140 certificates) into every new
# context: ~20 ms of CPU at each run's start, although a run whose server is
# signed by its --cacert (a lab, a staging CA) never needs it, and the
# hashed directory (/etc/ssl/certs/<subject hash>.0) it also adds is read one
# certificate at a time, when a name is looked up.  trust_system_store adds
# the same three lookups as OpenSSL's default (bundle file, hashed
# directory, store URIs, each from SSL_CERT_FILE / SSL_CERT_DIR when set),
# with the same certificates trusted, but the file is parsed on the first
# name that the loaded certificates, the directory and the store cannot
# answer (a public server's intermediate, on its first handshake), once per
# context.  Verification itself is unchanged.

cdef X509_LOOKUP_METHOD* LAZY_BUNDLE = NULL     # made once (never freed: one per process)


cdef int lazy_bundle_by_subject(X509_LOOKUP* lookup, X509_LOOKUP_TYPE kind, const X509_NAME* name,
                                X509_OBJECT* ret) noexcept nogil:
    """The bundle file's lookup: on its first call, add every certificate (and
    CRL) of the file to the store, then answer from the store; afterwards 0
    (the store's own cache, looked at before any lookup, holds them).  The
    answer is borrowed, as the hashed directory's is: the caller takes its
    own reference."""
    cdef char* path = <char*>X509_LOOKUP_get_method_data(lookup)
    cdef X509_STORE* store
    cdef X509_OBJECT* found
    cdef int answered = 0
    if path == NULL:
        return 0
    X509_LOOKUP_set_method_data(lookup, NULL)
    X509_load_cert_crl_file(lookup, path, X509_FILETYPE_PEM)
    free(path)
    ERR_clear_error()           # a missing or empty file is no error here, as in OpenSSL's default
    store = X509_LOOKUP_get_store(lookup)
    if X509_STORE_lock(store) != 1:         # the retrieval may sort the store's stack
        return 0
    found = X509_OBJECT_retrieve_by_subject(X509_STORE_get0_objects(store), kind, name)
    if found != NULL and kind == X509_LU_X509:
        answered = X509_OBJECT_set1_X509(ret, X509_OBJECT_get0_X509(found))
        if answered:
            X509_free(X509_OBJECT_get0_X509(found))        # set1's reference: borrowed, as documented
    elif found != NULL and kind == X509_LU_CRL:
        answered = X509_OBJECT_set1_X509_CRL(ret, X509_OBJECT_get0_X509_CRL(found))
        if answered:
            X509_CRL_free(X509_OBJECT_get0_X509_CRL(found))
    X509_STORE_unlock(store)
    return answered


cdef void lazy_bundle_free(X509_LOOKUP* lookup) noexcept nogil:
    free(X509_LOOKUP_get_method_data(lookup))       # the path, when never loaded


cdef void trust_system_store(SSL_CTX* ctx) except *:
    """What SSL_CTX_set_default_verify_paths trusts, the bundle file read lazily
    (see above).  Falls back to OpenSSL's own call if a lookup cannot be made."""
    global LAZY_BUNDLE
    cdef X509_STORE* store = SSL_CTX_get_cert_store(ctx)
    cdef X509_LOOKUP* lookup
    cdef const char* path = getenv(X509_get_default_cert_file_env())
    cdef char* copy
    if path == NULL:
        path = X509_get_default_cert_file()
    if LAZY_BUNDLE == NULL:
        LAZY_BUNDLE = X509_LOOKUP_meth_new(b"surge lazy CA bundle")
        if LAZY_BUNDLE == NULL or not X509_LOOKUP_meth_set_get_by_subject(LAZY_BUNDLE, lazy_bundle_by_subject) \
                or not X509_LOOKUP_meth_set_free(LAZY_BUNDLE, lazy_bundle_free):
            LAZY_BUNDLE = NULL
            ERR_clear_error()
            SSL_CTX_set_default_verify_paths(ctx)
            return
    # The directory and the store first: OpenSSL's default order, less the file
    # (last here: looked at only when both miss).
    lookup = X509_STORE_add_lookup(store, X509_LOOKUP_hash_dir())
    if lookup == NULL:
        raise MemoryError()
    X509_LOOKUP_ctrl(lookup, X509_L_ADD_DIR, NULL, X509_FILETYPE_DEFAULT, NULL)     # SSL_CERT_DIR or the default
    lookup = X509_STORE_add_lookup(store, X509_LOOKUP_store())
    if lookup == NULL:
        raise MemoryError()
    X509_LOOKUP_ctrl(lookup, X509_L_ADD_STORE, NULL, 0, NULL)                       # the default URIs
    lookup = X509_STORE_add_lookup(store, LAZY_BUNDLE)
    copy = strdup(path) if path != NULL else NULL
    if lookup == NULL or (path != NULL and copy == NULL):
        free(copy)
        raise MemoryError()
    X509_LOOKUP_set_method_data(lookup, copy)
    ERR_clear_error()


def _readable(option: str, path: str) -> bytes:
    """The path as bytes, once it is known to be a readable file."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise TlsConfigError(option, f"{option} {path}: cannot read it ({exc.strerror or exc})") from None
    return os.fsencode(path)


def _version(option: str, value):
    if value is None:
        return 0
    if value not in VERSIONS:
        raise TlsConfigError(option, f"{option} {value!r}: allowed 1.2, 1.3")
    return VERSIONS[value]


def _bare_name(name: str) -> str:
    """A URL host as a name: "[::1]" -> "::1"."""
    return name[1:len(name) - 1] if name.startswith("[") and name.endswith("]") else name


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


cdef class TlsContext:
    """One SSL_CTX: what every TLS connection to one host shares."""

    def __cinit__(self):
        self.shared.keylog_fd = -1      # before __init__ can fail: __dealloc__ must not close fd 0

    def __init__(self, *, str server_name, bint verify=True, cacert=None, cert=None, key=None,
                 min_version=None, max_version=None, ciphers=None, tls13_ciphers=None, groups=None,
                 keylog=None, bint resume=True, bint ktls=False):
        """server_name: sent as SNI and checked against the certificate (an IP
        literal is checked as an IP SAN and not sent).  Raises TlsConfigError."""
        name = _bare_name(server_name or "")
        if not name:
            raise TlsConfigError("server_name", "server_name: empty (the host name to send and check)")
        self.server_name = name
        self.verify = verify
        self.resume = resume
        self.ktls = ktls
        self.keylog = keylog
        self.shared.keylog_fd = -1
        lo, hi = _version("min_version", min_version), _version("max_version", max_version)
        if lo and hi and lo > hi:
            raise TlsConfigError("min_version", f"min_version {min_version} is above max_version {max_version}")
        if (cert is None) != (key is None):
            given, missing = ("cert", "key") if key is None else ("key", "cert")
            raise TlsConfigError(missing, f"{given} without {missing}: a client certificate needs both")
        self.ctx = SSL_CTX_new(TLS_client_method())
        if self.ctx == NULL:
            raise MemoryError()
        self.shared.ctx = self.ctx
        self.shared.resume = resume
        SSL_CTX_set_ex_data(self.ctx, 0, &self.shared)
        # Idle connections give their buffers back; the engine's write
        # retries may come from a moved or grown buffer (partial writes).
        SSL_CTX_set_mode(self.ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE
                         | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER)
        # A server closing without close_notify is an end of stream (as over
        # TCP, where the framing decides), not an error; no renegotiation
        # (a write would have to wait for reads).
        SSL_CTX_set_options(self.ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION
                            | (SSL_OP_ENABLE_KTLS if ktls else 0))
        # Read whole socket buffers, not a record header then its body: one
        # recv() for every record that has arrived (two per record otherwise).
        SSL_CTX_set_read_ahead(self.ctx, 1)
        SSL_CTX_set_default_passwd_cb(self.ctx, no_passphrase)
        cdef bytes alpn = ALPN_HTTP11
        SSL_CTX_set_alpn_protos(self.ctx, alpn, len(alpn))
        self._set_verify(name, cacert)
        if cert is not None:
            self._set_client_cert(cert, key)
        if lo:
            SSL_CTX_set_min_proto_version(self.ctx, lo)
        if hi:
            SSL_CTX_set_max_proto_version(self.ctx, hi)
        self._set_lists(ciphers, tls13_ciphers, groups)
        if resume:
            SSL_CTX_set_session_cache_mode(self.ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE)
            SSL_CTX_sess_set_new_cb(self.ctx, keep_session)
        else:
            SSL_CTX_set_session_cache_mode(self.ctx, SSL_SESS_CACHE_OFF)
        if keylog is not None:
            self._open_keylog(keylog)
        ERR_clear_error()

    cdef _set_verify(self, str name, cacert):
        cdef X509_VERIFY_PARAM* param
        if cacert is not None:
            path = _readable("cacert", cacert)
            if SSL_CTX_load_verify_locations(self.ctx, path, NULL) != 1:
                ERR_clear_error()
                raise TlsConfigError("cacert", f"cacert {cacert}: no PEM certificate in it")
        ip = _is_ip(name)
        if not ip:
            try:
                self._sni = name.encode("idna" if not name.isascii() else "ascii")
            except UnicodeError:
                raise TlsConfigError("server_name", f"server_name {name[:80]!r}: not a valid host name "
                                                    "(labels of 1-63 characters, at most 253 in all)") from None
            labels = self._sni.rstrip(b".").split(b".")
            if len(self._sni) > 253 or not all(0 < len(label) <= 63 for label in labels):
                raise TlsConfigError("server_name", f"server_name {name[:80]!r}: not a valid host name "
                                                    "(labels of 1-63 characters, at most 253 in all)")
        else:
            self._sni = None
        self.shared.sni = NULL if ip else <const char*>self._sni
        if not self.verify:
            SSL_CTX_set_verify(self.ctx, SSL_VERIFY_NONE, NULL)
            return
        SSL_CTX_set_verify(self.ctx, SSL_VERIFY_PEER, NULL)
        SSL_CTX_set_cert_verify_callback(self.ctx, remember_verified, &self.shared)
        trust_system_store(self.ctx)            # what set_default_verify_paths trusts, the bundle lazily
        param = SSL_CTX_get0_param(self.ctx)
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS)
        # Both can refuse (a scoped IPv6 literal such as ::1%lo, an odd name): then
        # no identity would be checked and any certificate the CA signed would pass.
        if ip:
            checked = X509_VERIFY_PARAM_set1_ip_asc(param, name.encode()) == 1
        else:
            checked = X509_VERIFY_PARAM_set1_host(param, <const char*>self._sni, 0) == 1
        if not checked:
            ERR_clear_error()
            raise TlsConfigError("server_name", f"server_name {name!r}: OpenSSL cannot check a certificate "
                                                "against it (an IP address without a scope, or a host name)")

    cdef _set_client_cert(self, cert, key):
        cert_path = _readable("cert", cert)
        key_path = _readable("key", key)
        if SSL_CTX_use_certificate_chain_file(self.ctx, cert_path) != 1:
            ERR_clear_error()
            raise TlsConfigError("cert", f"cert {cert}: no PEM certificate in it")
        if SSL_CTX_use_PrivateKey_file(self.ctx, key_path, SSL_FILETYPE_PEM) != 1:
            mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH
            ERR_clear_error()
            if mismatch:
                raise TlsConfigError("key", f"key {key} does not match cert {cert}")
            raise TlsConfigError("key", f"key {key}: not a PEM private key, or encrypted (use an unencrypted key)")
        if SSL_CTX_check_private_key(self.ctx) != 1:
            ERR_clear_error()
            raise TlsConfigError("key", f"key {key} does not match cert {cert}")

    cdef _set_lists(self, ciphers, tls13_ciphers, groups):
        if ciphers is not None and SSL_CTX_set_cipher_list(self.ctx, ciphers.encode()) != 1:
            ERR_clear_error()
            raise TlsConfigError("ciphers", f"ciphers {ciphers!r}: no known TLS 1.2 cipher in it "
                                            "(OpenSSL list syntax, e.g. ECDHE-ECDSA-AES128-GCM-SHA256)")
        if tls13_ciphers is not None and SSL_CTX_set_ciphersuites(self.ctx, tls13_ciphers.encode()) != 1:
            ERR_clear_error()
            raise TlsConfigError("tls13_ciphers", f"tls13_ciphers {tls13_ciphers!r}: allowed a ':'-list of "
                                 "TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256")
        if groups is not None and SSL_CTX_set1_groups_list(self.ctx, groups.encode()) != 1:
            ERR_clear_error()
            raise TlsConfigError("groups", f"groups {groups!r}: allowed a ':'-list of known groups "
                                           "(e.g. X25519:P-256:P-384)")

    cdef _open_keylog(self, keylog):
        try:
            self.shared.keylog_fd = os.open(keylog, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise TlsConfigError("keylog", f"keylog {keylog}: cannot open it for appending "
                                           f"({exc.strerror or exc})") from None
        SSL_CTX_set_keylog_callback(self.ctx, write_keylog)

    def __dealloc__(self):
        if self.shared.session != NULL:
            SSL_SESSION_free(self.shared.session)
        free(self.shared.verified_der)
        free_chain(self.shared.verified_chain)
        if self.ctx != NULL:
            SSL_CTX_free(self.ctx)
        if self.shared.keylog_fd >= 0:
            close_fd(self.shared.keylog_fd)

    def release_idle_buffers(self, bint release):
        """Whether a connection gives its ~33 KiB of record buffers back each
        time it has nothing buffered (SSL_MODE_RELEASE_BUFFERS, on from the
        start).  It keeps thousands of idle connections small, but a busy
        connection then frees and allocates both buffers on every request:
        ~1,700 instructions each, a tenth of a keep-alive request's cost
        (callgrind, TLS 1.3 against nginx).  The worker turns it off when
        its connections are few enough that their buffers do not matter."""
        if release:
            SSL_CTX_set_mode(self.ctx, SSL_MODE_RELEASE_BUFFERS)
        else:
            SSL_CTX_clear_mode(self.ctx, SSL_MODE_RELEASE_BUFFERS)

    @property
    def verifications(self):
        """(full, reused): how many of this context's handshakes (in this
        process) verified the server's certificates in full, and how many
        presented the certificates that had last verified (see
        remember_verified)."""
        return self.shared.chains_verified, self.shared.chains_reused

    @property
    def has_session(self):
        """True once a server issued a session this context will offer (resume)."""
        return self.shared.session != NULL

    def probe(self, int family, bytes sockaddr, double timeout_s):
        """Connect, do a full handshake, close; nothing is sent.  Returns
        {"protocol", "cipher", "group", "alpn"}.  Raises TlsHandshakeError
        (verification, alert, garbage, reset, no answer within timeout_s) or
        OSError (the TCP connect)."""
        deadline = time.monotonic() + timeout_s
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout_s)
            sock.connect(_address(family, sockaddr))
            sock.setblocking(False)
            return self._probe_handshake(sock, deadline, timeout_s)
        except socket.timeout:
            raise OSError(110, f"TCP connect timed out after {timeout_s:g} s") from None
        finally:
            sock.close()

    cdef dict _probe_handshake(self, sock, double deadline, double timeout_s):
        cdef char reason[TLS_REASON_BYTES]
        cdef Negotiated got
        cdef const unsigned char* alpn = NULL
        cdef unsigned int alpn_len = 0
        cdef int r, err
        cdef SSL* ssl
        self.shared.probing = True
        ssl = tls_new(&self.shared, sock.fileno())
        if ssl == NULL:
            self.shared.probing = False
            raise MemoryError()
        try:
            while True:
                r = SSL_connect(ssl)
                if r == 1:
                    break
                err = SSL_get_error(ssl, r)
                if err == SSL_ERROR_WANT_READ or err == SSL_ERROR_WANT_WRITE:
                    left = deadline - time.monotonic()
                    reads, writes = ([sock], []) if err == SSL_ERROR_WANT_READ else ([], [sock])
                    readable, writable, _ = select.select(reads, writes, [], left) if left > 0 else ([], [], [])
                    if not (readable or writable):
                        raise TlsHandshakeError(f"no handshake answer within {timeout_s:g} s")
                    continue
                if err == SSL_ERROR_SSL:
                    tls_error_text(ssl, reason, sizeof(reason))
                    raise TlsHandshakeError(reason.decode(errors="replace"))
                code = errno
                ERR_clear_error()
                if err == SSL_ERROR_SYSCALL and code != 0:
                    raise TlsHandshakeError(f"{os.strerror(code).lower()} during the handshake")
                raise TlsHandshakeError("connection closed during the handshake")
            tls_negotiated(ssl, &got)
            SSL_get0_alpn_selected(ssl, &alpn, &alpn_len)
            return {
                "protocol": got.protocol.decode(),
                "cipher": got.cipher.decode(),
                "group": got.group.decode() if got.group != NULL else None,
                "alpn": alpn[:alpn_len].decode(errors="replace") if alpn_len else None,
            }
        finally:
            SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN)
            SSL_free(ssl)
            self.shared.probing = False


def _address(int family, bytes sockaddr):
    """A packed sockaddr back to the tuple socket.connect() takes."""
    if family == socket.AF_INET:
        port = struct.unpack_from("!H", sockaddr, 2)[0]
        return socket.inet_ntop(socket.AF_INET, sockaddr[4:8]), port
    if family == socket.AF_INET6:
        port, flowinfo = struct.unpack_from("!HI", sockaddr, 2)
        scope = struct.unpack_from("=I", sockaddr, 24)[0]
        return socket.inet_ntop(socket.AF_INET6, sockaddr[8:24]), port, flowinfo, scope
    raise ValueError(f"address family {family}: allowed AF_INET, AF_INET6")
