# cython: language_level=3
"""The engine's slot escaping (escape.pxd) for Python: one implementation.

    escape("ann smith/ü", "path") == "ann%20smith%2F%C3%BC"

Kinds are surge.core._limits.ESCAPE_KIND's names: raw, path, query, json, header.
Loads nothing else (no engine)."""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from surge.core.escape cimport ESCAPE_MAX_GROWTH, escape_into

from surge.core._limits import ESCAPE_KIND


def escape_bytes(bytes value, str kind) -> bytes:
    """value escaped as the engine escapes a slot of that kind."""
    cdef int code = ESCAPE_KIND[kind]
    cdef int64_t n = PyBytes_GET_SIZE(value)
    cdef char* out = <char*>malloc(ESCAPE_MAX_GROWTH * n + 1)
    if out == NULL:
        raise MemoryError()
    try:
        n = escape_into(out, PyBytes_AS_STRING(value), n, code)
        return PyBytes_FromStringAndSize(out, n)
    finally:
        free(out)


def escape(str value, str kind) -> str:
    """The text escaped as the engine escapes a slot of that kind (UTF-8)."""
    return escape_bytes(value.encode("utf-8"), kind).decode("utf-8")
