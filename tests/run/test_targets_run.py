"""`surge run --targets FILE` end to end: each target counted apart, and exactly,
against what the server counted (issue 12 item 8)."""
from __future__ import annotations

from tests.helpers import run_surge
from tests.support.recording import RecordingServer

ROUTES = ("GET /items/{id}", "POST /login", "GET /search")


def demo_targets(tmp_path, url: str) -> str:
    base = url.rstrip("/")
    (tmp_path / "login.json").write_text('{"user": "ann", "password": "pw"}')
    path = tmp_path / "urls.txt"
    path.write_text(f"""\
GET {base}/items/7

POST {base}/login
Content-Type: application/json
@login.json

GET {base}/search?q=shoes
""")
    return str(path)


def routes_since(server, before: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in server.routes().items() if k in ROUTES}


def counted(run) -> dict:
    return {s["step"]: s["requests"] for s in run.result["steps"]}


def test_round_robin_with_n_counts_every_target_exactly_over_workers(surge_server, tmp_path):
    server = surge_server(app="demo")
    before = server.routes()
    run = run_surge("run", "--targets", demo_targets(tmp_path, server.url), "-n", "1000", "-c", "8", "-w", "2",
                    "-q", timeout_s=60)
    assert run.code == 0, run.stderr
    # 1000 over 3 targets in turn, the second worker starting where the first leaves off
    assert routes_since(server, before) == {"GET /items/{id}": 334, "POST /login": 333, "GET /search": 333}
    assert counted(run) == {"GET /items/7": 334, "POST /login": 333, "GET /search?q=shoes": 333}
    # the login body reached the server: every login answered 200, not 400
    steps = {s["step"]: s for s in run.result["steps"]}
    assert steps["POST /login"]["responses_by_status"] == {"200": 333}
    assert run.result["config"]["targets"] == 3 and run.result["config"]["order"] == "round-robin"


def test_random_order_for_a_time_counts_each_target_as_the_server_did(surge_server, tmp_path):
    server = surge_server(app="demo")
    before = server.routes()
    run = run_surge("run", "--targets", demo_targets(tmp_path, server.url), "--order", "random", "-d", "2s",
                    "-c", "4", "-w", "1", "-q", timeout_s=60)
    assert run.code == 0, run.stderr
    served = routes_since(server, before)
    mine = counted(run)
    # what was in flight at the deadline (at most one request a connection) the server counted, surge did not
    for step, route in zip(("GET /items/7", "POST /login", "GET /search?q=shoes"), ROUTES):
        assert 0 <= served[route] - mine[step] <= 4, (served, mine)
    total = sum(mine.values())
    assert total > 1000
    for n in mine.values():     # all equally likely: each about a third
        assert abs(n / total - 1 / 3) < 0.05, mine


def test_an_open_model_rate_is_requests_per_second_over_all_targets(surge_server, tmp_path):
    server = surge_server(app="demo")
    before = server.routes()
    run = run_surge("run", "--targets", demo_targets(tmp_path, server.url), "--rate", "300", "-d", "2s", "-w", "1",
                    "-q", timeout_s=60)
    assert run.code == 0, run.stderr
    served = routes_since(server, before)
    assert 540 <= sum(served.values()) <= 660          # 300/s for 2 s, one request an arrival
    assert max(served.values()) - min(served.values()) <= 1      # in turn: one worker, at most one apart


def test_headers_from_the_file_and_dash_h_reach_the_server(tmp_path):
    with RecordingServer() as server:
        path = tmp_path / "urls.txt"
        path.write_text(f"GET {server.url}a\nX-Team: own\n\nHEAD {server.url}b\n")
        run = run_surge("run", "--targets", str(path), "-n", "4", "-c", "1", "-w", "1", "-q",
                        "-H", "X-Team: cli", "-H", "X-Run: 9")
    assert run.code == 0, run.stderr
    lines = [head.split(b"\r\n")[0].decode() for head in server.heads]
    assert lines == ["GET /a HTTP/1.1", "HEAD /b HTTP/1.1"] * 2
    assert server.header_values("X-Team") == ["own", "cli"] * 2
    assert server.header_values("X-Run") == ["9", "9"] * 2
