"""nginx that counts (stub_status) and logs when each request was served and
its URI: the server's side of a run spread over segments.

    with LoggingNginx() as server:
        server.url                      # http://127.0.0.1:PORT/ (return 200 for every path)
        server.requests()               # stub_status, the ground truth (its own reads not counted)
        server.log(at_least=N)          # [(msec as float seconds, uri), ...] in the order served

Everything lives in one temporary directory; the access log is written per
request (no buffer), so it is complete once nginx has answered.
"""
from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import time

from bench.nginx import NginxError, _parse_stub_status, free_port, launch, terminate

CONFIG = r"""
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {tmp_dir}/nginx.pid;
error_log {tmp_dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {tmp_dir}/client_body;
    proxy_temp_path {tmp_dir}/proxy;
    fastcgi_temp_path {tmp_dir}/fastcgi;
    uwsgi_temp_path {tmp_dir}/uwsgi;
    scgi_temp_path {tmp_dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    log_format served '$msec $request_uri';
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        access_log {tmp_dir}/access.log served;
        location / {{ return 200; }}
    }}
    server {{
        listen 127.0.0.1:{status_port};
        access_log off;
        location / {{ stub_status; }}
    }}
}}
"""


class LoggingNginx:
    def __init__(self):
        self.tmp_dir = None
        self.process = None
        self._status_reads = 0

    def __enter__(self) -> "LoggingNginx":
        self.tmp_dir = tempfile.mkdtemp(prefix="surge-segment-nginx-")
        os.chmod(self.tmp_dir, 0o755)
        self.port, self.status_port = free_port(), free_port()
        try:
            self.process = launch(self.tmp_dir, self.config_text(), (self.port, self.status_port))
        except NginxError:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process is not None:
            terminate(self.process)
            self.process = None
        if self.tmp_dir:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None

    def config_text(self) -> str:
        """nginx.conf; a subclass may serve more (tests/support/slow_rows_nginx.py)."""
        return CONFIG.format(tmp_dir=self.tmp_dir, port=self.port, status_port=self.status_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def requests(self) -> int:
        """Requests served so far (stub_status), not counting these status reads."""
        connection = http.client.HTTPConnection("127.0.0.1", self.status_port, timeout=10)
        try:
            connection.request("GET", "/", headers={"Connection": "close"})
            body = connection.getresponse().read().decode()
        finally:
            connection.close()
        self._status_reads += 1
        return _parse_stub_status(body)["requests"] - self._status_reads

    def log(self, at_least: int = 0) -> list[tuple[float, str]]:
        """(served at, URI) of every request so far; waits up to 5 s for `at_least`."""
        deadline = time.monotonic() + 5
        while True:
            with open(os.path.join(self.tmp_dir, "access.log")) as f:
                lines = f.read().splitlines()
            if len(lines) >= at_least or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        entries = []
        for line in lines:
            msec, uri = line.split(" ", 1)
            entries.append((float(msec), uri))
        return entries

    def clear_log(self) -> None:
        with open(os.path.join(self.tmp_dir, "access.log"), "w"):
            pass
