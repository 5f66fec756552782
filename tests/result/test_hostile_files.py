"""Issue 15 item 7: a hostile or corrupt result file (deep nesting, huge numbers or
strings, bogus histogram lengths, a zlib bomb) is refused in one line with exit 2,
in bounded time and memory, by every command that reads one."""
import base64
import json
import resource
import struct
import subprocess
import sys
import zlib

import pytest

from surge.core._histogram import Histogram, HistogramDecodeError
from tests.helpers import assert_one_line_error, run_surge
from tests.report.synthetic import make_result

V2_ENCODING = 0x1c849313
V2_COMPRESSED = 0x1c849314


def hdr_text(payload: bytes = b"", *, digits=3, lowest=1, highest=3_600_000_000, payload_len=None,
             trailing_zeros=0, cookie=V2_COMPRESSED) -> str:
    """An HdrHistogram V2 compressed text, honest or lying about its lengths."""
    header = struct.pack(">iiiiqqd", V2_ENCODING, len(payload) if payload_len is None else payload_len,
                         0, digits, lowest, highest, 1.0)
    deflated = zlib.compress(header + payload + b"\0" * trailing_zeros, 9)
    return base64.b64encode(struct.pack(">ii", cookie, len(deflated)) + deflated).decode()


def _with(mutate) -> str:
    result = make_result(3, per_point_workers=False, steps=False, scenarios=False, objectives=False)
    mutate(result)
    return json.dumps(result)


def _set_hdr(text):
    return lambda r: r["latency"].__setitem__("hdr", text)


def _splice(placeholder_key: str, raw: str):
    """A good result with totals[placeholder_key] replaced by raw JSON text."""
    text = _with(lambda r: r["totals"].__setitem__(placeholder_key, 123456789))
    return text.replace(f'"{placeholder_key}": 123456789', f'"{placeholder_key}": {raw}', 1)


def _nested(depth: int):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


# A bomb that claims the biggest payload its range allows, all zero bytes: each
# zero is a count of 0 and one counter, so it runs past the range's end.
_BOMB_LEN = 9 * Histogram(1, 3_600_000_000, 3).counts_len

HOSTILE = {
    "deep-array": ("[" * 100_000 + "]" * 100_000, "nested deeper"),
    "deep-object": ('{"a":' * 100_000 + "1" + "}" * 100_000, "nested deeper"),
    "deep-under-config": (_with(lambda r: r.__setitem__("config", {"x": _nested(40)})), "nested deeper"),
    "huge-integer": (_splice("requests", "9" * 100_000), "integer string conversion"),
    "huge-float": (_splice("requests", "1e999"), "totals.requests"),
    "huge-string": (_with(lambda r: r["config"].__setitem__("url", "x" * (5 * 2**20))), "a string of"),
    "hdr-bogus-payload-length": (_with(_set_hdr(hdr_text(payload_len=2**31 - 1))), "payload length"),
    "hdr-zlib-bomb": (_with(_set_hdr(hdr_text(payload_len=_BOMB_LEN, trailing_zeros=_BOMB_LEN * 4))),
                      "longer than its range"),
    "hdr-huge-range": (_with(_set_hdr(hdr_text(digits=5, highest=2**62))), "counters"),
    "hdr-zero-run-overflow": (_with(_set_hdr(hdr_text(bytes([0xff] * 8) + b"\x7f" + b"\x02"))),
                              "longer than its range"),
    "hdr-counts-overflow": (_with(_set_hdr(hdr_text(bytes([0xfe] * 8) + b"\xff" + bytes([0xfe] * 8) + b"\xff"))),
                            "past 2**62"),
    "nul-bytes": ("\0" * 1000, "invalid JSON"),
}


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory):
    where = tmp_path_factory.mktemp("hostile")
    for name, (text, _) in HOSTILE.items():
        (where / f"{name}.json").write_text(text)
    with open(where / "oversized.json", "wb") as f:       # sparse: no disk used
        f.truncate(300 * 2**20)
    return where


@pytest.mark.parametrize("name", sorted(HOSTILE) + ["oversized"])
def test_a_hostile_result_file_is_one_line_exit_2(hostile_dir, name):
    path = hostile_dir / f"{name}.json"
    fragment = HOSTILE[name][1] if name in HOSTILE else "larger than any surge result"
    run = run_surge("report", str(path), json_result=False, timeout_s=30)
    assert_one_line_error(run, 2, str(path), fragment)


def test_compare_refuses_a_hostile_baseline_in_one_line(hostile_dir, tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(make_result(3)))
    run = run_surge("compare", str(hostile_dir / "hdr-zlib-bomb.json"), str(good), json_result=False)
    assert_one_line_error(run, 2, "hdr-zlib-bomb.json")


def test_refusing_every_hostile_file_stays_in_bounded_memory(hostile_dir):
    """One process loads them all; its peak RSS stays under 400 MiB (the bomb
    alone would inflate ~2 MB of zeros per try were the payload not bounded,
    the huge range would ask 48 MB per histogram)."""
    # The peak is read from /proc after resetting it (clear_refs 5): a child forked
    # from a large test process starts with that process's peak in ru_maxrss.
    script = (
        "import glob, re, sys\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "from surge.result.load import ResultFileError, load_result\n"
        "refused = 0\n"
        "for path in sorted(glob.glob(sys.argv[1] + '/*.json')):\n"
        "    try:\n"
        "        load_result(path)\n"
        "    except ResultFileError:\n"
        "        refused += 1\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        "print(refused, hwm)\n")
    out = subprocess.run([sys.executable, "-c", script, str(hostile_dir)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    refused, peak_kib = map(int, out.stdout.split())
    assert refused == len(HOSTILE) + 1
    assert peak_kib < 400 * 1024, peak_kib


@pytest.mark.parametrize("text, fragment", [
    (hdr_text(payload_len=10**6), "payload length"),
    (hdr_text(digits=5, highest=2**62), "counters"),
    (hdr_text(digits=9), "out of range"),
    (hdr_text(lowest=0), "out of range"),
    (hdr_text(payload_len=-5), "payload length"),
    (hdr_text(cookie=0x12345678), "cookie"),
])
def test_the_decoder_refuses_bogus_headers(text, fragment):
    with pytest.raises(HistogramDecodeError, match=fragment):
        Histogram.decode(text)


def test_the_decoder_still_reads_what_it_writes():
    h = Histogram()
    for v in (1, 50, 50, 3000, 10**9):
        h.record(v)
    back = Histogram.decode(h.encode())
    assert back.total_count == 5 and back.value_at_percentile(50) == h.value_at_percentile(50)


def test_fuzzed_histogram_texts_decode_or_raise_the_decode_error():
    """10,000 mutations of a real histogram's bytes (before and after deflate):
    each decodes or raises HistogramDecodeError, nothing else, and never allocates
    past the decoder's bound."""
    import random
    rng = random.Random(15)
    h = Histogram()
    for v in range(1, 5000, 7):
        h.record(v)
    blob = base64.b64decode(h.encode())
    raw = zlib.decompress(blob[8:])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(10_000):
        if i % 2:
            data = bytearray(raw)
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            deflated = zlib.compress(bytes(data))
            mutated = struct.pack(">ii", V2_COMPRESSED, len(deflated)) + deflated
        else:
            mutated = bytearray(blob)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            mutated = bytes(mutated[:rng.randint(8, len(mutated))])
        try:
            Histogram.decode(base64.b64encode(mutated).decode())
        except HistogramDecodeError:
            pass
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024
