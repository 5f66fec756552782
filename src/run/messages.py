"""The messages between the supervisor and a worker, and the channel that
carries them: one end of a Unix socket pair per side, one pickled message
per frame (see Channel).

    worker -> supervisor   Ready    every connection connected (or failed) once
    supervisor -> worker   Start    the common start instant and the deadline
    worker -> supervisor   Tick     second k's snapshot, sent at start + k s
    supervisor -> worker   Stop     interrupted (or aborted): finish now
    worker -> supervisor   Final    the last, partial interval, once stopped
    worker -> supervisor   Failed   the worker could not run (fd limit, tables the engine refused)

A snapshot (Engine.snapshot() plus what the worker adds) holds cumulative
counters and the latency histogram of the interval since the previous one,
so the supervisor's merge (surge.run.merge) is exact.  The worker adds
"usage" (CPU and memory), "worker" (its index) and "quarters" (the
sub-second reads since the last tick); a Final's also "queued_at_stop".

The messages are NamedTuples, not dataclasses: as typed and as immutable,
and creating the six classes costs ~0.4 ms instead of ~3 ms of every run's
start-up.  Tell them apart with isinstance (two kinds with the same field
values compare equal as tuples).
"""
from __future__ import annotations

import pickle
import socket
import struct
from typing import NamedTuple


class Ready(NamedTuple):
    open_connections: int
    errors: dict                    # transport errors by kind while connecting


class Start(NamedTuple):
    start_ns: int                   # CLOCK_MONOTONIC: when every worker starts sending
    deadline_ns: int | None         # when to stop; None: when the -n quota is done


class Tick(NamedTuple):
    second: int                     # k: the snapshot covers (start + k-1 s, start + k s]
    snapshot: dict


class Stop(NamedTuple):
    pass


class Final(NamedTuple):
    end_ns: int                     # when the worker stopped sending
    snapshot: dict
    abandoned: int                  # requests in flight at the stop


class Failed(NamedTuple):
    reason: str


_LENGTH = struct.Struct("<Q")       # each frame: the pickle's length, then the pickle


class Channel:
    """One end of a blocking stream socket between the supervisor and one
    worker: send() writes a whole message, recv() reads one (EOFError once
    the other end is closed, OSError on a socket error), as
    multiprocessing's Connection does, without importing multiprocessing
    (~10 ms of CPU per run: tempfile, shutil, its reduction machinery)."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket):
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        """Two connected ends: one for the supervisor, one for the worker it forks."""
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message) -> None:
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        self.sock.sendall(_LENGTH.pack(len(data)) + data)

    def recv(self):
        (length,) = _LENGTH.unpack(self._exactly(_LENGTH.size))
        return pickle.loads(self._exactly(length))

    def _exactly(self, n: int) -> bytearray:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if k == 0:
                raise EOFError("the other end of the channel is closed")
            got += k
        return buf

    def close(self) -> None:
        self.sock.close()
