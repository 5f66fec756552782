# OpenSSL's public C API, only what surge uses (libssl/libcrypto 3.0 or newer: kTLS, SSL_OP_IGNORE_UNEXPECTED_EOF and the group-name calls are 3.0 API; the Makefile checks the version).
# Several of these are macros in the headers (marked); Cython emits a call
# to the name, which the C preprocessor expands.
from libc.stdint cimport uint64_t


cdef extern from "<openssl/ssl.h>" nogil:
    ctypedef struct SSL_CTX:
        pass
    ctypedef struct SSL:
        pass
    ctypedef struct SSL_METHOD:
        pass
    ctypedef struct SSL_SESSION:
        pass
    ctypedef struct SSL_CIPHER:
        pass
    ctypedef struct X509_VERIFY_PARAM:
        pass
    ctypedef struct BIO:
        pass

    enum:
        SSL_ERROR_NONE
        SSL_ERROR_SSL
        SSL_ERROR_WANT_READ
        SSL_ERROR_WANT_WRITE
        SSL_ERROR_SYSCALL
        SSL_ERROR_ZERO_RETURN
        SSL_VERIFY_NONE
        SSL_VERIFY_PEER
        SSL_FILETYPE_PEM
        TLS1_2_VERSION
        TLS1_3_VERSION
        SSL_SESS_CACHE_OFF
        SSL_SESS_CACHE_CLIENT
        SSL_SESS_CACHE_NO_INTERNAL_STORE
        SSL_SENT_SHUTDOWN
        SSL_RECEIVED_SHUTDOWN

    # (uint64_t in 3.x, unsigned long in 1.1.1: both fit)
    const uint64_t SSL_MODE_RELEASE_BUFFERS
    const uint64_t SSL_MODE_ENABLE_PARTIAL_WRITE
    const uint64_t SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
    const uint64_t SSL_OP_ENABLE_KTLS
    const uint64_t SSL_OP_IGNORE_UNEXPECTED_EOF
    const uint64_t SSL_OP_NO_RENEGOTIATION
    const uint64_t SSL_OP_NO_TICKET

    ctypedef void (*keylog_cb_fn)(const SSL* ssl, const char* line) noexcept
    ctypedef int (*new_session_cb_fn)(SSL* ssl, SSL_SESSION* session) noexcept
    ctypedef int (*pem_password_cb)(char* buf, int size, int rwflag, void* userdata) noexcept

    const SSL_METHOD* TLS_client_method()
    SSL_CTX* SSL_CTX_new(const SSL_METHOD* method)
    void SSL_CTX_free(SSL_CTX* ctx)
    void SSL_CTX_set_verify(SSL_CTX* ctx, int mode, void* callback)
    int SSL_CTX_set_default_verify_paths(SSL_CTX* ctx)
    int SSL_CTX_load_verify_locations(SSL_CTX* ctx, const char* cafile, const char* capath)
    int SSL_CTX_use_certificate_chain_file(SSL_CTX* ctx, const char* path)
    int SSL_CTX_use_PrivateKey_file(SSL_CTX* ctx, const char* path, int kind)
    int SSL_CTX_check_private_key(const SSL_CTX* ctx)
    void SSL_CTX_set_default_passwd_cb(SSL_CTX* ctx, pem_password_cb cb)
    int SSL_CTX_set_min_proto_version(SSL_CTX* ctx, int version)       # macro
    int SSL_CTX_set_max_proto_version(SSL_CTX* ctx, int version)       # macro
    int SSL_CTX_set_cipher_list(SSL_CTX* ctx, const char* ciphers)
    int SSL_CTX_set_ciphersuites(SSL_CTX* ctx, const char* suites)
    int SSL_CTX_set1_groups_list(SSL_CTX* ctx, const char* groups)     # macro
    int SSL_CTX_set_alpn_protos(SSL_CTX* ctx, const unsigned char* protos, unsigned int length)
    void SSL_CTX_set_keylog_callback(SSL_CTX* ctx, keylog_cb_fn cb)
    long SSL_CTX_set_session_cache_mode(SSL_CTX* ctx, long mode)       # macro
    void SSL_CTX_sess_set_new_cb(SSL_CTX* ctx, new_session_cb_fn cb)
    uint64_t SSL_CTX_set_mode(SSL_CTX* ctx, uint64_t mode)             # macro
    uint64_t SSL_CTX_clear_mode(SSL_CTX* ctx, uint64_t mode)           # macro
    uint64_t SSL_CTX_set_options(SSL_CTX* ctx, uint64_t options)
    void SSL_CTX_set_read_ahead(SSL_CTX* ctx, int yes)                 # macro
    X509_VERIFY_PARAM* SSL_CTX_get0_param(SSL_CTX* ctx)
    int SSL_CTX_set_ex_data(SSL_CTX* ctx, int idx, void* data)
    void* SSL_CTX_get_ex_data(const SSL_CTX* ctx, int idx)

    SSL* SSL_new(SSL_CTX* ctx)
    void SSL_free(SSL* ssl)
    SSL_CTX* SSL_get_SSL_CTX(const SSL* ssl)
    int SSL_set_fd(SSL* ssl, int fd)
    long SSL_set_tlsext_host_name(SSL* ssl, const char* name)          # macro
    int SSL_set_session(SSL* ssl, SSL_SESSION* session)
    int SSL_connect(SSL* ssl)
    int SSL_read(SSL* ssl, void* buf, int num)
    int SSL_write(SSL* ssl, const void* buf, int num)
    int SSL_get_error(const SSL* ssl, int ret)
    int SSL_pending(const SSL* ssl)
    int SSL_has_pending(const SSL* ssl)
    void SSL_set_shutdown(SSL* ssl, int mode)
    int SSL_session_reused(const SSL* ssl)
    const char* SSL_get_version(const SSL* ssl)
    const SSL_CIPHER* SSL_get_current_cipher(const SSL* ssl)
    const char* SSL_CIPHER_get_name(const SSL_CIPHER* cipher)
    int SSL_get_negotiated_group(SSL* ssl)                             # macro (3.0)
    const char* SSL_group_to_name(SSL* ssl, int id)
    long SSL_get_verify_result(const SSL* ssl)
    void SSL_get0_alpn_selected(const SSL* ssl, const unsigned char** data, unsigned int* length)
    BIO* SSL_get_rbio(const SSL* ssl)
    BIO* SSL_get_wbio(const SSL* ssl)

    void SSL_SESSION_free(SSL_SESSION* session)


cdef extern from "<openssl/bio.h>" nogil:
    int BIO_get_ktls_send(BIO* b)                                      # macro
    int BIO_get_ktls_recv(BIO* b)                                      # macro


cdef extern from "<openssl/x509v3.h>" nogil:
    enum:
        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS


cdef extern from "<openssl/x509_vfy.h>" nogil:
    enum:
        X509_V_OK
    int X509_VERIFY_PARAM_set1_host(X509_VERIFY_PARAM* param, const char* name, size_t namelen)
    int X509_VERIFY_PARAM_set1_ip_asc(X509_VERIFY_PARAM* param, const char* ipasc)
    void X509_VERIFY_PARAM_set_hostflags(X509_VERIFY_PARAM* param, unsigned int flags)


cdef extern from "<openssl/x509.h>" nogil:
    const char* X509_verify_cert_error_string(long n)


cdef extern from "<openssl/err.h>" nogil:
    unsigned long ERR_get_error()
    unsigned long ERR_peek_last_error()
    const char* ERR_reason_error_string(unsigned long e)
    void ERR_clear_error()


cdef extern from "<openssl/objects.h>" nogil:
    const char* OBJ_nid2sn(int nid)
