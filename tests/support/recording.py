"""A keep-alive HTTP/1.1 server that records what it receives.

    with RecordingServer() as server:          # 127.0.0.1, a free port
        run surge against server.url
    server.heads        # every request head received (bytes, through the blank line)
    server.connections  # connections accepted (a probe connect counts too)
    server.request_connections  # connections that carried at least one request

Answers every request with `200 OK`, an empty body and Content-Length: 0.
Request bodies are read by their Content-Length into `bodies` (no chunked bodies).
Threads are daemons with short socket timeouts, so leaving the block stops it.
"""
from __future__ import annotations

import socket
import threading

POLL_S = 0.05


class RecordingServer:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.port: int | None = None
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []       # each request's body (by its Content-Length), beside heads
        self.connections = 0
        self.request_connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def header_values(self, name: str) -> list[str]:
        """The value of header `name` in each recorded request (None where absent)."""
        wanted = name.lower().encode()
        values = []
        for head in self.heads:
            found = None
            for line in head.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                if key.strip().lower() == wanted:
                    found = value.strip().decode()
            values.append(found)
        return values

    def __enter__(self) -> "RecordingServer":
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, 0))
        self._listener.listen(256)
        self._listener.settimeout(POLL_S)
        self.port = self._listener.getsockname()[1]
        accept = threading.Thread(target=self._accept_loop, daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2.0)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(POLL_S)
            with self._lock:
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        buffer = bytearray()
        served = 0
        try:
            while not self._stop.is_set():
                end = buffer.find(b"\r\n\r\n")
                if end >= 0:
                    head = bytes(buffer[:end + 4])
                    length = _content_length(head)
                    if len(buffer) < end + 4 + length:       # the body is not all here yet
                        if not self._read_more(sock, buffer):
                            return
                        continue
                    body = bytes(buffer[end + 4:end + 4 + length])
                    del buffer[:end + 4 + length]
                    with self._lock:
                        self.heads.append(head)
                        self.bodies.append(body)
                        if served == 0:
                            self.request_connections += 1
                    served += 1
                    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    continue
                if not self._read_more(sock, buffer):
                    return
        except OSError:
            return
        finally:
            sock.close()

    def _read_more(self, sock: socket.socket, buffer: bytearray) -> bool:
        """More bytes into buffer (False: the client closed)."""
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return True
        if not data:
            return False
        buffer += data
        return True


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip() or 0)
    return 0
