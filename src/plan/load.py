"""Load profiles: how hard to push over time, for both load models.

A profile is a start value and a list of stages; each stage moves linearly
from the previous target to its own over its duration (a 0s stage jumps).
Values are requests/s in the open model and connections in the closed one.
`--shape` names expand to stages.
"""
from __future__ import annotations

from dataclasses import dataclass

from surge.plan.units import NS_PER_S, UnitError, parse_duration_ns

SHAPES_HELP = ("ramp:TARGET:DURATION, spike:BASE:PEAK:BEFORE:HOLD:AFTER, "
               "step:START:STEP:EVERY:UNTIL")


class LoadError(ValueError):
    """A stage or shape that does not parse; the message names the culprit."""


@dataclass(frozen=True)
class Stage:
    duration_ns: int
    target: float


@dataclass(frozen=True)
class LoadProfile:
    model: str                      # "open" (requests/s) or "closed" (connections)
    start: float                    # the value before the first stage
    stages: tuple[Stage, ...]       # empty: constant `start` for `constant_ns`
    constant_ns: int | None = None  # run length when there are no stages (None: until -n)

    @property
    def duration_ns(self) -> int | None:
        if self.stages:
            return sum(s.duration_ns for s in self.stages)
        return self.constant_ns

    def segments(self) -> list[tuple[float, float, float, float]]:
        """(start_s, end_s, value_at_start, value_at_end) pieces with a duration."""
        if not self.stages:
            end = (self.constant_ns or 0) / NS_PER_S
            return [(0.0, end, self.start, self.start)] if end > 0 else []
        pieces, t, previous = [], 0.0, self.start
        for stage in self.stages:
            length = stage.duration_ns / NS_PER_S
            if length > 0:
                pieces.append((t, t + length, previous, stage.target))
            t += length
            previous = stage.target
        return pieces

    def value_at(self, t_s: float) -> float:
        """The target at t_s seconds from the start (after the end: the last target)."""
        pieces = self.segments()
        for start, end, v0, v1 in pieces:
            if t_s < end:
                return v0 + (v1 - v0) * max(0.0, t_s - start) / (end - start)
        if self.stages:
            return self.stages[-1].target
        return self.start

    def count_between(self, t0_s: float, t1_s: float) -> float:
        """Integral of the value from t0_s to t1_s (open model: requests intended)."""
        return self._integral(t1_s) - self._integral(t0_s)

    def _integral(self, t_s: float) -> float:
        total = 0.0
        for start, end, v0, v1 in self.segments():
            if t_s <= start:
                break
            span = min(t_s, end) - start
            slope = (v1 - v0) / (end - start)
            total += v0 * span + 0.5 * slope * span * span
        return total

    @property
    def peak(self) -> float:
        return max([self.start] + [s.target for s in self.stages])

    def describe(self) -> list[dict]:
        return [{"duration_s": s.duration_ns / NS_PER_S, "target": s.target} for s in self.stages]


def _number(text: str, what: str, allow_zero: bool = True) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LoadError(f"{what}: got {text!r}, expected a number") from None
    if value < 0 or (value == 0 and not allow_zero) or value != value or value in (float("inf"),):
        raise LoadError(f"{what}: got {text!r}, must be {'>= 0' if allow_zero else '> 0'}")
    return value


def _duration(text: str, what: str, allow_zero: bool = False) -> int:
    if allow_zero and text.strip() in ("0", "0s", "0ms"):
        return 0
    try:
        return parse_duration_ns(text)
    except UnitError as exc:
        raise LoadError(f"{what}: {exc}") from None


def parse_stages(text: str) -> tuple[Stage, ...]:
    """'30s:1000,2m:1000,10s:5000' -> stages.  A 0s stage jumps to its target."""
    stages = []
    items = [item.strip() for item in str(text).split(",")]
    if not any(items):
        raise LoadError(f"--stages: got {text!r}, expected DURATION:TARGET[,DURATION:TARGET...] like 30s:100,1m:100")
    for n, item in enumerate(items, 1):
        duration, sep, target = item.partition(":")
        if not sep or not duration or not target:
            raise LoadError(f"--stages: stage {n} is {item!r}, expected DURATION:TARGET like 30s:100")
        stages.append(Stage(_duration(duration, f"--stages: stage {n} duration", allow_zero=True),
                            _number(target, f"--stages: stage {n} target")))
    if sum(s.duration_ns for s in stages) == 0:
        raise LoadError("--stages: the stages last 0s in total; give at least one a duration")
    return tuple(stages)


def parse_shape(text: str, start: float = 0.0) -> tuple[float, tuple[Stage, ...]]:
    """A named shape -> (start value, stages).  See SHAPES_HELP.

    `start` is where a ramp begins (--rate, or -c in the closed model);
    spike and step name their own start (BASE, START)."""
    name, _, rest = str(text).partition(":")
    parts = rest.split(":") if rest else []
    expected = {"ramp": ["TARGET", "DURATION"], "spike": ["BASE", "PEAK", "BEFORE", "HOLD", "AFTER"],
                "step": ["START", "STEP", "EVERY", "UNTIL"]}
    if name not in expected:
        raise LoadError(f"--shape: unknown shape {name!r}, allowed: {SHAPES_HELP}")
    if len(parts) != len(expected[name]):
        syntax = ":".join([name] + expected[name])
        raise LoadError(f"--shape: {text!r} has {len(parts)} parts after the name, expected {syntax}")
    what = f"--shape {name}"
    if name == "ramp":
        target = _number(parts[0], f"{what} TARGET")
        return float(start), (Stage(_duration(parts[1], f"{what} DURATION"), target),)
    if name == "spike":
        base, peak = _number(parts[0], f"{what} BASE"), _number(parts[1], f"{what} PEAK", allow_zero=False)
        before, hold, after = (_duration(p, f"{what} {label}") for p, label in zip(parts[2:], ("BEFORE", "HOLD", "AFTER")))
        return base, (Stage(before, base), Stage(0, peak), Stage(hold, peak), Stage(0, base), Stage(after, base))
    start = _number(parts[0], f"{what} START")
    step = _number(parts[1], f"{what} STEP", allow_zero=False)
    every = _duration(parts[2], f"{what} EVERY")
    until = _number(parts[3], f"{what} UNTIL")
    if until < start:
        raise LoadError(f"{what}: UNTIL ({parts[3]}) must be >= START ({parts[0]})")
    levels, level = [], start
    while level <= until + 1e-9:
        levels.append(level)
        level += step
    if len(levels) > 10_000:
        raise LoadError(f"{what}: {len(levels)} steps; at most 10000 allowed")
    stages = []
    for i, level in enumerate(levels):
        if i:
            stages.append(Stage(0, level))
        stages.append(Stage(every, level))
    return start, tuple(stages)
