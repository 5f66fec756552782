# cython: language_level=3
"""HDR histogram with exact merge and HdrHistogram V2 (compressed) interop.

The engine records into a `Histogram` from C (`record_value` in the .pxd);
Python code merges, queries percentiles and encodes.  Values are integers in
whatever unit the caller chose (surge records microseconds).
"""
import base64
import math
import struct
import zlib

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.math cimport ceil, log2, floor, sqrt
from libc.stdint cimport INT64_MAX
from libc.stdlib cimport calloc, free
from libc.string cimport memset

# HdrHistogram V2 wire format cookies (published constants).  Writers set
# bit 0x10 (the "word size" nibble); readers ignore that nibble.
DEF V2_ENCODING_COOKIE = 0x1c849313
DEF V2_COMPRESSED_COOKIE = 0x1c849314
DEF COOKIE_FLAGS_MASK = 0xF0
DEF V2_HEADER_BYTES = 40

DEFAULT_HIGHEST_US = 3_600_000_000   # one hour in microseconds
# Bounds on what decode() accepts, so a hostile file costs bounded memory:
# 4M counters (32 MiB; 3 digits up to 2**63 needs ~55k, 5 digits up to an
# hour in microseconds ~2M) and a total count below 2**62 (no overflow).
DEF MAX_DECODE_COUNTS = 4194304
DEF MAX_DECODE_TOTAL = 4611686018427387904


class HistogramDecodeError(ValueError):
    """The text is not an HdrHistogram V2 compressed histogram."""


