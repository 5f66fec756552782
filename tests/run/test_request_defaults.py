"""Rough edges: the default User-Agent, and -n never opening more connections than requests."""
import pytest

import surge
from tests.helpers import run_surge
from tests.support.recording import RecordingServer

USER_AGENT = f"surge/{surge.__version__}"


def test_url_runs_send_a_default_user_agent():
    with RecordingServer() as server:
        run = run_surge("run", server.url, "-n", "3", "-q")
    assert run.code == 0, run.stderr
    assert server.header_values("User-Agent") == [USER_AGENT] * 3


def test_a_user_agent_header_replaces_the_default():
    with RecordingServer() as server:
        run = run_surge("run", server.url, "-n", "2", "-q", "-H", "user-agent: mine/1")
    assert run.code == 0, run.stderr
    assert server.header_values("User-Agent") == ["mine/1"] * 2
    assert all(head.lower().count(b"user-agent:") == 1 for head in server.heads)


def test_plan_steps_send_the_default_user_agent_unless_they_set_one(tmp_path):
    with RecordingServer() as server:
        plan = tmp_path / "ua.yaml"
        plan.write_text(
            "name: ua\n"
            f"target: {server.url}\n"
            "load: {model: closed, vus: 1, duration: 1s}\n"
            "scenarios:\n"
            "  - name: s\n"
            "    steps:\n"
            "      - {name: plain, request: GET /plain}\n"
            "      - {name: own, request: GET /own, headers: {User-Agent: probe/2}}\n"
        )
        run = run_surge("run", str(plan), "-q", "-w", "1")
    assert run.code == 0, run.stdout + run.stderr
    by_path = {}
    for head, agent in zip(server.heads, server.header_values("User-Agent")):
        by_path.setdefault(head.split(b" ")[1].decode(), set()).add(agent)
    assert by_path == {"/plain": {USER_AGENT}, "/own": {"probe/2"}}


@pytest.mark.parametrize("requests, workers", [("1", "1"), ("1", "4"), ("3", "2")])
def test_n_never_opens_more_load_connections_than_requests(requests, workers):
    with RecordingServer() as server:
        run = run_surge("run", server.url, "-n", requests, "-w", workers, "-q")     # -c stays 50
    assert run.code == 0, run.stderr
    n = int(requests)
    assert len(server.heads) == n
    assert run.result["config"]["connections"] == n
    assert server.request_connections <= n
    # Besides them only the address probe, closed before the start without a request.
    assert server.connections <= n + 1
