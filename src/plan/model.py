"""Where requests go: the parsed URL of a run or of a plan's host."""
from __future__ import annotations

from dataclasses import dataclass, field

from surge.plan.tls import TlsOptions

DEFAULT_PORTS = {"http": 80, "https": 443}


def host_port(host: str, port: int) -> str:
    """'127.0.0.1:8080', '[::1]:8080': how an address is printed everywhere."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Target:
    """Where requests go: the parsed URL."""
    scheme: str          # "http" | "https"
    host: str            # as written in the URL (name or address)
    port: int
    path: str            # path plus query, always starting with "/"
    # Credentials from the URL's userinfo (percent-decoded), sent as Basic auth; never shown.
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    # How an https host is spoken to (None for http); part of the host's
    # identity: the same origin with other TLS options is another pool.
    tls: TlsOptions | None = None

    @property
    def authority(self) -> str:
        """The Host header value: host[:port], port omitted when default; a
        non-ASCII name in its IDNA (punycode) form, as it goes on the wire."""
        host = self.host if self.host.isascii() else self.host.encode("idna").decode("ascii")
        host = f"[{host}]" if ":" in host else host
        return host if self.port == DEFAULT_PORTS.get(self.scheme) else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.path}"

    def origin(self, path: str = "/") -> "Target":
        """The same host, port and TLS options with another path (a step's host has "/")."""
        return Target(self.scheme, self.host, self.port, path, tls=self.tls)
