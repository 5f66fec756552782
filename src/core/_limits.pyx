# cython: language_level=3
"""The engine's shared constants as Python sees them (declared in _limits.pxd)."""

# Names of the ERR_* kinds, index = kind.
ERROR_KINDS = ("connect", "read", "write", "timeout", "parse", "closed")
assert len(ERROR_KINDS) == ERR_KINDS

STATUS_MIN_CODE = STATUS_MIN
STATUS_MAX_CODE = STATUS_MAX
STATUS_SLOT_COUNT = STATUS_SLOTS     # slot 0: a status outside STATUS_MIN_CODE..STATUS_MAX_CODE
