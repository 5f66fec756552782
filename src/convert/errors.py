"""The one error of `surge convert`: input it cannot turn into a plan (exit 2)."""


class ConvertError(ValueError):
    """One line naming the input and what was wrong with it."""
