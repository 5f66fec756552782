"""A minimal keep-alive HTTP/1.1 client for tests that check servers byte by
byte (`surge serve`): send raw requests, read framed responses."""
import socket

SOCKET_TIMEOUT_S = 5.0


class Client:
    """A keep-alive HTTP/1.1 client just smart enough to check the server."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)
        self.buffered = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, *requests: bytes) -> None:
        self.sock.sendall(b"".join(requests))

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffered += chunk
        return bool(chunk)

    def read_response(self, head_request: bool = False) -> tuple[int, dict, bytes]:
        """(status, headers with lower-case names, body) of the next response."""
        while b"\r\n\r\n" not in self.buffered:
            assert self._fill(), f"connection closed mid-head: {self.buffered!r}"
        head, self.buffered = self.buffered.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        version, status = status_line.split(" ")[:2]
        assert version == "HTTP/1.1"
        headers = {name.lower(): value.strip()
                   for name, value in (line.split(":", 1) for line in header_lines)}
        length = 0 if head_request else int(headers.get("content-length", "0"))
        while len(self.buffered) < length:
            assert self._fill(), "connection closed mid-body"
        body, self.buffered = self.buffered[:length], self.buffered[length:]
        return int(status), headers, body

    def at_eof(self) -> bool:
        """Whether the server closed the connection (after what was buffered)."""
        return not self.buffered and not self._fill()


def get(path: str = "/", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()


def head(path: str = "/") -> bytes:
    return f"HEAD {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode()
