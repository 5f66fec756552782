"""Issue 15 item 7: random and mutated responses, fed at random split points, never
crash or hang the framing, never grow its buffers past a fixed bound, and frame
the same whatever the split points; valid streams frame to exactly their statuses;
a head over the 64-KiB limit is a parse error.  (bench/fuzz_framing.py runs a million.)"""
import random

import pytest

from surge.core._engine import ResponseFramer
from tests.support.http_fuzz import (HEAD_LIMIT_BYTES, MAX_HELD_BYTES, frame_stream, oversized_head, responses,
                                     splits)

FUZZED = 10_000


def test_ten_thousand_fuzzed_responses_frame_the_same_at_any_split_and_stay_bounded():
    rng = random.Random(20261202)
    stream = responses(rng)
    kinds = {}
    for _ in range(FUZZED):
        kind, data, expected = next(stream)
        kinds[kind] = kinds.get(kind, 0) + 1
        seed = rng.random()
        whole = frame_stream(ResponseFramer, random.Random(seed), data, [data])
        split = frame_stream(ResponseFramer, random.Random(seed), data, splits(rng, data))
        assert split[:2] == whole[:2], (kind, data[:200])
        assert max(whole[2], split[2]) <= MAX_HELD_BYTES
        if expected is not None:
            assert whole[1] != "parse" and whole[0] == expected, (data[:300], whole)
    assert kinds["valid"] > 2000 and kinds["mutated"] > 4000 and kinds["oversized"] > 50, kinds


@pytest.mark.parametrize("seed", range(5))
def test_a_head_past_the_limit_is_a_parse_error_split_or_whole(seed):
    rng = random.Random(seed)
    data = oversized_head(rng)
    assert len(data) > HEAD_LIMIT_BYTES
    for pieces in ([data], splits(rng, data), [data[i:i + 1000] for i in range(0, len(data), 1000)]):
        statuses, how, held = frame_stream(ResponseFramer, rng, data, pieces)
        assert (statuses, how) == ([], "parse")
        assert held <= HEAD_LIMIT_BYTES + 1024


def test_a_huge_captured_body_is_kept_only_up_to_the_capture_limit():
    framer = ResponseFramer(capture=True)
    body = b"z" * (3 * 2**20)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert framer.feed(head + body[:2**20]) == []
    assert framer.feed(body[2**20:]) == [(200, True)]
    assert framer.captured_bytes <= 2**20 and framer.held_bytes <= MAX_HELD_BYTES
