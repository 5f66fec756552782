"""The workload of `surge run`, built from its options by the plan layer:
every problem at once, and one form for URL runs and plans (issue 10 items 1, 5)."""
import pytest

from surge.plan.build import build_workload, url_workload
from surge.plan.describe import describe_config
from surge.plan.options import RunOptions, load_profile
from surge.run.flows import FlowTables
from surge.plan.workload import PlanSource, UrlSource

URL = "http://127.0.0.1:9/path?q=1"
S = 1_000_000_000


def texts(built):
    return [p.text for p in built.problems]


def test_one_problem_keeps_its_sentence():
    profile, problems = load_profile(RunOptions(duration_ns=S, requests=10))
    assert problems == ["-d/--duration and -n/--requests exclude each other: give one"]


def test_every_load_problem_is_returned_not_only_the_first():
    options = RunOptions(duration_ns=S, requests=10, rate=100.0, pipeline=4, stages="1s:10", shape="ramp:5:1s",
                         connections=7, explicit={"connections": "-c/--connections"})
    _, problems = load_profile(options)
    assert problems[:6] == [
        "-d/--duration and -n/--requests exclude each other: give one",
        "--stages and --shape exclude each other: give one",
        "--stages sets the run's length: drop -d/--duration",
        "--stages and -n/--requests exclude each other",
        "--rate and -n/--requests exclude each other: an open-model run is bounded by time (-d or --stages)",
        "--pipeline applies to the closed model only; with --rate each connection carries one request at a time",
    ]
    assert problems[6] == "-c/--connections applies to the closed model; with --rate use --max-connections"


def test_open_model_options_without_a_rate():
    _, problems = load_profile(RunOptions(max_connections=5, schedule_grid_ns=1_000_000))
    assert problems == ["--max-connections applies to the open model: add --rate",
                        "--schedule-grid applies to the open model: add --rate"]


def test_a_stage_that_does_not_parse_comes_after_the_exclusions():
    _, problems = load_profile(RunOptions(stages="soon:10", requests=5))
    assert problems[0] == "--stages and -n/--requests exclude each other"
    assert problems[1].startswith("--stages: stage 1 duration")


def test_an_open_run_with_nothing_to_send():
    profile, problems = load_profile(RunOptions(rate=0.0, stages="1s:0"))
    assert profile is None
    assert problems == ["--stages: every target is 0: nothing would be sent"]


def test_load_and_request_problems_together():
    built = url_workload("ftp://x/", RunOptions(method="G T", headers=("nocolon",), duration_ns=S, requests=1))
    assert built.workload is None
    found = texts(built)
    assert found[0] == "-d/--duration and -n/--requests exclude each other: give one"
    assert found[1].startswith("URL: scheme 'ftp' is not supported")
    assert found[2].startswith("-m/--method: got 'G T'")
    assert found[3].startswith("-H/--header: got 'nocolon'")


def test_a_url_run_is_one_literal_step():
    built = url_workload("http://u:pw@127.0.0.1:9/a/${x}?b=%20", RunOptions(
        method="post", headers=("X-A: ${y}",), body="{${z}}", connections=3))
    workload = built.workload
    assert built.problems == ()
    assert isinstance(workload.source, UrlSource) and not workload.source.reports_steps
    (scenario,) = workload.scenarios
    (step,) = scenario.steps
    assert all(t.is_static for t in step.templates)          # never parsed as templates
    assert step.path.literal == "/a/${x}?b=%20"
    assert [name for name, _ in step.headers] == ["Authorization", "X-A"]
    assert workload.load.users == 3
    (engine_step,) = FlowTables(workload).steps           # what the engine sends
    head = b"".join(engine_step.head)
    assert head.startswith(b"POST /a/${x}?b=%20 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nUser-Agent: surge/")
    assert head.endswith(b"\r\nAuthorization: Basic dTpwdw==\r\nX-A: ${y}\r\n")
    assert engine_step.body == (b"{${z}}",) and engine_step.send_length and not engine_step.length_given


