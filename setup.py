"""Build the Cython extensions.

Environment switches (used by the Makefile):
  SURGE_ANNOTATE=1   write Cython's annotated HTML next to each .pyx (make annotate)
  SURGE_TRACE=1      compile with line tracing, for coverage/profilers (slow; debug only)
"""
import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

TRACE = os.environ.get("SURGE_TRACE") == "1"
ANNOTATE = os.environ.get("SURGE_ANNOTATE") == "1"

macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if TRACE else []
cflags = ["-O2"] if TRACE else ["-O3"]

directives = {
    "language_level": "3",
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "linetrace": TRACE,
    "profile": TRACE,
}


def ext(name, source, libraries=()):
    return Extension(name, [source], define_macros=macros, extra_compile_args=cflags, libraries=list(libraries))


# OpenSSL (libssl + libcrypto, 3.0 or newer; Debian: libssl-dev): the TLS
# contexts and the engine's TLS transport call it directly.
OPENSSL = ("ssl", "crypto")


# The import package `surge` lives in src/ (package-dir mapping), but Cython
# resolves `cimport surge.core...` by directory name: give it a surge/ that
# points at src/.
CYTHON_INCLUDE = Path(__file__).resolve().parent / "build" / "cython-include"
CYTHON_INCLUDE.mkdir(parents=True, exist_ok=True)
if not (CYTHON_INCLUDE / "surge").exists():
    (CYTHON_INCLUDE / "surge").symlink_to(CYTHON_INCLUDE.parent.parent / "src")

extensions = [
    ext("surge.core._limits", "src/core/_limits.pyx"),
    ext("surge.core._escape", "src/core/_escape.pyx"),
    ext("surge.core._histogram", "src/core/_histogram.pyx"),
    ext("surge.core._tls", "src/core/_tls.pyx", OPENSSL),
    ext("surge.core._engine", "src/core/_engine.pyx", OPENSSL),
    ext("surge.serve._protocol", "src/serve/_protocol.pyx"),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=ANNOTATE,
        include_path=[str(CYTHON_INCLUDE)],
    ),
)
