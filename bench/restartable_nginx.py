"""An nginx (bench/nginx.py) that can go away and come back on the same ports:
a target outage for the reliability tests and bars.

    with RestartableNginx() as server:
        server.halt()          # SIGTERM: its ports refuse connections from now on
        server.resume()        # the same config, the same ports, accepting again
        served = server.requests()     # every lifetime's requests added

stub_status counts from zero in each nginx process, so requests() adds the
count each lifetime ended with (read just before its halt) to the current one.

Standard library only: tests import this module too.
"""
from __future__ import annotations

import os
import subprocess

from nginx import Nginx, NginxError, _nginx_command, terminate


class RestartableNginx(Nginx):
    """Nginx with halt() and resume(); status reads made while halted fail (NginxError)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._served_before = 0           # requests of the lifetimes that ended

    def halt(self) -> None:
        """Stop nginx (SIGTERM, SIGKILL after 5 s), keeping its directory and ports."""
        if self._process is None:
            raise NginxError("nginx is not running")
        self._served_before += super().requests()
        self._status_reads = 0
        terminate(self._process)
        self._process = None

    def resume(self) -> None:
        """Start nginx again with the same config; returns once its ports accept."""
        if self._process is not None:
            raise NginxError("nginx is already running")
        config_path = os.path.join(self.tmp_dir, "nginx.conf")
        self._process = subprocess.Popen(_nginx_command(self.binary, self.tmp_dir, config_path),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
        error = self._wait_until_accepting()
        if error:
            self._kill()
            raise NginxError(f"nginx did not come back: {error}")

    def requests(self) -> int:
        """Requests served over every lifetime so far (0 added while halted)."""
        if self._process is None:
            return self._served_before
        return self._served_before + super().requests()
