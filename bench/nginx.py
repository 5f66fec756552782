"""A throwaway nginx (Debian nginx-light) for benchmarks and tests.

    with Nginx() as server:
        before = server.requests()
        ...drive load at server.url...
        served = server.requests() - before

nginx runs in the foreground with a config rendered from nginx.conf.tmpl into
a fresh temporary directory (pid, logs and temp paths all live there), serves
`return 200;` on 127.0.0.1:port and stub_status on 127.0.0.1:status_port.
Its request counter is the ground truth the benchmarks count by: it does not
depend on what the client under test claims.

With `Nginx(tls=TlsListener(cert, key, ...))` the same server also listens
with TLS on 127.0.0.1:tls_port (`tls_url`), same `return 200;`, same counter
(stub_status stays plain HTTP, so counting never costs a handshake):

    with Nginx(tls=TlsListener(cert="leaf.pem", key="leaf.key")) as server:
        ...drive load at server.tls_url...

Standard library only: tests import this module too.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NGINX_BINARY = "/usr/sbin/nginx"
TEMPLATE_PATH = Path(__file__).with_name("nginx.conf.tmpl")

__all__ = ["Nginx", "NginxError", "TlsListener", "nginx_available", "free_port", "NGINX_BINARY"]


class NginxError(RuntimeError):
    """nginx could not be started, or its status could not be read."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener beside the plain one (see the module docstring).

    cert, key       PEM files nginx serves (leaf first if `cert` holds a chain)
    protocols       nginx's ssl_protocols: "TLSv1.3" (the benchmarks' target),
                    "TLSv1.2 TLSv1.3", "TLSv1.2"
    verify_client   "off", "on" (mTLS: no valid client certificate -> nginx
                    answers 400) or "optional"
    client_ca       PEM bundle trusted for client certificates; required
                    unless verify_client is "off"
    session_cache   a shared session cache, so TLS 1.2 session IDs resume
                    (TLS 1.3 resumes by tickets, which nginx issues anyway)
    session_tickets False turns tickets off (TLS 1.3 then resumes through the
                    cache, TLS 1.2 by session ID only)
    log             write one access-log line per request with the TLS
                    parameters (`Nginx.tls_log()`); costs nginx CPU, so never
                    in a benchmark
    ipv6            listen on [::1]:tls_port as well (and [::1]:port plain)
    """
    cert: str
    key: str
    protocols: str = "TLSv1.3"
    verify_client: str = "off"
    client_ca: str | None = None
    session_cache: bool = True
    session_tickets: bool = True
    log: bool = False
    ipv6: bool = False

    def __post_init__(self):
        if self.verify_client not in ("off", "on", "optional"):
            raise ValueError(f"verify_client: must be off, on or optional; got {self.verify_client!r}")
        if self.verify_client != "off" and not self.client_ca:
            raise ValueError(f"verify_client={self.verify_client}: needs client_ca (a PEM bundle)")

    def directives(self, tmp_dir: str, port: int, tls_port: int) -> str:
        """The server-block lines that add this listener."""
        lines = [f"listen 127.0.0.1:{tls_port} ssl backlog=16384;"]
        if self.ipv6:
            lines += [f"listen [::1]:{port} backlog=16384;", f"listen [::1]:{tls_port} ssl backlog=16384;"]
        lines += [f"ssl_certificate {self.cert};", f"ssl_certificate_key {self.key};",
                  f"ssl_protocols {self.protocols};"]
        if self.session_cache:
            lines.append("ssl_session_cache shared:surge_tls:10m;")
        if not self.session_tickets:
            lines.append("ssl_session_tickets off;")
        if self.verify_client != "off":
            lines += [f"ssl_verify_client {self.verify_client};", f"ssl_client_certificate {self.client_ca};"]
        if self.log:
            lines.append(f"access_log {tmp_dir}/tls_access.log surge_tls;")
        return "\n".join("        " + line for line in lines)


def _render_config(tmp_dir: str, port: int, status_port: int,
                   tls: TlsListener | None = None, tls_port: int | None = None) -> str:
    template = TEMPLATE_PATH.read_text()
    more_listeners = tls.directives(tmp_dir, port, tls_port) if tls else ""
    return template.format(tmp_dir=tmp_dir, port=port, status_port=status_port,
                           more_listeners=more_listeners)


def _nginx_command(binary: str, tmp_dir: str, config_path: str) -> list[str]:
    # -p: prefix for relative paths; -e: the error log used *before* the config
    # is read (otherwise nginx opens /var/log/nginx/error.log first).
    return [binary, "-p", tmp_dir + "/", "-c", config_path, "-e", os.path.join(tmp_dir, "error.log")]


def nginx_available(binary: str = NGINX_BINARY) -> tuple[bool, str]:
    """(True, version) when `binary` exists and accepts our config (`nginx -t`),
    else (False, one-line reason) — for a skip message or a harness exit."""
    if not os.path.isfile(binary):
        return False, f"nginx not found at {binary} (install Debian's nginx-light)"
    if not os.access(binary, os.X_OK):
        return False, f"{binary} is not executable"
    tmp_dir = tempfile.mkdtemp(prefix="surge-nginx-check-")
    try:
        config_path = os.path.join(tmp_dir, "nginx.conf")
        with open(config_path, "w") as config_file:
            config_file.write(_render_config(tmp_dir, free_port(), free_port()))
        try:
            check = subprocess.run(
                _nginx_command(binary, tmp_dir, config_path) + ["-t"],
                capture_output=True, text=True, timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"{binary} -t failed to run: {exc}"
        if check.returncode != 0:
            last_line = (check.stderr.strip().splitlines() or ["no output"])[-1]
            return False, f"{binary} rejects the benchmark config: {last_line}"
        version = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
        return True, version.stderr.strip() or "nginx"
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


class Nginx:
    """nginx as a context manager: started on entry, stopped on exit.

    Attributes once entered: `port`, `status_port`, `url` (ends in "/"),
    `pid`, `tmp_dir`; with `tls`, also `tls_port` and `tls_url`.
    `requests()` reads the stub_status counter, `status()` all of it
    (`accepts` counts connections, TLS ones included).
    """

    def __init__(self, binary: str = NGINX_BINARY, start_timeout_s: float = 10.0,
                 tls: TlsListener | None = None, status_timeout_s: float = 5.0):
        self.binary = binary
        self.start_timeout_s = start_timeout_s
        # nginx answers stub_status from the same (single) worker that serves the
        # load: behind 10,000 TLS handshakes, an answer can take seconds.
        self.status_timeout_s = status_timeout_s
        self.tls = tls
        self.port: int | None = None
        self.status_port: int | None = None
        self.tls_port: int | None = None
        self.tmp_dir: str | None = None
        self._process: subprocess.Popen | None = None
        self._status_reads = 0

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> "Nginx":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def tls_url(self) -> str:
        """https://127.0.0.1:tls_port/ (NginxError without a TLS listener)."""
        return self.tls_url_for("127.0.0.1")

    def tls_url_for(self, host: str) -> str:
        """The TLS URL by another name: "localhost", "::1" (needs ipv6=True)."""
        if self.tls is None or self.tls_port is None:
            raise NginxError("this nginx has no TLS listener (Nginx(tls=TlsListener(...)))")
        return f"https://{'[' + host + ']' if ':' in host else host}:{self.tls_port}/"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        """Start nginx on a free port pair and return once both ports accept."""
        self.tmp_dir = tempfile.mkdtemp(prefix="surge-nginx-")
        # Workers drop to `nobody` when nginx runs as root; let them look inside.
        os.chmod(self.tmp_dir, 0o755)
        last_error = ""
        # Ports are picked, then bound by nginx: another process may take one
        # in between, so a failed bind is retried on a new pair.
        for _attempt in range(3):
            self.port, self.status_port = free_port(), free_port()
            self.tls_port = free_port() if self.tls else None
            if len({self.port, self.status_port, self.tls_port}) != 3:
                continue
            config_path = os.path.join(self.tmp_dir, "nginx.conf")
            with open(config_path, "w") as config_file:
                config_file.write(_render_config(self.tmp_dir, self.port, self.status_port,
                                                 self.tls, self.tls_port))
            try:
                self._process = subprocess.Popen(
                    _nginx_command(self.binary, self.tmp_dir, config_path),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )
            except OSError as exc:
                self._cleanup_tmp()
                raise NginxError(f"cannot run {self.binary}: {exc}") from exc
            last_error = self._wait_until_accepting()
            if not last_error:
                return
            self._kill()
        self._cleanup_tmp()
        raise NginxError(f"nginx did not start: {last_error}")

    def stop(self) -> None:
        """Stop nginx (SIGTERM, then SIGKILL after 5 s) and remove its directory."""
        if self._process is not None:
            terminate(self._process)
            self._process = None
        self._cleanup_tmp()

    def _wait_until_accepting(self) -> str:
        """'' once both ports accept; else why not (nginx's own words if it exited)."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode(errors="replace").strip()
                return stderr.splitlines()[-1] if stderr else f"exited with {self._process.returncode}"
            if all(_accepts(port) for port in (self.port, self.status_port, self.tls_port) if port):
                return ""
            time.sleep(0.02)
        ports = "/".join(str(port) for port in (self.port, self.status_port, self.tls_port) if port)
        return f"ports {ports} not accepting after {self.start_timeout_s:g} s"

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=5)
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()

    def _cleanup_tmp(self) -> None:
        if self.tmp_dir:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None

    # -- status ------------------------------------------------------------

    def status(self) -> dict[str, int]:
        """stub_status as numbers: active, accepts, handled, requests, reading,
        writing, waiting. `requests` here is nginx's raw counter, which
        includes every status request ever made (this one too)."""
        if self.status_port is None:
            raise NginxError("nginx is not running")
        connection = http.client.HTTPConnection("127.0.0.1", self.status_port, timeout=self.status_timeout_s)
        try:
            connection.request("GET", "/", headers={"Connection": "close"})
            response = connection.getresponse()
            body = response.read().decode()
        except OSError as exc:
            raise NginxError(f"stub_status on port {self.status_port}: {exc}") from exc
        finally:
            connection.close()
        self._status_reads += 1
        return _parse_stub_status(body)

    def requests(self) -> int:
        """Requests nginx has served, not counting this object's own status
        requests — so the difference of two readings is exactly the load."""
        return self.status()["requests"] - self._status_reads

    def connections(self) -> int:
        """Connections nginx has accepted (plain and TLS), not counting this
        object's own status connections (one per status read)."""
        return self.status()["accepts"] - self._status_reads

    def tls_log(self, at_least: int = 0, timeout_s: float = 5.0) -> list[dict[str, str]]:
        """The TLS access log so far (needs TlsListener(log=True)), one dict per
        request: connection (nginx's serial number), connection_requests,
        status, protocol, cipher, curve, reused ("r" when the session was
        resumed, "." when not), client_verify (SUCCESS, NONE, FAILED:reason).
        Plain-HTTP requests appear too, with "-" for the TLS fields.

        nginx writes a line after it has sent the response, so a client that
        has just read it can be ahead of the log: with `at_least`, wait up to
        timeout_s for that many lines (and return what there is then)."""
        if not (self.tls and self.tls.log and self.tmp_dir):
            raise NginxError("no TLS log: start Nginx(tls=TlsListener(..., log=True))")
        deadline = time.monotonic() + timeout_s
        while True:
            entries = self._read_tls_log()
            if len(entries) >= at_least or time.monotonic() > deadline:
                return entries
            time.sleep(0.01)

    def _read_tls_log(self) -> list[dict[str, str]]:
        keys = ("connection", "connection_requests", "status", "protocol", "cipher", "curve",
                "reused", "client_verify")
        try:
            text = Path(self.tmp_dir, "tls_access.log").read_text(errors="replace")
        except FileNotFoundError:
            return []
        # client_verify may hold spaces ("FAILED:certificate has expired"): it is last,
        # so split at most 7 times; a line still being written (no newline yet) is left out.
        lines = text.split("\n")[:-1]
        return [dict(zip(keys, line.split(" ", len(keys) - 1))) for line in lines if line]

    def error_log(self) -> str:
        """The error log so far (for a failure message)."""
        if not self.tmp_dir:
            return ""
        try:
            return Path(self.tmp_dir, "error.log").read_text(errors="replace")
        except OSError:
            return ""


