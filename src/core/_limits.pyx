# cython: language_level=3
"""The engine's shared constants as Python sees them (declared in _limits.pxd)."""

# Names of the ERR_* kinds, index = kind.
# "tls" came last (result files written before it lack it: read it as 0).
ERROR_KINDS = ("connect", "read", "write", "timeout", "parse", "closed", "tls")
assert len(ERROR_KINDS) == ERR_KINDS

STATUS_MIN_CODE = STATUS_MIN
STATUS_MAX_CODE = STATUS_MAX
STATUS_SLOT_COUNT = STATUS_SLOTS     # slot 0: a status outside STATUS_MIN_CODE..STATUS_MAX_CODE

# The flow-table codes (surge.run.flows builds the tables with these).
PART_KIND = {"data": PART_DATA, "var": PART_VAR, "random_int": PART_RANDOM_INT, "random_word": PART_RANDOM_WORD,
             "uuid": PART_UUID, "iteration": PART_ITERATION, "user": PART_USER,
             "cookies": PART_COOKIES, "random_string": PART_RANDOM_STRING, "random_choice": PART_RANDOM_CHOICE,
             "timestamp": PART_TIMESTAMP}     # keys: surge.plan.template kinds
TIMESTAMP_UNIT = {"s": TIMESTAMP_S, "ms": TIMESTAMP_MS, "us": TIMESTAMP_US, "iso": TIMESTAMP_ISO}
ESCAPE_KIND = {"raw": ESCAPE_RAW, "path": ESCAPE_PATH, "query": ESCAPE_QUERY, "json": ESCAPE_JSON,
               "header": ESCAPE_HEADER, "json_value": ESCAPE_JSON_VALUE}
EXTRACT_KIND = {"json": EXTRACT_JSON, "regex": EXTRACT_REGEX, "header": EXTRACT_HEADER,
                "cookie": EXTRACT_COOKIE}
THINK_KIND = {"none": THINK_NONE, "constant": THINK_CONSTANT, "uniform": THINK_UNIFORM,
              "exponential": THINK_EXPONENTIAL}
ORDER_KIND = {"sequential": ORDER_SEQUENTIAL, "random": ORDER_RANDOM, "unique": ORDER_UNIQUE}
STEP_COUNTER_COUNT = FLOW_COUNTERS
SCENARIO_COUNTER_COUNT = SCN_COUNTERS
