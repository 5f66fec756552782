"""Load profiles: stages, shapes, and the schedule's arithmetic."""
import pytest

from surge.plan.load import LoadError, LoadProfile, Stage, parse_shape, parse_stages

S = 1_000_000_000


def test_parse_stages():
    assert parse_stages("30s:1000, 2m:1000,10s:5000,0s:10") == (
        Stage(30 * S, 1000), Stage(120 * S, 1000), Stage(10 * S, 5000), Stage(0, 10))


@pytest.mark.parametrize("text, fragment", [
    ("", "expected DURATION:TARGET"),
    ("30s", "stage 1 is '30s'"),
    ("30s:abc", "stage 1 target: got 'abc'"),
    ("30s:100,xx:5", "stage 2 duration"),
    ("30s:-5", "must be >= 0"),
    ("0s:100", "0s in total"),
])
def test_bad_stages(text, fragment):
    with pytest.raises(LoadError, match="--stages") as info:
        parse_stages(text)
    assert fragment in str(info.value)


def test_shapes_expand_to_stages():
    assert parse_shape("ramp:500:30s") == (0.0, (Stage(30 * S, 500),))
    start, stages = parse_shape("spike:100:1000:10s:5s:10s")
    assert start == 100
    assert stages == (Stage(10 * S, 100), Stage(0, 1000), Stage(5 * S, 1000), Stage(0, 100), Stage(10 * S, 100))
    start, stages = parse_shape("step:100:100:10s:300")
    assert start == 100
    assert [(s.duration_ns // S, s.target) for s in stages] == [(10, 100), (0, 200), (10, 200), (0, 300), (10, 300)]


@pytest.mark.parametrize("text, fragment", [
    ("wave:1:2", "unknown shape 'wave'"),
    ("ramp:500", "expected ramp:TARGET:DURATION"),
    ("spike:1:2:3s", "expected spike:BASE:PEAK:BEFORE:HOLD:AFTER"),
    ("step:100:0:10s:300", "STEP: got '0', must be > 0"),
    ("step:300:100:10s:100", "UNTIL (100) must be >= START (300)"),
    ("ramp:x:10s", "TARGET: got 'x'"),
    ("ramp:10:forever", "DURATION"),
])
def test_bad_shapes(text, fragment):
    with pytest.raises(LoadError) as info:
        parse_shape(text)
    assert fragment in str(info.value)


def test_profile_values_and_integral():
    p = LoadProfile("open", 100.0, (Stage(10 * S, 100), Stage(10 * S, 300), Stage(0, 50), Stage(5 * S, 50)))
    assert p.duration_ns == 25 * S
    assert p.value_at(5) == 100
    assert p.value_at(15) == pytest.approx(200)
    assert p.value_at(22) == 50
    assert p.count_between(0, 10) == pytest.approx(1000)
    assert p.count_between(10, 20) == pytest.approx(2000)       # average of 100 and 300 over 10 s
    assert p.count_between(20, 25) == pytest.approx(250)
    assert p.peak == 300


def test_constant_profile():
    p = LoadProfile("open", 20_000.0, (), 10 * S)
    assert p.segments() == [(0.0, 10.0, 20_000.0, 20_000.0)]
    assert p.count_between(0, 10) == pytest.approx(200_000)
