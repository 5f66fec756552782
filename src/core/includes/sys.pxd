# C declarations the engine needs that Cython's bundled headers lack:
# epoll, sockets with flags, TCP options, and the monotonic clock.
from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef extern from "<sys/types.h>" nogil:
    ctypedef long ssize_t

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk_id, timespec* tp)
    int CLOCK_MONOTONIC


cdef inline int64_t monotonic_ns() noexcept nogil:
    """CLOCK_MONOTONIC in nanoseconds (vDSO: no syscall); the same clock as
    Python's time.monotonic_ns(), shared by every process on the machine."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef extern from "<sys/epoll.h>" nogil:
    union epoll_data_t "epoll_data":
        void* ptr
        int fd
        uint32_t u32
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event* event)
    int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout)
    int EPOLL_CLOEXEC
    int EPOLL_CTL_ADD
    int EPOLL_CTL_MOD
    int EPOLL_CTL_DEL
    uint32_t EPOLLIN
    uint32_t EPOLLOUT
    uint32_t EPOLLERR
    uint32_t EPOLLHUP
    uint32_t EPOLLRDHUP
    uint32_t EPOLLET


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    struct sockaddr:
        sa_family_t sa_family
    struct sockaddr_storage:
        sa_family_t ss_family
    int socket(int domain, int type, int protocol)
    int connect(int fd, const sockaddr* addr, socklen_t addrlen)
    int bind(int fd, const sockaddr* addr, socklen_t addrlen)
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    ssize_t recv(int fd, void* buf, size_t n, int flags)
    int setsockopt(int fd, int level, int optname, const void* optval, socklen_t optlen)
    int getsockopt(int fd, int level, int optname, void* optval, socklen_t* optlen)
    int AF_INET
    int AF_INET6
    int SOCK_STREAM
    int SOCK_NONBLOCK
    int SOCK_CLOEXEC
    int SOL_SOCKET
    int SO_ERROR
    int SO_RCVLOWAT
    int SO_LINGER
    int MSG_NOSIGNAL
    struct linger:
        int l_onoff
        int l_linger


cdef extern from "<netinet/in.h>" nogil:
    int IPPROTO_TCP
    int IPPROTO_IP


cdef extern from "<netinet/tcp.h>" nogil:
    int TCP_NODELAY


cdef extern from "<unistd.h>" nogil:
    int close(int fd)
    ssize_t read(int fd, void* buf, size_t n)


cdef extern from "<errno.h>" nogil:
    int errno
    int EAGAIN
    int EWOULDBLOCK
    int EINTR
    int EINPROGRESS
    int EADDRNOTAVAIL   # connect(): no source port left for this 4-tuple (or a --bind address gone)
    int EMFILE          # socket(): this process's descriptor limit
    int ENFILE          # socket(): the system's


cdef extern from "<sys/timerfd.h>" nogil:
    struct itimerspec:
        timespec it_interval
        timespec it_value
    int timerfd_create(int clockid, int flags)
    int timerfd_settime(int fd, int flags, const itimerspec* new_value, itimerspec* old_value)
    int TFD_NONBLOCK
    int TFD_CLOEXEC
    int TFD_TIMER_ABSTIME


cdef extern from "<sys/ioctl.h>" nogil:
    int ioctl(int fd, unsigned long request, ...)
    unsigned long FIONREAD

cdef extern from "<sys/prctl.h>" nogil:
    int PR_SET_PDEATHSIG
    int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)