def test_a_binary_body_goes_out_as_its_bytes(tmp_path):
    body = bytes(range(256))
    (tmp_path / "b.bin").write_bytes(body)
    workload = url_workload(URL, RunOptions(method="PUT", body=f"@{tmp_path / 'b.bin'}")).workload
    assert workload.steps[0].body.parts == (body,)          # bytes, not text


def test_n_caps_connections_and_has_no_duration():
    workload = url_workload(URL, RunOptions(connections=50, requests=7)).workload
    assert (workload.load.users, workload.load.requests, workload.load.duration_ns) == (7, 7, None)


def test_url_config_keeps_its_keys_in_order():
    workload = url_workload(URL, RunOptions(auth="me:secret", pipeline=2, workers=2)).workload
    config = describe_config(workload, {"target": {"address": "127.0.0.1:9"}, "hosts": []})
    assert list(config) == ["url", "method", "headers", "auth", "address", "body_bytes", "connections", "workers",
                            "duration_s", "requests", "timeout_s", "pipeline", "pipeline_timing", "model"]
    assert config["auth"] == "me:***" and "secret" not in repr(config)


def test_a_plan_compiles_to_the_same_type(tmp_path):
    plan = tmp_path / "p.yaml"
    plan.write_text("target: http://127.0.0.1:9\nload: {vus: 4, duration: 2s}\n"
                    "scenarios:\n  - name: s\n    steps:\n      - {name: a, request: GET /x}\n")
    built = build_workload(str(plan), RunOptions(workers=1))
    workload = built.workload
    assert built.problems == ()
    assert isinstance(workload.source, PlanSource) and workload.source.reports_steps
    assert (workload.load.users, workload.load.duration_ns, workload.model) == (4, 2 * S, "closed")
    config = describe_config(workload, {"target": {"address": "127.0.0.1:9"}, "hosts": [{"host": "h"}]})
    assert "method" not in config and "pipeline" not in config
    assert config["host_addresses"] == [{"host": "h"}] and config["scenarios"] == {"s": 1.0}


def test_a_plan_refuses_every_url_option_given(tmp_path):
    plan = tmp_path / "p.yaml"
    plan.write_text("not even read")
    options = RunOptions(connections=5, pipeline=2,
                         explicit={"connections": "-c/--connections", "pipeline": "--pipeline"})
    found = texts(build_workload(str(plan), options))
    assert found == [
        f"-c/--connections does not apply to a test plan ({plan}): it sets its virtual users in load: vus "
        "(closed model) or load: max_vus (open model)",
        f"--pipeline does not apply to a test plan ({plan}): each virtual user sends one request at a time"]


def test_a_plan_files_problems_say_where(tmp_path):
    plan = tmp_path / "p.yaml"
    plan.write_text("target: http://127.0.0.1:9\nload: {vus: 0, duration: 2s}\nscenarios: []\n")
    built = build_workload(str(plan), RunOptions())
    assert built.workload is None and len(built.problems) >= 2
    assert all(p.in_plan_file and p.text.startswith(str(plan)) for p in built.problems)


@pytest.mark.parametrize("argument, is_plan", [("http://h/x.yaml", False), ("p.yaml", True), ("p.toml", True)])
def test_plan_or_url(argument, is_plan):
    from surge.plan.build import looks_like_plan
    assert looks_like_plan(argument) is is_plan


def test_a_workloads_repr_keeps_basic_credentials_out():
    """The URL run's step carries Authorization literally; repr(workload) must not show it."""
    import base64
    workload = url_workload("http://user:hunter2@127.0.0.1:9/", RunOptions()).workload
    token = base64.b64encode(b"user:hunter2").decode()
    assert any(token in str(value.parts) for _, value in workload.steps[0].headers)   # it is sent
    assert token not in repr(workload) and "hunter2" not in repr(workload)
