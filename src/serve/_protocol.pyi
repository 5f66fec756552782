"""Type stub for the compiled protocol of `surge serve` (_protocol.pyx)."""
import asyncio
from typing import Any

def render_response(status: int, body_size_bytes: int, kind: int, is_head: bool) -> bytes:
    """The full response bytes; kind 0 HTTP/1.1 keep-alive, 1 HTTP/1.0 keep-alive, 2 close."""

DELAY_KINDS: dict[str, int]  # "none", "fixed", "uniform", "exp", "normal"

class ServeConfig:
    """What one worker answers and where it counts; calling it makes a ServeProtocol.

    Delays (delay_kind "fixed" a; "uniform" a..b; "exp" mean a; "normal" mean a,
    std dev b, truncated at 0; delay_ns=N is short for fixed) and stalls
    (stall_ns every stall_every_ns from started_at_ns, CLOCK_MONOTONIC, first
    window one period in) hold responses on a timerfd; they need `loop`.
    app "demo" answers with demo.DemoApp and counts per route.
    """
    loop: Any
    status: int
    body_size_bytes: int
    delay_kind: int
    delay_a_ns: int
    delay_b_ns: int
    stall_ns: int
    stall_every_ns: int
    started_at_ns: int
    close: bool
    status_path: bytes
    worker_index: int
    app: str  # "default" or "demo"
    def __init__(self, *, status: int = 200, body_size_bytes: int = 0, delay_ns: int = 0,
                 delay_kind: str | None = None, delay_a_ns: int = 0, delay_b_ns: int = 0,
                 seed: int | None = None, stall_ns: int = 0, stall_every_ns: int = 0,
                 started_at_ns: int | None = None,
                 close: bool = False, status_path: str = "/__surge/status", counts: Any = None,
                 worker_index: int = 0, loop: asyncio.AbstractEventLoop | None = None,
                 app: str = "default", route_counts: Any = None,
                 token_secret: bytes | None = None) -> None:
        """app "demo" routes requests through demo.DemoApp (token_secret: shared by all
        workers; route_counts: uint64 buffer, demo.ROUTE_SLOTS per worker)."""
    def draw_delays_ns(self, count: int) -> list[int]:
        """The next `count` delays this worker would give its requests (same generator)."""

    def __call__(self) -> ServeProtocol: ...
    def served(self) -> int: ...
    def route_counts_by_name(self) -> dict[str, int]:
        """Requests per route name (demo.ROUTES) over all workers; {} for the default app."""
    def _timer_fired(self) -> None:
        """The loop's reader callback for the timerfd: send the held answers that are due."""

class ServeProtocol(asyncio.Protocol):
    def __init__(self, config: ServeConfig) -> None: ...
    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...
    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> bool: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...