def launch(tmp_dir: str, config_text: str, ports: tuple[int, ...], binary: str = NGINX_BINARY,
           timeout_s: float = 10.0) -> subprocess.Popen:
    """nginx on tmp_dir/nginx.conf (written from config_text), returned once every
    port accepts; NginxError with nginx's own words when it exits or never does."""
    path = os.path.join(tmp_dir, "nginx.conf")
    with open(path, "w") as f:
        f.write(config_text)
    process = subprocess.Popen(_nginx_command(binary, tmp_dir, path), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    while not all(_accepts(port) for port in ports):
        if process.poll() is not None or time.monotonic() > deadline:
            error = process.stderr.read().decode(errors="replace").strip() if process.poll() is not None else ""
            terminate(process)
            raise NginxError(f"nginx did not start: {error or f'ports not accepting after {timeout_s:g} s'}")
        time.sleep(0.02)
    return process


def terminate(process: subprocess.Popen, timeout_s: float = 5.0) -> None:
    """SIGTERM, SIGKILL after timeout_s, then close its stderr pipe."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)
    if process.stderr is not None:
        process.stderr.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _parse_stub_status(body: str) -> dict[str, int]:
    # Active connections: 1
    # server accepts handled requests
    #  7 7 9
    # Reading: 0 Writing: 1 Waiting: 0
    lines = body.strip().splitlines()
    try:
        active = int(lines[0].split(":")[1])
        accepts, handled, requests = (int(field) for field in lines[2].split())
        rest = lines[3].split()
        reading, writing, waiting = int(rest[1]), int(rest[3]), int(rest[5])
    except (IndexError, ValueError) as exc:
        raise NginxError(f"unexpected stub_status body: {body!r}") from exc
    return {
        "active": active, "accepts": accepts, "handled": handled, "requests": requests,
        "reading": reading, "writing": writing, "waiting": waiting,
    }