cdef class Histogram:
    """Counts of integer values in [lowest_trackable, highest_trackable], kept
    to `significant_digits` decimal digits; larger values are clamped (and the
    exact maximum is still kept)."""

    def __cinit__(self, int64_t lowest_trackable=1, int64_t highest_trackable=DEFAULT_HIGHEST_US,
                  int significant_digits=3):
        if lowest_trackable < 1:
            raise ValueError(f"lowest_trackable must be >= 1, got {lowest_trackable}")
        if lowest_trackable > INT64_MAX // 2 or highest_trackable < 2 * lowest_trackable:
            raise ValueError("highest_trackable must be >= 2 * lowest_trackable")
        if not 1 <= significant_digits <= 5:
            raise ValueError(f"significant_digits must be 1..5, got {significant_digits}")
        self.lowest_trackable = lowest_trackable
        self.highest_trackable = highest_trackable
        self.significant_digits = significant_digits
        cdef int64_t single_unit_limit = 2
        for _ in range(significant_digits):
            single_unit_limit *= 10
        cdef int32_t sub_bucket_count_magnitude = <int32_t>ceil(log2(<double>single_unit_limit))
        self.sub_bucket_half_count_magnitude = max(sub_bucket_count_magnitude, 1) - 1
        self.unit_magnitude = <int32_t>floor(log2(<double>lowest_trackable))
        self.sub_bucket_count = 1 << (self.sub_bucket_half_count_magnitude + 1)
        self.sub_bucket_half_count = self.sub_bucket_count // 2
        self.sub_bucket_mask = (<int64_t>self.sub_bucket_count - 1) << self.unit_magnitude
        if self.unit_magnitude + self.sub_bucket_half_count_magnitude + 1 > 62:
            # the first bucket alone would pass 2**63 (a bucket loop below would never end)
            raise ValueError(f"lowest_trackable {lowest_trackable} is too large for {significant_digits} digits")
        self.leading_zero_count_base = 64 - self.unit_magnitude - self.sub_bucket_half_count_magnitude - 1
        # Buckets until the range covers highest_trackable.
        cdef int64_t smallest_untrackable = (<int64_t>self.sub_bucket_count) << self.unit_magnitude
        cdef int32_t buckets = 1
        while smallest_untrackable <= highest_trackable:
            if smallest_untrackable > INT64_MAX // 2:
                buckets += 1
                break
            smallest_untrackable <<= 1
            buckets += 1
        self.bucket_count = buckets
        self.counts_len = (buckets + 1) * self.sub_bucket_half_count
        self.counts = <int64_t*>calloc(self.counts_len, sizeof(int64_t))
        if self.counts == NULL:
            raise MemoryError()
        self.total_count = 0
        self.min_value = INT64_MAX
        self.max_value = 0
        self.sum_values = 0

    def __dealloc__(self):
        free(self.counts)

    # ---- C-level helpers ------------------------------------------------
    cdef void reset(self) noexcept:
        memset(self.counts, 0, self.counts_len * sizeof(int64_t))
        self.total_count = 0
        self.min_value = INT64_MAX
        self.max_value = 0
        self.sum_values = 0

    cdef int64_t value_at_index(self, int32_t index) noexcept:
        cdef int32_t bucket_index = (index >> self.sub_bucket_half_count_magnitude) - 1
        cdef int32_t sub_bucket_index = (index & (self.sub_bucket_half_count - 1)) + self.sub_bucket_half_count
        if bucket_index < 0:
            sub_bucket_index -= self.sub_bucket_half_count
            bucket_index = 0
        return (<int64_t>sub_bucket_index) << (bucket_index + self.unit_magnitude)

    cdef int64_t _range_size(self, int64_t value) noexcept:
        cdef int32_t bucket_index = self.leading_zero_count_base - __builtin_clzll(<uint64_t>(value | self.sub_bucket_mask))
        cdef int32_t sub_bucket_index = <int32_t>(value >> (bucket_index + self.unit_magnitude))
        if sub_bucket_index >= self.sub_bucket_count:
            bucket_index += 1
        return (<int64_t>1) << (self.unit_magnitude + bucket_index)

    cdef int64_t _lowest_equivalent(self, int64_t value) noexcept:
        cdef int32_t bucket_index = self.leading_zero_count_base - __builtin_clzll(<uint64_t>(value | self.sub_bucket_mask))
        cdef int32_t sub_bucket_index = <int32_t>(value >> (bucket_index + self.unit_magnitude))
        return (<int64_t>sub_bucket_index) << (bucket_index + self.unit_magnitude)

    cdef int64_t highest_equivalent(self, int64_t value) noexcept:
        return self._lowest_equivalent(value) + self._range_size(value) - 1

    cdef int64_t median_equivalent(self, int64_t value) noexcept:
        return self._lowest_equivalent(value) + (self._range_size(value) >> 1)

    # ---- recording (Python entry points; the engine calls record_value) ---
    def record(self, int64_t value):
        """Record one value."""
        record_value(self, value)

    def record_many(self, const int64_t[::1] values):
        """Record every value of a contiguous int64 buffer (numpy array, array('q'))."""
        cdef Py_ssize_t i
        for i in range(values.shape[0]):
            record_value(self, values[i])

    def reset_counts(self):
        """Forget every recorded value."""
        self.reset()

    # ---- merge --------------------------------------------------------------
    def _check_same_layout(self, Histogram other):
        if (other.counts_len != self.counts_len or other.unit_magnitude != self.unit_magnitude
                or other.sub_bucket_half_count != self.sub_bucket_half_count):
            raise ValueError("histograms with different layouts cannot be added")

    def add(self, Histogram other):
        """Add every count of `other` (same layout): exact, order-independent."""
        self._check_same_layout(other)
        cdef int32_t i
        for i in range(self.counts_len):
            self.counts[i] += other.counts[i]
        self._add_stats(other.total_count, other.min_value, other.max_value, other.sum_values)

    cdef void _add_stats(self, int64_t count, int64_t min_value, int64_t max_value, int64_t sum_values) noexcept:
        if count == 0:
            return
        self.total_count += count
        self.sum_values += sum_values
        if min_value < self.min_value:
            self.min_value = min_value
        if max_value > self.max_value:
            self.max_value = max_value

    def to_sparse(self):
        """Compact snapshot for pipes: (stats tuple, bytes of int64 index/count pairs)."""
        cdef int32_t i
        cdef Py_ssize_t n = 0
        for i in range(self.counts_len):
            if self.counts[i]:
                n += 1
        packed = PyBytes_FromStringAndSize(NULL, 16 * n)
        cdef unsigned char* p = <unsigned char*><char*>packed
        for i in range(self.counts_len):
            if self.counts[i]:
                _put_le_int64(p, i)
                _put_le_int64(p + 8, self.counts[i])
                p += 16
        return (self.total_count, self.min_value, self.max_value, self.sum_values, self.counts_len), packed

    def add_sparse(self, tuple stats, bytes packed):
        """Add a snapshot made by `to_sparse` on a histogram of the same layout."""
        total, min_value, max_value, sum_values, counts_len = stats
        if counts_len != self.counts_len:
            raise ValueError("snapshot from a histogram with a different layout")
        self._add_pairs(packed, 1)
        self._add_stats(total, min_value, max_value, sum_values)

    def add_sparse_difference(self, tuple now, tuple before=None):
        """Add what was recorded between two `to_sparse` snapshots of one histogram
        that was not reset in between (`before` None: since it was empty): each
        bucket's count in `now` less its count in `before`, on the packed pairs
        directly (the supervisor's quarter-second samples, surge.run.samples).
        The total follows the counts; min, max and mean are not known from a
        difference, so they are left as they were (the samples read counts only)."""
        stats, packed = now
        if stats[4] != self.counts_len:
            raise ValueError("snapshot from a histogram with a different layout")
        cdef int64_t added = self._add_pairs(packed, 1)
        if before is not None:
            if before[0][4] != self.counts_len:
                raise ValueError("snapshot from a histogram with a different layout")
            added += self._add_pairs(before[1], -1)
        self.total_count += added

    cdef int64_t _add_pairs(self, bytes packed, int64_t sign) except? -1:
        """Add sign * count for each little-endian int64 (index, count) pair of a
        `to_sparse` snapshot; returns the counts' sum (times sign)."""
        cdef const unsigned char* p = packed
        cdef Py_ssize_t n = len(packed) // 16, k
        cdef int64_t index, count, total = 0
        for k in range(n):
            index = _le_int64(p + 16 * k)
            count = _le_int64(p + 16 * k + 8)
            if index < 0 or index >= self.counts_len:
                raise ValueError(f"snapshot bucket {index} outside this histogram's {self.counts_len}")
            self.counts[index] += sign * count
            total += sign * count
        return total

    def copy(self):
        """An independent histogram with the same counts."""
        clone = Histogram(self.lowest_trackable, self.highest_trackable, self.significant_digits)
        clone.add(self)
        return clone

    # ---- queries --------------------------------------------------------------
    @property
    def min(self):
        """Smallest recorded value (exact), 0 when empty."""
        return self.min_value if self.total_count else 0

    @property
    def max(self):
        """Largest recorded value (exact), 0 when empty."""
        return self.max_value

    @property
    def mean(self):
        """Exact mean of the recorded values, 0.0 when empty."""
        return <double>self.sum_values / self.total_count if self.total_count else 0.0

    @property
    def stdev(self):
        """Standard deviation, from each bucket's middle value (HdrHistogram's method)."""
        if self.total_count == 0:
            return 0.0
        cdef double mean = self.sum_values / <double>self.total_count
        cdef double acc = 0.0, dev
        cdef int32_t i
        for i in range(self.counts_len):
            if self.counts[i]:
                dev = self.median_equivalent(self.value_at_index(i)) - mean
                acc += dev * dev * self.counts[i]
        return sqrt(acc / self.total_count)

    def value_at_percentile(self, double percentile):
        """Highest value equivalent to the one at `percentile` (0..100)."""
        return self.values_at_percentiles([percentile])[0]

    def values_at_percentiles(self, percentiles):
        """Values at many percentiles in one cumulative scan, in the order given
        (HdrHistogram's, capped at the recorded max)."""
        if self.total_count == 0:
            return [0 for _ in percentiles]
        order = sorted(range(len(percentiles)), key=lambda k: percentiles[k])
        results = [0] * len(percentiles)
        cdef int64_t cumulative = 0, target
        cdef int32_t i = 0
        cdef double p
        for k in order:
            p = min(max(percentiles[k], 0.0), 100.0)
            # The rank rule: the count at p is round(p% of total), at least 1.
            target = max(<int64_t>(p * self.total_count / 100.0 + 0.5), 1)
            while cumulative < target and i < self.counts_len:
                cumulative += self.counts[i]
                i += 1
            if p == 0:
                results[k] = self.min_value
            else:
                # HdrHistogram's convention: report the bucket's highest equivalent
                # value; but never above the largest value recorded (that can be
                # up to a bucket, 0.1%, higher), so no report reads p99 > max.
                results[k] = min(self.highest_equivalent(self.value_at_index(i - 1)), self.max_value)
        return results

    def count_at_index(self, int32_t index):
        return self.counts[index]

    def counts_array(self):
        """The raw counts as a list (index order), for reports and tests."""
        return [self.counts[i] for i in range(self.counts_len)]

    def value_from_index(self, int32_t index):
        return self.value_at_index(index)

    def iter_recorded(self):
        """Yield (lowest value, highest equivalent value, count) for each non-empty bucket."""
        cdef int32_t i
        for i in range(self.counts_len):
            if self.counts[i]:
                low = self.value_at_index(i)
                yield low, self.highest_equivalent(low), self.counts[i]

    # ---- HdrHistogram V2 compressed encoding -----------------------------------
    def encode(self):
        """Base64 text of the V2 compressed format that HdrHistogram tools read."""
        cdef int32_t last = self.counts_len - 1
        while last >= 0 and self.counts[last] == 0:
            last -= 1
        cdef bytearray payload = bytearray()
        cdef int32_t i = 0, zeros
        while i <= last:
            if self.counts[i] == 0:
                zeros = 0
                while i <= last and self.counts[i] == 0:
                    zeros += 1
                    i += 1
                _put_zigzag_varint(payload, -zeros)     # a run of zeros is one negative number
            else:
                _put_zigzag_varint(payload, self.counts[i])
                i += 1
        header = struct.pack(">iiiiqqd", V2_ENCODING_COOKIE, len(payload), 0, self.significant_digits,
                             self.lowest_trackable, self.highest_trackable, 1.0)
        deflated = zlib.compress(header + bytes(payload))
        blob = struct.pack(">ii", V2_COMPRESSED_COOKIE, len(deflated)) + deflated
        return base64.b64encode(blob).decode("ascii")

    @staticmethod
    def decode(text):
        """A Histogram from base64 V2 compressed text (ours or any HdrHistogram's).

        A hostile text costs bounded time and memory: the header is inflated
        first, the histogram it asks for must have at most MAX_DECODE_COUNTS
        counters, and no more than its payload length (at most 9 bytes per
        counter) is ever inflated, so a zlib bomb stops at that bound."""
        try:
            blob = base64.b64decode(text, validate=True)
            cookie, length = struct.unpack_from(">ii", blob, 0)
            if cookie & ~COOKIE_FLAGS_MASK != V2_COMPRESSED_COOKIE & ~COOKIE_FLAGS_MASK:
                raise HistogramDecodeError(f"not a V2 compressed histogram (cookie {cookie:#x})")
            inflater = zlib.decompressobj()
            compressed = blob[8:8 + max(length, 0)]
            raw = inflater.decompress(compressed, V2_HEADER_BYTES)
            (cookie, payload_len, _offset, digits, lowest, highest, _ratio) = struct.unpack_from(">iiiiqqd", raw, 0)
        except (ValueError, struct.error, zlib.error) as exc:
            raise HistogramDecodeError(f"not an HdrHistogram V2 histogram: {exc}") from None
        if cookie & ~COOKIE_FLAGS_MASK != V2_ENCODING_COOKIE & ~COOKIE_FLAGS_MASK:
            raise HistogramDecodeError(f"unsupported HdrHistogram encoding (cookie {cookie:#x})")
        try:
            h = Histogram(lowest, highest, digits)
        except (ValueError, OverflowError) as exc:
            raise HistogramDecodeError(f"HdrHistogram header out of range: {exc}") from None
        if h.counts_len > MAX_DECODE_COUNTS:
            raise HistogramDecodeError(f"HdrHistogram range needs {h.counts_len} counters, "
                                       f"more than {MAX_DECODE_COUNTS}")
        if payload_len < 0 or payload_len > 9 * <int64_t>h.counts_len:
            raise HistogramDecodeError(f"HdrHistogram payload length {payload_len} does not fit its range")
        try:       # (max_length 0 would mean "no limit")
            if payload_len:
                raw = raw + inflater.decompress(inflater.unconsumed_tail, payload_len)
        except zlib.error as exc:
            raise HistogramDecodeError(f"not an HdrHistogram V2 histogram: {exc}") from None
        cdef const unsigned char[:] data = raw
        cdef Py_ssize_t pos = V2_HEADER_BYTES, end = V2_HEADER_BYTES + payload_len
        cdef int64_t value
        cdef int64_t index = 0
        if end > len(raw):
            raise HistogramDecodeError("truncated HdrHistogram payload")
        while pos < end:
            value, pos = _get_zigzag_varint(data, pos)
            if value < 0:
                if value < -<int64_t>h.counts_len:      # a zero run past the end (also no overflow below)
                    raise HistogramDecodeError("HdrHistogram payload longer than its range")
                index -= value
            else:
                if index >= h.counts_len:
                    raise HistogramDecodeError("HdrHistogram payload longer than its range")
                if value > MAX_DECODE_TOTAL - h.total_count:
                    raise HistogramDecodeError("HdrHistogram counts add up past 2**62")
                h.counts[index] = value
                if value:
                    low = h.value_at_index(<int32_t>index)
                    h.total_count += value
                    h.sum_values += h.median_equivalent(low) * value
                    if low < h.min_value:
                        h.min_value = low
                    h.max_value = h.highest_equivalent(low)
                index += 1
        return h


