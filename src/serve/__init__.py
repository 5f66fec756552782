"""`surge serve`: the embedded HTTP/1.1 target (keep-alive, pipelining, W workers).

`server.serve()` runs it in this process tree; `server.ServeProcess` runs it as
a subprocess for tests and benchmarks. The per-connection protocol is compiled
(`_protocol.pyx`).
"""
