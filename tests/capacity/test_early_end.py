"""The early-end rules of a capacity step (surge.capacity.slo), on windows built
from counts: an exact "cannot pass any more" over every request the step will
send (its extensions included), and a sustained, significant excess."""
from surge.capacity import slo
from surge.plan.objective import parse_objective

P99 = parse_objective("p99 < 50ms")
ERRORS = parse_objective("error_rate < 1%")


def window(fast: int, slow: int, failed: int = 0) -> slo.Part:
    """fast requests at 2 ms, slow ones at 200 ms (buckets in microseconds)."""
    buckets = {}
    if fast:
        buckets[2000] = (2001, fast)
    if slow:
        buckets[200_000] = (200_100, slow)
    return slo.Part(buckets, requests=fast + slow, attempts=fast + slow, failed=failed)


def test_cannot_pass_counts_every_request_the_step_will_send():
    # 1% of 96,000 planned (1,600/s for 3 step lengths of 20 s) is 960
    planned = 1600 * 20 * 3
    assert not slo.cannot_pass(P99, window(3000, 500), planned)      # a pause's 500: an extension may dilute it
    assert slo.cannot_pass(P99, window(3000, 961), planned)          # nothing that follows can bring p99 under
    assert not slo.cannot_pass(P99, window(3000, 960), planned)


def test_cannot_pass_an_error_rate():
    assert slo.cannot_pass(ERRORS, window(100, 0, failed=11), 1000)
    assert not slo.cannot_pass(ERRORS, window(100, 0, failed=10), 1000)


def test_a_significant_excess_needs_the_interval_above_the_allowed_fraction_and_a_minimum_count():
    assert slo.clearly_over(P99, window(1000, 100), 0.95, min_count=20)       # 9% over, p99 allows 1%
    assert not slo.clearly_over(P99, window(1000, 15), 0.95, min_count=20)    # too few to count as evidence
    # 1.3% over of 3,000: the Wilson interval's lower end is still under 1%
    assert not slo.clearly_over(P99, window(2961, 39), 0.95, min_count=20)
    assert slo.clearly_over(P99, window(29_610, 390), 0.95, min_count=20)     # the same 1.3% of 30,000 is not chance
    assert not slo.clearly_over(P99, None, 0.95, min_count=20)


def test_only_upper_bound_slos_end_early():
    assert slo.over_count(parse_objective("throughput > 100"), window(10, 10)) is None
    assert slo.over_count(parse_objective("p99 > 1ms"), window(10, 10)) is None
    assert slo.over_count(P99, window(10, 3)) == (3, 13)
