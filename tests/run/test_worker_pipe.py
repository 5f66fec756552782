"""The worker's channel stays blocking under the event loop, so a snapshot larger
than the socket buffer arrives whole however late the supervisor reads it; the
channel carries each message whole and says when the other end is gone."""
import asyncio
import os
import pickle
import threading

import uvloop

import pytest

from surge.run.messages import Channel, Final, Ready, Stop, Tick
from surge.run.worker import WorkerSpec, watch_pipe


def test_a_watched_pipe_sends_a_message_larger_than_its_buffer_whole():
    parent_end, child_end = Channel.pair()
    big = {"latency": list(range(400_000))}         # ~2.4 MB pickled: far over the socket buffer
    sent = {}

    async def worker_side():
        watch_pipe(asyncio.get_running_loop(), child_end, lambda: None)
        sent["blocking"] = os.get_blocking(child_end.fileno())
        # The parent is not reading yet: a non-blocking send would fail part-way here.
        def send():
            try:
                child_end.send(Tick(second=1, snapshot=big))
            except OSError as exc:              # BlockingIOError: cut mid-message
                sent["error"] = exc
                child_end.close()               # so the reader below ends instead of waiting

        writer = threading.Thread(target=send)
        writer.start()
        try:
            message = await asyncio.get_running_loop().run_in_executor(None, parent_end.recv)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            message = exc
        writer.join()
        assert "error" not in sent, sent.get("error")
        return message

    message = uvloop.run(worker_side())
    assert sent["blocking"] is True
    assert isinstance(message, Tick) and message == Tick(second=1, snapshot=big)
    assert len(pickle.dumps(big)) > 1_000_000


def test_the_channel_keeps_message_boundaries_and_kinds():
    supervisor, worker = Channel.pair()
    worker.send(Ready(open_connections=3, errors={"connect": 1}))
    worker.send(Final(end_ns=5, snapshot={"completed": 7}, abandoned=0))
    supervisor.send(Stop())
    first, second = supervisor.recv(), supervisor.recv()
    assert type(first) is Ready and first.open_connections == 3 and first.errors == {"connect": 1}
    assert type(second) is Final and second.snapshot == {"completed": 7}
    assert type(worker.recv()) is Stop


def test_the_channel_says_eof_when_the_other_end_closes_mid_message():
    supervisor, worker = Channel.pair()
    worker.sock.sendall(b"\x10\x00\x00\x00\x00\x00\x00\x00abc")     # a frame of 16 bytes, 3 sent
    worker.close()
    with pytest.raises(EOFError):
        supervisor.recv()


def test_the_worker_spec_takes_names_only():
    with pytest.raises(TypeError):
        WorkerSpec(0, 1, None, (), 10)          # positional fields were how two got swapped
