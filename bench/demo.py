"""`make demo`: surge's embedded target, a max-RPS run against it, and a cross-check.

    python bench/demo.py [--port 18080] [--duration 10s] [--connections 50] [--workers N]

1. starts `python -m surge serve --port PORT -w 1` and waits for its
   "surge serve listening on http://HOST:PORT" line;
2. runs `python -m surge run http://HOST:PORT/ -c 50 -d 10s` in the
   foreground, so its live progress and summary appear as they are;
3. asks the target for its own count (GET /__surge/status) and prints it,
   to set beside the number of requests surge reported;
4. stops the target (SIGINT) and exits with surge run's exit status.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

READY_PATTERN = re.compile(r"surge serve listening on (http://\S+?):(\d+)")
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `port` now. SO_REUSEADDR, as servers
    set it: connections left in TIME_WAIT by an earlier run do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def any_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class TargetOutput:
    """Reads the target's stdout in a thread, so the pipe never fills, and
    remembers the ready line and the final 'served N requests' line."""

    def __init__(self, stream):
        self.ready = threading.Event()
        self.base_url: str | None = None
        self.served_line: str | None = None
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for raw_line in stream:
            line = raw_line.decode(errors="replace").rstrip()
            self.lines.append(line)
            match = READY_PATTERN.search(line)
            if match and not self.ready.is_set():
                self.base_url = f"{match.group(1)}:{match.group(2)}"
                self.ready.set()
            if line.startswith("served "):
                self.served_line = line
        self.ready.set()  # EOF: the target exited; the waiter checks base_url

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


def stop_target(target: subprocess.Popen) -> None:
    if target.poll() is None:
        target.send_signal(signal.SIGINT)
        try:
            target.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            target.kill()
            target.wait()


def target_request_count(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/__surge/status", timeout=5) as response:
        return int(json.load(response)["requests"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="surge's demo: embedded target + a max-RPS run")
    parser.add_argument("--port", type=int, default=18080, help="target port (default 18080; another if busy)")
    parser.add_argument("--duration", default="10s", help="surge run -d (default 10s)")
    parser.add_argument("--connections", type=int, default=50, help="surge run -c (default 50)")
    parser.add_argument("--workers", type=int, default=None, help="surge run -w (default: surge chooses)")
    args = parser.parse_args(argv)

    port = args.port
    if not port_is_free(port):
        port = any_free_port()
        print(f"demo: port {args.port} is busy; using {port} instead", flush=True)

    serve_command = [sys.executable, "-m", "surge", "serve", "--port", str(port), "-w", "1"]
    print(f"demo: starting the target: python {' '.join(serve_command[1:])}", flush=True)
    target = subprocess.Popen(serve_command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    output = TargetOutput(target.stdout)
    try:
        if not output.ready.wait(READY_TIMEOUT_S) or output.base_url is None:
            try:
                why = f"exited with status {target.wait(timeout=1)} before reporting ready"
            except subprocess.TimeoutExpired:
                why = f"did not report ready within {READY_TIMEOUT_S:g} s"
            print(f"demo: the target {why}; its output:", file=sys.stderr)
            for line in output.lines[-20:]:
                print(f"  | {line}", file=sys.stderr)
            return 1
        # The target may announce 0.0.0.0; the client connects over loopback either way.
        base_url = output.base_url.replace("0.0.0.0", "127.0.0.1")
        print(f"demo: target ready at {base_url}", flush=True)

        run_command = [sys.executable, "-m", "surge", "run", f"{base_url}/",
                       "-c", str(args.connections), "-d", args.duration]
        if args.workers is not None:
            run_command += ["-w", str(args.workers)]
        print(f"demo: python {' '.join(run_command[1:])}\n", flush=True)
        run_exit = subprocess.call(run_command)  # stdout inherited: the user sees surge's own output

        try:
            print(f"\ntarget served {target_request_count(base_url):,} requests (surge serve's own counter)")
        except (OSError, ValueError, KeyError) as exc:
            print(f"\ndemo: could not read {base_url}/__surge/status: {exc}", file=sys.stderr)
        return run_exit
    except KeyboardInterrupt:
        return 130
    finally:
        stop_target(target)
        output.join(2.0)
        if output.served_line:
            print(f"demo: target stopped ({output.served_line})")


if __name__ == "__main__":
    sys.exit(main())
