# Constants the engine and the Python layers share, defined once here.
# C code cimports the enums; Python reads the same values from
# surge.core._limits (a tiny module that loads nothing else, so reading a
# result file never loads the engine).

# Transport error kinds, in result order (ERROR_KINDS in _limits.pyx names them).
cdef enum:
    ERR_CONNECT = 0
    ERR_READ
    ERR_WRITE
    ERR_TIMEOUT
    ERR_PARSE
    ERR_CLOSED
    ERR_TLS             # a TLS handshake failure, alert or record error (a reset mid-handshake is ERR_READ)
    ERR_KINDS

# Status counters: one slot per code 100..599, slot 0 for anything outside.
cdef enum:
    STATUS_MIN = 100
    STATUS_MAX = 599
    STATUS_SLOTS = 600

# ---- the flow tables (built by surge.run.flows, read by flows.pxi) ----------

# Template part kinds (TemplatePart.kind): literal bytes or a slot filled per request.
cdef enum:
    PART_LITERAL = 0
    PART_DATA           # a = feeder, b = column
    PART_VAR            # a = variable
    PART_RANDOM_INT     # a..b inclusive
    PART_RANDOM_WORD
    PART_UUID
    PART_ITERATION
    PART_USER
    PART_COOKIES        # the VU's Cookie header for this request (a = step), cookies.pxi
    PART_RANDOM_STRING  # width = length
    PART_RANDOM_CHOICE  # a = the number of items (in literal), b = 1 when they are all JSON numbers
    PART_TIMESTAMP      # a = TIMESTAMP_*

# PART_TIMESTAMP units: Unix time in seconds, milliseconds, microseconds, or RFC 3339 UTC text.
cdef enum:
    TIMESTAMP_S = 0
    TIMESTAMP_MS
    TIMESTAMP_US
    TIMESTAMP_ISO

# How a slot's value is escaped where it lands (TemplatePart.escape).
cdef enum:
    ESCAPE_RAW = 0
    ESCAPE_PATH         # inside a path segment: percent-encoded (the rule is in escape.pxd)
    ESCAPE_QUERY        # inside a query value: percent-encoded (escape.pxd)
    ESCAPE_JSON         # inside a JSON string: escape quote, backslash, controls
    ESCAPE_HEADER       # a header value: CR and LF dropped (no header injection)
    ESCAPE_JSON_VALUE   # a json: field's whole value: a JSON value of the slot's type (render.pxi)

# Extraction kinds (Extract.kind).
cdef enum:
    EXTRACT_JSON = 0
    EXTRACT_REGEX
    EXTRACT_HEADER
    EXTRACT_COOKIE      # the jar's current value of a cookie (name: its name)

# Think time kinds (Step.think_kind): none, constant a, uniform a..b, exponential mean a.
cdef enum:
    THINK_NONE = 0
    THINK_CONSTANT
    THINK_UNIFORM
    THINK_EXPONENTIAL

# Data feeder row order.
cdef enum:
    ORDER_SEQUENTIAL = 0
    ORDER_RANDOM
    ORDER_UNIQUE        # each row once over all workers

# Per-step counters, FLOW_COUNTERS of them in this order (flow_snapshot).
cdef enum:
    SC_RESPONSES = 0
    SC_CHECKS           # checks evaluated (status, body, latency, each extraction)
    SC_CHECK_FAILURES
    SC_ERRORS           # transport errors, all kinds; by kind at SC_ERRORS + 1 + kind
    FLOW_COUNTERS = SC_ERRORS + 1 + ERR_KINDS

# Per-scenario counters.
cdef enum:
    SCN_STARTED = 0
    SCN_COMPLETED
    SCN_ABORTED
    SCN_COUNTERS
