"""Execution segments: `surge run ... --segment I/N` runs exactly its share of
one test that N instances run together (I from 0 to N-1, as Kubernetes numbers
the pods of an Indexed Job).

What a segment's share is, so that N segments send what one instance would:

- the open model's one global schedule is striped over instances x workers:
  request g of the schedule goes to segment g mod N, and inside a segment to
  worker (g div N) mod W (`Segment.stripe`).  The stripe of a segment does not
  depend on how many workers the others have, so pods of different sizes still
  cover the schedule exactly once;
- unique data rows are striped the same way (row r: segment r mod N), so each
  row is used at most once across all instances;
- connections or virtual users, the -n quota and each stage's target are
  split as evenly as integers allow (`Segment.share`: the first total % N
  segments take one more), so the N shares sum to the total.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SEGMENTS = 100_000
_SEGMENT = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class SegmentError(ValueError):
    """A --segment value that does not parse; the message says what is allowed."""


@dataclass(frozen=True)
class Segment:
    """Segment `index` of `count` (0 <= index < count)."""
    index: int = 0
    count: int = 1

    @property
    def whole(self) -> bool:
        """The whole test on this instance (no --segment, or 0/1)."""
        return self.count == 1

    def share(self, total: int) -> int:
        """This segment's part of `total` (users, -n, a stage's target): the N
        parts differ by at most one and add up to `total`."""
        return total // self.count + (1 if self.index < total % self.count else 0)

    def stripe(self, worker: int, workers: int) -> tuple[int, int]:
        """(first index, step) of worker `worker` (of `workers` here) in the
        global schedule and in unique data rows: indices first, first + step, ...
        With one segment this is the workers' own striping (worker, workers)."""
        return self.index + self.count * worker, self.count * workers

    def describe(self) -> dict | None:
        """The result's run.segment: {"index", "count"}, or None for a whole run."""
        return None if self.whole else {"index": self.index, "count": self.count}

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Segment()


def parse_segment(text: str) -> Segment:
    """'I/N' (0 <= I < N) -> Segment; SegmentError says what is allowed."""
    match = _SEGMENT.match(str(text))
    if not match:
        raise SegmentError(f"got {text!r}, expected I/N with 0 <= I < N, e.g. 0/3 (the first of three)")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SEGMENTS:
        raise SegmentError(f"got {text!r}: N must be 1 to {MAX_SEGMENTS}")
    if index >= count:
        raise SegmentError(f"got {text!r}: I must be 0 to {count - 1} (segments are numbered from 0)")
    return Segment(index, count)


def share_problems(segment: Segment, users: int, requests: int | None, users_flag: str) -> list[str]:
    """Shares that would be empty: every segment needs at least one user (and,
    with -n, one request), or it would have nothing to run."""
    if segment.whole:
        return []
    problems = []
    if users < segment.count:
        problems.append(f"--segment {segment}: {users_flag} {users} cannot be spread over {segment.count} "
                        f"segments (each needs at least 1): give at least {segment.count}")
    if requests is not None and requests < segment.count:
        problems.append(f"--segment {segment}: -n {requests} cannot be spread over {segment.count} segments "
                        f"(each needs at least 1 request): give at least {segment.count}")
    return problems
