"""The run plan: what to send, where, how hard and for how long (immutable)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """Where requests go: the parsed URL."""
    scheme: str          # "http"
    host: str            # as written in the URL (name or address)
    port: int
    path: str            # path plus query, always starting with "/"

    @property
    def authority(self) -> str:
        """The Host header value: host[:port], port omitted when default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 80 else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.path}"


@dataclass(frozen=True)
class RunPlan:
    """A closed-model run of one request (what `surge run URL` builds)."""
    target: Target
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    connections: int = 50
    workers: int = 1
    duration_ns: int | None = 10_000_000_000      # None when `requests` bounds the run
    requests: int | None = None                   # -n: exact number of requests
    timeout_ns: int = 5_000_000_000
    pipeline: int = 1                              # requests in flight per connection
    extra: dict = field(default_factory=dict, compare=False)

    def describe(self) -> dict:
        """The plan as it appears in the result file's "config"."""
        return {
            "url": self.target.url,
            "method": self.method,
            "headers": [f"{k}: {v}" for k, v in self.headers],
            "body_bytes": len(self.body),
            "connections": self.connections,
            "workers": self.workers,
            "duration_s": self.duration_ns / 1e9 if self.duration_ns else None,
            "requests": self.requests,
            "timeout_s": self.timeout_ns / 1e9,
            "pipeline": self.pipeline,
            "model": "closed",
        }
