"""Live progress: rich on a terminal (a real pty), plain lines elsewhere, nothing when quiet."""
import errno
import io
import os
import select

from surge.report.live import LiveProgress
from tests.report.synthetic import make_result


def read_all(fd: int) -> str:
    """Everything written to the pty, read from its master once the writer closed
    the other end: Linux answers EIO after the last byte. This waits for that
    event, not for a quiet spell (it used to stop at the first 0.2 s without data,
    which a loaded machine can give early: the kernel hands pty output over from
    a work queue). The 30 s bound is only against a hang, never reached."""
    chunks = []
    while True:
        assert select.select([fd], [], [], 30)[0], "pty: no data and no end of file in 30 s"
        try:
            data = os.read(fd, 65536)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def test_plain_lines_when_not_a_terminal():
    result = make_result(3, seed=1)
    out = io.StringIO()
    progress = LiveProgress(result["config"], quiet=False, stream=out)
    for k, point in enumerate(result["timeseries"], 1):
        progress.update(k, point)
    progress.close()
    banner, *lines = out.getvalue().splitlines()
    assert banner.startswith("surge ") and "http://127.0.0.1:8080/api?q=1" in banner and "2 workers" in banner
    assert len(lines) == 3
    first, point = lines[0], result["timeseries"][0]
    assert first.strip().startswith("1s/3s")
    assert f"{point['requests']:,} req/s" in first and "target 2,000 req/s" in first
    assert "p50" in first and "p99" in first and "uncorrected p99" in first
    assert f"errors {point['errors']}" in first and f"dropped {point['dropped']}" in first
    assert "cpu w0:" in first and "w1:" in first


def test_closed_model_today_point_shape():
    out = io.StringIO()
    progress = LiveProgress({"duration_s": 10, "model": "closed"}, stream=out)
    progress.update(1, {"t": 1.0, "requests": 84450, "errors": 0, "p50": 233, "p99": 393, "max": 1846})
    progress.update(2, None)                         # nothing reported for that second yet
    lines = out.getvalue().splitlines()
    assert "84,450 req/s" in lines[0] and "target" not in lines[0] and "cpu" not in lines[0]
    assert lines[1].strip() == "2s/10s"


def test_request_count_runs_show_how_far():
    out = io.StringIO()
    progress = LiveProgress({"requests": 1000, "duration_s": None}, stream=out)
    progress.update(1, {"t": 1.0, "requests": 250, "errors": 0, "p50": 1, "p99": 2, "max": 3})
    assert " 25%" in out.getvalue()


def test_quiet_writes_nothing():
    out = io.StringIO()
    progress = LiveProgress({"duration_s": 5}, quiet=True, stream=out)
    progress.update(1, {"t": 1.0, "requests": 5, "errors": 0, "p50": 1, "p99": 2, "max": 3})
    progress.close()
    assert out.getvalue() == ""


def test_rich_on_a_terminal():
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w", encoding="utf-8")
    try:
        result = make_result(3, seed=2)
        progress = LiveProgress(result["config"], stream=stream)
        assert progress.mode == "rich"
        for k, point in enumerate(result["timeseries"], 1):
            progress.update(k, point)
        progress.close()
        stream.close()                              # the end of output: read_all reads up to it
        text = read_all(master)
    finally:
        stream.close()
        os.close(master)
    assert "\x1b[" in text                          # drawn in place with terminal escapes
    assert "3s / 3s, 0s left" in text and "req/s" in text and "(target 2,000 req/s)" in text
    assert "p99" in text and "uncorrected" in text and "client CPU" in text and "w1" in text
    assert "━" in text                              # the progress bar
