# HDR histogram: fixed memory, O(1) record, exact merge by adding counts.
#
# Layout (the published HdrHistogram design, reimplemented): values are split
# into log2 "buckets"; each bucket holds `sub_bucket_half_count` linear
# sub-buckets, so every value is kept to `significant_digits` decimal digits.
# The counts index of a value comes from one count-leading-zeros and shifts.
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


cdef class Histogram:
    cdef readonly int64_t lowest_trackable
    cdef readonly int64_t highest_trackable
    cdef readonly int32_t significant_digits
    cdef int32_t unit_magnitude
    cdef int32_t sub_bucket_count
    cdef int32_t sub_bucket_half_count
    cdef int32_t sub_bucket_half_count_magnitude
    cdef int64_t sub_bucket_mask
    cdef int32_t leading_zero_count_base
    cdef readonly int32_t bucket_count
    cdef readonly int32_t counts_len
    cdef int64_t* counts
    cdef readonly int64_t total_count
    cdef int64_t min_value          # exact, INT64_MAX when empty
    cdef int64_t max_value          # exact, 0 when empty
    cdef int64_t sum_values         # exact, for the mean

    cdef void reset(self) noexcept
    cdef int64_t value_at_index(self, int32_t index) noexcept
    cdef int64_t highest_equivalent(self, int64_t value) noexcept
    cdef int64_t median_equivalent(self, int64_t value) noexcept
    cdef int64_t _range_size(self, int64_t value) noexcept
    cdef int64_t _lowest_equivalent(self, int64_t value) noexcept
    cdef void _add_stats(self, int64_t count, int64_t min_value, int64_t max_value, int64_t sum_values) noexcept
    cdef int64_t _add_pairs(self, bytes packed, int64_t sign) except? -1


cdef inline int32_t counts_index_of(Histogram h, int64_t value) noexcept:
    cdef int32_t bucket_index = h.leading_zero_count_base - __builtin_clzll(<uint64_t>(value | h.sub_bucket_mask))
    cdef int32_t sub_bucket_index = <int32_t>(value >> (bucket_index + h.unit_magnitude))
    return ((bucket_index + 1) << h.sub_bucket_half_count_magnitude) + (sub_bucket_index - h.sub_bucket_half_count)


cdef inline void record_value(Histogram h, int64_t value) noexcept:
    """Record one value: a few integer ops, no allocation, no lock, no syscall."""
    if value < 0:
        value = 0
    h.total_count += 1
    h.sum_values += value
    if value < h.min_value:
        h.min_value = value
    if value > h.max_value:
        h.max_value = value             # the exact maximum, even past the range
    if value > h.highest_trackable:
        value = h.highest_trackable     # clamp: counted, never dropped
    h.counts[counts_index_of(h, value)] += 1


