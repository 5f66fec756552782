"""The error every plan and argument check raises (kept apart so the model can raise it too)."""


class PlanError(ValueError):
    """A plan or argument that cannot run; the message names the culprit (exit 2)."""


def closest(word: str, candidates) -> str | None:
    """The candidate nearest to a misspelt word (for "did you mean"), or None.
    difflib is imported on the first miss, not with the plan modules: a run
    whose options are right never pays for it."""
    import difflib
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return close[0] if close else None
