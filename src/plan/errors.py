"""The error every plan and argument check raises (kept apart so the model can raise it too)."""


class PlanError(ValueError):
    """A plan or argument that cannot run; the message names the culprit (exit 2)."""
