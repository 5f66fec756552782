"""nginx with redirects, a login, a session cookie and Basic auth, and an
access log to count by: the server's side of every hop.

    with RedirectNginx(tmp_dir) as server:
        server.url_a                   # http://127.0.0.1:PORT_A/ (the plan's host)
        server.url_b                   # http://127.0.0.1:PORT_B/ (a host the plan does not name)
        server.log()                   # [{port, method, uri, status, user, length}, ...]

Both servers share one nginx and one access log.  `absolute_redirect off`
keeps the Locations as written (relative ones stay relative).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

from bench.nginx import NginxError, free_port, launch, terminate

USER, PASSWORD = "alice", "wonder land:1"        # a ':' and a space in the password, as Basic allows
TOKEN = "tok-7f3a9c"                             # the login's bearer token
SESSION = "s3ss10n-42"                           # the login's session cookie

SERVER_A = r"""
        location = /r301 {{ return 301 /target; }}
        location = /r302 {{ return 302 /target; }}
        location = /r303 {{ return 303 /target; }}
        location = /r307 {{ return 307 /target; }}
        location = /r308 {{ return 308 /target; }}
        location = /two {{ return 302 /r301; }}
        location = /dir/sub/rel {{ return 302 ../target?from=rel; }}
        location = /dir/query {{
            if ($arg_page = "2") {{ return 200 "page 2\n"; }}
            return 302 ?page=2;
        }}
        location = /absolute {{ return 302 http://127.0.0.1:{port_a}/target; }}
        location = /scheme-relative {{ return 302 //127.0.0.1:{port_b}/target; }}
        location = /to-b {{ return 302 http://127.0.0.1:{port_b}/target; }}
        location = /to-b-by-name {{ return 302 http://localhost:{port_b}/target; }}
        location = /to-closed {{ return 302 http://127.0.0.1:{closed_port}/target; }}
        location = /to-https {{ return 302 https://127.0.0.1:{closed_port}/target; }}
        location = /loop {{ return 302 /loop; }}
        location = /target {{ return 200 "target\n"; }}
        location = /dir/target {{ return 200 "dir target\n"; }}
        location = /private.txt {{
            auth_basic "surge";
            auth_basic_user_file {tmp_dir}/htpasswd;
            root {tmp_dir}/www;
        }}
        location = /login {{
            add_header Set-Cookie "session={session}; Path=/";
            default_type application/json;
            return 200 '{{"token": "{token}"}}';
        }}
        location = /account {{
            if ($cookie_session != "{session}") {{ return 401; }}
            return 200 "account\n";
        }}
        location = /api {{
            if ($http_authorization != "Bearer {token}") {{ return 401; }}
            return 200 "api\n";
        }}
        location = /orders {{
            if ($cookie_session != "{session}") {{ return 403; }}
            if ($request_method = POST) {{ return 303 /orders/1; }}
            return 405;
        }}
        location = /orders/1 {{
            if ($cookie_session != "{session}") {{ return 403; }}
            return 200 "order 1\n";
        }}
"""

SERVER_B = r"""
        location = /target {{ return 200 "b target\n"; }}
"""

CONFIG = r"""
daemon off;
master_process off;
worker_processes 1;
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
    absolute_redirect off;
    log_format hops '$server_port $request_method $request_uri $status "$remote_user" $content_length';
    access_log {tmp_dir}/access.log hops;
    server {{
        listen 127.0.0.1:{port_a};
{server_a}
    }}
    server {{
        listen 127.0.0.1:{port_b};
{server_b}
    }}
}}
"""


class RedirectNginx:
    def __init__(self):
        self.tmp_dir = None
        self.process = None

    def __enter__(self) -> "RedirectNginx":
        self.tmp_dir = tempfile.mkdtemp(prefix="surge-redirect-nginx-")
        os.chmod(self.tmp_dir, 0o755)
        os.makedirs(os.path.join(self.tmp_dir, "www"))
        with open(os.path.join(self.tmp_dir, "www", "private.txt"), "w") as f:
            f.write("private\n")
        hashed = subprocess.run(["openssl", "passwd", "-apr1", PASSWORD], capture_output=True, text=True,
                                check=True).stdout.strip()
        with open(os.path.join(self.tmp_dir, "htpasswd"), "w") as f:
            f.write(f"{USER}:{hashed}\n")
        self.port_a, self.port_b, closed_port = free_port(), free_port(), free_port()
        values = dict(tmp_dir=self.tmp_dir, port_a=self.port_a, port_b=self.port_b, closed_port=closed_port,
                      session=SESSION, token=TOKEN)
        config = CONFIG.format(server_a=SERVER_A.format(**values), server_b=SERVER_B.format(**values), **values)
        try:
            self.process = launch(self.tmp_dir, config, (self.port_a, self.port_b))
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

    @property
    def url_a(self) -> str:
        return f"http://127.0.0.1:{self.port_a}/"

    @property
    def url_b(self) -> str:
        return f"http://127.0.0.1:{self.port_b}/"

    def log(self, at_least: int = 0) -> list[dict]:
        """Every request served so far, in order (nginx writes each a moment
        after its response: waits up to 5 s for `at_least` lines)."""
        deadline = time.monotonic() + 5
        while True:
            with open(os.path.join(self.tmp_dir, "access.log")) as f:
                lines = f.read().splitlines()
            if len(lines) >= at_least or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        entries = []
        for line in lines:
            port, method, uri, status, user, length = line.split(" ")
            entries.append({"port": int(port), "method": method, "uri": uri, "status": int(status),
                            "user": user.strip('"'), "length": 0 if length == "-" else int(length)})
        return entries

    def clear_log(self) -> None:
        """Start counting afresh (nginx keeps appending to the same file)."""
        with open(os.path.join(self.tmp_dir, "access.log"), "w"):
            pass
