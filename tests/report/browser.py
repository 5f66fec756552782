"""Headless Chromium for report tests: dump the DOM after the scripts ran, take a
screenshot, and collect what the page wrote to the console."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
         # Any network access fails: the page must work offline.
         "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]
VIRTUAL_TIME_BUDGET_MS = 15_000
WIDTH_PX = 1280


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@dataclass
class Page:
    dom: str
    console: list[str]          # every console line the page produced (any level)
    status: dict                # the report's render-status element's data- attributes


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def _run(args: list[str], profile: Path, timeout_s: float) -> subprocess.CompletedProcess:
    binary = find_chromium()
    cmd = [binary, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)


def load(path: Path, profile: Path, height_px: int = 1000, timeout_s: float = 45) -> Page:
    """Open `path`, let its scripts run, return the resulting DOM and console output."""
    proc = _run([f"--window-size={WIDTH_PX},{height_px}", "--dump-dom", path.resolve().as_uri()], profile, timeout_s)
    match = re.search(r'<div id="surge-render-status"([^>]*)>', proc.stdout)
    status = {}
    if match:
        for name, value in re.findall(r'data-([a-z-]+)="([^"]*)"', match.group(1)):
            status[name] = html.unescape(value)
    if "layout" in status:
        status["layout"] = json.loads(status["layout"])
    return Page(proc.stdout, _console_lines(proc.stderr), status)


def screenshot(path: Path, png: Path, profile: Path, height_px: int, timeout_s: float = 45) -> list[str]:
    """A PNG of the page `WIDTH_PX` x `height_px`; returns the console lines."""
    proc = _run([f"--window-size={WIDTH_PX},{height_px}", f"--screenshot={png}", path.resolve().as_uri()],
                profile, timeout_s)
    assert png.exists(), proc.stderr[-2000:]
    return _console_lines(proc.stderr)
