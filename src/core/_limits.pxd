# Constants the engine and the Python layers share, defined once here.
# C code cimports the enums; Python reads the same values from
# surge.core._limits (a tiny module that loads nothing else, so reading a
# result file never loads the engine).

# Transport error kinds, in result order (ERROR_KINDS in _limits.pyx names them).
cdef enum:
    ERR_CONNECT = 0
    ERR_READ
    ERR_WRITE
    ERR_TIMEOUT
    ERR_PARSE
    ERR_CLOSED
    ERR_KINDS

# Status counters: one slot per code 100..599, slot 0 for anything outside.
cdef enum:
    STATUS_MIN = 100
    STATUS_MAX = 599
    STATUS_SLOTS = 600
