"""Fuzz the engine's response framing (issue 15 item 7's bar: >= 1,000,000 fuzzed
responses without a crash or a hang, buffers bounded).

    python bench/fuzz_framing.py [--count 1000000] [--seed 15] [--report-every 100000]

Each case is a stream from tests/support/http_fuzz.py (valid pipelined responses
of every framing, mutated ones, garbage, heads past the 64-KiB limit), framed
twice by the engine's own framing code (`ResponseFramer`, the same C as the
connections use): whole, and cut into reads at random points.  Checked for each:
both frame the same responses and end the same way (a `parse` error, EOF, or
still open); a valid stream frames to exactly its statuses; the framer never
holds more than MAX_HELD_BYTES.  A crash kills this process (non-zero exit), a
hang never prints the next progress line.  Prints the counts by kind and outcome
and exits 1 on the first mismatch, with the seed and case index to replay it.
Not a timing measurement (no bench lock needed); run it niced.
"""
from __future__ import annotations

import argparse
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from surge.core._engine import ResponseFramer  # noqa: E402
from tests.support.http_fuzz import MAX_HELD_BYTES, frame_stream, responses, splits  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--report-every", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    stream = responses(rng)
    by_kind: dict[str, int] = {}
    by_outcome: dict[str, int] = {}
    most_held = bytes_fed = 0
    for index in range(args.count):
        kind, data, expected = next(stream)
        case_seed = rng.random()
        whole = frame_stream(ResponseFramer, random.Random(case_seed), data, [data])
        split = frame_stream(ResponseFramer, random.Random(case_seed), data, splits(rng, data))
        problem = None
        if split[:2] != whole[:2]:
            problem = f"split {split[:2]} != whole {whole[:2]}"
        elif max(whole[2], split[2]) > MAX_HELD_BYTES:
            problem = f"held {max(whole[2], split[2])} bytes > {MAX_HELD_BYTES}"
        elif expected is not None and (whole[1] == "parse" or whole[0] != expected):
            problem = f"valid stream framed as {whole[:2]}, expected {expected}"
        if problem:
            print(f"FAIL seed {args.seed} case {index} ({kind}): {problem}; data {data[:200]!r}")
            return 1
        by_kind[kind] = by_kind.get(kind, 0) + 1
        by_outcome[whole[1]] = by_outcome.get(whole[1], 0) + 1
        most_held = max(most_held, whole[2], split[2])
        bytes_fed += 2 * len(data)
        if (index + 1) % args.report_every == 0:
            print(f"{index + 1:,} fuzzed responses framed", flush=True)
    print(f"ok: {args.count:,} fuzzed responses (seed {args.seed}), each framed whole and split: "
          f"{', '.join(f'{k} {n:,}' for k, n in sorted(by_kind.items()))}; outcomes "
          f"{', '.join(f'{k} {n:,}' for k, n in sorted(by_outcome.items()))}; "
          f"{bytes_fed / 2**20:,.0f} MiB fed; most held by a framer {most_held:,} bytes "
          f"(bound {MAX_HELD_BYTES:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
