"""LoggingNginx whose /slow/ paths are answered late: nginx proxies them to a
`surge serve --delay` behind it, every other path it answers at once.  For a
plan whose data rows choose the path, so that one segment's rows (row r goes
to segment r mod N) carry the slow requests: one slow part in a fast whole."""
from __future__ import annotations

import subprocess
import sys
import time

from bench.nginx import _accepts, free_port
from tests.support.segment_nginx import LoggingNginx

SLOW_LOCATION = """
        location /slow/ {{ proxy_pass http://127.0.0.1:{slow_port}; proxy_http_version 1.1;
                          proxy_set_header Connection ""; }}
        location / {{ return 200; }}"""


class SlowRowsNginx(LoggingNginx):
    def __init__(self, delay: str):
        super().__init__()
        self.delay = delay
        self.backend = None

    def __enter__(self) -> "SlowRowsNginx":
        self.slow_port = free_port()
        self.backend = subprocess.Popen([sys.executable, "-m", "surge", "serve", "--port", str(self.slow_port),
                                         "-w", "1", "--delay", self.delay],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not _accepts(self.slow_port):
            if self.backend.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("surge serve (the slow backend) did not start")
            time.sleep(0.05)
        return super().__enter__()

    def config_text(self) -> str:
        text = super().config_text()
        plain = "        location / { return 200; }"
        assert plain in text
        return text.replace(plain, SLOW_LOCATION.format(slow_port=self.slow_port).strip("\n"), 1)

    def __exit__(self, *exc_info) -> None:
        super().__exit__(*exc_info)
        if self.backend is not None:
            if self.backend.poll() is None:
                self.backend.terminate()
                self.backend.wait(timeout=5)
            self.backend = None
