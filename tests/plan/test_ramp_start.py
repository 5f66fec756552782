"""Item 5: `--shape ramp:TARGET:DURATION` starts from --rate (open) or -c (closed), as the README says."""
import pytest

from surge.plan.load import Stage, parse_shape
from surge.plan.options import RunOptions, load_profile
from tests.helpers import run_surge

S = 1_000_000_000
FLAGS = {"connections": "-c/--connections", "rate": "--rate", "shape": "--shape"}


def options_for(*args) -> RunOptions:
    """RunOptions as `surge run URL ARGS` gives them (a flag followed by its value)."""
    given = dict(zip(args[0::2], args[1::2]))
    names = {"-c": "connections", "--rate": "rate", "--shape": "shape"}
    values = {names[flag]: value for flag, value in given.items()}
    for name in ("connections",):
        if name in values:
            values[name] = int(values[name])
    if "rate" in values:
        values["rate"] = float(values["rate"])
    return RunOptions(**values, explicit={name: FLAGS[name] for name in values})


def profile_for(*args):
    profile, problems = load_profile(options_for(*args))
    return profile, problems


def test_parse_shape_ramp_takes_its_start():
    assert parse_shape("ramp:1000:3s", 100) == (100.0, (Stage(3 * S, 1000),))
    assert parse_shape("ramp:1000:3s") == (0.0, (Stage(3 * S, 1000),))


@pytest.mark.parametrize("args, model, start", [
    (["--rate", "100", "--shape", "ramp:1000:3s"], "open", 100.0),
    (["--rate", "0", "--shape", "ramp:1000:3s"], "open", 0.0),
    (["-c", "10", "--shape", "ramp:100:10s"], "closed", 10.0),
    (["--shape", "ramp:100:10s"], "closed", 0.0),
    (["--rate", "0", "--shape", "spike:5:10:1s:1s:1s"], "open", 5.0),
    (["--rate", "5", "--shape", "spike:5:10:1s:1s:1s"], "open", 5.0),
])
def test_ramp_starts_where_the_flags_say(args, model, start):
    profile, problems = profile_for(*args)
    assert problems == []
    assert (profile.model, profile.start) == (model, start)


@pytest.mark.parametrize("args, fragment", [
    (["--rate", "100", "--shape", "spike:5:10:1s:1s:1s"], "give --rate 0 or --rate 5"),
    (["-c", "7", "--shape", "step:1:1:1s:3"], "drop -c or give -c 1"),
])
def test_a_start_that_contradicts_the_shape_is_refused(args, fragment):
    profile, problems = profile_for(*args)
    assert profile is None
    assert len(problems) == 1 and fragment in problems[0]


def test_the_open_ramp_sends_what_its_integral_says(surge_server):
    """From 100/s to 200/s over 1 s: 150 requests due (from 0 it was 100)."""
    server = surge_server()
    run = run_surge("run", server.url, "--rate", "100", "--shape", "ramp:200:1s", "-w", "1", "-q")
    assert run.code == 0, run.stderr
    assert run.result["config"]["start"] == 100.0
    assert run.result["totals"]["due"] == 150
