"""surge: an HTTP load generator with a compiled core."""

__version__ = "0.1.0"