cdef inline void _put_le_int64(unsigned char* p, int64_t value) noexcept:
    cdef uint64_t v = <uint64_t>value
    cdef int i
    for i in range(8):
        p[i] = <unsigned char>(v & 0xFF)
        v >>= 8


cdef inline int64_t _le_int64(const unsigned char* p) noexcept:
    # The packed pairs are little-endian ("<q", to_sparse) whatever this machine is.
    cdef uint64_t v = 0
    cdef int i
    for i in range(7, -1, -1):
        v = (v << 8) | p[i]
    return <int64_t>v


cdef _put_zigzag_varint(bytearray out, int64_t value):
    # ZigZag, then LEB128 limited to 9 bytes (the 9th carries 8 bits).
    cdef uint64_t v = (<uint64_t>value << 1) ^ <uint64_t>(value >> 63)
    cdef int n
    for n in range(8):
        if v < 0x80:
            out.append(<unsigned char>v)
            return
        out.append(<unsigned char>((v & 0x7F) | 0x80))
        v >>= 7
    out.append(<unsigned char>(v & 0xFF))


cdef tuple _get_zigzag_varint(const unsigned char[:] data, Py_ssize_t pos):
    cdef uint64_t v = 0, b
    cdef int shift = 0, n
    for n in range(9):
        if pos >= data.shape[0]:
            raise HistogramDecodeError("truncated varint in HdrHistogram payload")
        b = data[pos]
        pos += 1
        if n == 8:
            v |= b << 56
            break
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    return <int64_t>((v >> 1) ^ (-(v & 1))), pos
